//! The resume token: a small, versioned, portable record of where a loader stands.
//!
//! It holds no data, only what decides the order (dataset fingerprint, seed, epoch, shuffle mode
//! and window, batch size, drop_last, rank, world size, remainder rule, projection) and how far
//! the epoch got. Every epoch number, `u64::MAX` included, round-trips.
//! Because the plan is a pure function of those, a loader opened with the token rebuilds the same
//! plan and skips what was delivered, whatever its number of workers.
//!
//! Layout (little endian): `b"ZNRS"`, u16 version, the fields below in order, and an FNV-1a
//! checksum of everything before it. Version 2 turned the `drop_last` byte into flags (bit 0
//! `drop_last`, bit 1 `drop_remainder`); version 1 tokens, from before ranks were padded, are
//! read with `drop_remainder` set, which is what they ran with.

use super::plan::{PlanParams, ShuffleMode};
use crate::dataset::Fnv64;
use crate::error::{Error, Result};

const MAGIC: &[u8; 4] = b"ZNRS";
const VERSION: u16 = 2;
/// Tokens of this version are still read (see the module docs).
const VERSION_1: u16 = 1;
const FLAG_DROP_LAST: u8 = 1;
const FLAG_DROP_REMAINDER: u8 = 2;

/// Size in bytes of an encoded token (the largest a caller's buffer needs to be).
pub const RESUME_STATE_SIZE: usize = 96;

/// Where a loader stands, and what its order depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeState {
    /// [`crate::dataset::Dataset::fingerprint`].
    pub fingerprint: u64,
    /// Hash of the projected column names (0 for all columns).
    pub columns_hash: u64,
    /// The order parameters the epoch ran with.
    pub params: PlanParams,
    /// Batches of this epoch already delivered.
    pub batches_delivered: u64,
    /// Rows in those batches.
    pub rows_delivered: u64,
}

impl ResumeState {
    /// Encodes the token.
    pub fn encode(&self) -> Vec<u8> {
        let p = &self.params;
        let mut out = Vec::with_capacity(RESUME_STATE_SIZE);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        for value in [
            self.fingerprint,
            self.columns_hash,
            p.seed,
            p.epoch,
            p.batch_size as u64,
            p.window_chunks as u64,
        ] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.push(shuffle_code(p.shuffle));
        out.extend_from_slice(&self.batches_delivered.to_le_bytes());
        let mut flags = 0;
        if p.drop_last {
            flags |= FLAG_DROP_LAST;
        }
        if p.drop_remainder {
            flags |= FLAG_DROP_REMAINDER;
        }
        out.push(flags);
        out.extend_from_slice(&p.rank.to_le_bytes());
        out.extend_from_slice(&p.world_size.to_le_bytes());
        out.extend_from_slice(&self.rows_delivered.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // reserved
        let mut hash = Fnv64::default();
        hash.write(&out);
        out.extend_from_slice(&hash.finish().to_le_bytes());
        debug_assert_eq!(out.len(), RESUME_STATE_SIZE);
        out
    }

    /// Decodes a token, rejecting anything that is not one (wrong size, magic, version,
    /// checksum or field values).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let bad = |why: &str| Error::InvalidArgument(format!("resume state: {why}"));
        if bytes.len() != RESUME_STATE_SIZE {
            return Err(bad(&format!(
                "expected {RESUME_STATE_SIZE} bytes, got {}",
                bytes.len()
            )));
        }
        if &bytes[..4] != MAGIC {
            return Err(bad("not a Zenith resume token"));
        }
        let (body, checksum) = bytes.split_at(bytes.len() - 8);
        let mut hash = Fnv64::default();
        hash.write(body);
        if hash.finish().to_le_bytes() != checksum {
            return Err(bad("checksum mismatch (the token is damaged)"));
        }
        let mut reader = Reader { bytes: &body[4..] };
        let version = u16::from_le_bytes(reader.take());
        if version != VERSION && version != VERSION_1 {
            return Err(bad(&format!(
                "token version {version}; this library reads versions {VERSION_1} and {VERSION}"
            )));
        }
        let fingerprint = reader.u64();
        let columns_hash = reader.u64();
        let seed = reader.u64();
        let epoch = reader.u64();
        let batch_size = reader.u64();
        let window_chunks = reader.u64();
        let shuffle =
            shuffle_from_code(reader.take::<1>()[0]).ok_or_else(|| bad("unknown shuffle mode"))?;
        let batches_delivered = reader.u64();
        // One encoding per token: version 1 stores drop_last as 0 or 1; version 2 stores flags
        // and refuses unknown bits.
        let flags = reader.take::<1>()[0];
        let (drop_last, drop_remainder) = if version == VERSION_1 {
            match flags {
                0 => (false, true),
                1 => (true, true),
                _ => return Err(bad("drop_last is neither 0 nor 1")),
            }
        } else {
            if flags & !(FLAG_DROP_LAST | FLAG_DROP_REMAINDER) != 0 {
                return Err(bad("unknown flags"));
            }
            (
                flags & FLAG_DROP_LAST != 0,
                flags & FLAG_DROP_REMAINDER != 0,
            )
        };
        let rank = u32::from_le_bytes(reader.take());
        let world_size = u32::from_le_bytes(reader.take());
        let rows_delivered = reader.u64();
        if reader.u64() != 0 {
            return Err(bad("reserved field is not 0"));
        }
        let to_usize = |v: u64| usize::try_from(v).map_err(|_| bad("value out of range"));
        let params = PlanParams {
            shuffle,
            seed,
            epoch,
            batch_size: to_usize(batch_size)?,
            drop_last,
            rank,
            world_size,
            drop_remainder,
            window_chunks: to_usize(window_chunks)?,
        };
        if params.batch_size == 0
            || params.window_chunks == 0
            || world_size == 0
            || rank >= world_size
            // Batches hold at most batch_size rows each.
            || rows_delivered > batches_delivered.saturating_mul(batch_size)
        {
            return Err(bad("field values out of range"));
        }
        Ok(ResumeState {
            fingerprint,
            columns_hash,
            params,
            batches_delivered,
            rows_delivered,
        })
    }
}

