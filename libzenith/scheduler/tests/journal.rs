//! The journal: restore rebuilds the identical state; a process killed mid-stream (SIGKILL)
//! loses no job it acknowledged, also while it compacts its journal; a torn last line is
//! tolerated; corruption elsewhere is an error. Snapshots and compaction restore the identical
//! state, which then makes the same decisions.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use zenith_scheduler::*;

fn temp_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "zenith-sched-{}-{}-{name}.journal",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let _ = std::fs::remove_file(&p);
    p
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                0xEDB8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn node(i: u32) -> NodeSpec {
    NodeSpec::new(format!("n{i}"), 64_000, 512 * 1024)
        .with_gpus(8, "H100", 80 * 1024)
        .with_islands_of(4)
        .with_rack(format!("r{}", i % 2))
}

/// A deterministic workload step `i` (submits job `i`, and every few steps runs a pass and acts
/// on it like an executor).
fn step(s: &mut Scheduler, i: u64) -> Result<()> {
    let now = i * 100;
    let mut spec = JobSpec::new(
        i,
        format!("job {i}"),
        Resources {
            cpu_milli: 1000,
            ..Resources::gpus(1 + (i % 4) as u32)
        },
    )
    .gang(1 + (i % 3) as u32, Locality::Any)
    .priority((i % 3) as i32, i % 2 == 0)
    .max_runtime_ms(1000 + (i % 7) * 500);
    spec.user = format!("u{}", i % 5);
    spec.command = Some(
        zenith_scheduler::Command::new("/usr/bin/env")
            .arg(format!("step {i}"))
            .env("RANK", "0"),
    );
    s.submit(spec, now)?;
    if i % 3 == 0 {
        for d in s.schedule(now)? {
            if let Decision::Start { job, .. } = d {
                s.job_started(job, now)?;
            }
        }
        for j in s.jobs_in(JobState::Running) {
            if (j.0 + i) % 4 == 0 {
                s.job_completed(j, now)?;
            }
        }
    }
    Ok(())
}

fn fresh(s: &mut Scheduler) {
    for n in 0..6 {
        s.add_node(node(n), 0).unwrap();
    }
    s.set_queue(QueueSpec::with_quota("default", Quantities::gpus(40)))
        .unwrap();
}

#[test]
fn a_journal_file_restores_the_same_state_and_keeps_growing() {
    let path = temp_path("grow");
    let cfg = SchedulerConfig::default();
    let mut twin = Scheduler::new(cfg.clone()).unwrap();
    let mut s = Scheduler::create_journal(cfg.clone(), &path).unwrap();
    s.set_journal_sync(true);
    fresh(&mut s);
    fresh(&mut twin);
    for i in 1..=60 {
        step(&mut s, i).unwrap();
        step(&mut twin, i).unwrap();
    }
    // A failed call is not journaled.
    assert!(
        s.submit(JobSpec::new(1, "dup", Resources::gpus(1)), 6000)
            .is_err()
    );
    drop(s);
    let (mut r, report) = Scheduler::open_journal(&path).unwrap();
    assert!(!report.torn_tail);
    assert_eq!(r.state_digest(), twin.state_digest());
    for i in 61..=90 {
        step(&mut r, i).unwrap();
        step(&mut twin, i).unwrap();
    }
    drop(r);
    let (r2, report) = Scheduler::open_journal(&path).unwrap();
    assert_eq!(r2.state_digest(), twin.state_digest());
    assert!(report.records > 90);
    r2.check_invariants().unwrap();
    assert!(matches!(
        Scheduler::create_journal(cfg, &path),
        Err(Error::Io { .. })
    ));
    let _ = std::fs::remove_file(&path);
}

fn journal_bytes(steps: u64) -> (Vec<u8>, String) {
    let path = temp_path("bytes");
    let mut s = Scheduler::create_journal(SchedulerConfig::default(), &path).unwrap();
    fresh(&mut s);
    for i in 1..=steps {
        step(&mut s, i).unwrap();
    }
    let digest = s.state_digest();
    drop(s);
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    (bytes, digest)
}

