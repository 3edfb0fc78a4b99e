//! The journal: every state-changing call, one line each, so a new process rebuilds the same
//! state by replaying them.
//!
//! Format (version 1), UTF-8 text:
//!
//! ```text
//! zenith-scheduler-journal 1
//! <crc32 as 8 hex digits> <seq> <op> <key>=<value> ...
//! ```
//!
//! The first record (`seq` 1) is `config`; then one record per successful call, `seq` counting
//! up by one. The CRC-32 (IEEE) covers everything after the first space. Values are
//! percent-encoded (anything outside printable ASCII, and `%`, `=`, `,` and space); a repeated
//! key is a list in order. `schedule` records carry `d=`, the CRC-32 of the decisions the pass
//! returned, and replay checks it: a journal that no longer replays to the same decisions is an
//! error, not a silent divergence.
//!
//! A line is written with one `write` call and flushed before the call returns (optionally
//! `fsync`ed, see [`Scheduler::set_journal_sync`]); calls are journaled after they succeed and
//! before their result is returned, so nothing a caller acted on is missing. On restore, a last
//! line without its newline, or a last line whose checksum fails, is a torn write and is dropped;
//! a bad line anywhere else is corruption and an error. [`Scheduler::open_journal`] truncates a
//! torn tail before appending.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::config::SchedulerConfig;
use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::model::{
    Command, GpuSpec, JobId, JobSpec, Locality, NodeLabels, NodeSpec, Quantities, QueueSpec,
    Resources,
};
use crate::scheduler::{JobUpdate, Outcome, Scheduler};
use crate::util::{crc32, escape, unescape};

/// The first line of every journal.
pub const HEADER: &str = "zenith-scheduler-journal 1";

/// One journaled call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    SetQueue {
        spec: QueueSpec,
    },
    AddNode {
        spec: NodeSpec,
        now: u64,
    },
    RemoveNode {
        name: String,
        now: u64,
    },
    Heartbeat {
        name: String,
        now: u64,
    },
    Drain {
        name: String,
        now: u64,
        on: bool,
    },
    Submit {
        spec: Box<JobSpec>,
        now: u64,
    },
    Cancel {
        job: JobId,
        now: u64,
    },
    Update {
        job: JobId,
        update: JobUpdate,
        now: u64,
    },
    Started {
        job: JobId,
        now: u64,
    },
    Progress {
        job: JobId,
        now: u64,
    },
    Completed {
        job: JobId,
        now: u64,
    },
    Failed {
        job: JobId,
        now: u64,
    },
    Suspend {
        job: JobId,
        now: u64,
    },
    Resume {
        job: JobId,
        now: u64,
    },
    Schedule {
        now: u64,
        digest: Option<u32>,
    },
}

impl Op {
    pub fn now(&self) -> Option<u64> {
        match self {
            Op::SetQueue { .. } => None,
            Op::AddNode { now, .. }
            | Op::RemoveNode { now, .. }
            | Op::Heartbeat { now, .. }
            | Op::Drain { now, .. }
            | Op::Submit { now, .. }
            | Op::Cancel { now, .. }
            | Op::Update { now, .. }
            | Op::Started { now, .. }
            | Op::Progress { now, .. }
            | Op::Completed { now, .. }
            | Op::Failed { now, .. }
            | Op::Suspend { now, .. }
            | Op::Resume { now, .. }
            | Op::Schedule { now, .. } => Some(*now),
        }
    }
}

/// The CRC-32 of a pass's decisions, as journaled.
pub(crate) fn decisions_digest(d: &[Decision]) -> u32 {
    let mut s = String::new();
    for x in d {
        let _ = writeln!(s, "{x}");
    }
    crc32(s.as_bytes())
}

struct Fields(String);

impl Fields {
    fn put(&mut self, k: &str, v: impl std::fmt::Display) {
        let _ = write!(self.0, " {k}=");
        let text = v.to_string();
        escape(&text, &mut self.0);
    }
    fn opt(&mut self, k: &str, v: Option<impl std::fmt::Display>) {
        if let Some(v) = v {
            self.put(k, v);
        }
    }
    fn qty(&mut self, k: &str, q: &Option<Quantities>) {
        if let Some(q) = q {
            let _ = write!(
                self.0,
                " {k}={},{},{}",
                q.gpu_milli, q.cpu_milli, q.memory_mib
            );
        }
    }
}

