//! The server over real loopback sockets, with a std-only client: routing, the error answers
//! hyper and the server give, concurrency (a trickling client and idle keep-alive connections
//! hold only themselves) and a bounded stop.
//!
//! No test measures speed. Where a test waits, the bound is a liveness bound with generous slack;
//! "not delayed" is shown by order (the request completes while the slow clients are still
//! connected and unfinished), not by a clock.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zenith_http::{Config, Error, Request, Response, Server};

/// A liveness bound: far beyond anything a working server needs, short of a hung test run.
const LIVENESS: Duration = Duration::from_secs(60);

/// Echoes what it saw: `/echo` answers method, path, query and body; `/panic` panics; `/bad`
/// answers an invalid header; everything else 404.
fn echo(request: &Request) -> Response {
    match request.path() {
        "/echo" => Response::text(
            200,
            format!(
                "{} {} {:?} {:?} {}",
                request.method(),
                request.path(),
                request.query(),
                request.header("x-test"),
                String::from_utf8_lossy(request.body())
            ),
        )
        .with_header("X-Reply", "yes"),
        "/panic" => panic!("handler panic (expected by the test)"),
        "/bad" => Response::new(200).with_header("Bad Name", "x"),
        _ => Response::text(404, "not found\n"),
    }
}

/// A server whose read timeout is long enough that it never closes a client during a test.
fn patient_server() -> Server {
    let config = Config::default().read_timeout(Duration::from_secs(600));
    Server::start("127.0.0.1:0", config, echo).unwrap()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(LIVENESS)).unwrap();
    stream
}

/// Sends `text` on a new connection and reads until the server closes it.
fn exchange(addr: SocketAddr, text: &[u8]) -> String {
    let mut stream = connect(addr);
    stream.write_all(text).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    String::from_utf8(response).unwrap()
}

/// Sends one keep-alive request on `stream` and reads exactly its response (head and
/// `Content-Length` body), leaving the connection open.
fn keep_alive_request(stream: &mut TcpStream, path: &str) -> String {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        response.push(byte[0]);
    }
    let head = String::from_utf8(response.clone()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .unwrap()
        .parse()
        .unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    response.extend_from_slice(&body);
    String::from_utf8(response).unwrap()
}

/// True when the server has not closed `stream` (nothing to read yet, no EOF).
fn still_open(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let open = matches!(stream.peek(&mut [0u8; 1]), Err(e) if e.kind() == ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    open
}

/// A client sending a request one byte every 500 ms, until it is told to stop or the server
/// closes the connection.
struct Trickler {
    sent: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const TRICKLED: &[u8] = b"GET /echo HTTP/1.1\r\nHost: a-slow-client.example\r\n\r\n";

impl Trickler {
    fn start(addr: SocketAddr) -> Self {
        let sent = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let mut stream = connect(addr);
        let thread = {
            let (sent, done, stop) = (sent.clone(), done.clone(), stop.clone());
            std::thread::spawn(move || {
                for byte in TRICKLED {
                    if stop.load(Ordering::SeqCst) || stream.write_all(&[*byte]).is_err() {
                        break;
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(500));
                }
                done.store(true, Ordering::SeqCst);
            })
        };
        let trickler = Trickler {
            sent,
            done,
            stop,
            thread: Some(thread),
        };
        // Connected and under way: the server has part of a request head.
        let started = Instant::now();
        while trickler.sent.load(Ordering::SeqCst) < 2 {
            assert!(started.elapsed() < LIVENESS, "the trickler cannot send");
            std::thread::sleep(Duration::from_millis(20));
        }
        trickler
    }

    /// Connected, still sending, its request unfinished.
    fn in_progress(&self) -> bool {
        !self.done.load(Ordering::SeqCst) && self.sent.load(Ordering::SeqCst) < TRICKLED.len()
    }
}

impl Drop for Trickler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn routes_method_path_query_headers_and_body_to_the_handler() {
    let server = patient_server();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);

    let ok = exchange(
        addr,
        b"POST /echo?a=1&b HTTP/1.1\r\nHost: x\r\nX-Test: hi\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(
        ok.to_ascii_lowercase().contains("\r\nx-reply: yes\r\n"),
        "{ok}"
    );
    assert!(
        ok.to_ascii_lowercase()
            .contains("\r\ncontent-type: text/plain; charset=utf-8\r\n"),
        "{ok}"
    );
    assert!(
        ok.ends_with("\r\n\r\nPOST /echo Some(\"a=1&b\") Some(\"hi\") hello"),
        "{ok}"
    );

    let not_found = exchange(addr, b"GET /nothing HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(
        not_found.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{not_found}"
    );

    // HEAD: the GET answer's headers (Content-Length included), no body.
    let head = exchange(addr, b"HEAD /echo HTTP/1.0\r\n\r\n");
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-length: "),
        "{head}"
    );
    assert!(head.ends_with("\r\n\r\n"), "{head}");
}

