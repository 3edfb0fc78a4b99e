//! # zenith-extender
//!
//! Zenith's gang scheduler as a Kubernetes scheduler extender: kube-scheduler calls the
//! `filter`, `prioritize`, `preempt` and `bind` verbs of `k8s.io/kube-scheduler/extender/v1` over
//! HTTP/JSON, and zenith places gangs of pods all or nothing on the nodes it is shown.
//!
//! - [`wire`]: the JSON of the extender API and the fields of Pods and Nodes it reads;
//! - [`quantity`]: Kubernetes resource quantities;
//! - [`mapping`]: pods → gang requests, nodes → zenith nodes (annotations and labels);
//! - [`Extender`]: the state and the verbs; [`lifecycle`]: pod ends, node changes and
//!   deadlines (watch events from a sidecar, reconciliation with every request);
//!   [`binder`]: Bindings on the API server for the `bind` verb; [`serve`]: the HTTP routes on
//!   `zenith-http`.
//!
//! The `zenith-extender` binary serves it: `zenith-extender --listen 127.0.0.1:8888`.

#![forbid(unsafe_code)]

pub mod binder;
pub mod extender;
pub mod lifecycle;
pub mod mapping;
pub mod quantity;
pub mod serve;
pub mod wire;

pub use extender::{Extender, ExtenderConfig};
pub use serve::serve;
