//! Chunks decoded piece by piece (as Parquet row groups are): a batch in dataset order takes the
//! pieces that hold its rows as soon as they are decoded, without waiting for the rest of the
//! chunk; every piece is decoded once per epoch; a piece that fails fails the batch that needs
//! it, after the batches before it were delivered, and the retry decodes the chunk again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use zenith_core::dataset::{Dataset, Format, PieceDecoder, Source};
use zenith_core::loader::ShuffleMode;
use zenith_core::{Error, Loader, LoaderOptions, Result};

const CHUNKS: usize = 3;
const PIECES: usize = 4;
const PIECE_ROWS: u64 = 250;
const CHUNK_ROWS: u64 = PIECES as u64 * PIECE_ROWS;
const ROWS: u64 = CHUNKS as u64 * CHUNK_ROWS;

/// How long a held piece waits for the test to let it go before it decodes anyway (and says
/// so): a loader that waited for a whole chunk shows up as a timed-out gate, not a hang.
const GATE_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Record {
    /// Times each (chunk, piece) was decoded.
    decoded: Vec<Vec<usize>>,
    /// Pieces from this one on (of chunk 0) wait until `open` is set.
    gate: Option<usize>,
    open: bool,
    gate_timed_out: bool,
    /// (chunk, piece, times left) that fails.
    failing: Option<(usize, usize, usize)>,
}

/// A source whose chunks decode in `PIECES` pieces of ids `start..start + PIECE_ROWS`.
#[derive(Debug)]
struct PiecewiseSource {
    path: PathBuf,
    schema: SchemaRef,
    rows: Vec<u64>,
    record: Mutex<Record>,
    changed: Condvar,
}

impl PiecewiseSource {
    fn new() -> Arc<Self> {
        Arc::new(PiecewiseSource {
            path: PathBuf::from("piecewise.source"),
            schema: Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
            rows: vec![CHUNK_ROWS; CHUNKS],
            record: Mutex::new(Record {
                decoded: vec![vec![0; PIECES]; CHUNKS],
                ..Record::default()
            }),
            changed: Condvar::new(),
        })
    }

    fn piece(&self, chunk: usize, piece: usize) -> Result<RecordBatch> {
        let mut record = self.record.lock().unwrap();
        if chunk == 0 && record.gate.is_some_and(|gate| piece >= gate) {
            let deadline = Instant::now() + GATE_DEADLINE;
            while !record.open {
                let now = Instant::now();
                if now >= deadline {
                    record.gate_timed_out = true;
                    break;
                }
                record = self.changed.wait_timeout(record, deadline - now).unwrap().0;
            }
        }
        if let Some((c, p, times)) = record.failing {
            if (c, p) == (chunk, piece) && times > 0 {
                record.failing = Some((c, p, times - 1));
                return Err(Error::format(
                    &self.path,
                    format!("piece {piece} of chunk {chunk} is damaged"),
                ));
            }
        }
        record.decoded[chunk][piece] += 1;
        let start = (chunk as u64 * CHUNK_ROWS + piece as u64 * PIECE_ROWS) as i64;
        let ids = Int64Array::from_iter_values(start..start + PIECE_ROWS as i64);
        Ok(RecordBatch::try_new(self.schema.clone(), vec![Arc::new(ids)]).unwrap())
    }

    fn open_gate(&self) {
        self.record.lock().unwrap().open = true;
        self.changed.notify_all();
    }

    fn decoded(&self) -> Vec<Vec<usize>> {
        self.record.lock().unwrap().decoded.clone()
    }
}

struct Pieces {
    source: Arc<PiecewiseSource>,
    chunk: usize,
    next: usize,
}

impl PieceDecoder for Pieces {
    fn next_piece(&mut self) -> Result<Option<RecordBatch>> {
        if self.next == PIECES {
            return Ok(None);
        }
        let piece = self.source.piece(self.chunk, self.next)?;
        self.next += 1;
        Ok(Some(piece))
    }
}

impl Source for PiecewiseSource {
    fn path(&self) -> &Path {
        &self.path
    }
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }
    fn chunk_rows(&self) -> &[u64] {
        &self.rows
    }
    fn chunk_decoded_bytes(&self, _index: usize, _projection: Option<&[usize]>) -> u64 {
        CHUNK_ROWS * 8
    }
    fn fetch_chunk(&self, index: usize, _projection: Option<&[usize]>) -> Result<RecordBatch> {
        let pieces = (0..PIECES)
            .map(|piece| self.piece(index, piece))
            .collect::<Result<Vec<_>>>()?;
        Ok(arrow_select::concat::concat_batches(&self.schema, &pieces)?)
    }
    fn piece_decoder(
        self: Arc<Self>,
        index: usize,
        _projection: Option<&[usize]>,
    ) -> Result<Box<dyn PieceDecoder>> {
        Ok(Box::new(Pieces {
            source: self,
            chunk: index,
            next: 0,
        }))
    }
    fn in_memory(&self) -> bool {
        false
    }
}

