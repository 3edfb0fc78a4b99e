//! The nodes as placement sees them: static facts (GPU types, NVLink islands, racks) in flat
//! arrays, and the free resources ([`Free`]) that placement searches and allocations change.

use crate::decision::{GpuGrant, MemberPlacement};
use crate::error::{Error, Result};
use crate::model::{Locality, NodeId, NodeSpec, NodeState, Resources};
use crate::util::FxHashMap;

/// A whole GPU in milli-GPUs.
pub(crate) const WHOLE: u16 = 1000;
/// The rack of a node without a rack label.
pub(crate) const NO_RACK: u32 = u32::MAX;

/// A node's health as heartbeats tell it (draining is separate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    Up,
    Suspect,
    Down,
}

/// Static facts and health of one node.
#[derive(Debug, Clone)]
pub(crate) struct NodeInfo {
    pub spec: NodeSpec,
    pub removed: bool,
    pub health: Health,
    pub draining: bool,
    pub last_heartbeat: u64,
    /// First GPU of this node in the flat per-GPU arrays.
    pub gpu_off: usize,
    pub ngpu: usize,
    /// The type id when all GPUs have one type.
    pub homo_type: Option<u8>,
    /// Every island as GPU indices (local to the node); every GPU is in exactly one.
    pub islands: Vec<Vec<u16>>,
    pub rack: u32,
    /// Nodes with equal shape have the same GPU types and islands, index by index.
    pub shape: u32,
}

impl NodeInfo {
    pub fn state(&self) -> NodeState {
        match self.health {
            Health::Down => NodeState::Down,
            Health::Suspect => NodeState::Suspect,
            Health::Up if self.draining => NodeState::Draining,
            Health::Up => NodeState::Up,
        }
    }
}

/// A job's requirements compiled against the cluster's GPU-type table: small, `Copy` and
/// hashable, so a scheduling pass can remember which shapes did not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Req {
    pub gpus: u32,
    /// Milli-GPUs per GPU: 1000 whole, less for a share, 0 without GPUs.
    pub milli: u32,
    /// Allowed GPU types as bits of the type table; 0 = any.
    pub type_mask: u64,
    pub cpu: u64,
    pub mem: u64,
    pub gang: u32,
    pub locality: Locality,
}

impl Req {
    pub fn is_whole(&self) -> bool {
        self.gpus > 0 && self.milli == 1000
    }
    /// GPU demand of one member in milli-GPUs.
    pub fn member_gpu_milli(&self) -> u64 {
        self.gpus as u64 * self.milli as u64
    }
}

/// Free resources per node and per GPU. The scheduler keeps one live copy; a pass clones it to
/// plan reservations and to mask them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Free {
    /// Free milli-GPUs per GPU (flat over all nodes).
    pub gpu: Vec<u16>,
    /// Per node: GPUs entirely free.
    pub whole: Vec<u16>,
    pub cpu: Vec<u64>,
    pub mem: Vec<u64>,
    /// Per node: free milli-GPUs summed over its GPUs.
    pub milli: Vec<u32>,
    /// How many nodes have each count of entirely free GPUs (index: the count), so placement
    /// can tell at once that no set of nodes holds a whole-GPU gang.
    pub whole_hist: Vec<u32>,
}

impl Free {
    /// No nodes.
    pub fn empty() -> Free {
        Free {
            gpu: Vec::new(),
            whole: Vec::new(),
            cpu: Vec::new(),
            mem: Vec::new(),
            milli: Vec::new(),
            whole_hist: Vec::new(),
        }
    }

    /// Node `n`'s entirely free GPUs went from `from` to `from - 1` (`up = false`) or
    /// `from + 1`.
    #[inline]
    fn whole_moved(&mut self, from: u16, up: bool) {
        let to = if up { from + 1 } else { from - 1 } as usize;
        self.whole_hist[from as usize] -= 1;
        if self.whole_hist.len() <= to {
            self.whole_hist.resize(to + 1, 0);
        }
        self.whole_hist[to] += 1;
    }

