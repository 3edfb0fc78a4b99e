//! The extender's state: a zenith [`Scheduler`] mirroring the nodes kube-scheduler shows it,
//! the gangs it placed, and which pod took which member slot.
//!
//! - **filter**: the first pod of a gang places the whole gang (all or nothing) with zenith's
//!   placement on the candidate nodes; each pod then takes one member slot (the pod is
//!   *assumed* there), and only its slot's node passes. A gang that does not fit fails every
//!   node.
//! - **prioritize**: the pod's slot node gets [`MAX_EXTENDER_PRIORITY`], other nodes 0.
//! - **preempt**: nodes whose victims include a member of a zenith gang that is not
//!   preemptible, or of a priority tier not below the preemptor's, are dropped; the others are
//!   kept with their victims.
//! - **bind** (when the extender is kube-scheduler's binder): the pod's `v1.Binding` is created
//!   on the API server ([`crate::binder`]) and its slot counts as bound.
//! - **watch** and reconciliation ([`crate::lifecycle`]): pod ends, node changes, nodes that
//!   stopped showing up, assumed pods that never bound.
//! - **release**: a gang's resources come back at once (`POST /release`, for owners that know).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use zenith_scheduler::{Decision, JobId, JobSpec, NodeState, Scheduler, SchedulerConfig};

use crate::binder::ApiServer;
use crate::mapping::{self, GangRequest};
use crate::wire::{
    ExtenderArgs, ExtenderBindingArgs, ExtenderBindingResult, ExtenderFilterResult,
    ExtenderPreemptionArgs, ExtenderPreemptionResult, HostPriority, MAX_EXTENDER_PRIORITY, MetaPod,
    MetaVictims, NodeList, WatchEvent,
};

/// Milliseconds on some monotonic clock (tests inject their own).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// How the extender reconciles what it holds with the cluster.
#[derive(Clone)]
pub struct ExtenderConfig {
    /// A node missing from the candidates of every filter and prioritize request for this long
    /// (and from watch events) is removed when it holds no gang member, drained otherwise
    /// (until it shows up again). Time without requests does not count.
    pub node_grace_ms: u64,
    /// A pod assumed on its slot but not bound (bind verb, or a watch event with its
    /// `nodeName`) within this long loses the slot; a gang with no bound pod this long after
    /// its last placement or assumption is released.
    pub bind_deadline_ms: u64,
    /// Where `bind` creates Bindings (None: the bind verb answers an error).
    pub apiserver: Option<ApiServer>,
    /// The clock (None: milliseconds since the extender started).
    pub clock: Option<Clock>,
}

impl Default for ExtenderConfig {
    fn default() -> Self {
        ExtenderConfig {
            node_grace_ms: 600_000,
            bind_deadline_ms: 60_000,
            apiserver: None,
            clock: None,
        }
    }
}

impl std::fmt::Debug for ExtenderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtenderConfig")
            .field("node_grace_ms", &self.node_grace_ms)
            .field("bind_deadline_ms", &self.bind_deadline_ms)
            .field("apiserver", &self.apiserver)
            .field("clock", &self.clock.as_ref().map(|_| "injected"))
            .finish()
    }
}

/// One member slot of a placed gang.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    /// The node zenith chose.
    pub node: String,
    /// The pod (UID) that took it.
    pub pod: Option<String>,
    /// When the pod took it.
    pub assumed_at: u64,
    /// Whether the pod is bound to the node.
    pub bound: bool,
}

/// A placed gang.
#[derive(Debug, Clone)]
pub(crate) struct Gang {
    pub job: JobId,
    pub slots: Vec<Slot>,
    pub priority: i32,
    pub preemptible: bool,
    /// The last placement or assumption (the bind deadline counts from it).
    pub active_at: u64,
    /// Pods of the gang that ended, and whether one of them failed.
    pub ended: u32,
    pub failed: bool,
}