#[test]
fn protocol_errors_limits_and_handler_faults_get_their_status() {
    let config = Config::default()
        .read_timeout(Duration::from_secs(600))
        .max_body_bytes(16)
        .max_header_bytes(8 << 10);
    let server = Server::start("127.0.0.1:0", config, echo).unwrap();
    let addr = server.local_addr();

    let malformed = exchange(addr, b"nonsense\r\n\r\n");
    assert!(malformed.starts_with("HTTP/1.1 400 "), "{malformed}");

    let big = format!(
        "GET /echo HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "x".repeat(16 << 10)
    );
    let too_big_head = exchange(addr, big.as_bytes());
    assert!(too_big_head.starts_with("HTTP/1.1 431 "), "{too_big_head}");

    let too_big_body = exchange(
        addr,
        b"POST /echo HTTP/1.1\r\nContent-Length: 17\r\nConnection: close\r\n\r\n01234567890123456",
    );
    assert!(too_big_body.starts_with("HTTP/1.1 413 "), "{too_big_body}");

    let panicked = exchange(addr, b"GET /panic HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(panicked.starts_with("HTTP/1.1 500 "), "{panicked}");
    let bad_header = exchange(addr, b"GET /bad HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(bad_header.starts_with("HTTP/1.1 500 "), "{bad_header}");

    // Still serving after all of that.
    let ok = exchange(addr, b"GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200 "), "{ok}");
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let server = patient_server();
    let mut stream = connect(server.local_addr());
    for _ in 0..3 {
        let response = keep_alive_request(&mut stream, "/echo");
        assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    }
    assert!(still_open(&stream));
}

#[test]
fn a_trickling_client_does_not_hold_other_requests() {
    let server = patient_server();
    let addr = server.local_addr();
    let trickler = Trickler::start(addr);
    let response = exchange(addr, b"GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    // Answered while the trickler is connected and its request unfinished: it waited for
    // nobody.
    assert!(trickler.in_progress());
}

#[test]
fn idle_keep_alive_connections_do_not_hold_other_requests() {
    let server = patient_server();
    let addr = server.local_addr();
    // Ten that were served and stay open, ten that never sent anything.
    let mut idle: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut stream = connect(addr);
            assert!(keep_alive_request(&mut stream, "/echo").starts_with("HTTP/1.1 200 "));
            stream
        })
        .collect();
    idle.extend((0..10).map(|_| connect(addr)));

    let response = exchange(addr, b"GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    // Answered while all twenty are open: it waited for none of them to go.
    for stream in &idle {
        assert!(still_open(stream));
    }
    // And they still work.
    let response = keep_alive_request(&mut idle[0], "/echo");
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
}

#[test]
fn the_read_timeout_closes_idle_and_trickling_connections() {
    let config = Config::default().read_timeout(Duration::from_millis(300));
    let server = Server::start("127.0.0.1:0", config, echo).unwrap();
    let addr = server.local_addr();
    let mut served = connect(addr);
    assert!(keep_alive_request(&mut served, "/echo").starts_with("HTTP/1.1 200 "));
    let mut silent = connect(addr);
    let trickler = Trickler::start(addr);
    // The server closes each of them (EOF, or a 408 first); the read deadline is liveness only.
    for stream in [&mut served, &mut silent] {
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        assert!(rest.is_empty() || rest.starts_with(b"HTTP/1.1 408 "));
    }
    let started = Instant::now();
    while trickler.sent.load(Ordering::SeqCst) < TRICKLED.len()
        && !trickler.done.load(Ordering::SeqCst)
    {
        assert!(
            started.elapsed() < LIVENESS,
            "the trickler was never cut off"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Cut off before it could finish its request.
    assert!(trickler.sent.load(Ordering::SeqCst) < TRICKLED.len());
}

#[test]
fn stop_is_bounded_with_slow_and_idle_clients_connected() {
    let mut server = patient_server();
    let addr = server.local_addr();
    let trickler = Trickler::start(addr);
    let mut idle: Vec<TcpStream> = (0..10).map(|_| connect(addr)).collect();
    let mut served = connect(addr);
    assert!(keep_alive_request(&mut served, "/echo").starts_with("HTTP/1.1 200 "));
    idle.push(served);

    let started = Instant::now();
    server.stop();
    // Liveness, not speed: the grace period is 2 s; only a stop that waits on its clients
    // (for the 600 s read timeout, or forever) fails.
    assert!(started.elapsed() < LIVENESS, "{:?}", started.elapsed());
    server.stop();

    // Every connection is closed and nothing listens any more.
    for stream in &mut idle {
        let mut rest = Vec::new();
        if let Err(e) = stream.read_to_end(&mut rest) {
            assert!(
                !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
                "a connection outlived stop: {e}"
            );
        }
    }
    assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
    drop(trickler);
}

#[test]
fn bad_addresses_and_ports_in_use_are_start_errors() {
    for bad in ["not an address", "127.0.0.1", "127.0.0.1:99999"] {
        let err = Server::start(bad, Config::default(), echo).unwrap_err();
        assert!(matches!(err, Error::InvalidAddress { .. }), "{bad}: {err}");
    }
    let first = Server::start("127.0.0.1:0", Config::default(), echo).unwrap();
    let err = Server::start(&first.local_addr().to_string(), Config::default(), echo).unwrap_err();
    match err {
        Error::Bind { source, .. } => assert_eq!(source.kind(), ErrorKind::AddrInUse),
        other => panic!("{other}"),
    }
}

#[test]
fn stopping_from_the_handler_does_not_deadlock() {
    use std::sync::Mutex;
    let slot: Arc<Mutex<Option<Server>>> = Arc::new(Mutex::new(None));
    let handler_slot = slot.clone();
    let server = Server::start("127.0.0.1:0", Config::default(), move |_: &Request| {
        if let Some(mut server) = handler_slot.lock().unwrap().take() {
            server.stop();
        }
        Response::text(200, "stopping\n")
    })
    .unwrap();
    let addr = server.local_addr();
    *slot.lock().unwrap() = Some(server);
    let response = exchange(addr, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    let started = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
        assert!(started.elapsed() < LIVENESS, "still listening");
        std::thread::sleep(Duration::from_millis(50));
    }
}
