//! A minimal HTTP/1.1 endpoint for Prometheus: `GET /metrics` answers the registry's text, every
//! other path 404, every other method 405. One thread, one connection at a time (scrapes are
//! rare and short), `Connection: close`; std only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, Result};

/// The media type of the text exposition format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The longest request head accepted (request line and headers).
const MAX_HEAD: usize = 8 << 10;

/// How long a connection may take to send its request or receive the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// A thread serving `GET /metrics`; dropping it (or [`MetricsServer::stop`]) stops the thread.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    listener: Arc<TcpListener>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` (`"127.0.0.1:9100"`, `"[::1]:0"`, `"localhost:0"`; port 0 picks a free port)
    /// and starts serving on a new thread named `zenith-metrics`.
    pub fn start(addr: &str) -> Result<Self> {
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| Error::InvalidArgument(format!("address {addr:?}: {e}")))?
            .collect();
        if addrs.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "address {addr:?} resolves to nothing"
            )));
        }
        let listener = TcpListener::bind(&addrs[..]).map_err(|e| Error::Io {
            path: format!("tcp://{addr}").into(),
            source: e,
        })?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::Internal(format!("listening socket has no address: {e}")))?;
        let listener = Arc::new(listener);
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let listener = listener.clone();
            let stopping = stopping.clone();
            std::thread::Builder::new()
                .name("zenith-metrics".into())
                .spawn(move || serve(&listener, &stopping))
                .map_err(|e| Error::Internal(format!("cannot start the metrics thread: {e}")))?
        };
        Ok(MetricsServer {
            local_addr,
            listener,
            stopping,
            thread: Some(thread),
        })
    }

    /// The address it listens on (with the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the thread and closes the socket; waits at most for the answer being written.
    /// Idempotent.
    pub fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stopping.store(true, Ordering::SeqCst);
        // On Linux, shutting a listening socket down wakes a thread blocked in accept() (which
        // then fails); a connection to ourselves is the portable backup.
        // SAFETY: the descriptor belongs to `self.listener`, alive for this call.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        let wake = match self.local_addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => {
                SocketAddr::from(([127, 0, 0, 1], a.port()))
            }
            SocketAddr::V6(a) if a.ip().is_unspecified() => {
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
            }
            other => other,
        };
        if !thread.is_finished() {
            let _ = TcpStream::connect_timeout(&wake, Duration::from_millis(200));
        }
        // The thread catches nothing: a panic there has already been printed.
        let _ = thread.join();
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(listener: &TcpListener, stopping: &AtomicBool) {
    loop {
        let accepted = listener.accept();
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            // A misbehaving client only loses its own answer.
            Ok((stream, _)) => {
                let _ = answer(stream);
            }
            // EMFILE and friends: back off instead of spinning.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Reads one request head and writes one response.
fn answer(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= MAX_HEAD {
            return respond(
                &mut stream,
                431,
                "Request Header Fields Too Large",
                "",
                b"",
                true,
            );
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let request_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let request_line = String::from_utf8_lossy(request_line);
    let mut words = request_line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return respond(&mut stream, 400, "Bad Request", "", b"bad request\n", true);
    };
    if !version.starts_with("HTTP/1.") {
        return respond(&mut stream, 400, "Bad Request", "", b"bad request\n", true);
    }
    let send_body = method != "HEAD";
    if method != "GET" && method != "HEAD" {
        return respond(
            &mut stream,
            405,
            "Method Not Allowed",
            "Allow: GET, HEAD\r\n",
            b"method not allowed\n",
            true,
        );
    }
    let path = target.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return respond(
            &mut stream,
            404,
            "Not Found",
            "",
            b"not found; try /metrics\n",
            send_body,
        );
    }
    let body = super::prometheus_text();
    respond(
        &mut stream,
        200,
        "OK",
        &format!("Content-Type: {CONTENT_TYPE}\r\n"),
        body.as_bytes(),
        send_body,
    )
}

fn respond(
    stream: &mut TcpStream,
    code: u16,
    reason: &str,
    headers: &str,
    body: &[u8],
    send_body: bool,
) -> std::io::Result<()> {
    let content_type = if headers.contains("Content-Type") {
        ""
    } else {
        "Content-Type: text/plain; charset=utf-8\r\n"
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\n{headers}{content_type}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if send_body {
        stream.write_all(body)?;
    }
    stream.flush()?;
    // Half-close, then let the client read to the end before the socket goes.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(addr: SocketAddr, text: &str) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
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

        let ok = request(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
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

        let head_only = request(addr, "HEAD /metrics?x=1 HTTP/1.0\r\n\r\n");
        assert!(head_only.starts_with("HTTP/1.1 200 OK") && head_only.ends_with("\r\n\r\n"));
        assert!(request(addr, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        assert!(request(addr, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
        assert!(request(addr, "nonsense\r\n\r\n").starts_with("HTTP/1.1 400 "));

        server.stop();
        server.stop();
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
    }

    #[test]
    fn a_silent_client_does_not_block_stop_forever() {
        let server = MetricsServer::start("127.0.0.1:0").unwrap();
        let _idle = TcpStream::connect(server.local_addr()).unwrap();
        let started = std::time::Instant::now();
        drop(server);
        // A liveness bound, not a speed check: generous slack over the client timeout, so only a
        // stop that waits on the silent client far beyond it (or forever) fails.
        assert!(started.elapsed() < CLIENT_TIMEOUT + Duration::from_secs(60));
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
