//! `zenith metrics serve`: the Prometheus endpoint as a process, until SIGINT or SIGTERM.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use zenith_core::telemetry::http::MetricsServer;

use crate::exit::Failure;
use crate::output;

pub const EXAMPLES: &str = "\
Examples:
  zenith metrics serve                         http://127.0.0.1:9100/metrics
  zenith metrics serve --addr 0.0.0.0:9100     every interface
  zenith metrics serve --addr 127.0.0.1:0      a free port; the first line says which

The first line on stdout is the URL to scrape (with --json: {\"address\": ..., \"url\": ...}).
SIGINT (Ctrl-C) or SIGTERM stops the server and exits 0.";

/// Arguments of `zenith metrics serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (host:port; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub addr: String,
    /// Print the address as one JSON line instead of the URL.
    #[arg(long)]
    pub json: bool,
}

/// Runs `zenith metrics serve`.
pub fn serve(args: &ServeArgs) -> Result<(), Failure> {
    // Catch the signals before anyone can learn the address: a client that stops us right after
    // reading it gets a clean exit, not the default disposition.
    let mut signals = Signals::new([SIGINT, SIGTERM])
        .map_err(|e| Failure::Other(format!("installing SIGINT/SIGTERM handlers: {e}")))?;
    zenith_core::register_metrics();
    let mut server = MetricsServer::start(&args.addr)?;
    let addr = server.local_addr();
    let url = format!("http://{addr}/metrics");
    if args.json {
        let line = serde_json::json!({"address": addr.to_string(), "url": url});
        output::print(&format!("{line}\n"))?;
    } else {
        output::print(&format!("{url}\n"))?;
    }
    let signal = signals.forever().next();
    let name = match signal {
        Some(SIGINT) => "SIGINT",
        Some(SIGTERM) => "SIGTERM",
        _ => "a signal",
    };
    output::note(&format!("{name} received, stopping the metrics server"));
    server.stop();
    Ok(())
}