pub(crate) fn encode(op: &Op, digest: Option<u32>) -> String {
    let mut f = Fields(String::new());
    let name = match op {
        Op::SetQueue { spec } => {
            f.put("name", &spec.name);
            f.opt("cohort", spec.cohort.as_ref());
            f.qty("nominal", &spec.nominal);
            f.qty("borrow", &spec.borrowing_limit);
            f.qty("lend", &spec.lending_limit);
            f.put("weight", spec.weight);
            "queue"
        }
        Op::AddNode { spec, now } => {
            f.put("now", now);
            f.put("name", &spec.name);
            f.put("cpu", spec.cpu_milli);
            f.put("mem", spec.memory_mib);
            for g in &spec.gpus {
                let _ = write!(f.0, " gpu=");
                escape(&g.gpu_type, &mut f.0);
                let _ = write!(f.0, ",{}", g.memory_mib);
            }
            for isl in &spec.nvlink_islands {
                let v: Vec<String> = isl.iter().map(|x| x.to_string()).collect();
                let _ = write!(f.0, " island={}", v.join(","));
            }
            f.opt("rack", spec.labels.rack.as_ref());
            f.opt("switch", spec.labels.switch.as_ref());
            f.opt("zone", spec.labels.zone.as_ref());
            "node"
        }
        Op::RemoveNode { name, now } => {
            f.put("now", now);
            f.put("name", name);
            "remove"
        }
        Op::Heartbeat { name, now } => {
            f.put("now", now);
            f.put("name", name);
            "heartbeat"
        }
        Op::Drain { name, now, on } => {
            f.put("now", now);
            f.put("name", name);
            f.put("on", *on as u8);
            "drain"
        }
        Op::Submit { spec, now } => {
            f.put("now", now);
            f.put("id", spec.id.0);
            f.put("name", &spec.name);
            f.put("user", &spec.user);
            f.put("queue", &spec.queue);
            f.put("gpus", spec.member.gpus);
            f.put("milli", spec.member.gpu_milli);
            for t in &spec.member.gpu_types {
                f.put("type", t);
            }
            f.put("cpu", spec.member.cpu_milli);
            f.put("mem", spec.member.memory_mib);
            f.put("gang", spec.gang_size);
            f.put("loc", spec.locality.as_str());
            f.put("prio", spec.priority);
            f.put("preempt", spec.preemptible as u8);
            f.put("restart", spec.restartable as u8);
            f.opt("limit", spec.max_runtime_ms);
            f.opt("ptimeout", spec.progress_timeout_ms);
            if let Some(c) = &spec.command {
                f.put("prog", &c.program);
                for a in &c.args {
                    f.put("arg", a);
                }
                for (k, v) in &c.env {
                    f.put("env", format!("{k}={v}"));
                }
                f.opt("workdir", c.workdir.as_ref());
            }
            "submit"
        }
        Op::Update { job, update, now } => {
            f.put("now", now);
            f.put("job", job.0);
            f.opt("prio", update.priority);
            f.opt("preempt", update.preemptible.map(|b| b as u8));
            f.opt("restart", update.restartable.map(|b| b as u8));
            f.opt("limit", update.max_runtime_ms);
            "update"
        }
        Op::Cancel { job, now }
        | Op::Started { job, now }
        | Op::Progress { job, now }
        | Op::Completed { job, now }
        | Op::Failed { job, now }
        | Op::Suspend { job, now }
        | Op::Resume { job, now } => {
            f.put("now", now);
            f.put("job", job.0);
            match op {
                Op::Cancel { .. } => "cancel",
                Op::Started { .. } => "started",
                Op::Progress { .. } => "progress",
                Op::Completed { .. } => "completed",
                Op::Failed { .. } => "failed",
                Op::Suspend { .. } => "suspend",
                _ => "resume",
            }
        }
        Op::Schedule { now, .. } => {
            f.put("now", now);
            if let Some(d) = digest {
                let _ = write!(f.0, " d={d:08x}");
            }
            "schedule"
        }
    };
    format!("{name}{}", f.0)
}

