//! How the extender learns that pods ended and nodes changed, without a cluster client of its
//! own:
//!
//! - **watch events** (`POST /watch`): a sidecar forwards the API server's watch streams of
//!   Pods and Nodes (`kubectl get --raw '/api/v1/pods?watch=1'`, one `metav1.WatchEvent` per
//!   line). A pod that is `DELETED`, or whose phase is `Succeeded`/`Failed`, gives its member
//!   slot back; a gang whose last pod ended is finished and its resources come back. A pod
//!   event carrying `spec.nodeName` counts as its binding. A node `ADDED`/`MODIFIED` is added,
//!   or updated (allocatable, labels) — at once when it holds no gang member, else it is drained
//!   until it holds none; `spec.unschedulable` drains it (cordon); `DELETED` removes it and
//!   forgets the gangs it held (their other pods are Kubernetes' to restart).
//! - **reconciliation** with the candidates filter and prioritize carry: a node missing from
//!   the candidates of every request for [`ExtenderConfig::node_grace_ms`] (time without
//!   requests does not count; a watch event showing the node resets it) is removed when it
//!   holds no gang member, drained otherwise (a full node is never a candidate for a GPU pod,
//!   so absence alone never removes a node that holds work). Before every request, pods
//!   assumed on a slot but not bound within [`ExtenderConfig::bind_deadline_ms`] lose the
//!   slot, and a gang with no bound pod that long after its last placement or assumption is
//!   released.

use zenith_scheduler::NodeState;

use crate::extender::{ExtenderConfig, NodeTrack, Slot, State};
use crate::mapping;
use crate::wire::{Node, Pod, WatchEvent};

impl State {
    /// The member slot pod `uid` holds.
    pub(crate) fn slot_of(&self, uid: &str) -> Option<&Slot> {
        let g = self.gangs.get(self.pods.get(uid)?)?;
        g.slots.iter().find(|s| s.pod.as_deref() == Some(uid))
    }

    fn holds_members(&self, node: &str) -> bool {
        self.gangs
            .values()
            .any(|g| g.slots.iter().any(|s| s.node == node))
    }

    /// The candidates of a filter or prioritize request: the nodes among them are present;
    /// a node missing from every request for `grace` ms is removed when it holds no gang
    /// member, drained otherwise. Absence is judged only here, after the request's own
    /// candidates: idle time between requests never removes a node.
    pub(crate) fn seen(&mut self, names: &[String], grace: u64, now: u64) {
        let shown: std::collections::BTreeSet<&str> = names.iter().map(String::as_str).collect();
        let mut back = Vec::new();
        let mut gone = Vec::new();
        for (n, t) in self.nodes.iter_mut() {
            if shown.contains(n.as_str()) {
                t.missing_since = None;
                if t.absent {
                    t.absent = false;
                    back.push(n.clone());
                }
            } else {
                let since = *t.missing_since.get_or_insert(now);
                if !t.absent && now.saturating_sub(since) > grace {
                    gone.push(n.clone());
                }
            }
        }
        for n in back {
            self.sync(&n, now);
        }
        for n in gone {
            if self.holds_members(&n) {
                self.nodes.get_mut(&n).expect("listed above").absent = true;
                self.sync(&n, now);
            } else {
                self.remove_node(&n, now);
            }
        }
    }

    /// Adds a node, or records what changed (spec, cordon).
    pub(crate) fn upsert_node(&mut self, node: &Node, now: u64) -> Result<(), String> {
        let name = node.metadata.name.clone();
        let spec = mapping::node_spec(node)?;
        let cordoned = node.spec.unschedulable;
        match self.nodes.get_mut(&name) {
            Some(t) => {
                t.missing_since = None;
                t.absent = false;
                t.cordoned = cordoned;
                t.pending = (spec != t.spec).then_some(spec);
            }
            None => {
                self.sched
                    .add_node(spec.clone(), now)
                    .map_err(|e| format!("node {name}: {e}"))?;
                self.nodes.insert(
                    name.clone(),
                    NodeTrack {
                        spec,
                        missing_since: None,
                        cordoned,
                        absent: false,
                        pending: None,
                    },
                );
            }
        }
        self.sync(&name, now);
        Ok(())
    }

    /// Brings zenith's scheduler in line with a node's track: a pending spec is taken when the
    /// node holds no gang member; the node drains while cordoned, absent or changing.
    fn sync(&mut self, name: &str, now: u64) {
        let Some(t) = self.nodes.get(name) else {
            return;
        };
        if let Some(spec) = t.pending.clone() {
            if !self.holds_members(name) {
                let _ = self.sched.remove_node(name, now);
                if self.sched.add_node(spec.clone(), now).is_ok() {
                    let t = self.nodes.get_mut(name).expect("tracked above");
                    t.spec = spec;
                    t.pending = None;
                } else {
                    // The new spec is refused (validated before, so not expected): forget it.
                    self.nodes.remove(name);
                    return;
                }
            }
        }
        let t = &self.nodes[name];
        let drain = t.cordoned || t.absent || t.pending.is_some();
        let draining = self
            .sched
            .node_id(name)
            .and_then(|id| self.sched.node(id))
            .is_some_and(|v| v.state == NodeState::Draining);
        if drain && !draining {
            let _ = self.sched.drain_node(name, now);
        } else if !drain && draining {
            let _ = self.sched.undrain_node(name, now);
        }
    }

