//! Fragmentation Gradient Descent (Weng et al., "Beware of Fragmentation: Scheduling
//! GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC '23).
//!
//! A node's *fragmentation* for a task class `m` is the free GPU capacity on it that `m` cannot
//! use: all of it when `m` does not fit on the node at all (too little CPU or memory, too few
//! usable GPUs, or no GPU of an allowed type); otherwise the free capacity of the GPUs `m` cannot
//! use (a share larger than what is left on the GPU; a partly used GPU for a whole-GPU task; a
//! GPU of another type). The node's expected fragmentation under a workload is the sum over the
//! workload's task classes weighted by their popularity. FGD places each task where that
//! expected fragmentation grows least.
//!
//! The workload's classes are learned from submissions: an exponentially
//! decayed count per exact member shape, of which the most popular classes (covering 95% of the
//! weight, at most 16) form the profile. CPU-only tasks are left out, as in the paper's
//! default: they cannot use GPUs at all, so they would add the same offset to every choice.

use crate::cluster::{Cluster, Req};

/// A task class: one member shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TaskClass {
    pub gpus: u32,
    pub milli: u32,
    pub type_mask: u64,
    pub cpu: u64,
    pub mem: u64,
}

impl TaskClass {
    pub fn of(req: &Req) -> TaskClass {
        TaskClass {
            gpus: req.gpus,
            milli: req.milli,
            type_mask: req.type_mask,
            cpu: req.cpu,
            mem: req.mem,
        }
    }
}

/// The typical tasks with their popularity (weights sum to 1).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Profile {
    pub classes: Vec<(TaskClass, f64)>,
}

impl Profile {
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// Expected fragmentation (milli-GPUs) of a node whose GPUs have `gpus` free milli (`off` is
    /// the node's first flat GPU index, for type lookups), with `cpu` and `mem` free.
    pub fn node_frag(&self, cl: &Cluster, off: usize, gpus: &[u16], cpu: u64, mem: u64) -> f64 {
        let total: u64 = gpus.iter().map(|&g| g as u64).sum();
        if total == 0 {
            return 0.0;
        }
        let mut f = 0.0;
        for (c, p) in &self.classes {
            let m = c.milli as u16;
            let mut usable = 0u32;
            let mut unusable = 0u64;
            for (i, &g) in gpus.iter().enumerate() {
                if g >= m && cl.gpu_allowed(off + i, c.type_mask) {
                    usable += 1;
                } else {
                    unusable += g as u64;
                }
            }
            let fits = cpu >= c.cpu && mem >= c.mem && usable >= c.gpus;
            f += p * if fits { unusable as f64 } else { total as f64 };
        }
        f
    }
}

/// Learns the workload's task classes from what is submitted.
#[derive(Debug, Clone)]
pub(crate) struct ProfileLearner {
    counts: Vec<(TaskClass, f64)>,
    /// The weight of the next observation; grows so older ones fade (renormalised when large).
    inc: f64,
    growth: f64,
    dirty: bool,
    profile: Profile,
}

/// Most classes tracked; the least popular is forgotten when a new one arrives.
const MAX_TRACKED: usize = 256;
/// Most classes in a profile.
const MAX_CLASSES: usize = 16;
/// Share of the weight the profile's classes cover.
const COVERAGE: f64 = 0.95;

impl ProfileLearner {
    /// `half_life` observations halve an observation's weight.
    pub fn new(half_life: u32) -> Self {
        ProfileLearner {
            counts: Vec::new(),
            inc: 1.0,
            growth: 2f64.powf(1.0 / half_life.max(1) as f64),
            dirty: false,
            profile: Profile::default(),
        }
    }

    /// The tracked classes with their weights, and the next observation's weight (for
    /// snapshots; the profile is rebuilt from them).
    pub fn dump(&self) -> (&[(TaskClass, f64)], f64) {
        (&self.counts, self.inc)
    }

    /// The inverse of [`ProfileLearner::dump`] on a new learner.
    pub fn load(&mut self, counts: Vec<(TaskClass, f64)>, inc: f64) {
        self.counts = counts;
        self.inc = inc;
        self.dirty = true;
    }

