//! The extender over real HTTP on 127.0.0.1: filter places gangs all or nothing, prioritize
//! favours the member's node, preempt protects zenith gangs, bad input gets 400.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use zenith_extender::wire::{ExtenderFilterResult, ExtenderPreemptionResult, HostPriority};
use zenith_extender::{Extender, serve};

mod common;
use common::post;

fn node(name: &str, gpus: u32) -> Value {
    json!({
        "metadata": {"name": name, "labels": {"nvidia.com/gpu.product": "H100", "zenith.io/rack": "r0"}},
        "status": {"allocatable": {"nvidia.com/gpu": gpus.to_string(), "cpu": "64", "memory": "512Gi"}}
    })
}

fn pod(name: &str, uid: &str, gang: Option<(&str, u32)>, gpus: u32, priority: i32) -> Value {
    let mut annotations = serde_json::Map::new();
    if let Some((g, n)) = gang {
        annotations.insert("zenith.io/gang".into(), json!(g));
        annotations.insert("zenith.io/gang-size".into(), json!(n.to_string()));
    }
    json!({
        "metadata": {"name": name, "namespace": "ml", "uid": uid, "annotations": annotations},
        "spec": {
            "priority": priority,
            "containers": [{"name": "main", "resources": {"requests": {
                "nvidia.com/gpu": gpus.to_string(), "cpu": "8", "memory": "64Gi"}}}]
        }
    })
}

fn nodes4() -> Value {
    json!({"items": [node("n0", 8), node("n1", 8), node("n2", 8), node("n3", 4)]})
}

