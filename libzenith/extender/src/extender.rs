//! The extender's state: a zenith [`Scheduler`] mirroring the nodes kube-scheduler shows it,
//! the gangs it placed, and which pod took which member slot.
//!
//! - **filter**: the first pod of a gang places the whole gang (all or nothing) with zenith's
//!   placement on the candidate nodes; each pod then takes one member slot, and only its
//!   slot's node passes. A gang that does not fit fails every node.
//! - **prioritize**: the pod's slot node gets [`MAX_EXTENDER_PRIORITY`], other nodes 0.
//! - **preempt**: nodes whose victims include a member of a zenith gang that is not
//!   preemptible, or of a priority tier not below the preemptor's, are dropped; the others are
//!   kept with their victims.
//! - **release**: a gang's resources come back when its owner says the gang ended (kube's
//!   extender protocol has no such verb; `POST /release`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Instant;

use zenith_scheduler::{Decision, JobId, JobSpec, Scheduler, SchedulerConfig};

use crate::mapping::{self, GangRequest};
use crate::wire::{
    ExtenderArgs, ExtenderFilterResult, ExtenderPreemptionArgs, ExtenderPreemptionResult,
    HostPriority, MAX_EXTENDER_PRIORITY, MetaPod, MetaVictims, Node, NodeList,
};

/// A placed gang.
#[derive(Debug, Clone)]
struct Gang {
    job: JobId,
    /// Per member: its node, and the pod (UID) that took the slot.
    slots: Vec<(String, Option<String>)>,
    priority: i32,
    preemptible: bool,
}

#[derive(Debug)]
struct State {
    sched: Scheduler,
    next_id: u64,
    gangs: BTreeMap<String, Gang>,
    /// Pod UID → gang key.
    pods: BTreeMap<String, String>,
}

/// The extender (thread-safe: one lock around its state).
#[derive(Debug)]
pub struct Extender {
    state: Mutex<State>,
    start: Instant,
}

impl Default for Extender {
    fn default() -> Self {
        Extender::new()
    }
}

impl Extender {
    /// An extender that knows no node yet (it learns them from requests carrying `Nodes`).
    /// Preemption is kube-scheduler's, so the scheduler inside places without preempting.
    pub fn new() -> Extender {
        let mut cfg = SchedulerConfig::default();
        cfg.policy.preemption = false;
        let sched = Scheduler::new(cfg).expect("the default configuration is valid");
        Extender {
            state: Mutex::new(State {
                sched,
                next_id: 1,
                gangs: BTreeMap::new(),
                pods: BTreeMap::new(),
            }),
            start: Instant::now(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self, st: &State) -> u64 {
        (self.start.elapsed().as_millis() as u64).max(st.sched.now())
    }

    /// Adds a node (or does nothing when a node of that name is known).
    pub fn add_node(&self, node: &Node) -> Result<(), String> {
        let mut st = self.lock();
        let now = self.now(&st);
        add_node(&mut st, node, now)
    }

    /// The filter verb.
    pub fn filter(&self, args: &ExtenderArgs) -> ExtenderFilterResult {
        let mut st = self.lock();
        let now = self.now(&st);
        match filter(&mut st, args, now) {
            Ok(r) => r,
            Err(error) => ExtenderFilterResult {
                error,
                ..Default::default()
            },
        }
    }

    /// The prioritize verb.
    pub fn prioritize(&self, args: &ExtenderArgs) -> Result<Vec<HostPriority>, String> {
        let st = self.lock();
        let pod = args.pod.as_ref().ok_or("the request has no Pod")?;
        let slot_node = st
            .pods
            .get(&pod.metadata.uid)
            .and_then(|g| st.gangs.get(g))
            .and_then(|g| {
                g.slots
                    .iter()
                    .find(|s| s.1.as_deref() == Some(pod.metadata.uid.as_str()))
            })
            .map(|s| s.0.clone());
        Ok(candidates(args)?
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
        let st = self.lock();
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

    /// Gives a gang's resources back (its pods ended); `false` when the gang is unknown.
    pub fn release(&self, gang: &str) -> bool {
        let mut st = self.lock();
        let now = self.now(&st);
        let Some(g) = st.gangs.remove(gang) else {
            return false;
        };
        st.pods.retain(|_, k| k != gang);
        let _ = st.sched.job_completed(g.job, now);
        true
    }

    /// The gangs placed now, by key, with each member's node.
    pub fn gangs(&self) -> BTreeMap<String, Vec<String>> {
        self.lock()
            .gangs
            .iter()
            .map(|(k, g)| (k.clone(), g.slots.iter().map(|s| s.0.clone()).collect()))
            .collect()
    }
}

fn add_node(st: &mut State, node: &Node, now: u64) -> Result<(), String> {
    if st.sched.node_id(&node.metadata.name).is_some() {
        return Ok(());
    }
    let spec = mapping::node_spec(node)?;
    st.sched
        .add_node(spec, now)
        .map(|_| ())
        .map_err(|e| format!("node {}: {e}", node.metadata.name))
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

fn filter(st: &mut State, args: &ExtenderArgs, now: u64) -> Result<ExtenderFilterResult, String> {
    let pod = args.pod.as_ref().ok_or("the request has no Pod")?;
    let names = candidates(args)?;
    if let Some(list) = &args.nodes {
        for item in &list.items {
            let node: Node = serde_json::from_value(item.clone())
                .map_err(|e| format!("a node does not decode: {e}"))?;
            add_node(st, &node, now)?;
        }
    }
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
            match take_slot(st, &req.key, &uid, &names) {
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
    let others: Vec<String> = st
        .sched
        .nodes()
        .filter(|n| !allowed.contains(n.spec.name.as_str()))
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
                    .map(|m| {
                        let name = st.sched.node_name(m.node).unwrap_or_default().to_owned();
                        (name, None)
                    })
                    .collect();
                st.gangs.insert(
                    req.key.clone(),
                    Gang {
                        job: JobId(id),
                        slots,
                        priority: req.priority,
                        preemptible: req.preemptible,
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
/// for a new pod.
fn take_slot(st: &mut State, key: &str, uid: &str, names: &[String]) -> Result<String, String> {
    let gang = st
        .gangs
        .get_mut(key)
        .ok_or_else(|| format!("gang {key} is not placed"))?;
    if let Some(s) = gang.slots.iter().find(|s| s.1.as_deref() == Some(uid)) {
        return Ok(s.0.clone());
    }
    let free: Vec<usize> = (0..gang.slots.len())
        .filter(|&k| gang.slots[k].1.is_none())
        .collect();
    if free.is_empty() {
        return Err(format!(
            "gang {key} already has all {} members",
            gang.slots.len()
        ));
    }
    let Some(&k) = free.iter().find(|&&k| names.contains(&gang.slots[k].0)) else {
        let nodes: Vec<&str> = free.iter().map(|&k| gang.slots[k].0.as_str()).collect();
        return Err(format!(
            "gang {key}: its free member slots are on {}, not among the candidates",
            nodes.join(", ")
        ));
    };
    gang.slots[k].1 = Some(uid.to_owned());
    let node = gang.slots[k].0.clone();
    st.pods.insert(uid.to_owned(), key.to_owned());
    Ok(node)
}
