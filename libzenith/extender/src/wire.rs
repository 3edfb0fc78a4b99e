//! The JSON of `k8s.io/kube-scheduler/extender/v1` and the few fields of `k8s.io/api/core/v1`
//! Pods and Nodes the extender reads. The extender types have no JSON tags in Go, so their keys
//! are the Go field names (`Pod`, `NodeNames`, `FailedNodes`, ...); Pods and Nodes use the API's
//! camelCase. Unknown fields are ignored: kube-scheduler sends whole objects.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A field Go may send as `null` (a nil slice or map) reads as its default.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `ExtenderArgs`: the pod and its candidate nodes (objects, or names when the extender is
/// configured `nodeCacheCapable`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExtenderArgs {
    /// The pod being scheduled.
    #[serde(rename = "Pod", default)]
    pub pod: Option<Pod>,
    /// Candidate nodes as objects (kept as JSON, echoed back by filter).
    #[serde(rename = "Nodes", default)]
    pub nodes: Option<NodeList>,
    /// Candidate node names.
    #[serde(rename = "NodeNames", default)]
    pub node_names: Option<Vec<String>>,
}

/// `ExtenderFilterResult`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ExtenderFilterResult {
    /// The nodes that pass, as objects (when the request carried objects).
    #[serde(rename = "Nodes", skip_serializing_if = "Option::is_none", default)]
    pub nodes: Option<NodeList>,
    /// The nodes that pass, by name (when the request carried names).
    #[serde(rename = "NodeNames", skip_serializing_if = "Option::is_none", default)]
    pub node_names: Option<Vec<String>>,
    /// Nodes that do not pass, with the reason (preemption may help).
    #[serde(rename = "FailedNodes", default, deserialize_with = "nullable")]
    pub failed_nodes: BTreeMap<String, String>,
    /// Nodes that do not pass and that preemption cannot make pass.
    #[serde(
        rename = "FailedAndUnresolvableNodes",
        default,
        deserialize_with = "nullable"
    )]
    pub failed_and_unresolvable_nodes: BTreeMap<String, String>,
    /// A request-level error (empty when none).
    #[serde(rename = "Error", default, deserialize_with = "nullable")]
    pub error: String,
}

/// `HostPriority`: one node's score (0 to [`MAX_EXTENDER_PRIORITY`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HostPriority {
    /// The node name.
    #[serde(rename = "Host")]
    pub host: String,
    /// Its score.
    #[serde(rename = "Score")]
    pub score: i64,
}

/// kube-scheduler's `MaxExtenderPriority`: the highest score an extender gives.
pub const MAX_EXTENDER_PRIORITY: i64 = 10;

/// `ExtenderPreemptionArgs`: the pod that preempts and the victims kube-scheduler chose per node.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExtenderPreemptionArgs {
    /// The preemptor.
    #[serde(rename = "Pod", default)]
    pub pod: Option<Pod>,
    /// Victims as pods (when the extender is not `nodeCacheCapable`).
    #[serde(rename = "NodeNameToVictims", default)]
    pub node_name_to_victims: Option<BTreeMap<String, Victims>>,
    /// Victims as UIDs (when it is).
    #[serde(rename = "NodeNameToMetaVictims", default)]
    pub node_name_to_meta_victims: Option<BTreeMap<String, MetaVictims>>,
}

/// `Victims`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Victims {
    /// The pods to evict.
    #[serde(rename = "Pods", default, deserialize_with = "nullable")]
    pub pods: Vec<Pod>,
    /// PodDisruptionBudget violations the eviction causes.
    #[serde(rename = "NumPDBViolations", default, deserialize_with = "nullable")]
    pub num_pdb_violations: i64,
}

/// `MetaPod`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MetaPod {
    /// The pod's UID.
    #[serde(rename = "UID", default, deserialize_with = "nullable")]
    pub uid: String,
}

/// `MetaVictims`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MetaVictims {
    /// The pods to evict.
    #[serde(rename = "Pods", default, deserialize_with = "nullable")]
    pub pods: Vec<MetaPod>,
    /// PodDisruptionBudget violations the eviction causes.
    #[serde(rename = "NumPDBViolations", default, deserialize_with = "nullable")]
    pub num_pdb_violations: i64,
}

/// `ExtenderPreemptionResult`: the nodes (and victims) the extender accepts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExtenderPreemptionResult {
    /// Victims per accepted node.
    #[serde(
        rename = "NodeNameToMetaVictims",
        default,
        deserialize_with = "nullable"
    )]
    pub node_name_to_meta_victims: BTreeMap<String, MetaVictims>,
}

