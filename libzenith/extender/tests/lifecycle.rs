//! How the extender learns pod ends and node changes, over real HTTP on 127.0.0.1 with an
//! injected clock: the bind verb creating Bindings on a fake API server, watch events from a
//! sidecar (pod deleted / succeeded / failed / bound, node added / changed / cordoned /
//! removed), and reconciliation with the candidates of each request (absent nodes, assumed pods
//! that never bind).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use zenith_extender::binder::ApiServer;
use zenith_extender::wire::{ExtenderBindingResult, ExtenderFilterResult};
use zenith_extender::{Extender, ExtenderConfig, serve};

const GRACE: u64 = 60_000;
const BIND_DEADLINE: u64 = 30_000;

mod common;
use common::post;

fn node(name: &str, gpus: u32) -> Value {
    json!({
        "kind": "Node",
        "metadata": {"name": name, "labels": {"nvidia.com/gpu.product": "H100", "zenith.io/rack": "r0"}},
        "spec": {},
        "status": {"allocatable": {"nvidia.com/gpu": gpus.to_string(), "cpu": "64", "memory": "512Gi"}}
    })
}

fn pod(name: &str, gang: &str, size: u32, gpus: u32) -> Value {
    json!({
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ml", "uid": format!("uid-{name}"),
                     "annotations": {"zenith.io/gang": gang, "zenith.io/gang-size": size.to_string()}},
        "spec": {"containers": [{"name": "main", "resources": {"requests": {
            "nvidia.com/gpu": gpus.to_string(), "cpu": "8", "memory": "64Gi"}}}]},
        "status": {"phase": "Pending"}
    })
}

/// An extender on a clock the test moves, and its address.
struct Rig {
    ext: Arc<Extender>,
    server: zenith_http::Server,
    clock: Arc<AtomicU64>,
}

impl Rig {
    fn new(apiserver: Option<ApiServer>) -> Rig {
        let clock = Arc::new(AtomicU64::new(1_000));
        let c = clock.clone();
        let ext = Arc::new(Extender::with_config(ExtenderConfig {
            node_grace_ms: GRACE,
            bind_deadline_ms: BIND_DEADLINE,
            apiserver,
            clock: Some(Arc::new(move || c.load(Ordering::SeqCst))),
        }));
        let server = serve("127.0.0.1:0", ext.clone()).unwrap();
        Rig { ext, server, clock }
    }

    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    fn advance(&self, ms: u64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }

    fn filter(&self, args: Value) -> ExtenderFilterResult {
        let (status, body) = post(self.addr(), "/filter", &args.to_string());
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The node a pod passes on (exactly one), by names.
    fn place(&self, pod: Value, names: &[&str]) -> String {
        let r = self.filter(json!({"Pod": pod, "NodeNames": names}));
        let p = r.node_names.clone().unwrap();
        assert_eq!(p.len(), 1, "{r:?}");
        p[0].clone()
    }

    fn fails(&self, pod: Value, names: &[&str]) -> bool {
        let r = self.filter(json!({"Pod": pod, "NodeNames": names}));
        r.node_names.unwrap().is_empty()
    }

    fn watch(&self, events: &[Value]) -> Value {
        let body: Vec<String> = events.iter().map(|e| e.to_string()).collect();
        let (status, body) = post(self.addr(), "/watch", &body.join("\n"));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

/// A pod that is not zenith's (no gang, no GPUs): it only shows the candidates.
fn plain() -> Value {
    json!({"metadata": {"name": "web", "namespace": "ml", "uid": "web"}, "spec": {"containers": []}})
}

fn event(kind: &str, object: Value) -> Value {
    json!({"type": kind, "object": object})
}

fn with_phase(mut pod: Value, phase: &str) -> Value {
    pod["status"]["phase"] = json!(phase);
    pod
}

/// The requests a fake API server got: (path, JSON body).
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// A fake API server that records the requests it gets and answers `status`.
fn fake_apiserver(status: u16) -> (zenith_http::Server, Seen) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let server = zenith_http::Server::start(
        "127.0.0.1:0",
        zenith_http::Config::default(),
        move |req: &zenith_http::Request| {
            let body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
            s.lock().unwrap().push((req.path().to_owned(), body));
            zenith_http::Response::text(
                status,
                r#"{"kind":"Status","message":"pods \"w0\" is forbidden"}"#,
            )
        },
    )
    .unwrap();
    (server, seen)
}

#[test]
fn bind_creates_the_binding_on_the_api_server_and_checks_the_node() {
    let (mut api, seen) = fake_apiserver(201);
    let url = format!("http://{}", api.local_addr());
    let mut rig = Rig::new(Some(ApiServer::parse(&url).unwrap()));
    rig.filter(json!({"Pod": pod("w0", "train", 2, 8), "Nodes": {"items": [node("n0", 8), node("n1", 8)]}}));
    let n0 = rig.place(pod("w0", "train", 2, 8), &["n0", "n1"]);
    let other = if n0 == "n0" { "n1" } else { "n0" };

    // Binding it elsewhere than zenith put it is refused, and nothing reaches the API server.
    let args = json!({"PodName": "w0", "PodNamespace": "ml", "PodUID": "uid-w0", "Node": other});
    let (status, body) = post(rig.addr(), "/bind", &args.to_string());
    assert_eq!(status, 200);
    let r: ExtenderBindingResult = serde_json::from_str(&body).unwrap();
    assert!(r.error.contains("zenith placed pod ml/w0 on"), "{r:?}");
    assert!(seen.lock().unwrap().is_empty());

    // Binding it where zenith put it creates a v1.Binding.
    let args = json!({"PodName": "w0", "PodNamespace": "ml", "PodUID": "uid-w0", "Node": n0});
    let (_, body) = post(rig.addr(), "/bind", &args.to_string());
    let r: ExtenderBindingResult = serde_json::from_str(&body).unwrap();
    assert_eq!(r.error, "", "{r:?}");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let (path, b) = &seen[0];
        assert_eq!(path, "/api/v1/namespaces/ml/pods/w0/binding");
        assert_eq!(b["kind"], "Binding");
        assert_eq!(b["metadata"]["uid"], "uid-w0");
        assert_eq!(b["target"]["kind"], "Node");
        assert_eq!(b["target"]["name"], json!(n0));
    }
    assert_eq!(rig.ext.pods()["uid-w0"], (n0.clone(), true));
    // A bound pod keeps its slot past the bind deadline; the gang stays.
    rig.advance(BIND_DEADLINE + 1);
    assert!(rig.ext.gangs().contains_key("ml/train"));
    assert_eq!(rig.ext.pods()["uid-w0"], (n0, true));

    // An API server that refuses: its message comes back in Error.
    let (mut refusing, _) = fake_apiserver(403);
    let url = format!("http://{}", refusing.local_addr());
    let mut rig2 = Rig::new(Some(ApiServer::parse(&url).unwrap()));
    let args = json!({"PodName": "web", "PodNamespace": "ml", "PodUID": "u", "Node": "n0"});
    let (_, body) = post(rig2.addr(), "/bind", &args.to_string());
    let r: ExtenderBindingResult = serde_json::from_str(&body).unwrap();
    assert!(
        r.error.contains("403") && r.error.contains("forbidden"),
        "{r:?}"
    );

    // Without an API server the verb says how to configure it.
    let mut rig3 = Rig::new(None);
    let (_, body) = post(rig3.addr(), "/bind", &args.to_string());
    let r: ExtenderBindingResult = serde_json::from_str(&body).unwrap();
    assert!(r.error.contains("--apiserver"), "{r:?}");
    // Bad JSON is a 400 naming the type.
    let (status, body) = post(rig3.addr(), "/bind", "[1");
    assert_eq!(status, 400);
    assert!(body.contains("ExtenderBindingArgs"), "{body}");
    for s in [
        &mut rig.server,
        &mut rig2.server,
        &mut rig3.server,
        &mut api,
        &mut refusing,
    ] {
        s.stop();
    }
}

#[test]
fn pod_events_release_gangs_when_their_last_pod_ends() {
    let mut rig = Rig::new(None);
    let r = rig.watch(&[
        event("ADDED", node("n0", 8)),
        event("ADDED", node("n1", 8)),
        event("ADDED", node("n2", 8)),
    ]);
    assert_eq!(r, json!({"events": 3, "applied": 3}));
    let all = ["n0", "n1", "n2"];
    // A 2 x 8 gang, both pods bound (the watch shows their nodeName).
    let mut bound = Vec::new();
    for name in ["a0", "a1"] {
        let n = rig.place(pod(name, "a", 2, 8), &all);
        let mut p = with_phase(pod(name, "a", 2, 8), "Running");
        p["spec"]["nodeName"] = json!(n);
        bound.push(p);
    }
    rig.watch(&[
        event("MODIFIED", bound[0].clone()),
        event("MODIFIED", bound[1].clone()),
    ]);
    assert!(rig.ext.pods().values().all(|(_, b)| *b));
    // Another 2 x 8 gang does not fit now.
    assert!(rig.fails(pod("b0", "b", 2, 8), &all));
    // One pod succeeds: the gang still holds its other member.
    rig.watch(&[event("MODIFIED", with_phase(bound[0].clone(), "Succeeded"))]);
    assert!(rig.ext.gangs().contains_key("ml/a"));
    assert!(rig.fails(pod("b0", "b", 2, 8), &all));
    // The other is deleted: the gang is finished and its GPUs are free.
    let r = rig.watch(&[event("DELETED", bound[1].clone())]);
    assert_eq!(r["applied"], 1);
    assert!(!rig.ext.gangs().contains_key("ml/a"));
    rig.place(pod("b0", "b", 2, 8), &all);
    // A failed pod ends a gang too; events for unknown pods change nothing.
    rig.place(pod("b1", "b", 2, 8), &all);
    let r = rig.watch(&[
        event("MODIFIED", with_phase(pod("b0", "b", 2, 8), "Failed")),
        event("DELETED", pod("b1", "b", 2, 8)),
        event("DELETED", pod("stranger", "x", 1, 1)),
        json!({"type": "BOOKMARK", "object": {"kind": "Pod"}}),
    ]);
    assert_eq!(r, json!({"events": 4, "applied": 2}));
    assert!(rig.ext.gangs().is_empty());
    // Bad events: a clear 400.
    let (status, body) = post(
        rig.addr(),
        "/watch",
        r#"{"type": "ADDED", "object": {"kind": "Service"}}"#,
    );
    assert_eq!(status, 400);
    assert!(body.contains("Pod or a Node"), "{body}");
    let (status, body) = post(rig.addr(), "/watch", r#"{"type": "RENAMED", "object": {}}"#);
    assert_eq!(status, 400);
    assert!(body.contains("RENAMED"), "{body}");
    let (status, _) = post(rig.addr(), "/watch", "{\"type\": ");
    assert_eq!(status, 400);
    rig.server.stop();
}

#[test]
fn node_events_add_change_cordon_and_remove_nodes() {
    let mut rig = Rig::new(None);
    rig.watch(&[event("ADDED", node("n0", 8)), event("ADDED", node("n1", 4))]);
    let nodes = rig.ext.nodes();
    assert_eq!((nodes["n0"].gpus, nodes["n1"].gpus), (8, 4));
    // Cordoned: drained, no gang lands there; uncordoned: back.
    let mut cordoned = node("n0", 8);
    cordoned["spec"]["unschedulable"] = json!(true);
    rig.watch(&[event("MODIFIED", cordoned)]);
    assert!(rig.ext.nodes()["n0"].draining);
    assert!(rig.fails(pod("c0", "c", 1, 8), &["n0", "n1"]));
    rig.watch(&[event("MODIFIED", node("n0", 8))]);
    assert!(!rig.ext.nodes()["n0"].draining);
    assert_eq!(rig.place(pod("c0", "c", 1, 8), &["n0", "n1"]), "n0");

    // An empty node's allocatable changes: at once. A busy node's: drained until it is empty.
    rig.watch(&[event("MODIFIED", node("n1", 8))]);
    assert_eq!(rig.ext.nodes()["n1"].gpus, 8);
    rig.watch(&[event("MODIFIED", node("n0", 4))]);
    assert_eq!(
        rig.ext.nodes()["n0"],
        zenith_extender::extender::NodeSummary {
            gpus: 8,
            draining: true
        }
    );
    rig.watch(&[event("DELETED", pod("c0", "c", 1, 8))]);
    assert_eq!(
        rig.ext.nodes()["n0"],
        zenith_extender::extender::NodeSummary {
            gpus: 4,
            draining: false
        }
    );

    // A removed node forgets the gang it held; its GPUs are gone from zenith.
    assert_eq!(rig.place(pod("d0", "d", 1, 8), &["n0", "n1"]), "n1");
    rig.watch(&[event("DELETED", node("n1", 8))]);
    assert!(!rig.ext.nodes().contains_key("n1"));
    assert!(rig.ext.gangs().is_empty() && rig.ext.pods().is_empty());
    assert!(rig.fails(pod("e0", "e", 1, 8), &["n0"]));
    // A node added again with that name works.
    rig.watch(&[event("ADDED", node("n1", 8))]);
    assert_eq!(rig.place(pod("e0", "e", 1, 8), &["n0", "n1"]), "n1");
    // A node with a bad quantity is refused by name.
    let mut bad = node("n9", 8);
    bad["status"]["allocatable"]["cpu"] = json!("many");
    let (status, body) = post(rig.addr(), "/watch", &event("ADDED", bad).to_string());
    assert_eq!(status, 400);
    assert!(body.contains("cpu"), "{body}");
    rig.server.stop();
}

#[test]
fn reconciliation_with_candidates_and_deadlines() {
    let mut rig = Rig::new(None);
    // Nodes come in NodeLists: new ones are added from their allocatable.
    let list = json!({"items": [node("n0", 8), node("n1", 8), node("n2", 8)]});
    let r = rig.filter(json!({"Pod": pod("a0", "a", 1, 8), "Nodes": list}));
    let a_node = r.nodes.unwrap().items[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(rig.ext.nodes().len(), 3);

    // Later requests show only n0 and n1 (n2 left the cluster; kube never offers it again).
    // Time without requests does not count: n2 is missing from the first request on.
    let shown: Vec<&str> = vec!["n0", "n1"];
    rig.advance(10 * GRACE);
    rig.place(pod("b0", "b", 1, 8), &shown);
    assert!(rig.ext.nodes().contains_key("n2"));
    rig.advance(GRACE + 1);
    rig.place(pod("b0", "b", 1, 8), &shown);
    // a0 (on {a_node}) never bound within the deadline: its gang is released; then n2, missing
    // from the requests past the grace period and empty, is removed.
    let nodes = rig.ext.nodes();
    assert!(
        !rig.ext.gangs().contains_key("ml/a"),
        "a0 never bound ({a_node})"
    );
    assert!(!nodes.contains_key("n2"), "{nodes:?}");
    assert!(nodes.contains_key("n0") && nodes.contains_key("n1"));

    // A node holding a bound pod that goes missing is drained, not removed; shown again, it
    // takes work again.
    let b_node = rig.ext.pods()["uid-b0"].0.clone();
    let mut p = with_phase(pod("b0", "b", 1, 8), "Running");
    p["spec"]["nodeName"] = json!(b_node);
    rig.watch(&[event("MODIFIED", p)]);
    let other = if b_node == "n0" { "n1" } else { "n0" };
    rig.filter(json!({"Pod": plain(), "NodeNames": [other]}));
    rig.advance(GRACE + 1);
    assert_eq!(rig.place(pod("c0", "c", 1, 8), &[other]), other);
    let nodes = rig.ext.nodes();
    assert!(nodes[b_node.as_str()].draining, "{nodes:?}");
    assert!(rig.ext.gangs().contains_key("ml/b"), "a bound gang stays");
    rig.filter(json!({"Pod": plain(), "NodeNames": [b_node.clone(), other]}));
    assert!(!rig.ext.nodes()[b_node.as_str()].draining);
    rig.watch(&[
        event("DELETED", pod("b0", "b", 1, 8)),
        event("DELETED", pod("c0", "c", 1, 8)),
    ]);
    assert!(rig.ext.gangs().is_empty());
    // A watch event showing a node counts as seeing it.
    rig.filter(json!({"Pod": plain(), "NodeNames": [other]}));
    rig.advance(GRACE + 1);
    rig.watch(&[event("MODIFIED", node(&b_node, 8))]);
    rig.filter(json!({"Pod": plain(), "NodeNames": [other]}));
    assert!(rig.ext.nodes().contains_key(b_node.as_str()));

    // An assumed pod of a gang that has a bound member loses its slot after the deadline; a
    // replacement pod takes it.
    let g0 = rig.place(pod("g0", "g", 2, 4), &["n0", "n1"]);
    let mut p = with_phase(pod("g0", "g", 2, 4), "Running");
    p["spec"]["nodeName"] = json!(g0);
    rig.watch(&[event("MODIFIED", p)]);
    let g1 = rig.place(pod("g1", "g", 2, 4), &["n0", "n1"]);
    rig.advance(BIND_DEADLINE + 1);
    rig.filter(json!({"Pod": plain(), "NodeNames": ["n0", "n1"]}));
    assert!(!rig.ext.pods().contains_key("uid-g1"));
    assert!(rig.ext.pods()["uid-g0"].1);
    assert_eq!(rig.place(pod("g1b", "g", 2, 4), &["n0", "n1"]), g1);
    rig.server.stop();
}