/// A parsed record's fields.
pub(crate) struct Rec<'a> {
    pub kv: Vec<(&'a str, &'a str)>,
}

impl<'a> Rec<'a> {
    fn all<'k>(&'k self, k: &'k str) -> impl Iterator<Item = &'a str> + 'k {
        self.kv.iter().filter(move |x| x.0 == k).map(|x| x.1)
    }
    fn raw(&self, k: &str) -> Option<&'a str> {
        self.all(k).next()
    }
    fn text(&self, k: &str) -> std::result::Result<Option<String>, String> {
        self.raw(k)
            .map(|v| unescape(v).ok_or_else(|| format!("bad escape in `{k}`")))
            .transpose()
    }
    fn req_text(&self, k: &str) -> std::result::Result<String, String> {
        self.text(k)?.ok_or_else(|| format!("missing `{k}`"))
    }
    fn num<T: std::str::FromStr>(&self, k: &str) -> std::result::Result<Option<T>, String> {
        self.raw(k)
            .map(|v| v.parse().map_err(|_| format!("`{k}` is not a number")))
            .transpose()
    }
    fn req_num<T: std::str::FromStr>(&self, k: &str) -> std::result::Result<T, String> {
        self.num(k)?.ok_or_else(|| format!("missing `{k}`"))
    }
    fn flag(&self, k: &str) -> std::result::Result<Option<bool>, String> {
        match self.raw(k) {
            None => Ok(None),
            Some("0") => Ok(Some(false)),
            Some("1") => Ok(Some(true)),
            Some(_) => Err(format!("`{k}` is not 0 or 1")),
        }
    }
    fn qty(&self, k: &str) -> std::result::Result<Option<Quantities>, String> {
        let Some(v) = self.raw(k) else {
            return Ok(None);
        };
        let p: Vec<u64> = v
            .split(',')
            .map(|x| x.parse().map_err(|_| format!("`{k}` is not three numbers")))
            .collect::<std::result::Result<_, _>>()?;
        if p.len() != 3 {
            return Err(format!("`{k}` is not three numbers"));
        }
        Ok(Some(Quantities {
            gpu_milli: p[0],
            cpu_milli: p[1],
            memory_mib: p[2],
        }))
    }
}

