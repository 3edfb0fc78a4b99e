//! One request to a store with retries: exponential back-off between attempts, a total
//! deadline over all of them, and, when it still fails, an error that names the object and the
//! last HTTP status the store answered with.
//!
//! `object_store`'s own retries are turned off (see `store`), so that every attempt is counted
//! here (`zenith_remote_retries_total`) and the deadline is the one the user set.

use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use super::metrics::metrics;

/// How a failed request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt, at most.
    pub retries: u32,
    /// The deadline of all attempts together, from the first.
    pub deadline: Duration,
    /// The wait before the first retry; doubled after each, up to `max_backoff`.
    pub initial_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 10,
            deadline: Duration::from_secs(120),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// What a failed attempt says about the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    /// The HTTP status the store answered with; `None` when no response came (connection
    /// refused or reset, a timeout).
    pub status: Option<u16>,
    /// Whether another attempt may succeed (5xx but 501, 408, 429, no response).
    pub retryable: bool,
    /// The store's error, in words.
    pub message: String,
}

/// Classifies a store error: its HTTP status and whether it is worth retrying.
pub(super) fn classify(error: &object_store::Error) -> Failure {
    use object_store::Error as E;
    let message = error_chain(error);
    let status = match error {
        E::NotFound { .. } => Some(404),
        E::PermissionDenied { .. } => Some(403),
        E::Unauthenticated { .. } => Some(401),
        E::Precondition { .. } => Some(412),
        E::NotModified { .. } => Some(304),
        E::AlreadyExists { .. } => Some(409),
        _ => status_in(&message),
    };
    let retryable = match error {
        E::Generic { .. } | E::JoinError { .. } => match status {
            // 501: the server does not implement the method (a PROPFIND to a plain web server).
            Some(code) => (code >= 500 && code != 501) || code == 408 || code == 429,
            None => true,
        },
        _ => false,
    };
    Failure {
        status,
        retryable,
        message,
    }
}

/// An error and its sources, joined (object_store's own Display shows only the outer layers).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}

/// The status in object_store's "Server returned non-2xx status code: 503 ..." text.
fn status_in(message: &str) -> Option<u16> {
    let at = message.find("status code: ")? + "status code: ".len();
    let digits = message.get(at..at + 3)?;
    digits.parse().ok().filter(|code| (100..600).contains(code))
}

/// The words for a status: `503 Service Unavailable`.
fn status_words(status: u16) -> String {
    let reason = http_reason(status);
    if reason.is_empty() {
        status.to_string()
    } else {
        format!("{status} {reason}")
    }
}

fn http_reason(status: u16) -> &'static str {
    match status {
        301 => "Moved Permanently",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        412 => "Precondition Failed",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// Runs `attempt` until it succeeds, fails in a way a retry cannot fix, runs out of retries or
/// would pass the policy's deadline. `what` names the request and its object ("GET bytes 0-99
/// of s3://bucket/key"); the error says it, how many retries were made, and the last HTTP status.
pub(super) async fn with_retries<T, F, Fut>(
    policy: RetryPolicy,
    what: &str,
    mut attempt: F,
) -> io::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = object_store::Result<T>>,
{
    let start = Instant::now();
    let mut retries = 0u32;
    let mut backoff = policy.initial_backoff;
    let mut last_status = None;
    loop {
        metrics().requests.inc();
        let left = policy.deadline.saturating_sub(start.elapsed());
        let failure = match tokio::time::timeout(left, attempt()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => classify(&error),
            Err(_) => Failure {
                status: None,
                retryable: false,
                message: format!("no answer within the deadline ({:?})", policy.deadline),
            },
        };
        last_status = failure.status.or(last_status);
        let elapsed = start.elapsed();
        if !failure.retryable || retries >= policy.retries || elapsed + backoff > policy.deadline {
            return Err(give_up(what, &failure, last_status, retries, elapsed));
        }
        retries += 1;
        metrics().retries.inc();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(policy.max_backoff);
    }
}

/// The error of a request given up on.
fn give_up(
    what: &str,
    failure: &Failure,
    last_status: Option<u16>,
    retries: u32,
    elapsed: Duration,
) -> io::Error {
    let status = match last_status {
        Some(code) => format!("last HTTP status {}", status_words(code)),
        None => "no HTTP response".to_string(),
    };
    let tries = if retries == 0 {
        "failed".to_string()
    } else {
        format!(
            "failed after {retries} retries over {:.1}s",
            elapsed.as_secs_f64()
        )
    };
    let kind = match failure.status {
        Some(404) => io::ErrorKind::NotFound,
        Some(401 | 403) => io::ErrorKind::PermissionDenied,
        // Only pinned reads send preconditions (`If-Match`): the object is not the one opened.
        Some(412) => io::ErrorKind::StaleNetworkFileHandle,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(
        kind,
        format!("{what} {tries} ({status}): {}", failure.message),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_read_from_the_error_text() {
        assert_eq!(
            status_in("Server returned non-2xx status code: 503 Service Unavailable: x"),
            Some(503)
        );
        assert_eq!(status_in("error sending request"), None);
        assert_eq!(status_words(503), "503 Service Unavailable");
        assert_eq!(status_words(599), "599");
        let missing = object_store::Error::NotFound {
            path: "k".into(),
            source: "gone".into(),
        };
        let failure = classify(&missing);
        assert_eq!((failure.status, failure.retryable), (Some(404), false));
        let busy = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 503 Service Unavailable: slow down"
                .into(),
        };
        assert_eq!(classify(&busy).status, Some(503));
        assert!(classify(&busy).retryable);
        let refused = object_store::Error::Generic {
            store: "S3",
            source: "error sending request: connection refused".into(),
        };
        assert!(classify(&refused).retryable);
        let bad = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 400 Bad Request: no".into(),
        };
        assert!(!classify(&bad).retryable);
    }
}