/// Hash of a projection, stored in tokens.
pub fn columns_hash(columns: Option<&[String]>) -> u64 {
    match columns {
        None => 0,
        Some(columns) => {
            let mut hash = Fnv64::default();
            for name in columns {
                hash.write(name.as_bytes());
                hash.write(&[0]);
            }
            hash.finish()
        }
    }
}

fn shuffle_code(mode: ShuffleMode) -> u8 {
    match mode {
        ShuffleMode::None => 0,
        ShuffleMode::Global => 1,
        ShuffleMode::Block => 2,
    }
}

fn shuffle_from_code(code: u8) -> Option<ShuffleMode> {
    match code {
        0 => Some(ShuffleMode::None),
        1 => Some(ShuffleMode::Global),
        2 => Some(ShuffleMode::Block),
        _ => None,
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let (head, rest) = self.bytes.split_at(N);
        self.bytes = rest;
        head.try_into().expect("split_at gave N bytes")
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ResumeState {
        ResumeState {
            fingerprint: 0x1234_5678_9abc_def0,
            columns_hash: columns_hash(Some(&["a".into(), "b".into()])),
            params: PlanParams {
                shuffle: ShuffleMode::Block,
                seed: 42,
                epoch: 3,
                batch_size: 1024,
                drop_last: true,
                rank: 1,
                world_size: 4,
                drop_remainder: false,
                window_chunks: 8,
            },
            batches_delivered: 17,
            rows_delivered: 17 * 1024,
        }
    }

    #[test]
    fn tokens_round_trip() {
        let token = sample().encode();
        assert_eq!(token.len(), RESUME_STATE_SIZE);
        assert_eq!(ResumeState::decode(&token).unwrap(), sample());
    }

    /// The resume-token seeds of the fuzz corpus are tokens this encoder wrote: with
    /// `ZENITH_WRITE_FUZZ_SEEDS=DIR` set (libzenith/fuzz/seeds.py --tokens), this writes them.
    #[test]
    fn fuzz_seed_tokens_round_trip() {
        let mut states = vec![sample()];
        for (i, shuffle) in [ShuffleMode::None, ShuffleMode::Global, ShuffleMode::Block]
            .into_iter()
            .enumerate()
        {
            let mut state = sample();
            state.columns_hash = 0;
            state.params.shuffle = shuffle;
            state.params.seed = i as u64;
            state.params.epoch = 0;
            state.params.batch_size = 7;
            state.params.rank = 0;
            state.params.world_size = 1 + i as u32;
            state.params.window_chunks = 1 + i;
            state.params.drop_last = i == 2;
            state.batches_delivered = 3 * i as u64;
            state.rows_delivered = 21 * i as u64;
            states.push(state);
        }
        for (i, state) in states.iter().enumerate() {
            let token = state.encode();
            assert_eq!(&ResumeState::decode(&token).unwrap(), state);
            if let Some(dir) = std::env::var_os("ZENITH_WRITE_FUZZ_SEEDS") {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(
                    std::path::Path::new(&dir).join(format!("token-{i}")),
                    &token,
                )
                .unwrap();
            }
        }
    }

    /// Found by fuzzing (libzenith/fuzz, resume_state): a token whose checksum is valid but
    /// whose drop_last byte is 41 decoded as `true` and encoded back as 1 — two tokens for one
    /// state. Flags, the reserved field and the rows count now have one valid encoding each.
    #[test]
    fn tokens_have_one_encoding() {
        let reseal = |mut token: Vec<u8>| {
            let body = token.len() - 8;
            let mut hash = Fnv64::default();
            hash.write(&token[..body]);
            token[body..].copy_from_slice(&hash.finish().to_le_bytes());
            token
        };
        let token = sample().encode();
        let drop_last = 4 + 2 + 6 * 8 + 1 + 8;
        let rows = drop_last + 1 + 4 + 4;
        let reserved = rows + 8;
        let mut flag = token.clone();
        flag[drop_last] = 41;
        let mut spare = token.clone();
        spare[reserved] = 1;
        let mut too_many_rows = token.clone();
        too_many_rows[rows..rows + 8].copy_from_slice(&(17 * 1024 + 1u64).to_le_bytes());
        for damaged in [flag, spare, too_many_rows] {
            let err = ResumeState::decode(&reseal(damaged)).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
        }
        assert_eq!(ResumeState::decode(&token).unwrap().encode(), token);
    }

    #[test]
    fn every_flag_and_the_largest_epoch_round_trip() {
        for (drop_last, drop_remainder) in
            [(false, false), (true, false), (false, true), (true, true)]
        {
            let mut state = sample();
            state.params.drop_last = drop_last;
            state.params.drop_remainder = drop_remainder;
            state.params.epoch = u64::MAX;
            state.batches_delivered = u64::MAX;
            let token = state.encode();
            assert_eq!(token.len(), RESUME_STATE_SIZE);
            assert_eq!(ResumeState::decode(&token).unwrap(), state);
        }
    }

    /// A version 1 token: a version 2 token with the version and flags byte rewritten (and the
    /// checksum recomputed).
    fn as_version_1(token: &[u8], drop_last: bool) -> Vec<u8> {
        let mut old = token[..RESUME_STATE_SIZE - 8].to_vec();
        old[4..6].copy_from_slice(&VERSION_1.to_le_bytes());
        // magic, version, six u64 fields, the shuffle byte, batches_delivered: then the flags.
        old[4 + 2 + 6 * 8 + 1 + 8] = drop_last as u8;
        let mut hash = Fnv64::default();
        hash.write(&old);
        old.extend_from_slice(&hash.finish().to_le_bytes());
        old
    }

    #[test]
    fn version_1_tokens_resume_with_the_remainder_dropped() {
        for drop_last in [false, true] {
            let old = as_version_1(&sample().encode(), drop_last);
            let decoded = ResumeState::decode(&old).unwrap();
            assert_eq!(decoded.params.drop_last, drop_last);
            assert!(
                decoded.params.drop_remainder,
                "version 1 ran with floor(rows / world)"
            );
        }
    }

    #[test]
    fn damaged_or_foreign_tokens_are_rejected() {
        let token = sample().encode();
        assert!(ResumeState::decode(&token[..10]).is_err());
        assert!(ResumeState::decode(b"not a token at all").is_err());
        for i in 0..token.len() {
            let mut damaged = token.clone();
            damaged[i] ^= 0x40;
            assert!(
                ResumeState::decode(&damaged).is_err(),
                "flip at byte {i} detected"
            );
        }
    }
}