    /// An upper bound of how many members of `gpus` whole GPUs fit on all nodes together, and
    /// the largest count of whole GPUs free on one node (CPU, memory, types and eligibility
    /// not counted).
    pub fn whole_capacity(&self, gpus: u32) -> (u64, usize) {
        let g = gpus.max(1) as usize;
        let mut members = 0u64;
        let mut max = 0;
        for (k, &c) in self.whole_hist.iter().enumerate() {
            if c > 0 {
                members += c as u64 * (k / g) as u64;
                max = k;
            }
        }
        (members, max)
    }

    /// Zeroes GPU `flat` of node `n` (a reserved or removed GPU).
    pub fn zero_gpu(&mut self, n: usize, flat: usize) {
        let slot = self.gpu[flat];
        if slot == WHOLE {
            self.whole_moved(self.whole[n], false);
            self.whole[n] -= 1;
        }
        self.milli[n] -= slot as u32;
        self.gpu[flat] = 0;
    }

    /// Takes one member's resources; the caller has checked they are free.
    pub fn take(&mut self, cl: &Cluster, m: &MemberPlacement, req: &Req) {
        let n = m.node.0 as usize;
        let off = cl.nodes[n].gpu_off;
        for g in &m.gpus {
            let flat = off + g.index as usize;
            if self.gpu[flat] == WHOLE {
                self.whole_moved(self.whole[n], false);
                self.whole[n] -= 1;
            }
            self.gpu[flat] -= g.milli;
            self.milli[n] -= g.milli as u32;
        }
        self.cpu[n] -= req.cpu;
        self.mem[n] -= req.mem;
    }

    /// Gives one member's resources back.
    pub fn give(&mut self, cl: &Cluster, m: &MemberPlacement, req: &Req) {
        let n = m.node.0 as usize;
        let off = cl.nodes[n].gpu_off;
        for g in &m.gpus {
            let flat = off + g.index as usize;
            self.gpu[flat] += g.milli;
            self.milli[n] += g.milli as u32;
            if self.gpu[flat] == WHOLE {
                self.whole_moved(self.whole[n], true);
                self.whole[n] += 1;
            }
        }
        self.cpu[n] += req.cpu;
        self.mem[n] += req.mem;
    }

    /// Takes what it can of one member's resources (for masked copies, where reserved resources
    /// are already zero).
    pub fn take_saturating(&mut self, cl: &Cluster, m: &MemberPlacement, req: &Req) {
        let n = m.node.0 as usize;
        let off = cl.nodes[n].gpu_off;
        for g in &m.gpus {
            let flat = off + g.index as usize;
            let slot = self.gpu[flat];
            if slot == WHOLE && g.milli > 0 {
                self.whole_moved(self.whole[n], false);
                self.whole[n] -= 1;
            }
            let left = slot.saturating_sub(g.milli);
            self.milli[n] -= (slot - left) as u32;
            self.gpu[flat] = left;
        }
        self.cpu[n] = self.cpu[n].saturating_sub(req.cpu);
        self.mem[n] = self.mem[n].saturating_sub(req.mem);
    }

    /// Free GPU milli of node `n`.
    #[inline]
    pub fn node_gpu_milli(&self, n: usize) -> u64 {
        self.milli[n] as u64
    }
}

/// All nodes ever added (removed ones keep their slot; ids are never reused).
#[derive(Debug, Clone, Default)]
pub(crate) struct Cluster {
    pub nodes: Vec<NodeInfo>,
    pub by_name: FxHashMap<String, NodeId>,
    /// Type id of each GPU (flat).
    pub gpu_type: Vec<u8>,
    /// Island of each GPU, local to its node (flat).
    pub island_of: Vec<u16>,
    /// GPU type names by id (at most 64).
    pub types: Vec<String>,
    pub racks: Vec<String>,
    /// Distinct (GPU types, islands) layouts, for [`NodeInfo::shape`].
    pub shapes: Vec<(Vec<u8>, Vec<Vec<u16>>)>,
    /// Nodes of each rack, by id order (removed ones included; placement skips them).
    pub rack_nodes: Vec<Vec<u32>>,
    /// Whether placement may use the node: live, Up and not draining.
    pub eligible: Vec<bool>,
}

