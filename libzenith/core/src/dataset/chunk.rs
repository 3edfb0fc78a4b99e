//! A decoded chunk as the loader holds it: its rows as one or more record batches ("pieces"),
//! in order, never concatenated.
//!
//! Why pieces: a Parquet row group decoded as one 65,536-row batch builds every buffer far past
//! the CPU caches, and arrow-rs grows its level and value buffers by doubling while it decodes,
//! so each row group is copied several times through memory. Decoded a few thousand rows at a
//! time, the same work stays in cache (measured on the benchmark file: a fifth less CPU per row
//! group). Concatenating the pieces back into one batch would give that gain away, so the loader
//! slices and gathers from the pieces directly.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use arrow_select::concat::concat_batches;

use crate::error::{Error, Result};

/// The rows of one chunk, as pieces in order (at least one). Cloning is cheap: the pieces are
/// shared.
#[derive(Debug, Clone)]
pub struct DecodedChunk {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    /// Decoded as one batch (every source but Parquet): no allocation beyond the batch, since the
    /// loader fetches such chunks once per batch that reads them.
    One(RecordBatch),
    /// Decoded in several pieces.
    Many {
        pieces: Arc<[RecordBatch]>,
        /// The row (within the chunk) each piece starts at, then the chunk's row count.
        starts: Arc<[usize]>,
        /// Rows in every piece but the last, when they all have that count and the last has no
        /// more (then a row's piece is one division away); `None`: a binary search of `starts`.
        uniform_rows: Option<usize>,
    },
}

impl DecodedChunk {
    /// A chunk decoded as one batch.
    pub fn single(batch: RecordBatch) -> Self {
        DecodedChunk {
            repr: Repr::One(batch),
        }
    }

    /// A chunk of `pieces`, in order; empty pieces are dropped, and no piece at all is an empty
    /// batch of `schema`.
    pub fn from_pieces(schema: &SchemaRef, pieces: Vec<RecordBatch>) -> Self {
        let mut pieces: Vec<RecordBatch> =
            pieces.into_iter().filter(|p| p.num_rows() > 0).collect();
        match pieces.len() {
            0 => return Self::single(RecordBatch::new_empty(schema.clone())),
            1 => return Self::single(pieces.pop().expect("one piece")),
            _ => {}
        }
        let mut starts = Vec::with_capacity(pieces.len() + 1);
        let mut row = 0;
        for piece in &pieces {
            starts.push(row);
            row += piece.num_rows();
        }
        starts.push(row);
        let first = pieces[0].num_rows();
        let (last, others) = pieces.split_last().expect("several pieces");
        let uniform = others.iter().all(|p| p.num_rows() == first) && last.num_rows() <= first;
        DecodedChunk {
            repr: Repr::Many {
                pieces: Arc::from(pieces),
                starts: Arc::from(starts),
                uniform_rows: uniform.then_some(first),
            },
        }
    }

    /// [`Self::from_pieces`] with the schema of the first piece: no piece at all is an
    /// [`Error::Internal`] (a source hands over at least one, possibly empty).
    pub fn try_from_pieces(pieces: Vec<RecordBatch>) -> Result<Self> {
        let schema = pieces
            .first()
            .map(RecordBatch::schema)
            .ok_or_else(|| Error::Internal("a chunk decoded to no piece at all".into()))?;
        Ok(Self::from_pieces(&schema, pieces))
    }

    /// The pieces, in order.
    pub fn pieces(&self) -> &[RecordBatch] {
        match &self.repr {
            Repr::One(batch) => std::slice::from_ref(batch),
            Repr::Many { pieces, .. } => pieces,
        }
    }

    /// Rows in the chunk.
    pub fn num_rows(&self) -> usize {
        match &self.repr {
            Repr::One(batch) => batch.num_rows(),
            Repr::Many { starts, .. } => starts[starts.len() - 1],
        }
    }

    /// The schema of the pieces.
    pub fn schema(&self) -> SchemaRef {
        self.pieces()[0].schema()
    }

    /// The piece that holds row `row` of the chunk, and the row's position in it. `row` should
    /// be below [`Self::num_rows`]; past it the last piece is named, with a position past its
    /// end (which the gather's bounds check refuses).
    #[inline]
    pub fn locate(&self, row: usize) -> (usize, usize) {
        match &self.repr {
            Repr::One(_) => (0, row),
            Repr::Many {
                pieces,
                starts,
                uniform_rows,
            } => {
                let piece = match uniform_rows {
                    Some(rows) => row / rows,
                    None => starts[1..].partition_point(|&end| end <= row),
                }
                .min(pieces.len() - 1);
                (piece, row - starts[piece])
            }
        }
    }

    /// The row (within the chunk) piece `piece` starts at.
    fn piece_start(&self, piece: usize) -> usize {
        match &self.repr {
            Repr::One(_) => 0,
            Repr::Many { starts, .. } => starts[piece],
        }
    }