pub(crate) fn decode(op: &str, r: &Rec<'_>) -> std::result::Result<Op, String> {
    let now = || r.req_num::<u64>("now");
    let job = || r.req_num::<u64>("job").map(JobId);
    Ok(match op {
        "queue" => Op::SetQueue {
            spec: QueueSpec {
                name: r.req_text("name")?,
                cohort: r.text("cohort")?,
                nominal: r.qty("nominal")?,
                borrowing_limit: r.qty("borrow")?,
                lending_limit: r.qty("lend")?,
                weight: r.req_num("weight")?,
            },
        },
        "node" => {
            let mut gpus = Vec::new();
            for g in r.all("gpu") {
                let (t, m) = g.rsplit_once(',').ok_or("bad `gpu`")?;
                gpus.push(GpuSpec {
                    gpu_type: unescape(t).ok_or("bad escape in `gpu`")?,
                    memory_mib: m.parse().map_err(|_| "bad `gpu` memory")?,
                });
            }
            let mut islands = Vec::new();
            for isl in r.all("island") {
                islands.push(
                    isl.split(',')
                        .map(|x| x.parse::<u32>().map_err(|_| "bad `island`".to_string()))
                        .collect::<std::result::Result<Vec<_>, _>>()?,
                );
            }
            Op::AddNode {
                now: now()?,
                spec: NodeSpec {
                    name: r.req_text("name")?,
                    gpus,
                    nvlink_islands: islands,
                    cpu_milli: r.req_num("cpu")?,
                    memory_mib: r.req_num("mem")?,
                    labels: NodeLabels {
                        rack: r.text("rack")?,
                        switch: r.text("switch")?,
                        zone: r.text("zone")?,
                    },
                },
            }
        }
        "remove" => Op::RemoveNode {
            now: now()?,
            name: r.req_text("name")?,
        },
        "heartbeat" => Op::Heartbeat {
            now: now()?,
            name: r.req_text("name")?,
        },
        "drain" => Op::Drain {
            now: now()?,
            name: r.req_text("name")?,
            on: r.flag("on")?.ok_or("missing `on`")?,
        },
        "submit" => {
            let command = match r.text("prog")? {
                None => None,
                Some(program) => {
                    let mut c = Command::new(program);
                    for a in r.all("arg") {
                        c.args.push(unescape(a).ok_or("bad escape in `arg`")?);
                    }
                    for e in r.all("env") {
                        let e = unescape(e).ok_or("bad escape in `env`")?;
                        let (k, v) = e.split_once('=').ok_or("bad `env`")?;
                        c.env.push((k.to_owned(), v.to_owned()));
                    }
                    c.workdir = r.text("workdir")?;
                    Some(c)
                }
            };
            let mut types = Vec::new();
            for t in r.all("type") {
                types.push(unescape(t).ok_or("bad escape in `type`")?);
            }
            Op::Submit {
                now: now()?,
                spec: Box::new(JobSpec {
                    id: JobId(r.req_num("id")?),
                    name: r.req_text("name")?,
                    user: r.req_text("user")?,
                    queue: r.req_text("queue")?,
                    member: Resources {
                        gpus: r.req_num("gpus")?,
                        gpu_milli: r.req_num("milli")?,
                        gpu_types: types,
                        cpu_milli: r.req_num("cpu")?,
                        memory_mib: r.req_num("mem")?,
                    },
                    gang_size: r.req_num("gang")?,
                    locality: Locality::parse(&r.req_text("loc")?).ok_or("bad `loc`")?,
                    priority: r.req_num("prio")?,
                    preemptible: r.flag("preempt")?.ok_or("missing `preempt`")?,
                    restartable: r.flag("restart")?.ok_or("missing `restart`")?,
                    max_runtime_ms: r.num("limit")?,
                    progress_timeout_ms: r.num("ptimeout")?,
                    command,
                }),
            }
        }
        "update" => Op::Update {
            now: now()?,
            job: job()?,
            update: JobUpdate {
                priority: r.num("prio")?,
                preemptible: r.flag("preempt")?,
                restartable: r.flag("restart")?,
                max_runtime_ms: r.num("limit")?,
            },
        },
        "cancel" => Op::Cancel {
            now: now()?,
            job: job()?,
        },
        "started" => Op::Started {
            now: now()?,
            job: job()?,
        },
        "progress" => Op::Progress {
            now: now()?,
            job: job()?,
        },
        "completed" => Op::Completed {
            now: now()?,
            job: job()?,
        },
        "failed" => Op::Failed {
            now: now()?,
            job: job()?,
        },
        "suspend" => Op::Suspend {
            now: now()?,
            job: job()?,
        },
        "resume" => Op::Resume {
            now: now()?,
            job: job()?,
        },
        "schedule" => Op::Schedule {
            now: now()?,
            digest: r
                .raw("d")
                .map(|d| u32::from_str_radix(d, 16).map_err(|_| "bad `d`".to_string()))
                .transpose()?,
        },
        other => return Err(format!("unknown record `{other}`")),
    })
}

enum Sink {
    File(File),
    Writer(Box<dyn Write + Send>),
}

/// Where a scheduler appends its records.
pub(crate) struct Journal {
    sink: Sink,
    /// The journal's file, when it is one (compaction rewrites it).
    path: Option<PathBuf>,
    seq: u64,
    sync: bool,
    line: String,
}