impl Cluster {
    /// The id of a GPU type, adding it to the table.
    pub fn intern_type(&mut self, name: &str) -> Result<u8> {
        if let Some(i) = self.types.iter().position(|t| t == name) {
            return Ok(i as u8);
        }
        if self.types.len() >= 64 {
            return Err(Error::TooManyGpuTypes);
        }
        self.types.push(name.to_owned());
        Ok((self.types.len() - 1) as u8)
    }

    /// The GPU-type mask of a request (0 = any), adding unknown types to the table so nodes
    /// added later match them. Fails without changing the table if it would overflow.
    pub fn type_mask(&mut self, types: &[String]) -> Result<u64> {
        let new = types
            .iter()
            .filter(|t| !self.types.contains(t))
            .collect::<crate::util::FxHashSet<_>>()
            .len();
        if self.types.len() + new > 64 {
            return Err(Error::TooManyGpuTypes);
        }
        let mut mask = 0u64;
        for t in types {
            mask |= 1u64 << self.intern_type(t)?;
        }
        Ok(mask)
    }

    /// Compiles a member request.
    pub fn compile(&mut self, member: &Resources, gang: u32, locality: Locality) -> Result<Req> {
        Ok(Req {
            gpus: member.gpus,
            milli: member.gpu_milli,
            type_mask: self.type_mask(&member.gpu_types)?,
            cpu: member.cpu_milli,
            mem: member.memory_mib,
            gang,
            locality,
        })
    }

    /// Adds a node (validated by the caller, name not in use) with all resources free.
    pub fn add(&mut self, spec: NodeSpec, now: u64, free: &mut Free) -> Result<NodeId> {
        let new_types = spec
            .gpus
            .iter()
            .filter(|g| !self.types.contains(&g.gpu_type))
            .map(|g| g.gpu_type.as_str())
            .collect::<crate::util::FxHashSet<_>>()
            .len();
        if self.types.len() + new_types > 64 {
            return Err(Error::TooManyGpuTypes);
        }
        let id = NodeId(self.nodes.len() as u32);
        let ngpu = spec.gpus.len();
        let gpu_off = self.gpu_type.len();
        let mut in_island = vec![u16::MAX; ngpu];
        let mut islands: Vec<Vec<u16>> = Vec::new();
        for isl in &spec.nvlink_islands {
            let k = islands.len() as u16;
            let mut v: Vec<u16> = isl.iter().map(|&g| g as u16).collect();
            v.sort_unstable();
            for &g in &v {
                in_island[g as usize] = k;
            }
            islands.push(v);
        }
        for (g, slot) in in_island.iter_mut().enumerate() {
            if *slot == u16::MAX {
                *slot = islands.len() as u16;
                islands.push(vec![g as u16]);
            }
        }
        let mut homo = None;
        for (i, g) in spec.gpus.iter().enumerate() {
            let t = self.intern_type(&g.gpu_type)?;
            self.gpu_type.push(t);
            self.island_of.push(in_island[i]);
            homo = match (i, homo) {
                (0, _) => Some(t),
                (_, Some(h)) if h == t => Some(h),
                _ => None,
            };
        }
        let types_of_node = self.gpu_type[gpu_off..].to_vec();
        let shape = match self
            .shapes
            .iter()
            .position(|(t, i)| *t == types_of_node && *i == islands)
        {
            Some(k) => k as u32,
            None => {
                self.shapes.push((types_of_node, islands.clone()));
                (self.shapes.len() - 1) as u32
            }
        };
        let rack = match &spec.labels.rack {
            None => NO_RACK,
            Some(r) => match self.racks.iter().position(|x| x == r) {
                Some(i) => i as u32,
                None => {
                    self.racks.push(r.clone());
                    self.rack_nodes.push(Vec::new());
                    (self.racks.len() - 1) as u32
                }
            },
        };
        if rack != NO_RACK {
            self.rack_nodes[rack as usize].push(id.0);
        }
        free.gpu.extend(std::iter::repeat_n(WHOLE, ngpu));
        free.whole.push(ngpu as u16);
        if free.whole_hist.len() <= ngpu {
            free.whole_hist.resize(ngpu + 1, 0);
        }
        free.whole_hist[ngpu] += 1;
        free.cpu.push(spec.cpu_milli);
        free.mem.push(spec.memory_mib);
        free.milli.push(ngpu as u32 * WHOLE as u32);
        self.by_name.insert(spec.name.clone(), id);
        self.eligible.push(true);
        self.nodes.push(NodeInfo {
            spec,
            removed: false,
            health: Health::Up,
            draining: false,
            last_heartbeat: now,
            gpu_off,
            ngpu,
            homo_type: homo,
            islands,
            rack,
            shape,
        });
        Ok(id)
    }

