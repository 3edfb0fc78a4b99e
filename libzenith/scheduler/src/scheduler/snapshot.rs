//! Snapshots: the whole state of a scheduler as text, so a restore reads one file instead of
//! replaying every call since the start (see [`crate::journal`] for compaction).
//!
//! Format (version 1), UTF-8 text:
//!
//! ```text
//! zenith-scheduler-snapshot 1
//! <crc32 as 8 hex digits> <kind> <token> <token> ...
//! ...
//! <crc32> end lines=<records before this one> digest=<crc32 of Scheduler::state_digest>
//! ```
//!
//! Tokens are percent-encoded like journal values; floats are their exact bit patterns (hex),
//! so a restored scheduler makes exactly the decisions the saved one would. Node, queue and job
//! specs are written as their journal records. What follows from other fields (free resources,
//! quota usage, fair-share rates, the node index, end times, queue lookups) is rebuilt, and the
//! restore checks the result against the recorded digest of the whole state: a snapshot that
//! does not restore to the state it recorded is an error, never a silent difference.

use std::fmt::Write as _;

use super::order::{Group, GroupId, OrderKey, Slot};
use super::{JobEntry, NO_SET, QUEUED, Scheduler};
use crate::cluster::{Health, MinReq, Req};
use crate::config::SchedulerConfig;
use crate::decision::{Decision, FailReason, GpuGrant, MemberPlacement, RequeueReason};
use crate::error::{Error, Result};
use crate::fgd::TaskClass;
use crate::journal::{Op, Rec, decode, encode};
use crate::model::{JobId, Locality, NodeId};
use crate::node_index::NodeIndex;
use crate::state::JobState;
use crate::util::{crc32, escape, unescape};

/// The first line of every snapshot.
pub const SNAPSHOT_HEADER: &str = "zenith-scheduler-snapshot 1";

/// Builds one line's body token by token.
struct Body(String);

impl Body {
    fn new(kind: &str) -> Body {
        Body(kind.to_string())
    }
    fn t(&mut self, v: impl std::fmt::Display) -> &mut Body {
        self.0.push(' ');
        escape(&v.to_string(), &mut self.0);
        self
    }
    fn opt(&mut self, v: Option<u64>) -> &mut Body {
        match v {
            Some(x) => self.t(x),
            None => self.t("-"),
        }
    }
    fn f(&mut self, v: f64) -> &mut Body {
        self.t(format_args!("{:016x}", v.to_bits()))
    }
    fn req(&mut self, r: &Req) -> &mut Body {
        self.t(r.gpus)
            .t(r.milli)
            .t(r.type_mask)
            .t(r.cpu)
            .t(r.mem)
            .t(r.gang)
            .t(r.locality.as_str())
    }
    /// Appends a journal record (its own `key=value` fields).
    fn record(&mut self, rec: &str) -> &mut Body {
        self.0.push_str(" | ");
        self.0.push_str(rec);
        self
    }
}

fn health_str(h: Health) -> &'static str {
    match h {
        Health::Up => "up",
        Health::Suspect => "suspect",
        Health::Down => "down",
    }
}

fn members_str(m: &[MemberPlacement]) -> String {
    if m.is_empty() {
        return "-".into();
    }
    let mut s = String::new();
    for (k, p) in m.iter().enumerate() {
        if k > 0 {
            s.push(';');
        }
        let _ = write!(s, "{}", p.node.0);
        for g in &p.gpus {
            let _ = write!(s, ":{}-{}", g.index, g.milli);
        }
    }
    s
}

/// One parsed line: its kind, its tokens, and the journal record after ` | `, if any.
struct Line<'a> {
    no: u64,
    kind: &'a str,
    toks: Vec<&'a str>,
    record: Option<&'a str>,
}

/// Reads a line's tokens in order.
struct Toks<'a, 'b> {
    line: &'b Line<'a>,
    at: usize,
}

