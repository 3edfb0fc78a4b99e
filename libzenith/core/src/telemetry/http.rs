//! The Prometheus endpoint: `GET /metrics` (and `HEAD`) answers the registry's text, every other
//! path 404, every other method 405; malformed requests get 400.
//!
//! HTTP is `zenith-http`'s (hyper on a small runtime of its own, on the `zenith-metrics`
//! thread): connections are served concurrently with keep-alive, a client that trickles its
//! request or idles is closed after [`READ_TIMEOUT`] and holds nobody else meanwhile, and
//! [`MetricsServer::stop`] lets answers in flight finish for at most [`STOP_GRACE`].

use std::net::SocketAddr;
use std::time::Duration;

use zenith_http::{Config, Request, Response, Server};

use crate::error::{Error, Result};

/// The media type of the text exposition format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How long a client may take to send a request (and so how long a keep-alive connection may
/// idle between scrapes).
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`MetricsServer::stop`] lets answers in flight finish before it drops their
/// connections.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// A thread serving `GET /metrics`; dropping it (or [`MetricsServer::stop`]) stops the thread.
#[derive(Debug)]
pub struct MetricsServer {
    server: Server,
}

impl MetricsServer {
    /// Binds `addr` (`"127.0.0.1:9100"`, `"[::1]:0"`, `"localhost:0"`; port 0 picks a free port)
    /// and starts serving on a new thread named `zenith-metrics`.
    ///
    /// An address that does not parse or resolve is [`Error::InvalidArgument`]; one that cannot
    /// be bound (in use, not permitted) is [`Error::Io`].
    pub fn start(addr: &str) -> Result<Self> {
        let config = Config::default()
            .thread_name("zenith-metrics")
            .read_timeout(READ_TIMEOUT)
            .stop_grace(STOP_GRACE)
            // Scrapes carry no body.
            .max_body_bytes(4 << 10);
        let server = Server::start(addr, config, answer).map_err(from_http)?;
        Ok(MetricsServer { server })
    }

    /// The address it listens on (with the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Stops serving: the socket closes at once, answers being written get at most
    /// [`STOP_GRACE`], then every connection is closed and the thread joined. Idempotent.
    pub fn stop(&mut self) {
        self.server.stop();
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The one route.
fn answer(request: &Request) -> Response {
    if !matches!(request.method(), "GET" | "HEAD") {
        return Response::text(405, "method not allowed\n").with_header("Allow", "GET, HEAD");
    }
    if request.path() != "/metrics" {
        return Response::text(404, "not found; try /metrics\n");
    }
    Response::new(200)
        .with_header("Content-Type", CONTENT_TYPE)
        .with_body(super::prometheus_text())
}

/// `zenith-http`'s start errors in the core's terms.
fn from_http(error: zenith_http::Error) -> Error {
    match error {
        zenith_http::Error::InvalidAddress { .. } => Error::InvalidArgument(error.to_string()),
        zenith_http::Error::Bind { addr, source } | zenith_http::Error::Start { addr, source } => {
            Error::Io {
                path: format!("tcp://{addr}").into(),
                source,
            }
        }
        other => Error::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Instant;

    use super::*;

    /// A liveness bound: far beyond anything a working server needs, short of a hung test run.
    const LIVENESS: Duration = Duration::from_secs(60);

    fn connect(addr: SocketAddr) -> TcpStream {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(LIVENESS)).unwrap();
        stream
    }

    fn request(addr: SocketAddr, text: &str) -> String {
        let mut stream = connect(addr);
        stream.write_all(text.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[test]
    fn serves_metrics_404s_other_paths_and_stops() {
        crate::register_metrics();
        let mut server = MetricsServer::start("127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);

        let ok = request(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        let (head, body) = ok.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
        assert!(body.contains("# TYPE zenith_loader_rows_total counter"));

        // HTTP/1.0 closes after the answer; HEAD has the headers and no body.
        let head_only = request(addr, "HEAD /metrics?x=1 HTTP/1.0\r\n\r\n");
        assert!(head_only.starts_with("HTTP/1.0 200 OK\r\n"), "{head_only}");
        assert!(head_only.contains(&format!("Content-Type: {CONTENT_TYPE}\r\n")));
        assert!(head_only.ends_with("\r\n\r\n"), "{head_only}");
        let not_found = request(addr, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(
            not_found.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{not_found}"
        );
        let post = request(
            addr,
            "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        assert!(post.contains("\r\nAllow: GET, HEAD\r\n"), "{post}");
        assert!(request(addr, "nonsense\r\n\r\n").starts_with("HTTP/1.1 400 "));

        server.stop();
        server.stop();
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
    }

    #[test]
    fn slow_and_idle_clients_neither_hold_a_scrape_nor_stop() {
        let mut server = MetricsServer::start("127.0.0.1:0").unwrap();
        let addr = server.local_addr();

        // A client sending its request one byte every 500 ms...
        let trickled = b"GET /metrics HTTP/1.1\r\nHost: slow\r\n\r\n";
        let sent = Arc::new(AtomicUsize::new(0));
        let quit = Arc::new(AtomicBool::new(false));
        let trickler = {
            let (sent, quit) = (sent.clone(), quit.clone());
            let mut stream = connect(addr);
            std::thread::spawn(move || {
                for byte in trickled {
                    if quit.load(Ordering::SeqCst) || stream.write_all(&[*byte]).is_err() {
                        return;
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(500));
                }
            })
        };
        while sent.load(Ordering::SeqCst) < 2 {
            std::thread::sleep(Duration::from_millis(20));
        }
        // ...and twenty connections that never send anything.
        let idle: Vec<TcpStream> = (0..20).map(|_| connect(addr)).collect();

        let ok = request(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        // Scraped before the trickler finished its request: it waited for nobody.
        assert!(sent.load(Ordering::SeqCst) < trickled.len());

        let started = Instant::now();
        server.stop();
        // Liveness, not speed: only a stop that waits on its clients (or forever) fails.
        assert!(started.elapsed() < STOP_GRACE + LIVENESS);
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
        quit.store(true, Ordering::SeqCst);
        trickler.join().unwrap();
        drop(idle);
    }

    #[test]
    fn bad_addresses_are_invalid_arguments() {
        let err = MetricsServer::start("not an address").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
        // A port in use is an I/O error.
        let first = MetricsServer::start("127.0.0.1:0").unwrap();
        let err = MetricsServer::start(&first.local_addr().to_string()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Io, "{err}");
    }
}