    /// Recomputes whether placement may use node `n`.
    pub fn refresh_eligible(&mut self, n: usize) {
        let i = &self.nodes[n];
        self.eligible[n] = !i.removed && i.health == Health::Up && !i.draining;
    }

    /// Looks a live node up by name.
    pub fn id_of(&self, name: &str) -> Result<NodeId> {
        match self.by_name.get(name) {
            Some(&id) if !self.nodes[id.0 as usize].removed => Ok(id),
            _ => Err(Error::UnknownNode(name.to_owned())),
        }
    }

    /// Whether GPU `flat` may serve a request with `mask`.
    #[inline]
    pub fn gpu_allowed(&self, flat: usize, mask: u64) -> bool {
        mask == 0 || mask & (1u64 << self.gpu_type[flat]) != 0
    }

    /// `Some(true)` when every GPU of node `n` is allowed by `mask`, `Some(false)` when none is,
    /// `None` when it depends on the GPU.
    #[inline]
    pub fn node_types(&self, n: usize, mask: u64) -> Option<bool> {
        if mask == 0 {
            return Some(true);
        }
        self.nodes[n]
            .homo_type
            .map(|t| mask & (1u64 << t) != 0)
            .or(if self.nodes[n].ngpu == 0 {
                Some(false)
            } else {
                None
            })
    }

    /// Total GPUs of live nodes.
    pub fn total_gpus(&self) -> u64 {
        self.nodes
            .iter()
            .filter(|n| !n.removed)
            .map(|n| n.ngpu as u64)
            .sum()
    }
}

/// The most one member could get on any eligible node (each field maximised separately). While
/// resources are only taken, these stay upper bounds, so a request above them cannot fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub cpu: u64,
    pub mem: u64,
    pub whole: u16,
    pub gpu: u16,
}

impl Bounds {
    pub fn of(cl: &Cluster, free: &Free) -> Bounds {
        let mut b = Bounds {
            cpu: 0,
            mem: 0,
            whole: 0,
            gpu: 0,
        };
        for (n, info) in cl.nodes.iter().enumerate() {
            if !cl.eligible[n] {
                continue;
            }
            b.cpu = b.cpu.max(free.cpu[n]);
            b.mem = b.mem.max(free.mem[n]);
            b.whole = b.whole.max(free.whole[n]);
            // The largest free share of one GPU: a whole free GPU is the most there is, and a
            // node with less free in total than the bound so far cannot raise it.
            if free.whole[n] > 0 {
                b.gpu = WHOLE;
            } else if b.gpu < WHOLE && free.milli[n] > b.gpu as u32 {
                if let Some(&g) = free.gpu[info.gpu_off..info.gpu_off + info.ngpu]
                    .iter()
                    .max()
                {
                    b.gpu = b.gpu.max(g);
                }
            }
        }
        b
    }

    /// `false` when no eligible node can hold one member of `req`.
    pub fn may_fit(&self, req: &Req) -> bool {
        req.cpu <= self.cpu
            && req.mem <= self.mem
            && (req.gpus == 0
                || if req.milli >= 1000 {
                    req.gpus <= self.whole as u32
                } else {
                    req.milli <= self.gpu as u32
                })
    }
}

