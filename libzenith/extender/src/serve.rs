//! The HTTP routes on `zenith-http`: `POST /filter`, `/prioritize`, `/preempt`, `/bind` (the
//! verbs of `k8s.io/kube-scheduler/extender/v1`, at the paths kube-scheduler's `urlPrefix` +
//! verb names), `POST /watch` (Pod and Node `metav1.WatchEvent`s, one or more, as a sidecar
//! forwards them), `POST /release` (`{"gang": "namespace/name"}`), `GET /healthz`.

use std::sync::Arc;

use zenith_http::{Config, Request, Response, Server};

use crate::extender::Extender;
use crate::wire::{ExtenderArgs, ExtenderBindingArgs, ExtenderPreemptionArgs, WatchEvent};

/// Largest request body (a NodeList of a few thousand nodes fits).
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Serves `extender` on `addr` (`"127.0.0.1:0"` picks a free port).
pub fn serve(addr: &str, extender: Arc<Extender>) -> zenith_http::Result<Server> {
    let config = Config::default()
        .thread_name("zenith-extender")
        .max_body_bytes(MAX_BODY_BYTES);
    Server::start(addr, config, move |req| handle(&extender, req))
}

fn json(status: u16, body: Vec<u8>) -> Response {
    Response::new(status)
        .with_header("Content-Type", "application/json")
        .with_body(body)
}

fn bad_request(what: &str, e: impl std::fmt::Display) -> Response {
    Response::text(400, format!("{what}: {e}\n"))
}

/// Answers one request.
pub fn handle(ext: &Extender, req: &Request) -> Response {
    let path = req.path().trim_end_matches('/');
    let verb = path.rsplit('/').next().unwrap_or("");
    match (req.method(), verb) {
        ("GET", "healthz") => Response::text(200, "ok\n"),
        ("POST", "filter") => match serde_json::from_slice::<ExtenderArgs>(req.body()) {
            Ok(args) => to_json(&ext.filter(&args)),
            Err(e) => bad_request("ExtenderArgs", e),
        },
        ("POST", "prioritize") => match serde_json::from_slice::<ExtenderArgs>(req.body()) {
            Ok(args) => match ext.prioritize(&args) {
                Ok(list) => to_json(&list),
                Err(e) => bad_request("prioritize", e),
            },
            Err(e) => bad_request("ExtenderArgs", e),
        },
        ("POST", "preempt") => match serde_json::from_slice::<ExtenderPreemptionArgs>(req.body()) {
            Ok(args) => match ext.preempt(&args) {
                Ok(r) => to_json(&r),
                Err(e) => bad_request("preempt", e),
            },
            Err(e) => bad_request("ExtenderPreemptionArgs", e),
        },
        ("POST", "bind") => match serde_json::from_slice::<ExtenderBindingArgs>(req.body()) {
            Ok(args) => to_json(&ext.bind(&args)),
            Err(e) => bad_request("ExtenderBindingArgs", e),
        },
        ("POST", "watch") => {
            // One event, or several separated by whitespace (a watch stream's lines).
            let events: Result<Vec<WatchEvent>, _> =
                serde_json::Deserializer::from_slice(req.body())
                    .into_iter::<WatchEvent>()
                    .collect();
            match events {
                Ok(events) => match ext.watch(&events) {
                    Ok(applied) => to_json(&serde_json::json!({
                        "events": events.len(),
                        "applied": applied,
                    })),
                    Err(e) => bad_request("watch", e),
                },
                Err(e) => bad_request("WatchEvent", e),
            }
        }
        ("POST", "release") => {
            #[derive(serde::Deserialize)]
            struct Release {
                gang: String,
            }
            match serde_json::from_slice::<Release>(req.body()) {
                Ok(r) if ext.release(&r.gang) => Response::text(200, "released\n"),
                Ok(r) => Response::text(404, format!("unknown gang {:?}\n", r.gang)),
                Err(e) => bad_request("release", e),
            }
        }
        (_, "healthz" | "filter" | "prioritize" | "preempt" | "bind" | "watch" | "release") => {
            Response::text(405, "method not allowed\n")
        }
        _ => Response::text(404, "not found\n"),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => json(200, body),
        Err(e) => Response::text(500, format!("encoding the answer: {e}\n")),
    }
}