impl<'a> Toks<'a, '_> {
    fn err(&self, why: impl std::fmt::Display) -> Error {
        snap_err(self.line.no, format!("`{}`: {why}", self.line.kind))
    }
    fn raw(&mut self) -> Result<&'a str> {
        let t = self
            .line
            .toks
            .get(self.at)
            .copied()
            .ok_or_else(|| self.err("too few fields"))?;
        self.at += 1;
        Ok(t)
    }
    fn text(&mut self) -> Result<String> {
        let r = self.raw()?;
        unescape(r).ok_or_else(|| self.err("bad escape"))
    }
    fn u(&mut self) -> Result<u64> {
        let r = self.raw()?;
        r.parse()
            .map_err(|_| self.err(format!("{r:?} is not a number")))
    }
    fn u32(&mut self) -> Result<u32> {
        let v = self.u()?;
        u32::try_from(v).map_err(|_| self.err(format!("{v} is too large")))
    }
    fn i(&mut self) -> Result<i64> {
        let r = self.raw()?;
        r.parse()
            .map_err(|_| self.err(format!("{r:?} is not a number")))
    }
    fn opt(&mut self) -> Result<Option<u64>> {
        if self.line.toks.get(self.at) == Some(&"-") {
            self.at += 1;
            return Ok(None);
        }
        self.u().map(Some)
    }
    fn flag(&mut self) -> Result<bool> {
        Ok(self.u()? != 0)
    }
    fn f(&mut self) -> Result<f64> {
        let r = self.raw()?;
        u64::from_str_radix(r, 16)
            .map(f64::from_bits)
            .map_err(|_| self.err(format!("{r:?} is not a float's bits")))
    }
    fn req(&mut self) -> Result<Req> {
        let (gpus, milli, type_mask, cpu, mem, gang) = (
            self.u32()?,
            self.u32()?,
            self.u()?,
            self.u()?,
            self.u()?,
            self.u32()?,
        );
        let l = self.raw()?;
        let locality = Locality::parse(l).ok_or_else(|| self.err("bad locality"))?;
        Ok(Req {
            gpus,
            milli,
            type_mask,
            cpu,
            mem,
            gang,
            locality,
        })
    }
    /// The tokens not read yet.
    fn rest(&mut self) -> Vec<&'a str> {
        let r = self.line.toks[self.at.min(self.line.toks.len())..].to_vec();
        self.at = self.line.toks.len();
        r
    }
    fn members(&mut self) -> Result<Vec<MemberPlacement>> {
        let r = self.raw()?;
        if r == "-" {
            return Ok(Vec::new());
        }
        let bad = || snap_err(self.line.no, "bad member list");
        r.split(';')
            .map(|m| {
                let mut parts = m.split(':');
                let node = parts.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
                let gpus = parts
                    .map(|g| {
                        let (i, x) = g.split_once('-')?;
                        Some(GpuGrant {
                            index: i.parse().ok()?,
                            milli: x.parse().ok()?,
                        })
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(bad)?;
                Ok(MemberPlacement {
                    node: NodeId(node),
                    gpus,
                })
            })
            .collect()
    }
    /// The journal record after ` | `, decoded.
    fn op(&self) -> Result<Op> {
        let rec = self.line.record.ok_or_else(|| self.err("no record"))?;
        let mut parts = rec.split(' ');
        let name = parts.next().unwrap_or("");
        let kv = parts
            .map(|p| {
                p.split_once('=')
                    .ok_or_else(|| self.err("a field without `=`"))
            })
            .collect::<Result<Vec<_>>>()?;
        decode(name, &Rec { kv }).map_err(|e| self.err(e))
    }
}

fn snap_err(line: u64, reason: impl Into<String>) -> Error {
    Error::Snapshot {
        line,
        reason: reason.into(),
    }
}

impl Scheduler {
    /// The whole state as snapshot text (see the module documentation); `seq` is the journal
    /// sequence number the state is as of (0 without a journal).
    pub(crate) fn snapshot_text(&self, seq: u64) -> String {
        let mut lines: Vec<String> = Vec::new();
        let mut config = String::from("config");
        for (k, v) in self.cfg.to_fields() {
            let _ = write!(config, " {k}={v}");
        }
        lines.push(config);
        let mut b = Body::new("scalars");
        b.t(seq).t(self.now).t(self.grow_epoch).t(self.victim_epoch);
        lines.push(b.0);
        let mut b = Body::new("types");
        for t in &self.cluster.types {
            b.t(t);
        }
        lines.push(b.0);
        for n in &self.cluster.nodes {
            let mut b = Body::new("node");
            b.t(n.removed as u8)
                .t(health_str(n.health))
                .t(n.draining as u8)
                .t(n.last_heartbeat)
                .record(&encode(
                    &Op::AddNode {
                        spec: n.spec.clone(),
                        now: n.last_heartbeat,
                    },
                    None,
                ));
            lines.push(b.0);
        }
        for q in &self.quotas.queues {
            let mut b = Body::new("queue");
            b.record(&encode(
                &Op::SetQueue {
                    spec: q.spec.clone(),
                },
                None,
            ));
            lines.push(b.0);
        }
        for (which, fs) in [("user", &self.users), ("queue", &self.queue_fs)] {
            let (accounts, last) = fs.dump();
            let mut b = Body::new("fair-share");
            b.t(which).t(last);
            for (name, weight, usage) in accounts {
                b.t(name).f(weight).f(usage);
            }
            lines.push(b.0);
        }
        let (classes, inc) = self.learner.dump();
        let mut b = Body::new("profile");
        b.f(inc);
        for (c, w) in classes {
            b.t(c.gpus)
                .t(c.milli)
                .t(c.type_mask)
                .t(c.cpu)
                .t(c.mem)
                .f(*w);
        }
        lines.push(b.0);
        for e in &self.jobs {
            let mut b = Body::new("job");
            b.t(e.state.as_str())
                .opt(e.start_ms)
                .opt(e.run_start_ms)
                .t(e.last_progress_ms)
                .opt(e.end_ms)
                .t(members_str(&e.members))
                .t(e.auto_requeue as u8)
                .t(e.fail_reason.map_or("-", |r| r.as_str()))
                .t(e.starts)
                .t(e.preemptions)
                .t(e.queue)
                .t(e.user_acct)
                .t(e.queue_acct);
            match e.order_key {
                Some(s) => b
                    .t(s.group)
                    .t(s.key.tier)
                    .f(s.key.score)
                    .t(s.key.a)
                    .t(s.key.b)
                    .t(s.key.c),
                None => b.t("-"),
            };
            b.record(&encode(
                &Op::Submit {
                    spec: Box::new(e.spec.clone()),
                    now: e.submit_ms,
                },
                None,
            ));
            lines.push(b.0);
        }
        for (k, set) in self.sets.iter().enumerate() {
            let mut b = Body::new("set");
            b.t(k);
            for i in set {
                b.t(i);
            }
            lines.push(b.0);
        }
        for g in &self.order.groups {
            let mut b = Body::new("group");
            b.t(g.id.tier)
                .t(g.id.user)
                .t(g.id.queue)
                .t(g.id.saturated as u8)
                .f(g.offset);
            lines.push(b.0);
        }
        let mut b = Body::new("order");
        b.opt(self.order.computed_at).t(self.order.dirty as u8);
        for x in self.order.smallest.to_array() {
            b.t(x);
        }
        lines.push(b.0);
        let mut b = Body::new("ageing");
        for (t, i) in &self.order.ageing {
            b.t(t).t(i);
        }
        lines.push(b.0);
        let mut b = Body::new("fresh");
        for i in &self.order.fresh {
            b.t(i);
        }
        lines.push(b.0);
        // Caches of what does not fit: restored as they are, so the next pass does exactly
        // what the saved scheduler's would.
        let mut shapes: Vec<(&Req, &(u32, u64))> = self.queued_shapes.iter().collect();
        shapes.sort_by_key(|x| format!("{:?}", x.0));
        for (r, (count, min)) in shapes {
            let mut b = Body::new("shape");
            b.req(r).t(count).t(min);
            lines.push(b.0);
        }
        let mut no_fit: Vec<&Req> = self.no_fit.iter().collect();
        no_fit.sort_by_key(|r| format!("{r:?}"));
        for r in no_fit {
            let mut b = Body::new("no-fit");
            b.req(r);
            lines.push(b.0);
        }
        let mut no_preempt: Vec<_> = self.no_preempt.iter().collect();
        no_preempt.sort_by_key(|x| format!("{:?}", x.0));
        for ((r, prio, q), (e1, e2)) in no_preempt {
            let mut b = Body::new("no-preempt");
            b.req(r).t(prio).t(q).t(e1).t(e2);
            lines.push(b.0);
        }
        let mut b = Body::new("grown");
        for n in &self.grown {
            b.t(n);
        }
        lines.push(b.0);
        for d in &self.outbox {
            let mut b = Body::new("outbox");
            match d {
                Decision::Requeue { job, reason } => b.t("requeue").t(job.0).t(reason.as_str()),
                Decision::Fail { job, reason } => b.t("fail").t(job.0).t(reason.as_str()),
                // Only requeues and failures wait in the outbox.
                other => b.t("other").t(other),
            };
            lines.push(b.0);
        }
        let s = &self.stats;
        let mut b = Body::new("stats");
        for x in s.jobs {
            b.t(x);
        }
        b.t(s.allocation_success_total)
            .t(s.preemptions_total)
            .t(s.requeues_total)
            .t(s.passes_total)
            .t(s.decisions_total)
            .t(s.gpus_total)
            .t(s.gpu_free_milli);
        lines.push(b.0);
        let mut out = format!("{SNAPSHOT_HEADER}\n");
        for l in &lines {
            let _ = writeln!(out, "{:08x} {l}", crc32(l.as_bytes()));
        }
        let end = format!(
            "end lines={} digest={:08x}",
            lines.len(),
            crc32(self.state_digest().as_bytes())
        );
        let _ = writeln!(out, "{:08x} {end}", crc32(end.as_bytes()));
        out
    }

    /// Rebuilds a scheduler from snapshot text; returns it and the journal sequence number it
    /// is as of. A line that fails its checksum, a missing `end` line, or a state that differs
    /// from the recorded digest is an error naming the line.
    pub(crate) fn from_snapshot_text(text: &str) -> Result<(Scheduler, u64)> {
        let mut raw = text.split('\n');
        if raw.next() != Some(SNAPSHOT_HEADER) {
            return Err(snap_err(1, "not a zenith scheduler snapshot (version 1)"));
        }
        let mut lines: Vec<Line<'_>> = Vec::new();
        let mut end: Option<(u64, u32)> = None;
        for (k, l) in raw.enumerate() {
            let no = k as u64 + 2;
            if end.is_some() {
                if l.is_empty() {
                    continue;
                }
                return Err(snap_err(no, "text after the `end` line"));
            }
            if l.is_empty() {
                continue;
            }
            let (crc, body) = l
                .split_once(' ')
                .ok_or_else(|| snap_err(no, "no checksum"))?;
            if u32::from_str_radix(crc, 16).ok() != Some(crc32(body.as_bytes())) {
                return Err(snap_err(no, "checksum mismatch"));
            }
            let (head, record) = match body.split_once(" | ") {
                Some((h, r)) => (h, Some(r)),
                None => (body, None),
            };
            let mut toks = head.split(' ');
            let kind = toks.next().unwrap_or("");
            let toks: Vec<&str> = toks.collect();
            if kind == "end" {
                let get = |k: &str| {
                    toks.iter()
                        .find_map(|t| t.strip_prefix(k)?.strip_prefix('='))
                        .ok_or_else(|| snap_err(no, format!("`end` lacks `{k}`")))
                };
                let count: u64 = get("lines")?
                    .parse()
                    .map_err(|_| snap_err(no, "bad line count"))?;
                let digest = u32::from_str_radix(get("digest")?, 16)
                    .map_err(|_| snap_err(no, "bad digest"))?;
                if count != lines.len() as u64 {
                    return Err(snap_err(
                        no,
                        format!("{} records before `end`, it says {count}", lines.len()),
                    ));
                }
                end = Some((no, digest));
                continue;
            }
            lines.push(Line {
                no,
                kind,
                toks,
                record,
            });
        }
        let Some((end_no, digest)) = end else {
            return Err(snap_err(
                lines.len() as u64 + 2,
                "no `end` line: the snapshot is truncated",
            ));
        };
        let mut it = lines.iter();
        let first = it.next().ok_or_else(|| snap_err(2, "no `config` line"))?;
        if first.kind != "config" {
            return Err(snap_err(first.no, "the first record must be `config`"));
        }
        let kv: Vec<(&str, &str)> = first
            .toks
            .iter()
            .filter_map(|t| t.split_once('='))
            .collect();
        let rec = Rec { kv };
        let get = |k: &str| rec.kv.iter().find(|x| x.0 == k).map(|x| x.1.to_string());
        let cfg = SchedulerConfig::from_fields(&get).map_err(|e| snap_err(first.no, e))?;
        let mut s = Scheduler::new(cfg).map_err(|e| snap_err(first.no, e.to_string()))?;
        let mut seq = 0;
        let mut slots: Vec<(usize, Slot)> = Vec::new();
        for line in it {
            let mut t = Toks { line, at: 0 };
            match line.kind {
                "scalars" => {
                    seq = t.u()?;
                    s.now = t.u()?;
                    s.grow_epoch = t.u()?;
                    s.victim_epoch = t.u()?;
                }
                "types" => {
                    let mut types = Vec::new();
                    while t.at < line.toks.len() {
                        types.push(t.text()?);
                    }
                    if types.len() > 64 {
                        return Err(t.err("more than 64 GPU types"));
                    }
                    s.cluster.types = types;
                }
                "node" => {
                    let removed = t.flag()?;
                    let health = match t.raw()? {
                        "up" => Health::Up,
                        "suspect" => Health::Suspect,
                        "down" => Health::Down,
                        _ => return Err(t.err("bad health")),
                    };
                    let draining = t.flag()?;
                    let hb = t.u()?;
                    let Op::AddNode { spec, .. } = t.op()? else {
                        return Err(t.err("not a node record"));
                    };
                    spec.validate()?;
                    let name = spec.name.clone();
                    let id = s.cluster.add(spec, hb, &mut s.free)?;
                    s.grown_flag.push(false);
                    let n = id.0 as usize;
                    let info = &mut s.cluster.nodes[n];
                    info.health = health;
                    info.draining = draining;
                    if removed {
                        info.removed = true;
                        s.cluster.by_name.remove(&name);
                        let (off, ngpu) = (info.gpu_off, info.ngpu);
                        for g in off..off + ngpu {
                            s.free.zero_gpu(n, g);
                        }
                        s.free.cpu[n] = 0;
                        s.free.mem[n] = 0;
                    }
                    s.cluster.refresh_eligible(n);
                }
                "queue" => {
                    let Op::SetQueue { spec } = t.op()? else {
                        return Err(t.err("not a queue record"));
                    };
                    spec.validate()?;
                    s.quotas.set(spec)?;
                }
                "fair-share" => {
                    let which = t.raw()?;
                    let last = t.u()?;
                    let mut accounts = Vec::new();
                    while t.at < line.toks.len() {
                        accounts.push((t.text()?, t.f()?, t.f()?));
                    }
                    match which {
                        "user" => s.users.load(accounts, last),
                        "queue" => s.queue_fs.load(accounts, last),
                        _ => return Err(t.err("bad account kind")),
                    }
                }
                "profile" => {
                    let inc = t.f()?;
                    let mut classes = Vec::new();
                    while t.at < line.toks.len() {
                        let c = TaskClass {
                            gpus: t.u32()?,
                            milli: t.u32()?,
                            type_mask: t.u()?,
                            cpu: t.u()?,
                            mem: t.u()?,
                        };
                        classes.push((c, t.f()?));
                    }
                    s.learner.load(classes, inc);
                }
                "job" => {
                    let state = JobState::parse(t.raw()?).ok_or_else(|| t.err("bad job state"))?;
                    let start_ms = t.opt()?;
                    let run_start_ms = t.opt()?;
                    let last_progress_ms = t.u()?;
                    let end_ms = t.opt()?;
                    let members = t.members()?;
                    let auto_requeue = t.flag()?;
                    let fail_reason = match t.raw()? {
                        "-" => None,
                        "time-limit" => Some(FailReason::TimeLimit),
                        "node-lost" => Some(FailReason::NodeLost),
                        "zombie" => Some(FailReason::Zombie),
                        "reported" => Some(FailReason::Reported),
                        _ => return Err(t.err("bad fail reason")),
                    };
                    let (starts, preemptions) = (t.u32()?, t.u32()?);
                    let (queue, user_acct, queue_acct) =
                        (t.u()? as usize, t.u()? as usize, t.u()? as usize);
                    let slot = match t.opt()? {
                        None => None,
                        Some(g) => Some(Slot {
                            group: g as u32,
                            key: OrderKey {
                                tier: t.i()?,
                                score: t.f()?,
                                a: t.u()?,
                                b: t.u()?,
                                c: t.u()?,
                            },
                        }),
                    };
                    let Op::Submit { spec, now } = t.op()? else {
                        return Err(t.err("not a job record"));
                    };
                    spec.validate()?;
                    if queue >= s.quotas.queues.len()
                        || user_acct >= s.users.accounts.len()
                        || queue_acct >= s.queue_fs.accounts.len()
                    {
                        return Err(t.err("unknown queue or account"));
                    }
                    let req = s
                        .cluster
                        .compile(&spec.member, spec.gang_size, spec.locality)?;
                    let i = s.jobs.len();
                    if let Some(slot) = slot {
                        slots.push((i, slot));
                    }
                    if s.job_index.insert(spec.id, i as u32).is_some() {
                        return Err(t.err(format!("job {} twice", spec.id)));
                    }
                    let mut e = JobEntry::new(*spec, req, now, [queue, user_acct, queue_acct]);
                    e.state = state;
                    e.start_ms = start_ms;
                    e.run_start_ms = run_start_ms;
                    e.last_progress_ms = last_progress_ms;
                    e.end_ms = end_ms;
                    e.members = members;
                    e.auto_requeue = auto_requeue;
                    e.fail_reason = fail_reason;
                    e.starts = starts;
                    e.preemptions = preemptions;
                    s.jobs.push(e);
                }
                "set" => {
                    let k = t.u()? as usize;
                    if k >= s.sets.len() {
                        return Err(t.err("bad set"));
                    }
                    for x in t.rest() {
                        let i: u32 = x.parse().map_err(|_| snap_err(line.no, "bad job index"))?;
                        if i as usize >= s.jobs.len() || s.jobs[i as usize].set != NO_SET {
                            return Err(snap_err(line.no, "bad job index in a set"));
                        }
                        s.set_insert(i as usize, k as u8);
                    }
                }
                "group" => {
                    let id = GroupId {
                        tier: t.i()?,
                        user: t.u32()?,
                        queue: t.u32()?,
                        saturated: t.flag()?,
                    };
                    let offset = t.f()?;
                    let g = s.order.groups.len() as u32;
                    s.order.group_index.insert(id, g);
                    s.order.groups.push(Group {
                        id,
                        jobs: Default::default(),
                        offset,
                    });
                }
                "order" => {
                    s.order.computed_at = t.opt()?;
                    s.order.dirty = t.flag()?;
                    let mut a = [0u64; 5];
                    for x in &mut a {
                        *x = t.u()?;
                    }
                    s.order.smallest = MinReq::from_array(a);
                }
                "ageing" => {
                    while t.at < line.toks.len() {
                        let (when, i) = (t.u()?, t.u32()?);
                        s.order.ageing.insert((when, i));
                    }
                }
                "fresh" => {
                    while t.at < line.toks.len() {
                        let i = t.u32()?;
                        s.order.fresh.push(i);
                    }
                }
                "shape" => {
                    let r = t.req()?;
                    let (count, min) = (t.u32()?, t.u()?);
                    s.queued_shapes.insert(r, (count, min));
                }
                "no-fit" => {
                    let r = t.req()?;
                    s.no_fit.insert(r);
                }
                "no-preempt" => {
                    let r = t.req()?;
                    let (prio, q) = (t.i()? as i32, t.u()? as usize);
                    let epochs = (t.u()?, t.u()?);
                    s.no_preempt.insert((r, prio, q), epochs);
                }
                "grown" => {
                    while t.at < line.toks.len() {
                        let n = t.u32()?;
                        let flag = s
                            .grown_flag
                            .get_mut(n as usize)
                            .ok_or_else(|| snap_err(line.no, "bad node"))?;
                        *flag = true;
                        s.grown.push(n);
                    }
                }
                "outbox" => {
                    let kind = t.raw()?;
                    let job = JobId(t.u()?);
                    let reason = t.raw()?;
                    let d = match (kind, reason) {
                        ("requeue", "preempted") => Decision::Requeue {
                            job,
                            reason: RequeueReason::Preempted,
                        },
                        ("requeue", "node-lost") => Decision::Requeue {
                            job,
                            reason: RequeueReason::NodeLost,
                        },
                        ("requeue", "zombie") => Decision::Requeue {
                            job,
                            reason: RequeueReason::Zombie,
                        },
                        ("fail", r) => Decision::Fail {
                            job,
                            reason: match r {
                                "time-limit" => FailReason::TimeLimit,
                                "node-lost" => FailReason::NodeLost,
                                "zombie" => FailReason::Zombie,
                                "reported" => FailReason::Reported,
                                _ => return Err(t.err("bad fail reason")),
                            },
                        },
                        _ => return Err(t.err("bad waiting decision")),
                    };
                    s.outbox.push(d);
                }
                "stats" => {
                    let st = &mut s.stats;
                    for x in &mut st.jobs {
                        *x = t.u()?;
                    }
                    st.allocation_success_total = t.u()?;
                    st.preemptions_total = t.u()?;
                    st.requeues_total = t.u()?;
                    st.passes_total = t.u()?;
                    st.decisions_total = t.u()?;
                    st.gpus_total = t.u()?;
                    st.gpu_free_milli = t.u()?;
                }
                other => return Err(snap_err(line.no, format!("unknown record `{other}`"))),
            }
        }
        // What follows from the recorded fields.
        s.index = NodeIndex::build(&s.cluster, &s.free);
        for i in 0..s.jobs.len() {
            let e = &s.jobs[i];
            let want = super::set_of(e.state);
            if e.set != want {
                return Err(snap_err(
                    end_no,
                    format!("job {} in the wrong set", e.spec.id),
                ));
            }
            if e.state.holds_resources() {
                let members = std::mem::take(&mut s.jobs[i].members);
                for m in &members {
                    if m.node.0 as usize >= s.cluster.nodes.len() {
                        return Err(snap_err(end_no, "a member on an unknown node"));
                    }
                }
                s.bind(i, members);
                s.refresh_end(i);
            } else if !s.jobs[i].members.is_empty() {
                return Err(snap_err(end_no, "a job without resources has members"));
            }
            if s.jobs[i].state == JobState::Queued {
                let limit = s.jobs[i].spec.max_runtime_ms.unwrap_or(u64::MAX);
                s.queued_by_limit.insert((limit, i as u32));
            }
        }
        for (i, slot) in slots {
            if slot.group as usize >= s.order.groups.len() {
                return Err(snap_err(end_no, "a job in an unknown group"));
            }
            s.order.insert(slot, i as u32);
            s.jobs[i].order_key = Some(slot);
        }
        if s.sets[QUEUED as usize].len() < s.order.len {
            return Err(snap_err(end_no, "more jobs in the order than queued"));
        }
        if crc32(s.state_digest().as_bytes()) != digest {
            return Err(snap_err(
                end_no,
                "the restored state differs from the state the snapshot recorded",
            ));
        }
        Ok((s, seq))
    }
}