/// The smallest member request of a set of jobs, field by field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MinReq {
    cpu: u64,
    mem: u64,
    cpu_only: bool,
    whole: u32,
    share: u32,
}

impl MinReq {
    /// The fields as numbers (cpu, mem, cpu_only, whole, share), for snapshots.
    pub fn to_array(self) -> [u64; 5] {
        [
            self.cpu,
            self.mem,
            self.cpu_only as u64,
            self.whole as u64,
            self.share as u64,
        ]
    }

    /// The inverse of [`MinReq::to_array`].
    pub fn from_array(a: [u64; 5]) -> MinReq {
        MinReq {
            cpu: a[0],
            mem: a[1],
            cpu_only: a[2] != 0,
            whole: a[3] as u32,
            share: a[4] as u32,
        }
    }

    pub fn new() -> MinReq {
        MinReq {
            cpu: u64::MAX,
            mem: u64::MAX,
            cpu_only: false,
            whole: u32::MAX,
            share: u32::MAX,
        }
    }

    pub fn add(&mut self, r: &Req) {
        self.cpu = self.cpu.min(r.cpu);
        self.mem = self.mem.min(r.mem);
        if r.gpus == 0 {
            self.cpu_only = true;
        } else if r.milli >= 1000 {
            self.whole = self.whole.min(r.gpus);
        } else {
            self.share = self.share.min(r.milli);
        }
    }
}

impl Bounds {
    /// `false` when no request at least as large as `m` in every field can fit.
    pub fn any_may_fit(&self, m: &MinReq) -> bool {
        m.cpu <= self.cpu
            && m.mem <= self.mem
            && (m.cpu_only || m.whole <= self.whole as u32 || m.share <= self.gpu as u32)
    }
}

/// A hash of node `n`'s shape and free state: nodes with equal states score equally.
pub(crate) fn state_hash(cl: &Cluster, free: &Free, n: usize) -> u64 {
    use std::hash::Hasher;
    let info = &cl.nodes[n];
    let mut h = crate::util::FxHasher::default();
    h.write_u32(info.shape);
    h.write_u64(free.cpu[n]);
    h.write_u64(free.mem[n]);
    for &g in &free.gpu[info.gpu_off..info.gpu_off + info.ngpu] {
        h.write_u64(g as u64);
    }
    h.finish()
}

/// Whether nodes `a` and `b` have the same shape and free state.
pub(crate) fn same_state(cl: &Cluster, free: &Free, a: usize, b: usize) -> bool {
    let (x, y) = (&cl.nodes[a], &cl.nodes[b]);
    x.shape == y.shape
        && free.cpu[a] == free.cpu[b]
        && free.mem[a] == free.mem[b]
        && free.gpu[x.gpu_off..x.gpu_off + x.ngpu] == free.gpu[y.gpu_off..y.gpu_off + y.ngpu]
}

/// How many members of `req` fit on node `n` in `free` (at most `limit`); 0 when the node is not
/// eligible.
#[inline]
pub(crate) fn member_cap(cl: &Cluster, free: &Free, n: usize, req: &Req, limit: u32) -> u32 {
    if limit <= 1 {
        return (limit == 1 && fits_one(cl, free, n, req)) as u32;
    }
    if !cl.eligible[n] {
        return 0;
    }
    let mut cap = limit as u64;
    if let Some(c) = free.cpu[n].checked_div(req.cpu) {
        cap = cap.min(c);
    }
    if let Some(m) = free.mem[n].checked_div(req.mem) {
        cap = cap.min(m);
    }
    if cap == 0 || req.gpus == 0 {
        return cap as u32;
    }
    let info = &cl.nodes[n];
    let gpus = &free.gpu[info.gpu_off..info.gpu_off + info.ngpu];
    let fast = cl.node_types(n, req.type_mask);
    if req.milli == 1000 {
        let count = match fast {
            Some(true) => free.whole[n] as u64,
            Some(false) => 0,
            None => gpus
                .iter()
                .enumerate()
                .filter(|(i, f)| **f == WHOLE && cl.gpu_allowed(info.gpu_off + i, req.type_mask))
                .count() as u64,
        };
        cap.min(count / req.gpus as u64) as u32
    } else {
        if fast == Some(false) {
            return 0;
        }
        let m = req.milli as u16;
        let mut count = 0u64;
        for (i, &f) in gpus.iter().enumerate() {
            if f >= m && (fast == Some(true) || cl.gpu_allowed(info.gpu_off + i, req.type_mask)) {
                count += (f / m) as u64;
                if count >= cap {
                    break;
                }
            }
        }
        cap.min(count) as u32
    }
}