impl Journal {
    fn write_line(&mut self, body: &str) -> io::Result<()> {
        self.line.clear();
        let _ = writeln!(self.line, "{:08x} {body}", crc32(body.as_bytes()));
        match &mut self.sink {
            Sink::File(f) => {
                f.write_all(self.line.as_bytes())?;
                if self.sync {
                    f.sync_data()?;
                }
            }
            Sink::Writer(w) => {
                w.write_all(self.line.as_bytes())?;
                w.flush()?;
            }
        }
        Ok(())
    }

    pub(crate) fn append(&mut self, op: &Op, digest: Option<u32>) -> io::Result<()> {
        let body = format!("{} {}", self.seq + 1, encode(op, digest));
        self.write_line(&body)?;
        self.seq += 1;
        Ok(())
    }

    fn start(sink: Sink, cfg: &SchedulerConfig) -> io::Result<Journal> {
        let mut j = Journal {
            sink,
            path: None,
            seq: 0,
            sync: false,
            line: String::new(),
        };
        let header = format!("{HEADER}\n");
        match &mut j.sink {
            Sink::File(f) => f.write_all(header.as_bytes())?,
            Sink::Writer(w) => w.write_all(header.as_bytes())?,
        }
        let mut body = String::from("1 config");
        for (k, v) in cfg.to_fields() {
            let _ = write!(body, " {k}={v}");
        }
        j.write_line(&body)?;
        j.seq = 1;
        Ok(j)
    }
}

/// What [`Scheduler::restore`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The last record's sequence number: the records replayed (the config record included),
    /// or, for a compacted journal, the snapshot's record plus the records after it.
    pub records: u64,
    /// Whether a torn last line was dropped.
    pub torn_tail: bool,
    /// Bytes of the journal that hold whole, valid lines.
    pub valid_len: u64,
}

fn jerr(line: u64, reason: impl Into<String>) -> Error {
    Error::Journal {
        line,
        reason: reason.into(),
    }
}

impl Scheduler {
    /// A new scheduler that journals to `writer` (the header and the config are written now).
    pub fn with_journal(cfg: SchedulerConfig, writer: Box<dyn Write + Send>) -> Result<Self> {
        let mut s = Scheduler::new(cfg)?;
        s.journal = Some(
            Journal::start(Sink::Writer(writer), &s.cfg).map_err(|e| Error::io("journal", &e))?,
        );
        Ok(s)
    }

