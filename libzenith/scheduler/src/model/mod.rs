//! What the scheduler schedules: nodes and jobs, as plain validated data.
//!
//! Specs are built by the caller ([`NodeSpec`], [`JobSpec`], [`QueueSpec`]) and checked by
//! `validate()` (the scheduler calls it on every spec it is given), which returns
//! [`crate::Error::Invalid`] naming the field and the rule it broke. Nothing here is executed:
//! a job's [`Command`] is data for the executor that launches the job.

mod command;
mod job;
pub mod limits;
mod node;
mod queue;
pub mod text;

pub use command::Command;
pub use job::{JobId, JobSpec, Locality, Resources};
pub use node::{GpuSpec, NodeId, NodeLabels, NodeSpec, NodeState};
pub use queue::{Quantities, QueueSpec};