/// Whether one member of `req` fits on node `n` (no divisions: the common question).
#[inline]
pub(crate) fn fits_one(cl: &Cluster, free: &Free, n: usize, req: &Req) -> bool {
    if !cl.eligible[n] || free.cpu[n] < req.cpu || free.mem[n] < req.mem {
        return false;
    }
    if req.gpus == 0 {
        return true;
    }
    let info = &cl.nodes[n];
    let gpus = &free.gpu[info.gpu_off..info.gpu_off + info.ngpu];
    let fast = cl.node_types(n, req.type_mask);
    if req.milli == 1000 {
        match fast {
            Some(true) => free.whole[n] as u32 >= req.gpus,
            Some(false) => false,
            None => {
                gpus.iter()
                    .enumerate()
                    .filter(|(i, f)| {
                        **f == WHOLE && cl.gpu_allowed(info.gpu_off + i, req.type_mask)
                    })
                    .count() as u32
                    >= req.gpus
            }
        }
    } else {
        if fast == Some(false) || free.milli[n] < req.milli {
            return false;
        }
        let m = req.milli as u16;
        gpus.iter().enumerate().any(|(i, &f)| {
            f >= m && (fast == Some(true) || cl.gpu_allowed(info.gpu_off + i, req.type_mask))
        })
    }
}

/// The largest number of whole GPUs of allowed type free inside one NVLink island of node `n`.
pub(crate) fn best_island_free(cl: &Cluster, free: &Free, n: usize, mask: u64) -> u32 {
    let info = &cl.nodes[n];
    let mut best = 0;
    for isl in &info.islands {
        let c = isl
            .iter()
            .filter(|&&g| {
                let flat = info.gpu_off + g as usize;
                free.gpu[flat] == WHOLE && cl.gpu_allowed(flat, mask)
            })
            .count() as u32;
        best = best.max(c);
    }
    best
}

/// For a share request: the island of node `n` whose GPUs hold the most members (the index and
/// how many).
pub(crate) fn best_island_shares(cl: &Cluster, free: &Free, n: usize, req: &Req) -> (usize, u32) {
    let info = &cl.nodes[n];
    let m = req.milli.max(1) as u16;
    let mut best = (0, 0);
    for (k, isl) in info.islands.iter().enumerate() {
        let c: u32 = isl
            .iter()
            .filter(|&&g| cl.gpu_allowed(info.gpu_off + g as usize, req.type_mask))
            .map(|&g| (free.gpu[info.gpu_off + g as usize] / m) as u32)
            .sum();
        if c > best.1 {
            best = (k, c);
        }
    }
    best
}