    /// Removes a node and forgets the gangs it held (zenith's scheduler fails their jobs).
    fn remove_node(&mut self, name: &str, now: u64) {
        if self.nodes.remove(name).is_none() {
            return;
        }
        let lost: Vec<String> = self
            .gangs
            .iter()
            .filter(|(_, g)| g.slots.iter().any(|s| s.node == name))
            .map(|(k, _)| k.clone())
            .collect();
        let _ = self.sched.remove_node(name, now);
        for k in lost {
            if let Some(g) = self.gangs.remove(&k) {
                self.pods.retain(|_, key| *key != k);
                // Removing the node failed the job; a job still live is cancelled.
                let _ = self.sched.cancel(g.job, now);
            }
        }
    }

    /// Ends a gang: `None` releases it (its owner said so, or it never bound), `Some(failed)`
    /// finishes it after its last pod ended. `false` when the gang is unknown.
    pub(crate) fn release_gang(&mut self, key: &str, now: u64, ended: Option<bool>) -> bool {
        let Some(g) = self.gangs.remove(key) else {
            return false;
        };
        self.pods.retain(|_, k| k != key);
        let _ = match ended {
            Some(true) => self.sched.job_failed(g.job, now),
            _ => self.sched.job_completed(g.job, now),
        };
        for s in &g.slots {
            let node = s.node.clone();
            self.sync(&node, now);
        }
        true
    }

    /// Pod `uid` is bound to `node` (the bind verb, or a watch event with its `nodeName`).
    pub(crate) fn mark_bound(&mut self, uid: &str, node: &str) -> bool {
        let Some(key) = self.pods.get(uid) else {
            return false;
        };
        let Some(g) = self.gangs.get_mut(key) else {
            return false;
        };
        match g
            .slots
            .iter_mut()
            .find(|s| s.pod.as_deref() == Some(uid) && s.node == node)
        {
            Some(s) if !s.bound => {
                s.bound = true;
                true
            }
            _ => false,
        }
    }

    /// Pod `uid` ended: its slot is free again (a replacement pod may take it); the gang
    /// finishes when no slot holds a pod any more.
    fn pod_ended(&mut self, uid: &str, failed: bool, now: u64) -> bool {
        let Some(key) = self.pods.remove(uid) else {
            return false;
        };
        let Some(g) = self.gangs.get_mut(&key) else {
            return false;
        };
        for s in g.slots.iter_mut().filter(|s| s.pod.as_deref() == Some(uid)) {
            s.pod = None;
            s.bound = false;
        }
        g.ended += 1;
        g.failed |= failed;
        if g.slots.iter().all(|s| s.pod.is_none()) {
            let failed = g.failed;
            self.release_gang(&key, now, Some(failed));
        }
        true
    }

    /// One watch event; `Ok(true)` when it changed something.
    pub(crate) fn apply_event(&mut self, ev: &WatchEvent, now: u64) -> Result<bool, String> {
        let deleted = match ev.kind.as_str() {
            "ADDED" | "MODIFIED" => false,
            "DELETED" => true,
            "BOOKMARK" | "ERROR" => return Ok(false),
            other => return Err(format!("unknown watch event type {other:?}")),
        };
        match ev.object.get("kind").and_then(|k| k.as_str()) {
            Some("Pod") => {
                let pod: Pod = serde_json::from_value(ev.object.clone())
                    .map_err(|e| format!("a Pod does not decode: {e}"))?;
                let uid = &pod.metadata.uid;
                let phase = pod.status.phase.as_str();
                if deleted || phase == "Succeeded" || phase == "Failed" {
                    Ok(self.pod_ended(uid, phase != "Succeeded", now))
                } else if !pod.spec.node_name.is_empty() {
                    Ok(self.mark_bound(uid, &pod.spec.node_name))
                } else {
                    Ok(false)
                }
            }
            Some("Node") => {
                let node: Node = serde_json::from_value(ev.object.clone())
                    .map_err(|e| format!("a Node does not decode: {e}"))?;
                if deleted {
                    let known = self.nodes.contains_key(&node.metadata.name);
                    self.remove_node(&node.metadata.name, now);
                    Ok(known)
                } else {
                    self.upsert_node(&node, now)?;
                    Ok(true)
                }
            }
            other => Err(format!(
                "a watch event's object must be a Pod or a Node (its kind), not {other:?}"
            )),
        }
    }

    /// Deadlines at `now`: assumed pods that never bound, gangs never bound; nodes waiting to
    /// take a changed spec.
    pub(crate) fn reconcile(&mut self, cfg: &ExtenderConfig, now: u64) {
        let deadline = cfg.bind_deadline_ms;
        let mut never_bound = Vec::new();
        for (key, g) in self.gangs.iter_mut() {
            for s in g.slots.iter_mut() {
                if s.pod.is_some() && !s.bound && now.saturating_sub(s.assumed_at) > deadline {
                    if let Some(uid) = s.pod.take() {
                        self.pods.remove(&uid);
                    }
                }
            }
            if !g.slots.iter().any(|s| s.bound) && now.saturating_sub(g.active_at) > deadline {
                never_bound.push(key.clone());
            }
        }
        for key in never_bound {
            self.release_gang(&key, now, None);
        }
        // Nodes that waited for their gangs to leave before taking a changed spec.
        let waiting: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, t)| t.pending.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        for n in waiting {
            self.sync(&n, now);
        }
    }
}
