//! Engine stages as loader stages: the same native and WASM stage objects, run by a loader's
//! workers on each batch (`zenith_core::loader::stage`).

use std::sync::Arc;

use arrow_array::RecordBatch;
use zenith_core::loader::BatchStage;

use super::Stage;
use crate::engine::run_stage;
use crate::metrics::StageMetrics;

/// An engine [`Stage`] run by a loader: panics caught and the stage's series recorded as in the
/// engine; a failure's reason says its kind ("trap: ...", "timeout: ...").
pub struct LoaderStage {
    stage: Arc<dyn Stage>,
    metrics: StageMetrics,
}

impl LoaderStage {
    /// Wraps `stage` (shared: an engine and several loaders may run the same stage object).
    pub fn new(stage: Arc<dyn Stage>) -> Self {
        let metrics = StageMetrics::new(stage.name());
        Self { stage, metrics }
    }
}

impl BatchStage for LoaderStage {
    fn name(&self) -> &str {
        self.stage.name()
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch, String> {
        run_stage(self.stage.as_ref(), &self.metrics, batch).map_err(|e| e.to_string())
    }
}