fn loader(source: &Arc<PiecewiseSource>, shuffle: ShuffleMode, workers: usize) -> Loader {
    let sources = vec![source.clone() as Arc<dyn Source>];
    let dataset =
        Arc::new(Dataset::from_sources(Path::new("."), sources, &[Format::Parquet], None).unwrap());
    let mut options = LoaderOptions::default();
    options.set_batch_size(100).unwrap();
    options.set_shuffle(shuffle);
    options.set_num_workers(workers).unwrap();
    options.set_prefetch(2).unwrap();
    Loader::from_dataset(dataset, &options).unwrap()
}

fn ids_of(batch: &RecordBatch) -> Vec<i64> {
    batch
        .column(0)
        .as_primitive::<Int64Type>()
        .values()
        .to_vec()
}

#[test]
fn the_first_batch_in_dataset_order_waits_for_its_piece_only() {
    for workers in [0, 1, 2] {
        let source = PiecewiseSource::new();
        source.record.lock().unwrap().gate = Some(1);
        let loader = loader(&source, ShuffleMode::None, workers);

        // Rows 0..100 and 100..200 lie in piece 0 of chunk 0; piece 1 is held.
        let first = loader.next_batch().unwrap().unwrap();
        let second = loader.next_batch().unwrap().unwrap();
        assert_eq!(ids_of(&first.data), (0..100).collect::<Vec<_>>());
        assert_eq!(ids_of(&second.data), (100..200).collect::<Vec<_>>());
        let record = source.record.lock().unwrap();
        assert!(
            !record.gate_timed_out,
            "{workers} workers: the first batches waited for a held piece"
        );
        assert_eq!(record.decoded[0][0], 1);
        drop(record);

        source.open_gate();
        let mut ids: Vec<i64> = ids_of(&first.data);
        ids.extend(ids_of(&second.data));
        while let Some(batch) = loader.next_batch().unwrap() {
            ids.extend(ids_of(&batch.data));
        }
        assert_eq!(
            ids,
            (0..ROWS as i64).collect::<Vec<_>>(),
            "in order, complete"
        );
        assert_eq!(
            source.decoded(),
            vec![vec![1; PIECES]; CHUNKS],
            "{workers} workers: every piece decoded once"
        );
        assert_eq!(loader.stats().chunks_decoded, CHUNKS as u64);
    }
}

#[test]
fn every_piece_is_decoded_once_per_epoch_in_any_order() {
    for shuffle in [ShuffleMode::None, ShuffleMode::Global, ShuffleMode::Block] {
        for workers in [0, 2, 4] {
            let source = PiecewiseSource::new();
            let loader = loader(&source, shuffle, workers);
            let mut ids = Vec::new();
            while let Some(batch) = loader.next_batch().unwrap() {
                ids.extend(ids_of(&batch.data));
            }
            if shuffle == ShuffleMode::None {
                assert_eq!(ids, (0..ROWS as i64).collect::<Vec<_>>());
            }
            ids.sort_unstable();
            assert_eq!(ids, (0..ROWS as i64).collect::<Vec<_>>(), "{shuffle:?}");
            assert_eq!(
                source.decoded(),
                vec![vec![1; PIECES]; CHUNKS],
                "{shuffle:?}, {workers} workers"
            );
        }
    }
}

#[test]
fn a_failing_piece_fails_the_batch_that_needs_it_and_the_retry_decodes_again() {
    for workers in [0, 2] {
        let source = PiecewiseSource::new();
        // Piece 2 of chunk 1 holds rows 1500..1750.
        source.record.lock().unwrap().failing = Some((1, 2, 1));
        let loader = loader(&source, ShuffleMode::None, workers);
        let mut ids = Vec::new();
        let mut errors = 0;
        loop {
            match loader.next_batch() {
                Ok(Some(batch)) => ids.extend(ids_of(&batch.data)),
                Ok(None) => break,
                Err(error) => {
                    errors += 1;
                    assert!(
                        error.to_string().contains("piece 2 of chunk 1 is damaged"),
                        "{error}"
                    );
                    assert!(errors < 5, "the retry succeeds");
                    // Everything before the batch that needs the piece was delivered.
                    assert_eq!(ids.len(), 1500, "{workers} workers");
                }
            }
        }
        // Without workers the failure reaches the consumer; with them, a worker decoding ahead
        // may meet it first, and then the decode on demand is already the retry.
        let expected = if workers == 0 { 1..=1 } else { 0..=1 };
        assert!(expected.contains(&errors), "{workers} workers: {errors}");
        assert_eq!(
            ids,
            (0..ROWS as i64).collect::<Vec<_>>(),
            "nothing lost or repeated"
        );
        let decoded = source.decoded();
        assert_eq!(decoded[0], vec![1; PIECES]);
        assert_eq!(decoded[2], vec![1; PIECES]);
        assert!(
            decoded[1].iter().all(|&n| (1..=2).contains(&n)),
            "{decoded:?}"
        );
    }
}
