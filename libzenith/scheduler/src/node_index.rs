//! An index of the eligible nodes by free state, kept up to date on every change (allocate,
//! free, health, drain, add, remove), so that a placement search visits only the nodes that can
//! hold a member and the free-capacity bounds of a pass cost nothing.
//!
//! The sets are bitsets over node ids and iterate in id order, so a search over the candidates
//! of a request visits the same fitting nodes in the same order as a scan of every node: the
//! decisions do not change. Candidates are a superset of the nodes that fit one member (the
//! index does not know CPU, memory or GPU types per set); the search still checks each.
//!
//! The index describes the live free state. It is also valid for a copy of it that only lost
//! resources since (a reservation's masked state): the candidates stay a superset.

use std::collections::BTreeMap;

use crate::cluster::{Bounds, Cluster, Free, Req, WHOLE};

/// Node ids as bits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NodeSet {
    words: Vec<u64>,
}

impl NodeSet {
    fn set(&mut self, n: usize, on: bool) {
        let w = n / 64;
        if self.words.len() <= w {
            self.words.resize(w + 1, 0);
        }
        if on {
            self.words[w] |= 1 << (n % 64);
        } else {
            self.words[w] &= !(1 << (n % 64));
        }
    }

    /// The nodes in id order.
    pub fn iter(&self) -> NodeSetIter<'_> {
        NodeSetIter {
            words: &self.words,
            w: 0,
            bits: self.words.first().copied().unwrap_or(0),
        }
    }
}

/// The nodes of a [`NodeSet`] in id order.
#[derive(Debug, Clone)]
pub(crate) struct NodeSetIter<'a> {
    words: &'a [u64],
    /// The word `bits` came from; `bits` its bits not yet returned.
    w: usize,
    bits: u64,
}

impl Iterator for NodeSetIter<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.bits == 0 {
            self.w += 1;
            self.bits = *self.words.get(self.w)?;
        }
        let b = self.bits.trailing_zeros() as usize;
        self.bits &= self.bits - 1;
        Some(self.w * 64 + b)
    }
}

/// The nodes a placement search visits, in id order: every node, or a request's candidates.
#[derive(Debug, Clone)]
pub(crate) enum Visit<'a> {
    /// Every node (a free state the index does not describe).
    All(std::ops::Range<usize>),
    /// The index's candidates.
    Candidates(NodeSetIter<'a>),
}

impl Visit<'_> {
    /// The candidates of `req` when `index` describes the free state searched, else all `nodes`.
    pub fn of<'a>(nodes: usize, index: Option<&'a NodeIndex>, req: &Req) -> Visit<'a> {
        match index {
            Some(x) => Visit::Candidates(x.candidates(req).iter()),
            None => Visit::All(0..nodes),
        }
    }
}

impl Iterator for Visit<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        match self {
            Visit::All(r) => r.next(),
            Visit::Candidates(it) => it.next(),
        }
    }
}

/// The free-share step of the share levels, in milli-GPUs.
const SHARE_STEP: u16 = 100;
/// Share levels: level `b` holds the nodes with a GPU of at least `max(1, b * SHARE_STEP)` free.
const SHARE_LEVELS: usize = (WHOLE / SHARE_STEP) as usize + 1;

/// What an eligible node contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    whole: u16,
    /// The largest free milli of one of its GPUs.
    max_slot: u16,
    cpu: u64,
    mem: u64,
}

/// The index (see the module documentation).
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeIndex {
    /// Per node: its entry while eligible.
    entries: Vec<Option<Entry>>,
    /// `whole[k]`: eligible nodes with at least `k + 1` GPUs entirely free; `whole_len[k]` how
    /// many.
    whole: Vec<NodeSet>,
    whole_len: Vec<u32>,
    /// `share[b]`: eligible nodes with a GPU of at least `max(1, b * SHARE_STEP)` milli free.
    share: Vec<NodeSet>,
    eligible: NodeSet,
    /// Free CPU and memory of the eligible nodes, as multisets (value → nodes).
    cpu: BTreeMap<u64, u32>,
    mem: BTreeMap<u64, u32>,
    /// Eligible nodes by their largest free milli of one GPU (index: milli).
    slot_hist: Vec<u32>,
}

fn share_level_of(max_slot: u16) -> usize {
    (max_slot / SHARE_STEP) as usize
}

fn multiset_add(m: &mut BTreeMap<u64, u32>, v: u64) {
    *m.entry(v).or_insert(0) += 1;
}

fn multiset_remove(m: &mut BTreeMap<u64, u32>, v: u64) {
    if let Some(c) = m.get_mut(&v) {
        *c -= 1;
        if *c == 0 {
            m.remove(&v);
        }
    }
}

impl NodeIndex {
    /// The index of every node of `cl` in `free`.
    pub fn build(cl: &Cluster, free: &Free) -> NodeIndex {
        let mut x = NodeIndex::default();
        for n in 0..cl.nodes.len() {
            x.touch(cl, free, n);
        }
        x
    }

