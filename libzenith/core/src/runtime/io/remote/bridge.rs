//! The remote reads' tokio runtime (two worker threads, started on first use, shared by every
//! remote dataset of the process) and [`block_on`]: how a loader worker, a plain thread, waits
//! for a future on it, never longer than a deadline.

use std::future::Future;
use std::io;
use std::sync::OnceLock;
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::Instant;

use tokio::runtime::{Handle, Runtime};

/// Threads of the runtime: requests are I/O-bound; decoding happens on the loader's workers.
const THREADS: usize = 2;

/// The runtime, started on first use. A failure to start it is kept and reported every time.
pub(super) fn handle() -> io::Result<Handle> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(THREADS)
            .thread_name("zenith-remote")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| e.to_string())
    });
    match runtime {
        Ok(runtime) => Ok(runtime.handle().clone()),
        Err(why) => Err(io::Error::other(format!(
            "could not start the runtime for remote reads: {why}"
        ))),
    }
}

/// Runs `future` on the runtime and waits for its output until `deadline`; past it the future
/// is cancelled and the result is a `TimedOut` error saying `what` did not finish.
///
/// Must not be called from a thread of the runtime itself (only loader threads and user
/// threads call it).
pub(super) fn block_on<T, F>(future: F, deadline: Instant, what: &str) -> io::Result<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let handle = handle()?;
    let (send, receive) = sync_channel(1);
    let task = handle.spawn(async move {
        let _ = send.send(future.await);
    });
    let wait = deadline.saturating_duration_since(Instant::now());
    match receive.recv_timeout(wait) {
        Ok(value) => Ok(value),
        Err(RecvTimeoutError::Timeout) => {
            task.abort();
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what}: no answer within the deadline"),
            ))
        }
        Err(RecvTimeoutError::Disconnected) => Err(io::Error::other(format!(
            "{what}: the request was dropped (the runtime is shutting down)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn futures_finish_or_time_out() {
        let soon = Instant::now() + Duration::from_secs(30);
        assert_eq!(block_on(async { 7 }, soon, "seven").unwrap(), 7);
        let err = block_on(
            async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            },
            Instant::now() + Duration::from_millis(20),
            "a sleeper",
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("a sleeper"), "{err}");
    }
}
