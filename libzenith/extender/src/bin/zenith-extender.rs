//! `zenith-extender`: serves the Kubernetes scheduler extender.
//!
//! ```text
//! zenith-extender [--listen ADDR] [--apiserver URL] [--apiserver-token-file PATH]
//!                 [--node-grace-seconds N] [--bind-deadline-seconds N] [--exit-on-stdin-eof]
//! ```
//!
//! Prints `listening on http://ADDR` once it serves (ADDR with the port chosen when the port is
//! 0). `--apiserver` (plain http, e.g. `kubectl proxy` at `http://127.0.0.1:8001`) is where the
//! bind verb creates Bindings. With `--exit-on-stdin-eof` it stops when its standard input
//! closes (tests use this, so a dying test leaves no server behind); otherwise it serves until
//! killed.

use std::io::{Read, Write};
use std::sync::Arc;

use zenith_extender::binder::ApiServer;
use zenith_extender::{Extender, ExtenderConfig, serve};

const USAGE: &str = "usage: zenith-extender [--listen ADDR] [--apiserver URL] \
[--apiserver-token-file PATH] [--node-grace-seconds N] [--bind-deadline-seconds N] \
[--exit-on-stdin-eof]";

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("zenith-extender: {msg}");
    std::process::exit(2);
}

fn seconds(flag: &str, v: &str) -> u64 {
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=1e9).contains(&s) => (s * 1000.0) as u64,
        _ => fail(format!("{flag}: not a number of seconds: {v:?}")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut listen = "127.0.0.1:8888".to_string();
    let mut stdin_eof = false;
    let mut cfg = ExtenderConfig::default();
    let mut apiserver = None;
    let mut token_file = None;
    let mut k = 0;
    while k < args.len() {
        let value = |k: usize| {
            args.get(k + 1)
                .cloned()
                .unwrap_or_else(|| fail(format!("{} needs a value", args[k])))
        };
        match args[k].as_str() {
            "--listen" => listen = value(k),
            "--apiserver" => apiserver = Some(value(k)),
            "--apiserver-token-file" => token_file = Some(value(k)),
            "--node-grace-seconds" => cfg.node_grace_ms = seconds(&args[k], &value(k)),
            "--bind-deadline-seconds" => cfg.bind_deadline_ms = seconds(&args[k], &value(k)),
            "--exit-on-stdin-eof" => {
                stdin_eof = true;
                k += 1;
                continue;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => fail(format!("unknown argument {other:?} (try --help)")),
        }
        k += 2;
    }
    if let Some(url) = apiserver {
        let mut api = ApiServer::parse(&url).unwrap_or_else(|e| fail(e));
        if let Some(path) = token_file {
            let token = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| fail(format!("--apiserver-token-file {path}: {e}")));
            api = api.with_token(token.trim());
        }
        cfg.apiserver = Some(api);
    } else if token_file.is_some() {
        fail("--apiserver-token-file needs --apiserver");
    }
    let mut server = match serve(&listen, Arc::new(Extender::with_config(cfg))) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("zenith-extender: {e}");
            std::process::exit(1);
        }
    };
    println!("listening on http://{}", server.local_addr());
    let _ = std::io::stdout().flush();
    if stdin_eof {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        server.stop();
    } else {
        loop {
            std::thread::park();
        }
    }
}