    /// Records `members` tasks of shape `req`.
    pub fn observe(&mut self, req: &Req, members: u32) {
        if req.gpus == 0 {
            return;
        }
        let class = TaskClass::of(req);
        let w = self.inc * members as f64;
        match self.counts.iter_mut().find(|(c, _)| *c == class) {
            Some((_, x)) => *x += w,
            None => {
                if self.counts.len() >= MAX_TRACKED {
                    let (i, _) = self
                        .counts
                        .iter()
                        .enumerate()
                        .min_by(|a, b| a.1.1.total_cmp(&b.1.1))
                        .unwrap_or((0, &self.counts[0]));
                    self.counts.swap_remove(i);
                }
                self.counts.push((class, w));
            }
        }
        self.inc *= self.growth;
        if self.inc > 1e100 {
            for (_, x) in &mut self.counts {
                *x /= self.inc;
            }
            self.inc = 1.0;
        }
        self.dirty = true;
    }

    /// The current profile (rebuilt when something was observed since).
    pub fn profile(&mut self) -> &Profile {
        if self.dirty {
            let mut v = self.counts.clone();
            // Most popular first; ties by shape so the order never depends on arrival.
            v.sort_by(|a, b| {
                b.1.total_cmp(&a.1).then_with(|| {
                    (a.0.gpus, a.0.milli, a.0.cpu, a.0.mem, a.0.type_mask).cmp(&(
                        b.0.gpus,
                        b.0.milli,
                        b.0.cpu,
                        b.0.mem,
                        b.0.type_mask,
                    ))
                })
            });
            let total: f64 = v.iter().map(|x| x.1).sum();
            let mut acc = 0.0;
            let mut keep = Vec::new();
            for (c, w) in v {
                if keep.len() >= MAX_CLASSES || (total > 0.0 && acc >= COVERAGE * total) {
                    break;
                }
                acc += w;
                keep.push((c, w));
            }
            let sum: f64 = keep.iter().map(|x| x.1).sum();
            for x in &mut keep {
                x.1 /= sum;
            }
            self.profile = Profile { classes: keep };
            self.dirty = false;
        }
        &self.profile
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Free;
    use crate::model::{Locality, NodeSpec};

    fn req(gpus: u32, milli: u32, cpu: u64) -> Req {
        Req {
            gpus,
            milli,
            type_mask: 0,
            cpu,
            mem: 0,
            gang: 1,
            locality: Locality::Any,
        }
    }

    #[test]
    fn fragmentation_follows_the_paper_cases() {
        let mut cl = Cluster::default();
        let mut free = Free::empty();
        cl.add(
            NodeSpec::new("a", 8000, 1000).with_gpus(2, "T4", 0),
            0,
            &mut free,
        )
        .unwrap();
        // Only whole-GPU tasks: a half-used GPU is fragment, a whole free one is not.
        let whole = Profile {
            classes: vec![(TaskClass::of(&req(1, 1000, 0)), 1.0)],
        };
        assert_eq!(whole.node_frag(&cl, 0, &[1000, 500], 8000, 1000), 500.0);
        // Two-GPU tasks do not fit: everything is fragment.
        let two = Profile {
            classes: vec![(TaskClass::of(&req(2, 1000, 0)), 1.0)],
        };
        assert_eq!(two.node_frag(&cl, 0, &[1000, 500], 8000, 1000), 1500.0);
        // Not enough CPU: everything is fragment.
        let cpu = Profile {
            classes: vec![(TaskClass::of(&req(1, 300, 9000)), 1.0)],
        };
        assert_eq!(cpu.node_frag(&cl, 0, &[1000, 500], 8000, 1000), 1500.0);
        // Shares of 600 cannot use the 500 left: that part is fragment. Mixed workload: weighted.
        let mix = Profile {
            classes: vec![
                (TaskClass::of(&req(1, 600, 0)), 0.5),
                (TaskClass::of(&req(1, 400, 0)), 0.5),
            ],
        };
        assert_eq!(mix.node_frag(&cl, 0, &[1000, 500], 8000, 1000), 250.0);
        assert_eq!(mix.node_frag(&cl, 0, &[0, 0], 8000, 1000), 0.0);
    }

    #[test]
    fn the_learner_keeps_popular_classes_and_forgets_old_ones() {
        let mut l = ProfileLearner::new(10);
        for _ in 0..50 {
            l.observe(&req(1, 1000, 0), 1);
        }
        l.observe(&req(0, 0, 100), 1); // CPU-only: ignored
        assert_eq!(l.profile().classes.len(), 1);
        for _ in 0..200 {
            l.observe(&req(1, 500, 0), 1);
        }
        let p = l.profile().clone();
        assert_eq!(p.classes[0].0.milli, 500);
        let sum: f64 = p.classes.iter().map(|c| c.1).sum();
        assert!((sum - 1.0).abs() < 1e-9);
        // After 200 newer observations with half-life 10, the old class is far below 5%.
        assert_eq!(p.classes.len(), 1);
    }
}
