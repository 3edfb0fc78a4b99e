//! The invariants a scheduler's state always satisfies, checked from scratch (tests run the
//! check after every event):
//!
//! 1. Accounting: for every live node and GPU, free + what SCHEDULED/RUNNING jobs hold equals
//!    capacity; no GPU gives out more than 1000 milli (so no GPU or share is over-allocated, and a
//!    whole GPU is never shared); CPU and memory never exceed the node's; a removed or Down node
//!    holds nothing.
//! 2. Gangs are whole: a SCHEDULED/RUNNING job has exactly `gang_size` members, each with exactly
//!    its GPUs (distinct, of allowed types, the right share) on a live node; its locality holds;
//!    no other job holds anything.
//! 3. Quotas: every queue's usage equals the sum over its admitted jobs, and is within its limits
//!    and its cohort's pool.
//! 4. Bookkeeping: each job is in the set of its state; fair-share rates match the running jobs.
//! 5. The node index (free state by node) equals one rebuilt from scratch.

use crate::cluster::{Health, NO_RACK, WHOLE};
use crate::model::Locality;
use crate::scheduler::Scheduler;
use crate::state::JobState;

pub(crate) fn check(s: &Scheduler) -> Result<(), String> {
    let cl = &s.cluster;
    // 5. The node index describes the free state and eligibility.
    s.index.check(cl, &s.free)?;
    let ngpu_flat = s.free.gpu.len();
    let mut used_gpu = vec![0u32; ngpu_flat];
    let nn = cl.nodes.len();
    let mut used_cpu = vec![0u64; nn];
    let mut used_mem = vec![0u64; nn];
    let mut queue_usage = vec![[0u64; 3]; s.quotas.queues.len()];
    let mut user_rate = vec![0u64; s.users.accounts.len()];
    let mut queue_rate = vec![0u64; s.queue_fs.accounts.len()];

    for (i, e) in s.jobs.iter().enumerate() {
        let id = e.spec.id;
        // 4. sets
        let in_set = (0..4).find(|&k| s.sets[k].contains(&(i as u32)));
        let expect = match e.state {
            JobState::Pending => Some(0),
            JobState::Queued => Some(1),
            JobState::Scheduled | JobState::Running => Some(2),
            JobState::Suspended => Some(3),
            _ => None,
        };
        if in_set != expect {
            return Err(format!(
                "job {id} in state {} is in set {in_set:?}, expected {expect:?}",
                e.state
            ));
        }
        if !e.state.holds_resources() {
            if !e.members.is_empty() {
                return Err(format!("job {id} in state {} holds resources", e.state));
            }
            continue;
        }
        // 2. gangs whole
        if e.members.len() != e.spec.gang_size as usize {
            return Err(format!(
                "job {id} has {} members placed, gang size {}",
                e.members.len(),
                e.spec.gang_size
            ));
        }
        for (k, m) in e.members.iter().enumerate() {
            let n = m.node.0 as usize;
            let Some(info) = cl.nodes.get(n) else {
                return Err(format!("job {id} member {k} on unknown node {n}"));
            };
            if info.removed || info.health == Health::Down {
                return Err(format!(
                    "job {id} member {k} on lost node {}",
                    info.spec.name
                ));
            }
            if m.gpus.len() != e.req.gpus as usize {
                return Err(format!(
                    "job {id} member {k} has {} GPUs, asked {}",
                    m.gpus.len(),
                    e.req.gpus
                ));
            }
            let mut idx: Vec<u16> = m.gpus.iter().map(|g| g.index).collect();
            idx.sort_unstable();
            idx.dedup();
            if idx.len() != m.gpus.len() {
                return Err(format!("job {id} member {k} holds a GPU twice"));
            }
            for g in &m.gpus {
                if g.index as usize >= info.ngpu {
                    return Err(format!(
                        "job {id} member {k} holds GPU {} of {}",
                        g.index, info.ngpu
                    ));
                }
                if g.milli as u32 != e.req.milli {
                    return Err(format!(
                        "job {id} member {k} got {} milli, asked {}",
                        g.milli, e.req.milli
                    ));
                }
                let flat = info.gpu_off + g.index as usize;
                if !cl.gpu_allowed(flat, e.req.type_mask) {
                    return Err(format!(
                        "job {id} member {k} on a GPU of a type it does not allow"
                    ));
                }
                used_gpu[flat] += g.milli as u32;
            }
            used_cpu[n] += e.req.cpu;
            used_mem[n] += e.req.mem;
        }
        let nodes: Vec<usize> = e.members.iter().map(|m| m.node.0 as usize).collect();
        let one_node = nodes.iter().all(|&n| n == nodes[0]);
        match e.spec.locality {
            Locality::Any => {}
            Locality::SameNode => {
                if !one_node {
                    return Err(format!("job {id} is same-node but spans nodes"));
                }
            }
            Locality::SameIsland => {
                let info = &cl.nodes[nodes[0]];
                let mut islands: Vec<u16> = e
                    .members
                    .iter()
                    .flat_map(|m| {
                        m.gpus
                            .iter()
                            .map(|g| cl.island_of[info.gpu_off + g.index as usize])
                    })
                    .collect();
                islands.sort_unstable();
                islands.dedup();
                if !one_node || islands.len() > 1 {
                    return Err(format!(
                        "job {id} is same-island but spans islands or nodes"
                    ));
                }
            }
            Locality::SameRack => {
                let r0 = cl.nodes[nodes[0]].rack;
                let ok =
                    one_node || (r0 != NO_RACK && nodes.iter().all(|&n| cl.nodes[n].rack == r0));
                if !ok {
                    return Err(format!("job {id} is same-rack but spans racks"));
                }
            }
            Locality::Spread => {
                let mut v = nodes.clone();
                v.sort_unstable();
                v.dedup();
                if v.len() != nodes.len() {
                    return Err(format!("job {id} is spread but shares a node"));
                }
            }
        }
        for (u, d) in queue_usage[e.queue].iter_mut().zip(e.demand) {
            *u += d;
        }
        user_rate[e.user_acct] += e.billing_milli;
        queue_rate[e.queue_acct] += e.billing_milli;
    }

    // 1. accounting
    for (n, info) in cl.nodes.iter().enumerate() {
        let gpus = info.gpu_off..info.gpu_off + info.ngpu;
        if info.removed {
            if s.free.cpu[n] != 0
                || s.free.mem[n] != 0
                || s.free.whole[n] != 0
                || s.free.milli[n] != 0
            {
                return Err(format!(
                    "removed node {} has free resources",
                    info.spec.name
                ));
            }
            if gpus.clone().any(|g| s.free.gpu[g] != 0 || used_gpu[g] != 0) {
                return Err(format!(
                    "removed node {} has GPUs in use or free",
                    info.spec.name
                ));
            }
            continue;
        }
        let mut whole = 0u16;
        for g in gpus {
            let total = s.free.gpu[g] as u32 + used_gpu[g];
            if total != WHOLE as u32 {
                return Err(format!(
                    "node {} GPU {}: free {} + used {} != 1000",
                    info.spec.name,
                    g - info.gpu_off,
                    s.free.gpu[g],
                    used_gpu[g]
                ));
            }
            if s.free.gpu[g] == WHOLE {
                whole += 1;
            }
        }
        let milli: u32 = (info.gpu_off..info.gpu_off + info.ngpu)
            .map(|g| s.free.gpu[g] as u32)
            .sum();
        if milli != s.free.milli[n] {
            return Err(format!(
                "node {}: free milli-GPU counter is stale",
                info.spec.name
            ));
        }
        if whole != s.free.whole[n] {
            return Err(format!(
                "node {}: {} whole GPUs free, counter says {}",
                info.spec.name, whole, s.free.whole[n]
            ));
        }
        if s.free.cpu[n] + used_cpu[n] != info.spec.cpu_milli {
            return Err(format!(
                "node {}: CPU free + used != capacity",
                info.spec.name
            ));
        }
        if s.free.mem[n] + used_mem[n] != info.spec.memory_mib {
            return Err(format!(
                "node {}: memory free + used != capacity",
                info.spec.name
            ));
        }
        let eligible = info.health == Health::Up && !info.draining;
        if cl.eligible[n] != eligible {
            return Err(format!(
                "node {}: eligibility flag is stale",
                info.spec.name
            ));
        }
    }

    // 3. quotas
    for (q, e) in s.quotas.queues.iter().enumerate() {
        if e.usage != queue_usage[q] {
            return Err(format!(
                "queue {}: usage {:?}, admitted jobs hold {:?}",
                e.spec.name, e.usage, queue_usage[q]
            ));
        }
    }
    s.quotas.check()?;

    // 4. the end-time index holds exactly the admitted jobs with a time limit
    for (i, e) in s.jobs.iter().enumerate() {
        let expect = if e.state.holds_resources() {
            match (e.spec.max_runtime_ms, e.run_start_ms.or(e.start_ms)) {
                (Some(l), Some(st)) => Some(st.saturating_add(l)),
                _ => None,
            }
        } else {
            None
        };
        if e.end_key != expect || expect.is_some_and(|t| !s.ends.contains(&(t, i as u32))) {
            return Err(format!("job {}: end-time index is stale", e.spec.id));
        }
    }
    let watched = s
        .jobs
        .iter()
        .filter(|e| e.state.holds_resources() && e.spec.progress_timeout_ms.is_some())
        .count() as u64;
    if watched != s.watched {
        return Err("the count of jobs with a progress timeout is stale".into());
    }
    let preemptible = s
        .jobs
        .iter()
        .filter(|e| e.state.holds_resources() && e.spec.preemptible)
        .count() as u64;
    if preemptible != s.preemptible_bound {
        return Err("the count of preemptible jobs holding resources is stale".into());
    }
    if s.ends.len() != s.jobs.iter().filter(|e| e.end_key.is_some()).count() {
        return Err("the end-time index holds jobs it should not".into());
    }

    // 4. the cached queue order holds only queued jobs, each under its key
    let mut filed = 0usize;
    for (g, grp) in s.order.groups.iter().enumerate() {
        for &(k, i) in &grp.jobs {
            let e = &s.jobs[i as usize];
            let slot = crate::scheduler::order_slot(g as u32, k);
            if e.state != JobState::Queued || e.order_key != Some(slot) {
                return Err(format!("job {}: stale entry in the queue order", e.spec.id));
            }
            filed += 1;
        }
    }
    if filed != s.order.len || filed != s.jobs.iter().filter(|e| e.order_key.is_some()).count() {
        return Err("jobs believe they are in the queue order but are not".into());
    }

    let by_limit: std::collections::BTreeSet<(u64, u32)> = s
        .jobs
        .iter()
        .enumerate()
        .filter(|(_, e)| e.state == JobState::Queued)
        .map(|(i, e)| (e.spec.max_runtime_ms.unwrap_or(u64::MAX), i as u32))
        .collect();
    if by_limit != s.queued_by_limit {
        return Err("the index of queued jobs by time limit is stale".into());
    }

    let mut hist = vec![0u32; s.free.whole_hist.len()];
    for &w in &s.free.whole {
        match hist.get_mut(w as usize) {
            Some(c) => *c += 1,
            None => return Err("the histogram of free whole GPUs is too short".into()),
        }
    }
    if hist != s.free.whole_hist {
        return Err("the histogram of free whole GPUs is stale".into());
    }

    // 4. queued shapes counted right
    let mut shapes: std::collections::HashMap<crate::cluster::Req, (u32, u64)> = Default::default();
    for e in &s.jobs {
        if e.state == JobState::Queued {
            let x = shapes.entry(e.req).or_insert((0, u64::MAX));
            x.0 += 1;
            x.1 = x.1.min(e.spec.max_runtime_ms.unwrap_or(u64::MAX));
        }
    }
    // Counts exact; the limit a lower bound.
    if shapes.len() != s.queued_shapes.len()
        || shapes.iter().any(|(k, v)| {
            s.queued_shapes
                .get(k)
                .is_none_or(|x| x.0 != v.0 || x.1 > v.1)
        })
    {
        return Err("the count of queued jobs per shape is stale".into());
    }

    // 4. fair-share rates
    for (a, r) in s.users.accounts.iter().zip(&user_rate) {
        if a.rate_milli != *r {
            return Err("a user's fair-share rate does not match its running jobs".into());
        }
    }
    for (a, r) in s.queue_fs.accounts.iter().zip(&queue_rate) {
        if a.rate_milli != *r {
            return Err("a queue's fair-share rate does not match its running jobs".into());
        }
    }
    Ok(())
}
