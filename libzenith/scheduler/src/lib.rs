//! # zenith-scheduler
//!
//! Zenith's gang scheduler: a deterministic decision library for multi-GPU jobs, not a cluster
//! daemon. It decides which job runs, where (nodes, GPU indices, GPU shares), and who is
//! preempted; the caller (a local executor, a Ray or Kubernetes adapter, the simulator) acts on
//! the decisions and reports back. Time is injected (`now` in milliseconds on every call), so the
//! same calls always give the same decisions; the [`journal`] relies on it to restore a
//! scheduler after a crash.
//!
//! The parts, in the order data flows:
//! - [`model`]: nodes, jobs, queues as validated data ([`NodeSpec`], [`JobSpec`],
//!   [`QueueSpec`]); [`state`]: the job state machine;
//! - [`Scheduler`]: the calls (submit, cancel, update; node add, remove, heartbeat, drain;
//!   [`Scheduler::schedule`]) and queries (TEST_ONLY [`Scheduler::test_only`], WILL_RUN
//!   [`Scheduler::will_run`]);
//! - the policies: [`priority`] (FIFO, shortest first, multifactor with fair share), [`placement`]
//!   (first fit, best fit, topology tiers with [`fgd`] for GPU sharing), EASY backfill and
//!   preemption inside the pass, [`quota`] (Kueue-style queues and cohorts);
//! - [`invariants`]: what always holds, checked after every event in tests;
//! - [`journal`]: the line-oriented, checksummed record of every call;
//! - [`sim`]: the trace-driven simulator that compares policies (`zenith-sim`).
//!
//! No Arrow, no dependency outside the standard library, no unsafe code.

#![forbid(unsafe_code)]

mod cluster;
pub mod config;
pub mod decision;
pub mod error;
pub mod fgd;
pub mod invariants;
pub mod journal;
pub mod model;
mod node_index;
pub mod placement;
pub mod priority;
pub mod quota;
pub mod rng;
mod scheduler;
pub mod sim;
pub mod state;
mod util;

pub use config::{Policy, SchedulerConfig};
pub use decision::{Decision, FailReason, GpuGrant, MemberPlacement, RequeueReason};
pub use error::{Error, ErrorKind, Problem, Result};
pub use journal::{CompactReport, RestoreReport};
pub use model::{
    Command, GpuSpec, JobId, JobSpec, Locality, NodeId, NodeLabels, NodeSpec, NodeState,
    Quantities, QueueSpec, Resources,
};
pub use placement::PlacementPolicy;
pub use priority::{PriorityWeights, QueueOrder};
pub use scheduler::{JobUpdate, JobView, NodeView, Scheduler, SchedulerStats};
pub use state::JobState;
