//! Running a test's body in a child process, so that a crash (SIGBUS, SIGSEGV) or a hang is a
//! failure of that test and not the death of the whole test run.
//!
//! [`isolated`] re-executes the current test binary, asking libtest for the one test by its
//! exact name, with `ZENITH_ISOLATED` set to that name; in the child the same call runs the body.
//! The parent waits up to the timeout, kills a child that outlives it, and fails unless the
//! child reported the test passed.

use std::fs::File;
use std::io::{Read, Seek};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The variable that tells the child which test body to run.
const ENV: &str = "ZENITH_ISOLATED";

/// Runs `body` in a child process (the test `name` of this binary, which must be the test that
/// calls this function, by its full libtest name) and fails the current test unless it passes
/// within `timeout`. A signal (a crash) and a timeout (a hang) are failures that say so.
pub fn isolated(name: &str, timeout: Duration, body: impl FnOnce()) {
    if std::env::var(ENV).as_deref() == Ok(name) {
        body();
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    // Output goes to a file, not a pipe: a child blocked on a full pipe would look like a hang.
    let mut log = tempfile::tempfile().expect("a temporary file for the child's output");
    let mut child = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ENV, name)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log.try_clone().unwrap())
        .spawn()
        .expect("re-running the test binary");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            break Some(status);
        }
        if started.elapsed() > timeout {
            // Our own child, by its id.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = read_all(&mut log);
    match status {
        None => panic!(
            "{name}: the child process hung (killed after {timeout:?}); its output:\n{output}"
        ),
        Some(status) if status.signal().is_some() => panic!(
            "{name}: the child process died of signal {} ({}); its output:\n{output}",
            status.signal().unwrap(),
            signal_name(status.signal().unwrap())
        ),
        Some(status) if !status.success() => {
            panic!("{name}: the child process failed ({status}); its output:\n{output}")
        }
        // A misspelt name runs no test and succeeds: insist that the one test ran and passed.
        Some(_) if !output.contains("test result: ok. 1 passed") => {
            panic!("{name}: the child process ran no test by that name; its output:\n{output}")
        }
        Some(_) => {}
    }
}

fn read_all(file: &mut File) -> String {
    let mut text = String::new();
    file.rewind().unwrap();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).unwrap();
    text.push_str(&String::from_utf8_lossy(&bytes));
    text
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGBUS => "SIGBUS",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        _ => "another signal",
    }
}