    /// A new scheduler journaling to a new file at `path` (fails if it exists).
    pub fn create_journal(cfg: SchedulerConfig, path: &Path) -> Result<Self> {
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(path.display().to_string(), &e))?;
        let mut s = Scheduler::new(cfg)?;
        let mut j = Journal::start(Sink::File(f), &s.cfg)
            .map_err(|e| Error::io(path.display().to_string(), &e))?;
        j.path = Some(path.to_path_buf());
        s.journal = Some(j);
        Ok(s)
    }

    /// Whether each record is `fsync`ed before the call returns (file journals only; off by
    /// default: a killed process loses nothing either way, a power cut may lose the last
    /// records without it).
    pub fn set_journal_sync(&mut self, sync: bool) {
        if let Some(j) = self.journal.as_mut() {
            j.sync = sync;
        }
    }

    /// Rebuilds a scheduler from a journal's bytes (no journal attached to the result).
    pub fn restore(mut reader: impl Read) -> Result<(Scheduler, RestoreReport)> {
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("journal", &e))?;
        Self::restore_bytes(&bytes, None)
    }

    fn restore_bytes(bytes: &[u8], snapshot: Option<&Path>) -> Result<(Scheduler, RestoreReport)> {
        let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        // The piece after the last newline: empty, or a torn line.
        let tail = lines.pop().unwrap_or(&[]);
        let mut torn = !tail.is_empty();
        if lines.first().copied() != Some(HEADER.as_bytes()) {
            return Err(jerr(1, "not a zenith scheduler journal (version 1)"));
        }
        let mut valid_len = HEADER.len() as u64 + 1;
        let mut sched: Option<Scheduler> = None;
        let mut records = 0u64;
        let count = lines.len();
        for (k, raw) in lines.iter().enumerate().skip(1) {
            let lineno = k as u64 + 1;
            let last = k + 1 == count;
            let checked = (|| {
                let text = std::str::from_utf8(raw).map_err(|_| "not UTF-8".to_string())?;
                let (crc, body) = text.split_once(' ').ok_or("no checksum")?;
                let crc = u32::from_str_radix(crc, 16).map_err(|_| "bad checksum field")?;
                if crc != crc32(body.as_bytes()) {
                    return Err("checksum mismatch".to_string());
                }
                Ok(body)
            })();
            let body = match checked {
                Ok(b) => b,
                Err(_) if last && !torn => {
                    torn = true;
                    break;
                }
                Err(e) => return Err(jerr(lineno, e)),
            };
            let mut parts = body.split(' ');
            let seq: u64 = parts
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| jerr(lineno, "bad sequence number"))?;
            // A compacted journal starts at its snapshot's sequence number + 1.
            if sched.is_some() && seq != records + 1 {
                return Err(jerr(
                    lineno,
                    format!("sequence {seq}, expected {}", records + 1),
                ));
            }
            let op = parts.next().ok_or_else(|| jerr(lineno, "no record type"))?;
            let kv: Vec<(&str, &str)> = parts
                .map(|p| {
                    p.split_once('=')
                        .ok_or_else(|| jerr(lineno, "a field without `=`"))
                })
                .collect::<Result<_>>()?;
            let rec = Rec { kv };
            match (&mut sched, op) {
                (None, "config") => {
                    if seq != 1 {
                        return Err(jerr(lineno, format!("sequence {seq}, expected 1")));
                    }
                    let get = |k: &str| rec.raw(k).map(|v| v.to_string());
                    let cfg = SchedulerConfig::from_fields(&get).map_err(|e| jerr(lineno, e))?;
                    sched = Some(Scheduler::new(cfg).map_err(|e| jerr(lineno, e.to_string()))?);
                }
                (None, "snapshot") => {
                    let base: u64 = rec.req_num("seq").map_err(|e| jerr(lineno, e))?;
                    let crc = rec
                        .raw("crc")
                        .and_then(|c| u32::from_str_radix(c, 16).ok())
                        .ok_or_else(|| jerr(lineno, "bad `crc`"))?;
                    if seq != base + 1 {
                        return Err(jerr(
                            lineno,
                            format!("sequence {seq}, expected {}", base + 1),
                        ));
                    }
                    let Some(snap) = snapshot else {
                        return Err(jerr(
                            lineno,
                            "the journal starts from a snapshot: open it with open_journal",
                        ));
                    };
                    let text = std::fs::read(snap)
                        .map_err(|e| Error::io(snap.display().to_string(), &e))?;
                    if crc32(&text) != crc {
                        return Err(jerr(
                            lineno,
                            format!(
                                "{} is not the snapshot this journal starts from",
                                snap.display()
                            ),
                        ));
                    }
                    let text = std::str::from_utf8(&text)
                        .map_err(|_| jerr(lineno, "the snapshot is not UTF-8"))?;
                    let (s, at) = Scheduler::from_snapshot_text(text)?;
                    if at != base {
                        return Err(jerr(
                            lineno,
                            format!("the snapshot is as of record {at}, not {base}"),
                        ));
                    }
                    sched = Some(s);
                    records = base;
                }
                (None, _) => {
                    return Err(jerr(
                        lineno,
                        "the first record must be `config` or `snapshot`",
                    ));
                }
                (Some(_), "config" | "snapshot") => {
                    return Err(jerr(lineno, format!("a `{op}` record after the first")));
                }
                (Some(s), _) => {
                    let op = decode(op, &rec).map_err(|e| jerr(lineno, e))?;
                    let out = s
                        .exec(&op)
                        .map_err(|e| jerr(lineno, format!("replay failed: {e}")))?;
                    if let (
                        Op::Schedule {
                            digest: Some(d), ..
                        },
                        Outcome::Decisions(got),
                    ) = (&op, &out)
                    {
                        if decisions_digest(got) != *d {
                            return Err(jerr(
                                lineno,
                                "replay made other decisions than the journal recorded",
                            ));
                        }
                    }
                }
            }
            records += 1;
            valid_len += raw.len() as u64 + 1;
        }
        let s = sched.ok_or_else(|| jerr(2, "no `config` record"))?;
        Ok((
            s,
            RestoreReport {
                records,
                torn_tail: torn,
                valid_len,
            },
        ))
    }

    /// Restores from the journal file at `path`, drops a torn tail from the file, and keeps
    /// journaling to it.
    pub fn open_journal(path: &Path) -> Result<(Scheduler, RestoreReport)> {
        let what = || path.display().to_string();
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(what(), &e))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)
            .map_err(|e| Error::io(what(), &e))?;
        let (mut s, report) = Self::restore_bytes(&bytes, Some(&snapshot_path(path)))?;
        f.set_len(report.valid_len)
            .map_err(|e| Error::io(what(), &e))?;
        f.seek(io::SeekFrom::Start(report.valid_len))
            .map_err(|e| Error::io(what(), &e))?;
        s.journal = Some(Journal {
            sink: Sink::File(f),
            path: Some(path.to_path_buf()),
            seq: report.records,
            sync: false,
            line: String::new(),
        });
        Ok((s, report))
    }
}