    /// Brings node `n`'s place in the index up to date (after its free resources or its
    /// eligibility changed, or it was added).
    pub fn touch(&mut self, cl: &Cluster, free: &Free, n: usize) {
        if self.entries.len() <= n {
            self.entries.resize(n + 1, None);
        }
        if self.slot_hist.is_empty() {
            self.slot_hist = vec![0; WHOLE as usize + 1];
            self.share = vec![NodeSet::default(); SHARE_LEVELS];
        }
        let new = cl.eligible[n].then(|| {
            let info = &cl.nodes[n];
            Entry {
                whole: free.whole[n],
                max_slot: free.gpu[info.gpu_off..info.gpu_off + info.ngpu]
                    .iter()
                    .copied()
                    .max()
                    .unwrap_or(0),
                cpu: free.cpu[n],
                mem: free.mem[n],
            }
        });
        let old = self.entries[n];
        if old == new {
            return;
        }
        let (ow, os) = old.map_or((0, 0), |e| (e.whole as usize, e.max_slot));
        let (nw, ns) = new.map_or((0, 0), |e| (e.whole as usize, e.max_slot));
        if self.whole.len() < nw {
            self.whole.resize(nw, NodeSet::default());
            self.whole_len.resize(nw, 0);
        }
        for k in nw..ow {
            self.whole[k].set(n, false);
            self.whole_len[k] -= 1;
        }
        for k in ow..nw {
            self.whole[k].set(n, true);
            self.whole_len[k] += 1;
        }
        let level = |e: Option<Entry>, s: u16| match e {
            Some(_) if s > 0 => share_level_of(s) + 1,
            _ => 0,
        };
        let (ol, nl) = (level(old, os), level(new, ns));
        for b in nl..ol {
            self.share[b].set(n, false);
        }
        for b in ol..nl {
            self.share[b].set(n, true);
        }
        if let Some(e) = old {
            multiset_remove(&mut self.cpu, e.cpu);
            multiset_remove(&mut self.mem, e.mem);
            self.slot_hist[e.max_slot as usize] -= 1;
        }
        if let Some(e) = new {
            multiset_add(&mut self.cpu, e.cpu);
            multiset_add(&mut self.mem, e.mem);
            self.slot_hist[e.max_slot as usize] += 1;
        }
        self.eligible.set(n, new.is_some());
        self.entries[n] = new;
    }

    /// The free-capacity bounds of the eligible nodes (equal to [`Bounds::of`]).
    pub fn bounds(&self) -> Bounds {
        let whole = self
            .whole_len
            .iter()
            .rposition(|&c| c > 0)
            .map_or(0, |k| k + 1);
        // The highest share level holding a node bounds the search of the histogram.
        let top = self
            .share
            .iter()
            .rposition(|s| s.words.iter().any(|&w| w != 0))
            .map_or(0, |b| {
                ((b + 1) * SHARE_STEP as usize).min(WHOLE as usize + 1)
            });
        let gpu = self.slot_hist[..top]
            .iter()
            .rposition(|&c| c > 0)
            .unwrap_or(0);
        Bounds {
            cpu: self.cpu.last_key_value().map_or(0, |x| *x.0),
            mem: self.mem.last_key_value().map_or(0, |x| *x.0),
            whole: whole as u16,
            gpu: gpu as u16,
        }
    }

    /// The nodes that may hold one member of `req`, in id order (a superset: CPU, memory and
    /// GPU types are not checked here).
    pub fn candidates(&self, req: &Req) -> &NodeSet {
        static EMPTY: NodeSet = NodeSet { words: Vec::new() };
        if req.gpus == 0 {
            &self.eligible
        } else if req.milli >= WHOLE as u32 {
            self.whole.get(req.gpus as usize - 1).unwrap_or(&EMPTY)
        } else {
            // Level b holds the nodes with a GPU of at least max(1, b * SHARE_STEP) free, which
            // includes every node with a GPU of `req.milli` free.
            &self.share[share_level_of(req.milli as u16)]
        }
    }

    /// `Err` naming the first difference between this index and one built from scratch, or
    /// between its bounds and a scan's (the invariant checks).
    pub fn check(&self, cl: &Cluster, free: &Free) -> Result<(), String> {
        let fresh = NodeIndex::build(cl, free);
        for n in 0..cl.nodes.len() {
            let kept = self.entries.get(n).copied().flatten();
            if kept != fresh.entries[n] {
                return Err(format!(
                    "node index: node {n} kept as {kept:?}, is {:?}",
                    fresh.entries[n]
                ));
            }
        }
        let sets = |x: &NodeIndex| -> Vec<Vec<usize>> {
            let mut v: Vec<Vec<usize>> = x.whole.iter().map(|s| s.iter().collect()).collect();
            while v.last().is_some_and(|l| l.is_empty()) {
                v.pop();
            }
            v.extend(x.share.iter().map(|s| s.iter().collect()));
            v.push(x.eligible.iter().collect());
            v
        };
        if sets(self) != sets(&fresh) || self.cpu != fresh.cpu || self.mem != fresh.mem {
            return Err("node index: its sets differ from a rebuilt index".into());
        }
        let scan = Bounds::of(cl, free);
        if self.bounds() != scan {
            return Err(format!(
                "node index: bounds {:?}, a scan finds {scan:?}",
                self.bounds()
            ));
        }
        Ok(())
    }
}