/// What the extender knows of a node beyond zenith's scheduler.
#[derive(Debug, Clone)]
pub(crate) struct NodeTrack {
    /// The spec zenith's scheduler has for it.
    pub spec: zenith_scheduler::NodeSpec,
    /// The first request whose candidates lacked it since a request or watch event last
    /// showed it.
    pub missing_since: Option<u64>,
    /// `spec.unschedulable` (kubectl cordon).
    pub cordoned: bool,
    /// Missing past the grace period while holding gang members.
    pub absent: bool,
    /// A changed spec waiting for the node to hold no gang member.
    pub pending: Option<zenith_scheduler::NodeSpec>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub sched: Scheduler,
    pub next_id: u64,
    pub gangs: BTreeMap<String, Gang>,
    /// Pod UID → gang key.
    pub pods: BTreeMap<String, String>,
    pub nodes: BTreeMap<String, NodeTrack>,
}

/// A node as the extender holds it (see [`Extender::nodes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSummary {
    /// GPUs zenith's scheduler knows.
    pub gpus: u32,
    /// Taking no new gangs (cordoned, absent, or waiting to take a changed spec).
    pub draining: bool,
}

/// The extender (thread-safe: one lock around its state).
pub struct Extender {
    state: Mutex<State>,
    cfg: ExtenderConfig,
    clock: Clock,
}

impl std::fmt::Debug for Extender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extender").field("cfg", &self.cfg).finish()
    }
}

impl Default for Extender {
    fn default() -> Self {
        Extender::new()
    }
}

impl Extender {
    /// An extender with the default configuration that knows no node yet (it learns them from
    /// requests carrying `Nodes` and from node watch events).
    pub fn new() -> Extender {
        Extender::with_config(ExtenderConfig::default())
    }

    /// An extender with `cfg`. Preemption is kube-scheduler's, so the scheduler inside places
    /// without preempting.
    pub fn with_config(cfg: ExtenderConfig) -> Extender {
        let mut sc = SchedulerConfig::default();
        sc.policy.preemption = false;
        let sched = Scheduler::new(sc).expect("the default configuration is valid");
        let clock = cfg.clock.clone().unwrap_or_else(|| {
            let start = Instant::now();
            Arc::new(move || start.elapsed().as_millis() as u64)
        });
        Extender {
            state: Mutex::new(State {
                sched,
                next_id: 1,
                gangs: BTreeMap::new(),
                pods: BTreeMap::new(),
                nodes: BTreeMap::new(),
            }),
            cfg,
            clock,
        }
    }

    /// The state, reconciled at the current time (see [`crate::lifecycle`]), and that time.
    fn lock(&self) -> (std::sync::MutexGuard<'_, State>, u64) {
        // A panic while holding the lock leaves plain data; keep serving.
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = (self.clock)().max(st.sched.now());
        st.reconcile(&self.cfg, now);
        (st, now)
    }

    /// Adds a node (or updates it when its spec changed).
    pub fn add_node(&self, node: &crate::wire::Node) -> Result<(), String> {
        let (mut st, now) = self.lock();
        st.upsert_node(node, now)
    }

    /// The filter verb.
    pub fn filter(&self, args: &ExtenderArgs) -> ExtenderFilterResult {
        let (mut st, now) = self.lock();
        match filter(&mut st, args, self.cfg.node_grace_ms, now) {
            Ok(r) => r,
            Err(error) => ExtenderFilterResult {
                error,
                ..Default::default()
            },
        }
    }

    /// The prioritize verb.
    pub fn prioritize(&self, args: &ExtenderArgs) -> Result<Vec<HostPriority>, String> {
        let (mut st, now) = self.lock();
        let pod = args.pod.as_ref().ok_or("the request has no Pod")?;
        let names = candidates(args)?;
        st.seen(&names, self.cfg.node_grace_ms, now);
        let slot_node = st.slot_of(&pod.metadata.uid).map(|s| s.node.clone());
        Ok(names
            .into_iter()
            .map(|host| HostPriority {
                score: if Some(&host) == slot_node.as_ref() {
                    MAX_EXTENDER_PRIORITY
                } else {
                    0
                },
                host,
            })
            .collect())
    }

