//! Null-free fixed-size lists of primitives are read from their leaf column without arrow-rs's
//! list reader (`dataset/fixed_lists.rs`): the arrays must equal arrow-rs's own reading for every
//! primitive width, alone or among other columns, in any projection order, across pieces, and
//! lists that hold nulls (or of types the fast path leaves alone) must still come through
//! arrow-rs unchanged.

use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int16Array, Int32Array,
    Int64Array, RecordBatch,
};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;
use zenith_core::dataset::Source;
use zenith_core::dataset::parquet::ParquetFile;

const ROWS: usize = 30_000;
const ROW_GROUP: usize = 20_000;

fn list(values: ArrayRef, size: i32) -> ArrayRef {
    let field = Arc::new(Field::new("item", values.data_type().clone(), true));
    Arc::new(FixedSizeListArray::new(field, size, values, None))
}

fn table() -> RecordBatch {
    let n = ROWS as i64;
    let emb = Float32Array::from_iter_values((0..n * 8).map(|v| v as f32 * 0.5));
    let pair = Int32Array::from_iter_values((0..n * 2).map(|v| (v as i32).wrapping_mul(7)));
    let wide = Int64Array::from_iter_values((0..n * 3).map(|v| v * 1_000_003));
    let doubles = Float64Array::from_iter_values((0..n * 2).map(|v| v as f64 / 3.0));
    let small = Int16Array::from_iter_values((0..n * 2).map(|v| (v % 300) as i16));
    let mut with_nulls = FixedSizeListBuilder::new(Float32Builder::new(), 2);
    for i in 0..ROWS {
        if i % 17 == 0 {
            with_nulls.values().append_nulls(2);
            with_nulls.append(false);
        } else {
            with_nulls.values().append_value(i as f32);
            with_nulls.values().append_value(-(i as f32));
            with_nulls.append(true);
        }
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(Int64Array::from_iter_values(0..n))),
        ("emb", list(Arc::new(emb), 8)),
        ("pair", list(Arc::new(pair), 2)),
        ("wide", list(Arc::new(wide), 3)),
        ("doubles", list(Arc::new(doubles), 2)),
        ("with_nulls", Arc::new(with_nulls.finish())),
        ("small", list(Arc::new(small), 2)),
    ];
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    let arrays = columns.into_iter().map(|(_, array)| array).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

#[test]
fn fixed_size_lists_read_from_their_leaf_equal_arrow_rs_in_every_projection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lists.parquet");
    let batch = table();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(ROW_GROUP))
        .build();
    let mut writer = ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        batch.schema(),
        Some(props),
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    let expected: Vec<RecordBatch> =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
            .unwrap()
            .with_batch_size(ROW_GROUP)
            .build()
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let file = ParquetFile::open(&path).unwrap();
    assert_eq!(
        file.chunk_rows(),
        &[ROW_GROUP as u64, (ROWS - ROW_GROUP) as u64]
    );
    let projections: [Option<Vec<usize>>; 6] = [
        None,
        Some(vec![1]),
        Some(vec![2, 3, 4]),
        Some(vec![3, 0, 1]),
        Some(vec![1, 1, 5]),
        Some(vec![6, 5, 4]),
    ];
    for (group, expected) in expected.iter().enumerate() {
        for projection in &projections {
            let got = file
                .read_chunk(group, projection.as_deref())
                .unwrap_or_else(|e| panic!("row group {group}, {projection:?}: {e}"));
            let want = match projection {
                Some(columns) => expected.project(columns).unwrap(),
                None => expected.clone(),
            };
            assert_eq!(got.num_rows(), want.num_rows());
            for (i, (g, w)) in got.columns().iter().zip(want.columns()).enumerate() {
                assert_eq!(g.data_type(), w.data_type(), "{projection:?} column {i}");
                assert_eq!(
                    g.to_data(),
                    w.to_data(),
                    "row group {group}, {projection:?} column {i}"
                );
            }
            assert_eq!(
                got.column(got.num_columns() - 1).null_count(),
                want.column(want.num_columns() - 1).null_count()
            );
        }
        // Decoded in pieces of at most 8,192 rows, as the loader takes them.
        let pieces = file.fetch_pieces(group, Some(&[1, 2])).unwrap();
        assert!(pieces.pieces().len() >= 2);
        assert!(pieces.pieces().iter().all(|p| p.num_rows() <= 8192));
        assert_eq!(pieces.num_rows(), expected.num_rows());
    }
    assert!(
        matches!(batch.column(1).data_type(), DataType::FixedSizeList(_, 8)),
        "the table has the shape the fast path reads"
    );
}
