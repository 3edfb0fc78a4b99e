//! `zenith metrics serve`: prints its URL first, answers scrapes, and exits 0 on SIGINT and
//! SIGTERM; an address it cannot use is a clean error.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{fails_with, zenith};

/// Starts `zenith metrics serve --addr 127.0.0.1:0 EXTRA` and reads its first stdout line.
fn serve(extra: &[&str]) -> (Child, String) {
    let mut child = zenith()
        .args(["metrics", "serve", "--addr", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("zenith starts");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim_end().to_string())
}

/// GET `path` from `addr` with `Connection: close`; the whole answer.
fn get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// Sends `signal` with kill(1) (the tests need no unsafe code either).
fn signal(child: &Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits up to 10 s for the child; its exit code and stderr.
fn finish(mut child: Child) -> (Option<i32>, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status.code(), stderr);
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("zenith metrics serve did not stop within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serves_metrics_and_stops_cleanly_on_sigint() {
    let (child, url) = serve(&[]);
    let addr = url
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("first line is the URL: {url:?}"));
    let answer = get(addr, "/metrics");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("text/plain; version=0.0.4"), "{answer}");
    // Every family is registered before the first scrape.
    for family in [
        "# TYPE zenith_build_info gauge",
        "# TYPE zenith_loader_rows_total counter",
        "zenith_io_read_bytes_total{backend=\"io_uring\"}",
    ] {
        assert!(answer.contains(family), "{family} missing:\n{answer}");
    }
    assert!(get(addr, "/").starts_with("HTTP/1.1 404"));
    signal(&child, "INT");
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("SIGINT received"), "{stderr}");
}

#[test]
fn json_prints_the_address_and_sigterm_stops_it() {
    let (child, line) = serve(&["--json"]);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let addr = v["address"].as_str().unwrap();
    assert_eq!(v["url"], format!("http://{addr}/metrics"));
    assert!(get(addr, "/metrics").starts_with("HTTP/1.1 200"));
    signal(&child, "TERM");
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
}

#[test]
fn an_address_in_use_or_malformed_is_a_clean_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    fails_with(&["metrics", "serve", "--addr", &addr], 5);
    fails_with(&["metrics", "serve", "--addr", "not an address"], 4);
}