#[test]
fn a_torn_last_line_is_dropped_and_corruption_elsewhere_is_an_error() {
    let (bytes, digest) = journal_bytes(30);
    let (s, report) = Scheduler::restore(&bytes[..]).unwrap();
    assert_eq!(s.state_digest(), digest);
    assert!(!report.torn_tail);
    assert_eq!(report.valid_len, bytes.len() as u64);

    // A partial line at the end (no newline): dropped.
    let mut torn = bytes.clone();
    torn.extend_from_slice(b"0badc0de 999 submit now=1 id=");
    let (s, report) = Scheduler::restore(&torn[..]).unwrap();
    assert!(report.torn_tail);
    assert_eq!(report.valid_len, bytes.len() as u64);
    assert_eq!(s.state_digest(), digest);

    // A whole last line whose checksum fails (a torn write that reached a newline): dropped.
    let mut bad_last = bytes.clone();
    bad_last.extend_from_slice(b"00000000 999 schedule now=99999\n");
    let (_, report) = Scheduler::restore(&bad_last[..]).unwrap();
    assert!(report.torn_tail);

    // Zeros after the end (a file extended but never written): dropped.
    let mut zeros = bytes.clone();
    zeros.extend_from_slice(&[0u8; 64]);
    let (s, report) = Scheduler::restore(&zeros[..]).unwrap();
    assert!(report.torn_tail);
    assert_eq!(s.state_digest(), digest);

    // Every cut point restores (to a prefix of the run) or reports nothing worse than a torn
    // tail.
    for cut in (0..bytes.len()).step_by(37) {
        match Scheduler::restore(&bytes[..cut]) {
            Ok((s, _)) => s.check_invariants().unwrap(),
            Err(Error::Journal { line, .. }) => assert!(line <= 2, "cut {cut}: line {line}"),
            Err(e) => panic!("cut {cut}: {e}"),
        }
    }

    let text = String::from_utf8(bytes.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let rebuild = |lines: &[String]| {
        let mut s = lines.join("\n");
        s.push('\n');
        s.into_bytes()
    };
    let owned: Vec<String> = lines.iter().map(|l| l.to_string()).collect();

    // A flipped byte in the middle: the line's checksum fails.
    let mut flipped = owned.clone();
    flipped[10] = flipped[10].replacen("now=", "now=1", 1);
    match Scheduler::restore(&rebuild(&flipped)[..]) {
        Err(Error::Journal { line, reason }) => {
            assert_eq!(line, 11);
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A missing line: the sequence breaks.
    let mut gap = owned.clone();
    gap.remove(10);
    match Scheduler::restore(&rebuild(&gap)[..]) {
        Err(Error::Journal { line: 11, reason }) => assert!(reason.contains("sequence")),
        other => panic!("{other:?}"),
    }
    // A schedule record with another decision digest (and a valid checksum): replay diverged.
    let k = owned
        .iter()
        .position(|l| l.contains(" schedule ") && l.contains(" d="))
        .unwrap();
    let mut tampered = owned.clone();
    let body = tampered[k].split_once(' ').unwrap().1.to_string();
    let (head, _) = body.rsplit_once(" d=").unwrap();
    let body = format!("{head} d=12345678");
    tampered[k] = format!("{:08x} {body}", crc32(body.as_bytes()));
    match Scheduler::restore(&rebuild(&tampered)[..]) {
        Err(Error::Journal { reason, .. }) => assert!(reason.contains("other decisions")),
        other => panic!("{other:?}"),
    }
    // Not a journal at all.
    assert!(matches!(
        Scheduler::restore(&b"hello\n"[..]),
        Err(Error::Journal { line: 1, .. })
    ));
}

const CHILD_ENV: &str = "ZENITH_JOURNAL_CHILD";
/// When set, the child compacts its journal every that many steps.
const COMPACT_ENV: &str = "ZENITH_JOURNAL_COMPACT_EVERY";

/// Not a test on its own: when the parent test re-executes this binary with `CHILD_ENV` set,
/// this writes a journal and acknowledges each submitted job on stdout until it is killed.
#[test]
fn journal_writer_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut s = Scheduler::create_journal(SchedulerConfig::default(), path.as_ref()).unwrap();
    fresh(&mut s);
    let compact_every: Option<u64> = std::env::var(COMPACT_ENV).ok().and_then(|v| v.parse().ok());
    let mut out = std::io::stdout().lock();
    for i in 1..=2_000_000u64 {
        step(&mut s, i).unwrap();
        if compact_every.is_some_and(|k| i % k == 0) {
            s.compact_journal().unwrap();
        }
        // The submit returned: it is journaled. Only now is it acknowledged.
        writeln!(out, "ack {i}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn a_writer_killed_mid_stream_loses_no_acknowledged_job() {
    killed_writer(None);
}

#[test]
fn a_writer_killed_while_it_compacts_loses_no_acknowledged_job() {
    // Compacting every 7 steps: the kill lands in a compaction or just after one more often
    // than not, and the restore goes through the snapshot.
    killed_writer(Some(7));
}

fn killed_writer(compact_every: Option<u64>) {
    let path = temp_path("killed");
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "journal_writer_child",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, &path);
    if let Some(k) = compact_every {
        cmd.env(COMPACT_ENV, k.to_string());
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = 0u64;
    while acked < 1500 {
        let Some(Ok(line)) = lines.next() else {
            panic!("the child stopped after {acked} acks");
        };
        if let Some(n) = line.strip_prefix("ack ") {
            acked = n.parse().unwrap();
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    // Acks already in the pipe when the child died count too.
    for line in lines.map_while(|l| l.ok()) {
        if let Some(n) = line.strip_prefix("ack ") {
            acked = n.parse().unwrap();
        }
    }
    let (mut s, report) = Scheduler::open_journal(&path).unwrap();
    s.check_invariants().unwrap();
    for id in 1..=acked {
        assert!(
            s.job(JobId(id)).is_some(),
            "job {id} was acknowledged but is lost"
        );
    }
    // The restored scheduler equals one that ran the journaled steps in one go.
    let mut twin = Scheduler::new(SchedulerConfig::default()).unwrap();
    fresh(&mut twin);
    let mut last = 0;
    while twin.jobs().count() < s.jobs().count() {
        last += 1;
        step(&mut twin, last).unwrap();
    }
    // The child may have died in the middle of a step (after the submit, before its pass).
    if twin.state_digest() != s.state_digest() {
        assert!(last % 3 == 0, "killed within step {last} without a pass");
    } else {
        assert_eq!(twin.state_digest(), s.state_digest());
    }
    // It keeps journaling where the dead process stopped.
    let next = s.jobs().count() as u64 + 1;
    s.submit(
        JobSpec::new(next, "after", Resources::gpus(1)),
        next * 100 + 1,
    )
    .unwrap();
    drop(s);
    let (s2, report2) = Scheduler::open_journal(&path).unwrap();
    assert!(!report2.torn_tail);
    assert_eq!(report2.records, report.records + 1);
    assert!(s2.job(JobId(next)).is_some());
    if compact_every.is_some() {
        // The journal was compacted: it starts from a snapshot and holds only a tail.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.lines().nth(1).unwrap().contains(" snapshot seq="),
            "{text}"
        );
        assert!(text.lines().count() < 40, "{} lines", text.lines().count());
    }
    for p in [path.clone(), journal::snapshot_path(&path)] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn compaction_restores_the_same_state_and_keeps_the_journal_short() {
    let path = temp_path("compact");
    let cfg = SchedulerConfig::default();
    let mut twin = Scheduler::new(cfg.clone()).unwrap();
    let mut s = Scheduler::create_journal(cfg.clone(), &path).unwrap();
    fresh(&mut s);
    fresh(&mut twin);
    let mut largest = 0;
    for i in 1..=400 {
        step(&mut s, i).unwrap();
        step(&mut twin, i).unwrap();
        largest = largest.max(std::fs::metadata(&path).unwrap().len());
        if i % 50 == 0 {
            let r = s.compact_journal().unwrap();
            assert!(r.journal_bytes_before > 0 && r.snapshot_bytes > 0);
            // Compaction changes nothing of the state.
            assert_eq!(s.state_digest(), twin.state_digest());
        }
    }
    // The journal holds at most ~50 steps' records, whatever ran before.
    let full = {
        let p = temp_path("uncompacted");
        let mut u = Scheduler::create_journal(cfg.clone(), &p).unwrap();
        fresh(&mut u);
        for i in 1..=400 {
            step(&mut u, i).unwrap();
        }
        let n = std::fs::metadata(&p).unwrap().len();
        let _ = std::fs::remove_file(p);
        n
    };
    assert!(largest * 4 < full, "{largest} vs {full}");
    drop(s);
    let (mut r, report) = Scheduler::open_journal(&path).unwrap();
    assert!(!report.torn_tail);
    assert_eq!(r.state_digest(), twin.state_digest());
    r.check_invariants().unwrap();
    // The restored scheduler decides exactly as the one that never stopped, compacts again,
    // and restores again.
    for i in 401..=480 {
        step(&mut r, i).unwrap();
        step(&mut twin, i).unwrap();
        assert_eq!(r.state_digest(), twin.state_digest(), "step {i}");
        if i == 440 {
            r.compact_journal().unwrap();
        }
    }
    drop(r);
    let (r2, _) = Scheduler::open_journal(&path).unwrap();
    assert_eq!(r2.state_digest(), twin.state_digest());
    // A scheduler without a journal file cannot compact.
    let mut plain = Scheduler::new(cfg).unwrap();
    assert!(matches!(plain.compact_journal(), Err(Error::NoJournalFile)));
    for p in [path.clone(), journal::snapshot_path(&path)] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn a_snapshot_restores_a_scheduler_that_decides_the_same() {
    // Multifactor order with fair share, preemption, backfill, GPU shares: every few steps the
    // state goes through a snapshot, and the restored copy must then stay identical to the
    // original through the following steps.
    let snap = |s: &Scheduler| {
        let mut b = Vec::new();
        s.save_snapshot(&mut b).unwrap();
        b
    };
    let mut s = Scheduler::new(SchedulerConfig::default()).unwrap();
    fresh(&mut s);
    let mut follower: Option<Scheduler> = None;
    for i in 1..=300u64 {
        step(&mut s, i).unwrap();
        if let Some(f) = follower.as_mut() {
            step(f, i).unwrap();
            assert_eq!(f.state_digest(), s.state_digest(), "step {i}");
            // Everything a snapshot holds (queue order, caches, fair share) is equal too.
            assert!(snap(f) == snap(&s), "step {i}");
        }
        if i % 23 == 0 {
            let r = Scheduler::load_snapshot(snap(&s).as_slice()).unwrap();
            assert_eq!(r.state_digest(), s.state_digest(), "step {i}");
            r.check_invariants().unwrap();
            follower = Some(r);
        }
    }
}

#[test]
fn a_damaged_snapshot_is_a_clear_error_and_a_stale_one_is_ignored() {
    let mut s = Scheduler::new(SchedulerConfig::default()).unwrap();
    fresh(&mut s);
    for i in 1..=40 {
        step(&mut s, i).unwrap();
    }
    let mut bytes = Vec::new();
    s.save_snapshot(&mut bytes).unwrap();
    // Truncated at a line boundary: no `end` line.
    let text = String::from_utf8(bytes.clone()).unwrap();
    let cut: String = text.lines().take(20).map(|l| format!("{l}\n")).collect();
    let e = Scheduler::load_snapshot(cut.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
    assert_eq!(e.kind(), ErrorKind::Format);
    // Cut mid-line: that line fails its checksum.
    let e = Scheduler::load_snapshot(&bytes[..bytes.len() / 2]).unwrap_err();
    assert!(matches!(e, Error::Snapshot { .. }), "{e}");
    // A flipped byte.
    let mut bad = bytes.clone();
    let k = bad.len() / 3;
    bad[k] ^= 0x01;
    let e = Scheduler::load_snapshot(bad.as_slice()).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    // Not a snapshot at all.
    assert!(Scheduler::load_snapshot(&b"hello\n"[..]).is_err());

    // A crash after the snapshot was written but before the journal was replaced leaves the
    // full journal and a snapshot it does not name: the full journal restores.
    let path = temp_path("stale");
    let mut j = Scheduler::create_journal(SchedulerConfig::default(), &path).unwrap();
    fresh(&mut j);
    for i in 1..=40 {
        step(&mut j, i).unwrap();
    }
    std::fs::write(journal::snapshot_path(&path), &bytes).unwrap();
    drop(j);
    let (r, _) = Scheduler::open_journal(&path).unwrap();
    assert_eq!(r.state_digest(), s.state_digest());
    // A compacted journal whose snapshot was replaced or lost: a clear error.
    let (mut r, _) = Scheduler::open_journal(&path).unwrap();
    r.compact_journal().unwrap();
    drop(r);
    std::fs::write(journal::snapshot_path(&path), &bytes[..bytes.len() - 1]).unwrap();
    let e = Scheduler::open_journal(&path).unwrap_err();
    assert!(e.to_string().contains("is not the snapshot"), "{e}");
    std::fs::remove_file(journal::snapshot_path(&path)).unwrap();
    let e = Scheduler::open_journal(&path).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    let _ = std::fs::remove_file(&path);
}
