//! The CPU runtime: the machinery under the loader that is not about data formats.
//!
//! Each submodule is one concern: [`ring`] holds the lock-free queues that move work between
//! threads (the loader's worker → consumer hand-off among them).

pub mod ring;