/// The GPU grants for `k` whole-GPU members on node `n`: all inside one island when
/// `one_island` and possible (best-fit island), else each member best-fit into an island, else
/// spread over the fullest islands. With `island_aware = false`, lowest free indices first.
pub(crate) fn assign_whole(
    cl: &Cluster,
    free: &Free,
    n: usize,
    req: &Req,
    k: u32,
    island_aware: bool,
) -> Vec<Vec<GpuGrant>> {
    let info = &cl.nodes[n];
    let g = req.gpus as usize;
    let usable = |idx: u16| {
        let flat = info.gpu_off + idx as usize;
        free.gpu[flat] == WHOLE && cl.gpu_allowed(flat, req.type_mask)
    };
    let grant = |idx: u16| GpuGrant {
        index: idx,
        milli: WHOLE,
    };
    if !island_aware {
        let mut avail = (0..info.ngpu as u16).filter(|&i| usable(i));
        return (0..k)
            .map(|_| avail.by_ref().take(g).map(grant).collect())
            .collect();
    }
    let mut pools: Vec<Vec<u16>> = info
        .islands
        .iter()
        .map(|isl| isl.iter().copied().filter(|&i| usable(i)).collect())
        .collect();
    let need_all = g * k as usize;
    // Every member in one island: the island with the fewest free GPUs that holds them all.
    if let Some(best) = pools
        .iter()
        .enumerate()
        .filter(|(_, p)| p.len() >= need_all)
        .min_by_key(|(i, p)| (p.len(), *i))
        .map(|(i, _)| i)
    {
        let mut it = pools[best].iter().copied();
        return (0..k)
            .map(|_| it.by_ref().take(g).map(grant).collect())
            .collect();
    }
    let mut out = Vec::with_capacity(k as usize);
    for _ in 0..k {
        let fit = pools
            .iter()
            .enumerate()
            .filter(|(_, p)| p.len() >= g)
            .min_by_key(|(i, p)| (p.len(), *i))
            .map(|(i, _)| i);
        let mut member = Vec::with_capacity(g);
        if let Some(i) = fit {
            member.extend(pools[i].drain(..g).map(grant));
        } else {
            while member.len() < g {
                let Some(i) = pools
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| !p.is_empty())
                    .max_by_key(|(i, p)| (p.len(), std::cmp::Reverse(*i)))
                    .map(|(i, _)| i)
                else {
                    break;
                };
                let take = (g - member.len()).min(pools[i].len());
                member.extend(pools[i].drain(..take).map(grant));
            }
        }
        member.sort_unstable_by_key(|x| x.index);
        out.push(member);
    }
    out
}

/// Places the members of `counts` (node, members) into grants, choosing shares' GPUs with
/// `pick_share` (called with the node's current local free values).
pub(crate) fn materialize(
    cl: &Cluster,
    free: &Free,
    req: &Req,
    counts: &[(u32, u32)],
    island_aware: bool,
    pick_share: &mut dyn FnMut(usize, &[u16]) -> Option<usize>,
) -> Option<Vec<MemberPlacement>> {
    let mut out = Vec::with_capacity(req.gang as usize);
    for &(n, k) in counts {
        let node = NodeId(n);
        if req.gpus == 0 {
            out.extend((0..k).map(|_| MemberPlacement {
                node,
                gpus: Vec::new(),
            }));
        } else if req.milli == 1000 {
            for gpus in assign_whole(cl, free, n as usize, req, k, island_aware) {
                if gpus.len() != req.gpus as usize {
                    return None;
                }
                out.push(MemberPlacement { node, gpus });
            }
        } else {
            let info = &cl.nodes[n as usize];
            let mut local: Vec<u16> = free.gpu[info.gpu_off..info.gpu_off + info.ngpu].to_vec();
            for (i, slot) in local.iter_mut().enumerate() {
                if !cl.gpu_allowed(info.gpu_off + i, req.type_mask) {
                    *slot = 0;
                }
            }
            if req.locality == Locality::SameIsland {
                // Every share inside one island: the island that holds the most.
                let (isl, _) = best_island_shares(cl, free, n as usize, req);
                for (i, slot) in local.iter_mut().enumerate() {
                    if cl.island_of[info.gpu_off + i] as usize != isl {
                        *slot = 0;
                    }
                }
            }
            for _ in 0..k {
                let i = pick_share(n as usize, &local)?;
                if local[i] < req.milli as u16 {
                    return None;
                }
                local[i] -= req.milli as u16;
                out.push(MemberPlacement {
                    node,
                    gpus: vec![GpuGrant {
                        index: i as u16,
                        milli: req.milli as u16,
                    }],
                });
            }
        }
    }
    Some(out)
}
