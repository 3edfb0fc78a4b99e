//! The conventions every subcommand shares: help with examples and the exit status table,
//! usage errors exit 2, colour and progress only on a terminal (checked under script(1), which
//! gives the command a pseudo-terminal), NO_COLOR, and piped output kept clean.

mod common;

use std::process::{Command, Stdio};

use common::{arg, data_file, fails_with, run, stdout_ok};

#[test]
fn help_has_examples_and_the_exit_status_table() {
    let help = stdout_ok(&["--help"]);
    for needle in [
        "inspect",
        "bench",
        "topology",
        "metrics",
        "Examples:",
        "zenith bench data.parquet --workers 1,2,4 --io mmap,pread,io_uring",
        "Exit status:",
        "6  not found",
        "7  format",
        "2 - zenith_status",
    ] {
        assert!(help.contains(needle), "{needle:?} missing from:\n{help}");
    }
    for sub in [
        &["inspect", "--help"][..],
        &["topology", "--help"],
        &["metrics", "serve", "--help"],
    ] {
        assert!(stdout_ok(sub).contains("Examples:"), "{sub:?}");
    }
    assert!(stdout_ok(&["--version"]).starts_with("zenith "));
}

#[test]
fn usage_errors_exit_2_with_a_suggestion() {
    fails_with(&[], 2);
    let typo = fails_with(&["inspct"], 2);
    assert!(typo.contains("inspect"), "{typo}");
    fails_with(&["bench"], 2);
    fails_with(&["topology", "--jsn"], 2);
}

/// Runs `command` under script(1) (stdin closed, as in CI); what the terminal showed.
fn on_a_terminal(command: &str, no_color: bool) -> Option<String> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("script(1) not installed: terminal behaviour not checked");
        return None;
    }
    let mut script = Command::new("script");
    script
        .args(["-qec", command, "/dev/null"])
        .stdin(Stdio::null())
        .env_remove("ZENITH_IO_BACKEND");
    if no_color {
        script.env("NO_COLOR", "1");
    } else {
        script.env_remove("NO_COLOR");
    }
    let out = script.output().unwrap();
    assert!(out.status.success(), "{command}: {out:?}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn colour_on_a_terminal_unless_no_color_and_never_on_a_pipe() {
    let zenith = env!("CARGO_BIN_EXE_zenith");
    let file = data_file("basic.parquet");
    let command = format!("{zenith} inspect {}", arg(&file));
    if let Some(shown) = on_a_terminal(&command, false) {
        assert!(
            shown.contains("\x1b[1m"),
            "bold headers on a terminal: {shown:?}"
        );
        let plain = on_a_terminal(&command, true).unwrap();
        assert!(!plain.contains('\x1b'), "NO_COLOR: {plain:?}");
        assert!(plain.contains("format     parquet"));
    }
    let piped = run(&["inspect", arg(&file)]);
    assert!(!String::from_utf8_lossy(&piped.stdout).contains('\x1b'));
}

#[test]
fn progress_is_drawn_on_a_terminal_and_absent_from_pipes() {
    let zenith = env!("CARGO_BIN_EXE_zenith");
    let file = data_file("large.csv");
    let command = format!(
        "{zenith} bench {} --batch-size 64 --epochs 2 --workers 0",
        arg(&file)
    );
    if let Some(shown) = on_a_terminal(&command, true) {
        assert!(shown.contains("io=default w=0 epoch 1/2"), "{shown:?}");
        assert!(shown.contains(" batches "), "{shown:?}");
        // NO_COLOR: the bar moves the cursor but paints nothing.
        assert!(
            !shown.contains("\x1b[1m") && !shown.contains("\x1b[36m"),
            "{shown:?}"
        );
        assert!(shown.contains("rows/s"), "the table follows: {shown:?}");
    }
    // Piped, stderr stays empty and stdout holds the table alone.
    let out = run(&[
        "bench",
        arg(&file),
        "--batch-size",
        "64",
        "--epochs",
        "2",
        "--workers",
        "0",
    ]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains("epoch 1/2") && !text.contains('\r'),
        "{text:?}"
    );
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    // `zenith inspect ... | head -1`: a reader that leaves early gets no panic and no message.
    let mut child = common::zenith()
        .args(["inspect", arg(&data_file("shards"))])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