fn filter(addr: SocketAddr, args: Value) -> ExtenderFilterResult {
    let (status, body) = post(addr, "/filter", &args.to_string());
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn passed(r: &ExtenderFilterResult) -> Vec<String> {
    match (&r.nodes, &r.node_names) {
        (Some(l), _) => l
            .items
            .iter()
            .map(|v| v["metadata"]["name"].as_str().unwrap().to_owned())
            .collect(),
        (None, Some(n)) => n.clone(),
        (None, None) => panic!("no nodes in {r:?}"),
    }
}

#[test]
fn a_gang_is_placed_whole_and_each_member_gets_its_own_node() {
    let ext = Arc::new(Extender::new());
    let mut server = serve("127.0.0.1:0", ext.clone()).unwrap();
    let addr = server.local_addr();

    // A gang of 3 x 8 GPUs: three different 8-GPU nodes, one per member.
    let mut seen = Vec::new();
    for k in 0..3 {
        let r = filter(
            addr,
            json!({"Pod": pod(&format!("w{k}"), &format!("u{k}"), Some(("train", 3)), 8, 0), "Nodes": nodes4()}),
        );
        assert!(r.error.is_empty(), "{r:?}");
        let p = passed(&r);
        assert_eq!(p.len(), 1, "{r:?}");
        assert!(r.nodes.is_some() && r.node_names.is_none());
        assert_eq!(r.failed_and_unresolvable_nodes.len(), 3, "{r:?}");
        seen.push(p[0].clone());
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3);
    assert!(!seen.contains(&"n3".to_string()), "n3 has only 4 GPUs");
    assert_eq!(ext.gangs()["ml/train"].len(), 3);

    // The same pod asks again: the same node (by names this time: the nodes are known).
    let r = filter(
        addr,
        json!({"Pod": pod("w0", "u0", Some(("train", 3)), 8, 0), "NodeNames": ["n0", "n1", "n2", "n3"]}),
    );
    let again = passed(&r);
    assert_eq!(again.len(), 1);
    assert!(r.node_names.is_some() && r.nodes.is_none());
    // A fourth pod of a full gang fits nowhere.
    let r = filter(
        addr,
        json!({"Pod": pod("w3", "u3", Some(("train", 3)), 8, 0), "NodeNames": ["n0", "n1", "n2", "n3"]}),
    );
    assert!(passed(&r).is_empty());
    assert_eq!(r.failed_nodes.len(), 4, "{r:?}");

    // Prioritize: the member's node scores 10, the others 0.
    let (status, body) = post(
        addr,
        "/prioritize",
        &json!({"Pod": pod("w0", "u0", Some(("train", 3)), 8, 0), "NodeNames": ["n0", "n1", "n2", "n3"]}).to_string(),
    );
    assert_eq!(status, 200);
    let list: Vec<HostPriority> = serde_json::from_str(&body).unwrap();
    assert_eq!(list.len(), 4);
    for h in &list {
        assert_eq!(h.score, if h.host == again[0] { 10 } else { 0 }, "{list:?}");
    }

    // Another 2 x 8 gang does not fit (one 8-GPU node and one 4-GPU node left): all fail,
    // and nothing is held for it.
    let r = filter(
        addr,
        json!({"Pod": pod("v0", "v0", Some(("big", 2)), 8, 0), "NodeNames": ["n0", "n1", "n2", "n3"]}),
    );
    assert!(passed(&r).is_empty());
    assert_eq!(r.failed_nodes.len(), 4);
    assert!(
        r.failed_nodes.values().all(|m| m.contains("does not fit")),
        "{r:?}"
    );
    assert!(!ext.gangs().contains_key("ml/big"));

    // Releasing the first gang makes room for it.
    let (status, _) = post(addr, "/release", r#"{"gang": "ml/train"}"#);
    assert_eq!(status, 200);
    let r = filter(
        addr,
        json!({"Pod": pod("v0", "v0", Some(("big", 2)), 8, 0), "NodeNames": ["n0", "n1", "n2", "n3"]}),
    );
    assert_eq!(passed(&r).len(), 1, "{r:?}");
    server.stop();
}

#[test]
fn pods_that_are_not_zenith_s_pass_and_candidates_restrict_placement() {
    let ext = Arc::new(Extender::new());
    let mut server = serve("127.0.0.1:0", ext).unwrap();
    let addr = server.local_addr();
    // No gang, no GPUs: every candidate passes unchanged.
    let r = filter(
        addr,
        json!({"Pod": pod("web", "w", None, 0, 0), "Nodes": nodes4()}),
    );
    assert_eq!(passed(&r).len(), 4);
    assert!(r.failed_nodes.is_empty());
    // A single 4-GPU pod offered only n3 goes to n3.
    let r = filter(
        addr,
        json!({"Pod": pod("one", "o", None, 4, 0), "Nodes": {"items": [node("n3", 4)]}}),
    );
    assert_eq!(passed(&r), vec!["n3".to_string()]);
    server.stop();
}

#[test]
fn preempt_keeps_nodes_whose_victims_may_go() {
    let ext = Arc::new(Extender::new());
    let mut server = serve("127.0.0.1:0", ext).unwrap();
    let addr = server.local_addr();
    // A placed gang of priority 5 on some node (not preemptible).
    let r = filter(
        addr,
        json!({"Pod": pod("g0", "g0", Some(("prod", 1)), 8, 5), "Nodes": nodes4()}),
    );
    let prod_node = passed(&r)[0].clone();
    let args = json!({
        "Pod": pod("hi", "hi", None, 8, 100),
        "NodeNameToVictims": {
            prod_node.clone(): {"Pods": [pod("g0", "g0", Some(("prod", 1)), 8, 5)], "NumPDBViolations": 0},
            "n3": {"Pods": [pod("other", "x1", None, 0, 0)], "NumPDBViolations": 1}
        }
    });
    let (status, body) = post(addr, "/preempt", &args.to_string());
    assert_eq!(status, 200, "{body}");
    let r: ExtenderPreemptionResult = serde_json::from_str(&body).unwrap();
    assert_eq!(r.node_name_to_meta_victims.len(), 1, "{r:?}");
    let v = &r.node_name_to_meta_victims["n3"];
    assert_eq!(v.pods[0].uid, "x1");
    assert_eq!(v.num_pdb_violations, 1);
    // Meta victims (nodeCacheCapable) work the same.
    let args = json!({
        "Pod": pod("hi", "hi", None, 8, 100),
        "NodeNameToMetaVictims": {prod_node: {"Pods": [{"UID": "g0"}], "NumPDBViolations": 0}}
    });
    let (_, body) = post(addr, "/preempt", &args.to_string());
    let r: ExtenderPreemptionResult = serde_json::from_str(&body).unwrap();
    assert!(r.node_name_to_meta_victims.is_empty(), "{r:?}");
    // Go sends nil slices and maps as null.
    let args = json!({
        "Pod": pod("hi", "hi", None, 8, 100),
        "NodeNameToVictims": null,
        "NodeNameToMetaVictims": {"n3": {"Pods": null, "NumPDBViolations": 0}}
    });
    let (status, body) = post(addr, "/preempt", &args.to_string());
    assert_eq!(status, 200, "{body}");
    let r: ExtenderPreemptionResult = serde_json::from_str(&body).unwrap();
    assert!(r.node_name_to_meta_victims["n3"].pods.is_empty());
    server.stop();
}

#[test]
fn bad_requests_get_clear_errors() {
    let ext = Arc::new(Extender::new());
    let mut server = serve("127.0.0.1:0", ext).unwrap();
    let addr = server.local_addr();
    let (status, body) = post(addr, "/filter", "{not json");
    assert_eq!(status, 400);
    assert!(body.contains("ExtenderArgs"), "{body}");
    // No candidates: a request-level Error.
    let r = filter(addr, json!({"Pod": pod("a", "a", None, 1, 0)}));
    assert!(r.error.contains("neither Nodes nor NodeNames"), "{r:?}");
    // A bad quantity names the resource.
    let mut p = pod("a", "a", None, 1, 0);
    p["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = json!("lots");
    let r = filter(addr, json!({"Pod": p, "Nodes": nodes4()}));
    assert!(r.error.contains("nvidia.com/gpu"), "{r:?}");
    // Only names, none known: every node fails with the reason.
    let r = filter(
        addr,
        json!({"Pod": pod("a", "a", None, 1, 0), "NodeNames": ["ghost"]}),
    );
    assert!(r.failed_nodes["ghost"].contains("known to zenith"), "{r:?}");
    let (status, _) = post(addr, "/nope", "{}");
    assert_eq!(status, 404);
    let (status, _) = post(addr, "/release", r#"{"gang": "ml/none"}"#);
    assert_eq!(status, 404);
    server.stop();
}