/// A `v1.NodeList`: its items stay JSON so filter returns them unchanged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeList {
    /// The nodes.
    #[serde(default, deserialize_with = "nullable")]
    pub items: Vec<Value>,
}

/// `ObjectMeta`: the fields the extender reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ObjectMeta {
    /// Name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// Namespace.
    #[serde(default, deserialize_with = "nullable")]
    pub namespace: String,
    /// UID.
    #[serde(default, deserialize_with = "nullable")]
    pub uid: String,
    /// Labels.
    #[serde(default, deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, deserialize_with = "nullable")]
    pub annotations: BTreeMap<String, String>,
}

/// A `v1.Pod`: the fields the extender reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Pod {
    /// Metadata.
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default, deserialize_with = "nullable")]
    pub spec: PodSpec,
    /// Status.
    #[serde(default, deserialize_with = "nullable")]
    pub status: PodStatus,
}

/// `v1.PodStatus`: its phase.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PodStatus {
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    #[serde(default, deserialize_with = "nullable")]
    pub phase: String,
}

/// A `v1.PodSpec`: the fields the extender reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PodSpec {
    /// The containers (their resource requests make a member's request).
    #[serde(default, deserialize_with = "nullable")]
    pub containers: Vec<Container>,
    /// The pod's priority (from its PriorityClass).
    #[serde(default)]
    pub priority: Option<i32>,
    /// The node the pod is bound to (empty until bound).
    #[serde(rename = "nodeName", default, deserialize_with = "nullable")]
    pub node_name: String,
}

/// A `v1.Container`: its resources.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Container {
    /// Requests and limits.
    #[serde(default, deserialize_with = "nullable")]
    pub resources: ResourceRequirements,
}

/// `v1.ResourceRequirements`: quantities by resource name (strings such as `"8"`, `"500m"`,
/// `"32Gi"`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResourceRequirements {
    /// Requests.
    #[serde(default, deserialize_with = "nullable")]
    pub requests: BTreeMap<String, Value>,
    /// Limits.
    #[serde(default, deserialize_with = "nullable")]
    pub limits: BTreeMap<String, Value>,
}

/// A `v1.Node`: the fields the extender reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Node {
    /// Metadata.
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default, deserialize_with = "nullable")]
    pub spec: NodeSpecFields,
    /// Status.
    #[serde(default, deserialize_with = "nullable")]
    pub status: NodeStatus,
}

/// `v1.NodeSpec`: whether the node is cordoned.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeSpecFields {
    /// `kubectl cordon` sets it: no new pods.
    #[serde(default, deserialize_with = "nullable")]
    pub unschedulable: bool,
}

/// `v1.NodeStatus`: capacity and allocatable quantities.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeStatus {
    /// Everything the node has.
    #[serde(default, deserialize_with = "nullable")]
    pub capacity: BTreeMap<String, Value>,
    /// What pods may use.
    #[serde(default, deserialize_with = "nullable")]
    pub allocatable: BTreeMap<String, Value>,
}

/// `ExtenderBindingArgs`: kube-scheduler asks the extender (when it is the binder) to bind a pod
/// to a node.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExtenderBindingArgs {
    /// The pod's name.
    #[serde(rename = "PodName", default, deserialize_with = "nullable")]
    pub pod_name: String,
    /// The pod's namespace.
    #[serde(rename = "PodNamespace", default, deserialize_with = "nullable")]
    pub pod_namespace: String,
    /// The pod's UID.
    #[serde(rename = "PodUID", default, deserialize_with = "nullable")]
    pub pod_uid: String,
    /// The node to bind it to.
    #[serde(rename = "Node", default, deserialize_with = "nullable")]
    pub node: String,
}

/// `ExtenderBindingResult`: empty `Error` when the pod is bound.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExtenderBindingResult {
    /// Why the binding failed (empty when it did not).
    #[serde(rename = "Error", default, deserialize_with = "nullable")]
    pub error: String,
}

/// A `metav1.WatchEvent` as the API server's watch streams it (`ADDED`, `MODIFIED`, `DELETED`;
/// `BOOKMARK` and `ERROR` are ignored) with a Pod or Node object (told apart by its `kind`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WatchEvent {
    /// The event type.
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    pub kind: String,
    /// The object, with its `kind`.
    #[serde(default)]
    pub object: Value,
}