    /// The preempt verb.
    pub fn preempt(
        &self,
        args: &ExtenderPreemptionArgs,
    ) -> Result<ExtenderPreemptionResult, String> {
        let (st, _) = self.lock();
        let pod = args.pod.as_ref().ok_or("the request has no Pod")?;
        let prio = match mapping::gang_request(pod)? {
            Some(r) => r.priority,
            None => pod.spec.priority.unwrap_or(0),
        };
        let mut victims: BTreeMap<String, MetaVictims> = BTreeMap::new();
        if let Some(m) = &args.node_name_to_victims {
            for (node, v) in m {
                victims.insert(
                    node.clone(),
                    MetaVictims {
                        pods: v
                            .pods
                            .iter()
                            .map(|p| MetaPod {
                                uid: p.metadata.uid.clone(),
                            })
                            .collect(),
                        num_pdb_violations: v.num_pdb_violations,
                    },
                );
            }
        }
        if let Some(m) = &args.node_name_to_meta_victims {
            for (node, v) in m {
                victims.entry(node.clone()).or_insert_with(|| v.clone());
            }
        }
        let protected = |uid: &str| {
            st.pods
                .get(uid)
                .and_then(|g| st.gangs.get(g))
                .is_some_and(|g| !g.preemptible || g.priority >= prio)
        };
        victims.retain(|_, v| !v.pods.iter().any(|p| protected(&p.uid)));
        Ok(ExtenderPreemptionResult {
            node_name_to_meta_victims: victims,
        })
    }

    /// The bind verb: checks the pod goes where zenith put it, creates its `v1.Binding` on the
    /// API server (outside the lock: other verbs go on meanwhile), then marks its slot bound.
    pub fn bind(&self, args: &ExtenderBindingArgs) -> ExtenderBindingResult {
        let error = |error: String| ExtenderBindingResult { error };
        let Some(api) = &self.cfg.apiserver else {
            return error(
                "zenith-extender has no --apiserver to create Bindings with; do not configure \
                 bindVerb, or start it with --apiserver"
                    .into(),
            );
        };
        {
            let (st, _) = self.lock();
            if let Some(slot) = st.slot_of(&args.pod_uid) {
                if slot.node != args.node {
                    return error(format!(
                        "zenith placed pod {}/{} on {}, not {}",
                        args.pod_namespace, args.pod_name, slot.node, args.node
                    ));
                }
            }
        }
        if let Err(e) = api.bind(
            &args.pod_namespace,
            &args.pod_name,
            &args.pod_uid,
            &args.node,
        ) {
            return error(e);
        }
        let (mut st, _) = self.lock();
        st.mark_bound(&args.pod_uid, &args.node);
        ExtenderBindingResult::default()
    }

    /// Applies watch events (pod ends and bindings, node additions, changes, cordons and
    /// removals); returns how many changed something.
    pub fn watch(&self, events: &[WatchEvent]) -> Result<usize, String> {
        let (mut st, now) = self.lock();
        let mut applied = 0;
        for ev in events {
            applied += st.apply_event(ev, now)? as usize;
        }
        Ok(applied)
    }

    /// Gives a gang's resources back (its pods ended); `false` when the gang is unknown.
    pub fn release(&self, gang: &str) -> bool {
        let (mut st, now) = self.lock();
        st.release_gang(gang, now, None)
    }

    /// The gangs placed now, by key, with each member's node.
    pub fn gangs(&self) -> BTreeMap<String, Vec<String>> {
        self.lock()
            .0
            .gangs
            .iter()
            .map(|(k, g)| (k.clone(), g.slots.iter().map(|s| s.node.clone()).collect()))
            .collect()
    }

