//! A small HTTP/1.1 server for Zenith's endpoints: the Prometheus `/metrics` server of
//! `zenith-core`'s telemetry and the scheduler's Kubernetes extender.
//!
//! [`Server::start`] binds an address and serves it on a dedicated thread that owns a
//! single-threaded tokio runtime; the HTTP protocol is hyper's (`hyper::server::conn::http1`).
//! Routes are one plain function, [`Request`] → [`Response`], so users of this crate see neither
//! hyper nor tokio.
//!
//! Behaviour every endpoint gets:
//!
//! - Connections are served concurrently, one task each, with keep-alive. A client that trickles
//!   its request or sits idle holds only its own connection: hyper closes a connection that has
//!   not sent a complete request head within [`Config::read_timeout`] (idle keep-alive
//!   connections included), and a request body must arrive within the same time (else `408`).
//! - Header names go out in title case (`Content-Type`), and `Date` and `Content-Length` are
//!   added to every response.
//! - Malformed requests get `400`, request heads over [`Config::max_header_bytes`] `431`, bodies
//!   over [`Config::max_body_bytes`] `413` (all answered before the handler runs), a handler that
//!   panics `500`.
//! - At most [`Config::max_connections`] connections are open at once; further clients wait in
//!   the listen backlog.
//! - [`Server::stop`] (or dropping the server) closes the listening socket, lets requests in
//!   flight finish for at most [`Config::stop_grace`], then drops every connection still open.
//!
//! The handler runs on the server thread: it should answer quickly and must not block
//! indefinitely (a stuck handler holds every other connection and `stop`).

#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::net::{SocketAddr, ToSocketAddrs};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// Shorthand for results whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address does not parse as `host:port` or resolves to nothing.
    #[error("address {addr:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The address could not be bound (in use, not permitted, not local).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address as given.
        addr: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// The runtime, the listening socket's setup or the server thread failed to start.
    #[error("cannot start the HTTP server on {addr}: {source}")]
    Start {
        /// The address as given.
        addr: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

/// How a [`Server`] treats its clients. `Config::default()` suits small endpoints.
#[derive(Debug, Clone)]
pub struct Config {
    thread_name: String,
    read_timeout: Duration,
    max_header_bytes: usize,
    max_body_bytes: usize,
    max_connections: usize,
    stop_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            thread_name: "zenith-http".into(),
            read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 << 10,
            max_body_bytes: 1 << 20,
            max_connections: 256,
            stop_grace: Duration::from_secs(2),
        }
    }
}

impl Config {
    /// The name of the server thread (default `zenith-http`).
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// How long a client may take to send a request head, counted from the connection's start
    /// or the end of its previous response (so it is also how long a keep-alive connection may
    /// sit idle), and again to send the request body (default 10 s).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The largest request head (request line and headers) accepted; larger ones get `431`
    /// (default 16 KiB).
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes;
        self
    }

    /// The largest request body accepted; larger ones get `413` (default 1 MiB).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// How many connections may be open at once, at least 1 (default 256).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// How long [`Server::stop`] lets requests in flight finish before it drops their
    /// connections (default 2 s).
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }
}

/// One request, body included, as the handler sees it.
#[derive(Debug)]
pub struct Request {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Request {
    /// The method, as sent (`"GET"`, `"POST"`, ...).
    pub fn method(&self) -> &str {
        self.method.as_str()
    }

    /// The path of the request target, without the query (`"/metrics"`).
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The query of the request target, without the `?`, if it has one.
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    /// The first value of the header `name` (case-insensitive), if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body (empty when none was sent).
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// What the handler answers: a status, headers and a body. `Content-Length` is set by the
/// server; a response to `HEAD` is sent without its body.
#[derive(Debug, Clone)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Response {
    /// An empty response with `status`. An invalid status (outside 100..=999) or header is
    /// answered as `500` when sent.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(status)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(body.into())
    }

