//! Creating a pod's `v1.Binding` on the Kubernetes API server, for the `bind` verb (when
//! kube-scheduler's configuration makes the extender the binder, the binding is the extender's
//! to create).
//!
//! Plain HTTP/1.1 only, to an API server proxy on the extender's own pod (`kubectl proxy`, the
//! usual sidecar, listens on `127.0.0.1:8001` and adds the credentials); an optional bearer
//! token is sent when given. Every step has a deadline: the handler runs on the HTTP server's
//! thread.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Largest API server answer read (only its status line and a message are used).
const MAX_ANSWER_BYTES: u64 = 1 << 20;

/// Where and how to reach the API server.
#[derive(Debug, Clone)]
pub struct ApiServer {
    host: String,
    port: u16,
    prefix: String,
    token: Option<String>,
    timeout: Duration,
}

impl ApiServer {
    /// `http://host[:port][/prefix]` (port 80 by default); `https://` is refused with the reason.
    pub fn parse(url: &str) -> Result<ApiServer, String> {
        let rest = match url.strip_prefix("http://") {
            Some(r) => r,
            None if url.starts_with("https://") => {
                return Err(format!(
                    "--apiserver {url:?}: only plain http is supported; run `kubectl proxy` beside \
                     the extender and use http://127.0.0.1:8001"
                ));
            }
            None => return Err(format!("--apiserver {url:?}: not an http:// URL")),
        };
        let (authority, prefix) = match rest.find('/') {
            Some(k) => (&rest[..k], rest[k..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("--apiserver {url:?}: bad port {p:?}"))?,
            ),
            None => (authority, 80),
        };
        if host.is_empty() {
            return Err(format!("--apiserver {url:?}: no host"));
        }
        Ok(ApiServer {
            host: host.to_owned(),
            port,
            prefix: prefix.to_owned(),
            token: None,
            timeout: Duration::from_secs(5),
        })
    }

    /// Sends `Authorization: Bearer TOKEN` with every request.
    pub fn with_token(mut self, token: impl Into<String>) -> ApiServer {
        self.token = Some(token.into());
        self
    }

    /// The deadline of each step (connect, send, answer); 5 s by default.
    pub fn with_timeout(mut self, timeout: Duration) -> ApiServer {
        self.timeout = timeout;
        self
    }

    /// Binds pod `namespace/name` (UID `uid`) to `node`: `POST
    /// /api/v1/namespaces/NS/pods/NAME/binding` with a `v1.Binding`. A non-2xx answer is an
    /// error with the status and the server's message.
    pub fn bind(&self, namespace: &str, name: &str, uid: &str, node: &str) -> Result<(), String> {
        let body = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        })
        .to_string();
        let path = format!(
            "{}/api/v1/namespaces/{}/pods/{}/binding",
            self.prefix,
            path_segment(namespace)?,
            path_segment(name)?
        );
        let (status, answer) = self.post(&path, &body)?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            let msg = serde_json::from_str::<serde_json::Value>(&answer)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| answer.chars().take(200).collect());
            Err(format!(
                "the API server answered {status} to the binding: {msg}"
            ))
        }
    }

    fn post(&self, path: &str, body: &str) -> Result<(u16, String), String> {
        let what = format!("API server {}:{}", self.host, self.port);
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("{what}: {e}"))?
            .next()
            .ok_or_else(|| format!("{what}: resolves to no address"))?;
        let mut s = TcpStream::connect_timeout(&addr, self.timeout)
            .map_err(|e| format!("{what}: connect: {e}"))?;
        s.set_read_timeout(Some(self.timeout))
            .and_then(|_| s.set_write_timeout(Some(self.timeout)))
            .map_err(|e| format!("{what}: {e}"))?;
        let auth = match &self.token {
            Some(t) => format!("Authorization: Bearer {t}\r\n"),
            None => String::new(),
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Accept: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.host,
            body.len()
        );
        s.write_all(head.as_bytes())
            .and_then(|_| s.write_all(body.as_bytes()))
            .map_err(|e| format!("{what}: send: {e}"))?;
        let mut raw = Vec::new();
        s.take(MAX_ANSWER_BYTES)
            .read_to_end(&mut raw)
            .map_err(|e| format!("{what}: answer: {e}"))?;
        let text = String::from_utf8_lossy(&raw);
        let status = text
            .strip_prefix("HTTP/1.")
            .and_then(|r| r.get(2..5))
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| format!("{what}: not an HTTP answer"))?;
        let body = text.split_once("\r\n\r\n").map_or("", |x| x.1).to_owned();
        Ok((status, body))
    }
}

/// A name as a URL path segment: Kubernetes names are DNS labels/subdomains, so anything else
/// is refused rather than escaped.
fn path_segment(s: &str) -> Result<&str, String> {
    if !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        Ok(s)
    } else {
        Err(format!("{s:?} is not a Kubernetes object name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let a = ApiServer::parse("http://127.0.0.1:8001").unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.prefix.as_str()),
            ("127.0.0.1", 8001, "")
        );
        let a = ApiServer::parse("http://proxy/k8s/").unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.prefix.as_str()),
            ("proxy", 80, "/k8s")
        );
        assert!(
            ApiServer::parse("https://x")
                .unwrap_err()
                .contains("kubectl proxy")
        );
        assert!(ApiServer::parse("ftp://x").is_err());
        assert!(ApiServer::parse("http://x:port").is_err());
        assert!(path_segment("Bad/Name").is_err());
        assert!(path_segment("ok-1.x").is_ok());
    }
}