    /// The pods holding a member slot now (assumed or bound), by UID, with their node and
    /// whether they are bound.
    pub fn pods(&self) -> BTreeMap<String, (String, bool)> {
        let (st, _) = self.lock();
        st.pods
            .keys()
            .filter_map(|uid| {
                st.slot_of(uid)
                    .map(|s| (uid.clone(), (s.node.clone(), s.bound)))
            })
            .collect()
    }

    /// The nodes zenith's scheduler holds now.
    pub fn nodes(&self) -> BTreeMap<String, NodeSummary> {
        let (st, _) = self.lock();
        st.sched
            .nodes()
            .map(|n| {
                (
                    n.spec.name.clone(),
                    NodeSummary {
                        gpus: n.spec.gpus.len() as u32,
                        draining: n.state == NodeState::Draining,
                    },
                )
            })
            .collect()
    }
}

/// The candidate node names of a request.
fn candidates(args: &ExtenderArgs) -> Result<Vec<String>, String> {
    if let Some(names) = &args.node_names {
        return Ok(names.clone());
    }
    if let Some(list) = &args.nodes {
        return list
            .items
            .iter()
            .map(|v| {
                v.pointer("/metadata/name")
                    .and_then(|n| n.as_str())
                    .map(str::to_owned)
                    .ok_or_else(|| "a node without metadata.name".to_string())
            })
            .collect();
    }
    Err("the request has neither Nodes nor NodeNames".into())
}

fn filter(
    st: &mut State,
    args: &ExtenderArgs,
    node_grace_ms: u64,
    now: u64,
) -> Result<ExtenderFilterResult, String> {
    let pod = args.pod.as_ref().ok_or("the request has no Pod")?;
    let names = candidates(args)?;
    if let Some(list) = &args.nodes {
        for item in &list.items {
            let node: crate::wire::Node = serde_json::from_value(item.clone())
                .map_err(|e| format!("a node does not decode: {e}"))?;
            st.upsert_node(&node, now)?;
        }
    }
    st.seen(&names, node_grace_ms, now);
    let mut failed = BTreeMap::new();
    let mut unresolvable = BTreeMap::new();
    let pass: BTreeSet<String> = match mapping::gang_request(pod)? {
        // Not zenith's pod: every candidate passes.
        None => names.iter().cloned().collect(),
        Some(req) => {
            let uid = pod.metadata.uid.clone();
            if !st.gangs.contains_key(&req.key) {
                if let Err(why) = place(st, &req, &names, now) {
                    for n in &names {
                        failed.insert(n.clone(), why.clone());
                    }
                }
            }
            match take_slot(st, &req.key, &uid, &names, now) {
                Ok(node) => {
                    for n in &names {
                        if *n != node {
                            unresolvable.insert(
                                n.clone(),
                                format!("gang {}: this member is placed on {node}", req.key),
                            );
                        }
                    }
                    BTreeSet::from([node])
                }
                Err(why) => {
                    for n in &names {
                        failed.entry(n.clone()).or_insert_with(|| why.clone());
                    }
                    BTreeSet::new()
                }
            }
        }
    };
    let mut out = ExtenderFilterResult {
        failed_nodes: failed,
        failed_and_unresolvable_nodes: unresolvable,
        ..Default::default()
    };
    if let Some(list) = &args.nodes {
        out.nodes = Some(NodeList {
            items: list
                .items
                .iter()
                .filter(|v| {
                    v.pointer("/metadata/name")
                        .and_then(|n| n.as_str())
                        .is_some_and(|n| pass.contains(n))
                })
                .cloned()
                .collect(),
        });
    } else {
        out.node_names = Some(names.into_iter().filter(|n| pass.contains(n)).collect());
    }
    Ok(out)
}