    /// Zero-copy slices of the pieces covering rows `offset..offset + len` of the chunk, in
    /// order (one slice when the rows lie in one piece). An empty range or one past the end is
    /// an [`Error::Internal`].
    pub fn slices(&self, offset: usize, len: usize) -> Result<Vec<RecordBatch>> {
        let end = offset
            .checked_add(len)
            .filter(|&end| len > 0 && end <= self.num_rows())
            .ok_or_else(|| {
                Error::Internal(format!(
                    "rows {offset}..+{len} outside a chunk of {} rows",
                    self.num_rows()
                ))
            })?;
        let (mut piece, mut at) = self.locate(offset);
        let mut row = offset;
        let mut slices = Vec::with_capacity(1);
        let pieces = self.pieces();
        while row < end {
            let piece_end = self.piece_start(piece) + pieces[piece].num_rows();
            let take = end.min(piece_end) - row;
            slices.push(pieces[piece].slice(at, take));
            row += take;
            piece += 1;
            at = 0;
        }
        Ok(slices)
    }

    /// The chunk with `f` applied to each piece (a projection, a schema swap): pieces keep
    /// their row counts, so `f` must too.
    pub fn try_map(&self, mut f: impl FnMut(&RecordBatch) -> Result<RecordBatch>) -> Result<Self> {
        let repr = match &self.repr {
            Repr::One(batch) => Repr::One(f(batch)?),
            Repr::Many {
                pieces,
                starts,
                uniform_rows,
            } => {
                let mapped = pieces.iter().map(&mut f).collect::<Result<Vec<_>>>()?;
                if mapped
                    .iter()
                    .zip(pieces.iter())
                    .any(|(m, p)| m.num_rows() != p.num_rows())
                {
                    return Err(Error::Internal("a piece changed its row count".into()));
                }
                Repr::Many {
                    pieces: Arc::from(mapped),
                    starts: starts.clone(),
                    uniform_rows: *uniform_rows,
                }
            }
        };
        Ok(DecodedChunk { repr })
    }

    /// The chunk as one batch: the single piece itself, or the pieces concatenated (a copy).
    pub fn to_batch(&self) -> Result<RecordBatch> {
        match &self.repr {
            Repr::One(batch) => Ok(batch.clone()),
            Repr::Many { pieces, .. } => Ok(concat_batches(&self.schema(), pieces.iter())?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Int64Array};
    use arrow_schema::{DataType, Field, Schema};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]))
    }

    fn piece(start: i64, rows: i64) -> RecordBatch {
        let values = Int64Array::from_iter_values(start..start + rows);
        RecordBatch::try_new(schema(), vec![Arc::new(values)]).unwrap()
    }

    fn values(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| {
                let column = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                column.values().to_vec()
            })
            .collect()
    }

    #[test]
    fn rows_are_located_in_uniform_and_uneven_pieces() {
        for sizes in [
            vec![4, 4, 4, 2],
            vec![3, 5, 1, 4],
            vec![7],
            vec![2, 0, 2, 2],
        ] {
            let mut start = 0;
            let pieces: Vec<RecordBatch> = sizes
                .iter()
                .map(|&n| {
                    let p = piece(start, n);
                    start += n;
                    p
                })
                .collect();
            let chunk = DecodedChunk::from_pieces(&schema(), pieces);
            assert_eq!(chunk.num_rows() as i64, start);
            assert!(chunk.pieces().iter().all(|p| p.num_rows() > 0));
            for row in 0..chunk.num_rows() {
                let (p, at) = chunk.locate(row);
                let column = chunk.pieces()[p].column(0);
                let column = column.as_any().downcast_ref::<Int64Array>().unwrap();
                assert_eq!(column.value(at), row as i64, "sizes {sizes:?} row {row}");
            }
            for offset in 0..chunk.num_rows() {
                for len in 1..=chunk.num_rows() - offset {
                    let slices = chunk.slices(offset, len).unwrap();
                    let expected: Vec<i64> = (offset as i64..(offset + len) as i64).collect();
                    assert_eq!(values(&slices), expected);
                }
            }
            assert_eq!(
                values(&[chunk.to_batch().unwrap()]),
                (0..start).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn ranges_outside_the_chunk_are_errors_and_no_pieces_is_an_empty_batch() {
        let chunk = DecodedChunk::from_pieces(&schema(), vec![piece(0, 4), piece(4, 4)]);
        assert!(chunk.slices(6, 3).is_err());
        assert!(chunk.slices(2, 0).is_err());
        assert!(chunk.slices(usize::MAX, 2).is_err());
        let empty = DecodedChunk::from_pieces(&schema(), Vec::new());
        assert_eq!(empty.num_rows(), 0);
        assert_eq!(empty.to_batch().unwrap().num_rows(), 0);
        assert_eq!(empty.pieces()[0].column(0).len(), 0);
    }
}