    /// Adds a header (kept in order; a name may repeat).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The headers, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

struct Shared {
    config: Config,
    handler: Box<Handler>,
}

/// A running server; [`Server::stop`] or dropping it stops it.
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` (`"127.0.0.1:9100"`, `"[::1]:0"`, `"localhost:0"`; port 0 picks a free port)
    /// and serves `handler` on a new thread.
    ///
    /// Fails with [`Error::InvalidAddress`] when `addr` does not parse or resolve, with
    /// [`Error::Bind`] when it cannot be bound (a port in use), with [`Error::Start`] when the
    /// runtime or the thread cannot be created.
    pub fn start<H>(addr: &str, config: Config, handler: H) -> Result<Server>
    where
        H: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        let invalid = |reason: String| Error::InvalidAddress {
            addr: addr.into(),
            reason,
        };
        let start_error = |source| Error::Start {
            addr: addr.into(),
            source,
        };
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| invalid(e.to_string()))?
            .collect();
        if addrs.is_empty() {
            return Err(invalid("resolves to nothing".into()));
        }
        let listener = std::net::TcpListener::bind(&addrs[..]).map_err(|source| Error::Bind {
            addr: addr.into(),
            source,
        })?;
        let local_addr = listener.local_addr().map_err(start_error)?;
        listener.set_nonblocking(true).map_err(start_error)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(start_error)?;
        let listener = {
            let _context = runtime.enter();
            TcpListener::from_std(listener).map_err(start_error)?
        };
        let (stop, stop_requested) = watch::channel(false);
        let shared = Arc::new(Shared {
            config: config.clone(),
            handler: Box::new(handler),
        });
        let thread = std::thread::Builder::new()
            .name(config.thread_name)
            .spawn(move || {
                runtime.block_on(serve(listener, stop_requested, shared));
                // Dropping the runtime drops the connections still open after the grace period.
                drop(runtime);
            })
            .map_err(start_error)?;
        Ok(Server {
            local_addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on (with the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving: closes the listening socket at once, lets requests in flight finish for at
    /// most [`Config::stop_grace`], closes every connection and joins the thread. Idempotent.
    /// Called from the handler itself, it returns without waiting.
    pub fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.send_replace(true);
        if thread.thread().id() != std::thread::current().id() {
            // The thread catches nothing: a panic there has already been printed.
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server thread's one task: accepts connections until a stop is requested, then shuts
/// them down within the grace period.
async fn serve(
    listener: TcpListener,
    mut stop_requested: watch::Receiver<bool>,
    shared: Arc<Shared>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(shared.config.read_timeout)
        .max_header_size(shared.config.max_header_bytes)
        // `Content-Type`, not `content-type`: what HTTP/1.1 clients and their tests expect.
        .title_case_headers(true)
        .keep_alive(true);
    let connections = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(shared.config.max_connections));
    loop {
        let slot = match first(stopped(&mut stop_requested), slots.clone().acquire_owned()).await {
            Either::Right(Ok(slot)) => slot,
            Either::Left(()) | Either::Right(Err(_)) => break,
        };
        let stream = match first(stopped(&mut stop_requested), listener.accept()).await {
            Either::Left(()) => break,
            Either::Right(Ok((stream, _peer))) => stream,
            Either::Right(Err(_)) => {
                // Out of descriptors and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let service = service_fn(move |request| answer(request, shared.clone()));
        let connection = connections.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A client that breaks the protocol, times out or goes away loses only its own
            // connection.
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    // Idle connections close at once, those with a request in flight after its response.
    let grace = shared.config.stop_grace;
    let _ = tokio::time::timeout(grace, connections.shutdown()).await;
}

/// Resolves when a stop is requested (or the [`Server`] is gone).
async fn stopped(stop_requested: &mut watch::Receiver<bool>) {
    let _ = stop_requested.wait_for(|&stop| stop).await;
}

/// Reads the body (bounded in size and time), runs the handler, converts its answer.
async fn answer(
    request: hyper::Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = Limited::new(body, shared.config.max_body_bytes).collect();
    let body = match tokio::time::timeout(shared.config.read_timeout, body).await {
        Ok(Ok(body)) => body.to_bytes(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            return Ok(convert(Response::text(413, "request body too large\n")));
        }
        Ok(Err(_)) => return Ok(convert(Response::text(400, "bad request body\n"))),
        Err(_) => return Ok(convert(Response::text(408, "request body timed out\n"))),
    };
    let request = Request {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
    };
    let response = catch_unwind(AssertUnwindSafe(|| (shared.handler)(&request)))
        .unwrap_or_else(|_| Response::text(500, "internal error\n"));
    Ok(convert(response))
}

/// The handler's [`Response`] as hyper's; anything invalid in it becomes a `500`.
fn convert(response: Response) -> hyper::Response<Full<Bytes>> {
    let mut converted = hyper::Response::new(Full::new(response.body));
    let Ok(status) = StatusCode::from_u16(response.status) else {
        return internal_error("invalid response status\n");
    };
    *converted.status_mut() = status;
    for (name, value) in response.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) else {
            return internal_error("invalid response header\n");
        };
        converted.headers_mut().append(name, value);
    }
    converted
}

fn internal_error(message: &'static str) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(message.as_bytes())));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

enum Either<L, R> {
    Left(L),
    Right(R),
}

/// Runs two futures until the first finishes (`left` wins a tie); the other is dropped.
async fn first<L: Future, R: Future>(left: L, right: R) -> Either<L::Output, R::Output> {
    let mut left = pin!(left);
    let mut right = pin!(right);
    poll_fn(move |cx| {
        if let Poll::Ready(value) = left.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(value));
        }
        right.as_mut().poll(cx).map(Either::Right)
    })
    .await
}