/// Places a whole gang on the candidate nodes (the others are drained for the pass).
fn place(st: &mut State, req: &GangRequest, names: &[String], now: u64) -> Result<(), String> {
    let allowed: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let unknown: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| st.sched.node_id(n).is_none())
        .collect();
    if unknown.len() == names.len() {
        return Err(format!(
            "no candidate node is known to zenith (send Nodes, not only NodeNames): {}",
            unknown.join(", ")
        ));
    }
    // Nodes already draining (cordoned, absent, changing) stay so after the pass.
    let others: Vec<String> = st
        .sched
        .nodes()
        .filter(|n| !allowed.contains(n.spec.name.as_str()) && n.state != NodeState::Draining)
        .map(|n| n.spec.name.clone())
        .collect();
    for n in &others {
        st.sched.drain_node(n, now).map_err(|e| e.to_string())?;
    }
    let id = st.next_id;
    st.next_id += 1;
    let mut spec = JobSpec::new(id, req.key.clone(), req.member.clone())
        .gang(req.size, req.locality)
        .priority(req.priority, req.preemptible);
    spec.queue = req.queue.clone();
    // A gang that loses a node is forgotten, not requeued: its pods are Kubernetes' to restart.
    spec.restartable = false;
    let result = (|| {
        st.sched.submit(spec, now).map_err(|e| e.to_string())?;
        let decisions = st.sched.schedule(now).map_err(|e| e.to_string())?;
        let members = decisions.into_iter().find_map(|d| match d {
            Decision::Start { job, members } if job == JobId(id) => Some(members),
            _ => None,
        });
        match members {
            Some(members) => {
                st.sched
                    .job_started(JobId(id), now)
                    .map_err(|e| e.to_string())?;
                let slots = members
                    .iter()
                    .map(|m| Slot {
                        node: st.sched.node_name(m.node).unwrap_or_default().to_owned(),
                        pod: None,
                        assumed_at: now,
                        bound: false,
                    })
                    .collect();
                st.gangs.insert(
                    req.key.clone(),
                    Gang {
                        job: JobId(id),
                        slots,
                        priority: req.priority,
                        preemptible: req.preemptible,
                        active_at: now,
                        ended: 0,
                        failed: false,
                    },
                );
                Ok(())
            }
            None => {
                if st
                    .sched
                    .job(JobId(id))
                    .is_some_and(|j| !j.state.is_terminal())
                {
                    let _ = st.sched.cancel(JobId(id), now);
                }
                Err(format!(
                    "gang {} ({} x {} GPUs) does not fit on the candidate nodes now",
                    req.key, req.size, req.member.gpus
                ))
            }
        }
    })();
    for n in &others {
        let _ = st.sched.undrain_node(n, now);
    }
    result
}

/// The node of pod `uid`'s member slot in gang `key`, taking a free slot on a candidate node
/// for a new pod (the pod is then assumed there).
fn take_slot(
    st: &mut State,
    key: &str,
    uid: &str,
    names: &[String],
    now: u64,
) -> Result<String, String> {
    let gang = st
        .gangs
        .get_mut(key)
        .ok_or_else(|| format!("gang {key} is not placed"))?;
    if let Some(s) = gang.slots.iter().find(|s| s.pod.as_deref() == Some(uid)) {
        return Ok(s.node.clone());
    }
    let free: Vec<usize> = (0..gang.slots.len())
        .filter(|&k| gang.slots[k].pod.is_none())
        .collect();
    if free.is_empty() {
        return Err(format!(
            "gang {key} already has all {} members",
            gang.slots.len()
        ));
    }
    let Some(&k) = free.iter().find(|&&k| names.contains(&gang.slots[k].node)) else {
        let nodes: Vec<&str> = free.iter().map(|&k| gang.slots[k].node.as_str()).collect();
        return Err(format!(
            "gang {key}: its free member slots are on {}, not among the candidates",
            nodes.join(", ")
        ));
    };
    let slot = &mut gang.slots[k];
    slot.pod = Some(uid.to_owned());
    slot.assumed_at = now;
    slot.bound = false;
    gang.active_at = now;
    let node = slot.node.clone();
    st.pods.insert(uid.to_owned(), key.to_owned());
    Ok(node)
}
