//! Loader stages: per-batch transforms the loader's workers run on each batch right after
//! gathering it, before it enters the hand-off ring (so preprocessing runs in parallel, on native
//! threads, and the consumer receives transformed batches in plan order).
//!
//! The contract lives here, below the loader, so that crates above the core (the event engine's
//! native and WASM stages) can plug in without the core depending on them.

use std::fmt;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::error::{Error, Result};

/// A transform of one batch. Shared by every worker of a loader and called concurrently, one
/// batch per call.
pub trait BatchStage: Send + Sync {
    /// The stage's name, in the error of a batch it fails.
    fn name(&self) -> &str;

    /// Transforms one batch; an error is the reason, which the loader reports as an
    /// [`Error::Stage`] naming this stage and the batch.
    fn apply(&self, batch: RecordBatch) -> std::result::Result<RecordBatch, String>;
}

/// The chain of stages a loader runs on each batch, in order. Two chains are equal when they hold
/// the same stage objects in the same order.
#[derive(Clone, Default)]
pub struct Stages(Vec<Arc<dyn BatchStage>>);

impl Stages {
    /// Appends `stage`: it runs on the output of those added before it.
    pub fn push(&mut self, stage: Arc<dyn BatchStage>) {
        self.0.push(stage);
    }

    /// Whether there is no stage (batches are delivered as gathered).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The stages' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|s| s.name()).collect()
    }

    /// Runs batch `index` through every stage; the first failure is the batch's error.
    pub(crate) fn apply(&self, mut batch: RecordBatch, index: u64) -> Result<RecordBatch> {
        for stage in &self.0 {
            batch = stage.apply(batch).map_err(|reason| Error::Stage {
                stage: stage.name().to_owned(),
                batch: index,
                reason,
            })?;
        }
        Ok(batch)
    }

    /// The schema of the batches the chain delivers from batches of `input`: the chain run once
    /// on an empty batch. A chain that refuses an empty batch is reported as the input schema:
    /// the batches it delivers then carry their own.
    pub(crate) fn output_schema(&self, input: &SchemaRef) -> SchemaRef {
        if self.is_empty() {
            return input.clone();
        }
        let probe = self
            .0
            .iter()
            .try_fold(RecordBatch::new_empty(input.clone()), |batch, stage| {
                stage.apply(batch)
            });
        probe.map_or_else(|_| input.clone(), |batch| batch.schema())
    }
}

impl PartialEq for Stages {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

impl Eq for Stages {}

impl fmt::Debug for Stages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use arrow_array::{Array, Int64Array};

    struct AddOne;

    impl BatchStage for AddOne {
        fn name(&self) -> &str {
            "add_one"
        }

        fn apply(&self, batch: RecordBatch) -> std::result::Result<RecordBatch, String> {
            let column = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or("column 0 is not int64")?;
            let plus: Int64Array = column.iter().map(|v| v.map(|v| v + 1)).collect();
            RecordBatch::try_new(batch.schema(), vec![Arc::new(plus)]).map_err(|e| e.to_string())
        }
    }

    fn batch(values: Vec<i64>) -> RecordBatch {
        RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from(values)) as _)]).unwrap()
    }

    #[test]
    fn stages_run_in_order_and_failures_name_stage_and_batch() {
        let mut stages = Stages::default();
        let add: Arc<dyn BatchStage> = Arc::new(AddOne);
        stages.push(add.clone());
        stages.push(add);
        let out = stages.apply(batch(vec![1, 2]), 0).unwrap();
        let x = out.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(x.values(), &[3, 4]);
        assert_eq!(format!("{stages:?}"), r#"["add_one", "add_one"]"#);

        let strings = RecordBatch::try_from_iter([(
            "s",
            Arc::new(arrow_array::StringArray::from(vec!["a"])) as _,
        )])
        .unwrap();
        let err = stages.apply(strings, 7).unwrap_err();
        assert_eq!(
            err.to_string(),
            "stage `add_one` failed on batch 7: column 0 is not int64"
        );
        assert_eq!(err.kind(), crate::error::ErrorKind::Stage);
    }

    #[test]
    fn chains_compare_by_identity() {
        let add: Arc<dyn BatchStage> = Arc::new(AddOne);
        let (mut a, mut b) = (Stages::default(), Stages::default());
        a.push(add.clone());
        b.push(add);
        assert_eq!(a, b);
        b.push(Arc::new(AddOne));
        assert_ne!(a, b);
        assert_eq!(
            a.output_schema(&batch(vec![]).schema()),
            batch(vec![]).schema()
        );
    }
}