/// The snapshot file of the journal at `path`: `<path>.snapshot`.
pub fn snapshot_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".snapshot");
    PathBuf::from(p)
}

/// Replaces `path` with `bytes` atomically: written to `<path>.tmp`, `fsync`ed, renamed over
/// `path`, and the directory `fsync`ed, so a crash leaves the old file or the new one, whole.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// What [`Scheduler::compact_journal`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactReport {
    /// The journal record the snapshot is as of (the new journal continues after it).
    pub seq: u64,
    /// The snapshot's size in bytes.
    pub snapshot_bytes: u64,
    /// The journal's size before compaction, in bytes.
    pub journal_bytes_before: u64,
}

impl Scheduler {
    /// The whole state as a snapshot (see [`crate::journal`]'s compaction): a scheduler
    /// restored from it with [`Scheduler::load_snapshot`] has the same state and makes the same
    /// decisions for the same calls.
    pub fn save_snapshot(&self, mut w: impl Write) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let seq = self.journal.as_ref().map_or(0, |j| j.seq);
        w.write_all(self.snapshot_text(seq).as_bytes())
            .and_then(|()| w.flush())
            .map_err(|e| Error::io("snapshot", &e))
    }

    /// Rebuilds a scheduler from a snapshot written by [`Scheduler::save_snapshot`] (no journal
    /// attached). A truncated or corrupt snapshot is [`Error::Snapshot`] naming the line.
    pub fn load_snapshot(mut r: impl Read) -> Result<Scheduler> {
        let mut text = String::new();
        r.read_to_string(&mut text)
            .map_err(|e| Error::io("snapshot", &e))?;
        Ok(Self::from_snapshot_text(&text)?.0)
    }

    /// Compacts the journal file: the whole state goes to `<journal>.snapshot` (written to a
    /// temporary file, `fsync`ed and renamed), then the journal is replaced the same way by one
    /// that starts from that snapshot, and journaling continues in it. A crash at any point
    /// leaves a journal that restores to the same state: the old full journal (the new
    /// snapshot unused) or the new one with its snapshot. [`Scheduler::open_journal`] reads
    /// both forms. Fails with [`Error::NoJournalFile`] without a journal file.
    pub fn compact_journal(&mut self) -> Result<CompactReport> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let (path, seq) = match &self.journal {
            Some(Journal {
                path: Some(p), seq, ..
            }) => (p.clone(), *seq),
            _ => return Err(Error::NoJournalFile),
        };
        let what = || path.display().to_string();
        let before = std::fs::metadata(&path)
            .map_err(|e| Error::io(what(), &e))?
            .len();
        let text = self.snapshot_text(seq);
        let snap = snapshot_path(&path);
        write_atomic(&snap, text.as_bytes())
            .map_err(|e| Error::io(snap.display().to_string(), &e))?;
        let body = format!(
            "{} snapshot seq={seq} crc={:08x}",
            seq + 1,
            crc32(text.as_bytes())
        );
        let fresh = format!("{HEADER}\n{:08x} {body}\n", crc32(body.as_bytes()));
        write_atomic(&path, fresh.as_bytes()).map_err(|e| Error::io(what(), &e))?;
        // The old file handle now points at the replaced journal: appending continues in the
        // new one, or nothing is appended at all.
        let reopened = OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.seek(io::SeekFrom::End(0)).map(|_| f));
        match (reopened, self.journal.as_mut()) {
            (Ok(f), Some(j)) => {
                j.sink = Sink::File(f);
                j.seq = seq + 1;
            }
            (Err(e), _) => {
                self.poisoned = true;
                return Err(Error::JournalWrite {
                    kind: e.kind(),
                    message: e.to_string(),
                });
            }
            (Ok(_), None) => return Err(Error::NoJournalFile),
        }
        Ok(CompactReport {
            seq,
            snapshot_bytes: text.len() as u64,
            journal_bytes_before: before,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_round_trips() {
        let spec = JobSpec {
            command: Some(
                Command::new("/usr/bin/python3")
                    .arg("train.py")
                    .arg("a b=c,d%")
                    .arg("")
                    .env("X", "1=2")
                    .env("EMPTY", "")
                    .workdir("/work dir"),
            ),
            progress_timeout_ms: Some(5),
            max_runtime_ms: Some(7),
            ..JobSpec::new(42, "ünï name", Resources::gpu_share(300))
                .owner("alice", "q1")
                .gang(3, Locality::Spread)
                .priority(-4, true)
        };
        let mut spec = spec;
        spec.member.gpu_types = vec!["A100".into(), "H100 SXM".into()];
        let mut node = NodeSpec::new("n 1", 1000, 2000)
            .with_gpus(2, "T4", 16)
            .with_islands_of(1)
            .with_rack("r,1");
        node.labels.zone = Some("z".into());
        let ops = vec![
            Op::SetQueue {
                spec: QueueSpec {
                    borrowing_limit: Some(Quantities {
                        gpu_milli: 1,
                        cpu_milli: 2,
                        memory_mib: 3,
                    }),
                    ..QueueSpec::with_quota("q", Quantities::gpus(4)).in_cohort("c")
                },
            },
            Op::AddNode { spec: node, now: 3 },
            Op::RemoveNode {
                name: "n 1".into(),
                now: 4,
            },
            Op::Heartbeat {
                name: "x".into(),
                now: 5,
            },
            Op::Drain {
                name: "x".into(),
                now: 6,
                on: true,
            },
            Op::Submit {
                spec: Box::new(spec),
                now: 7,
            },
            Op::Update {
                job: JobId(1),
                update: JobUpdate {
                    priority: Some(3),
                    preemptible: Some(false),
                    restartable: None,
                    max_runtime_ms: Some(9),
                },
                now: 8,
            },
            Op::Cancel {
                job: JobId(2),
                now: 9,
            },
            Op::Started {
                job: JobId(2),
                now: 9,
            },
            Op::Progress {
                job: JobId(2),
                now: 9,
            },
            Op::Completed {
                job: JobId(2),
                now: 9,
            },
            Op::Failed {
                job: JobId(2),
                now: 9,
            },
            Op::Suspend {
                job: JobId(2),
                now: 9,
            },
            Op::Resume {
                job: JobId(2),
                now: 9,
            },
            Op::Schedule {
                now: 10,
                digest: Some(0xdead_beef),
            },
        ];
        for op in ops {
            let digest = match op {
                Op::Schedule { digest, .. } => digest,
                _ => None,
            };
            let text = encode(&op, digest);
            let (name, rest) = text.split_once(' ').unwrap_or((&text, ""));
            let kv: Vec<(&str, &str)> = rest
                .split(' ')
                .filter(|p| !p.is_empty())
                .map(|p| p.split_once('=').unwrap())
                .collect();
            let back = decode(name, &Rec { kv }).unwrap();
            assert_eq!(back, op, "{text}");
        }
    }
}
