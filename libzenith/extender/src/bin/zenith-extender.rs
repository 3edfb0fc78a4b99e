//! `zenith-extender`: serves the Kubernetes scheduler extender.
//!
//! ```text
//! zenith-extender [--listen ADDR] [--exit-on-stdin-eof]
//! ```
//!
//! Prints `listening on http://ADDR` once it serves (ADDR with the port chosen when the port is
//! 0). With `--exit-on-stdin-eof` it stops when its standard input closes (tests use this, so a
//! dying test leaves no server behind); otherwise it serves until killed.

use std::io::{Read, Write};
use std::sync::Arc;

use zenith_extender::{Extender, serve};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut listen = "127.0.0.1:8888".to_string();
    let mut stdin_eof = false;
    let mut k = 0;
    while k < args.len() {
        match args[k].as_str() {
            "--listen" if k + 1 < args.len() => {
                listen = args[k + 1].clone();
                k += 1;
            }
            "--exit-on-stdin-eof" => stdin_eof = true,
            "-h" | "--help" => {
                println!("usage: zenith-extender [--listen ADDR] [--exit-on-stdin-eof]");
                return;
            }
            other => {
                eprintln!("zenith-extender: unknown argument {other:?} (try --help)");
                std::process::exit(2);
            }
        }
        k += 1;
    }
    let mut server = match serve(&listen, Arc::new(Extender::new())) {
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
