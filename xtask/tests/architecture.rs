//! The workspace's architecture invariants (ARCHITECTURE.md), checked against `cargo metadata`
//! as rust-analyzer's tidy checks its own: a rule broken by a new dependency fails here, with
//! the path of crates that breaks it.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// The lab's crates: oracles for the clients, never their helpers.
const LAB_CRATES: [&str; 6] = [
    "dxvpn-twin-kit",
    "dxvpn-twin-aws",
    "dxvpn-twin-azure",
    "dxvpn-netlab",
    "dxvpn-lab",
    "dxvpn-test-support",
];
/// The crates that talk to real clouds or check a deployment.
const CLIENT_CRATES: [&str; 5] = [
    "dxvpn-aws",
    "dxvpn-azure",
    "dxvpn-deploy",
    "dxvpn-validate",
    "dxvpn-metrics",
];
/// The pure crates: no I/O runtime, no network.
const PURE_CRATES: [&str; 3] = ["dxvpn-cidr", "dxvpn-tunnel", "dxvpn-plan"];
/// What a pure crate may not pull in, even through another crate.
const NETWORK_CRATES: [&str; 9] = [
    "tokio",
    "mio",
    "socket2",
    "hyper",
    "reqwest",
    "axum",
    "aws-smithy-runtime",
    "azure_core",
    "hickory-proto",
];
const CLI: &str = "dxvpn";

/// Package id -> (name, its dependencies: (package id, normal?)).
type Graph = BTreeMap<String, (String, Vec<(String, bool)>)>;

fn graph(metadata: &Value) -> Graph {
    let names: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| {
            let id = node["id"].as_str().unwrap().to_owned();
            let deps = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    // A normal dependency has a dep_kind whose kind is null (dev and build
                    // are named).
                    let normal = d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].is_null());
                    (d["pkg"].as_str().unwrap().to_owned(), normal)
                })
                .collect();
            let name = names.get(id.as_str()).copied().unwrap_or("?").to_owned();
            (id, (name, deps))
        })
        .collect()
}

/// The chain of crate names from `from` to the first crate named in `forbidden`, following
/// normal dependencies only (with `any_kind`, `from`'s own dev-dependencies too: those of its
/// dependencies are never built for it).
fn path_to(graph: &Graph, from: &str, forbidden: &[&str], any_kind: bool) -> Option<Vec<String>> {
    let start = graph.iter().find(|(_, (name, _))| name == from)?.0.clone();
    let mut seen = BTreeSet::from([start.clone()]);
    let mut queue = vec![vec![start]];
    while !queue.is_empty() {
        let mut next = Vec::new();
        for path in queue {
            let last = path.last().unwrap();
            for (dep, normal) in &graph[last].1 {
                if !(*normal || (any_kind && path.len() == 1)) || !seen.insert(dep.clone()) {
                    continue;
                }
                let mut longer = path.clone();
                longer.push(dep.clone());
                if forbidden.contains(&graph[dep].0.as_str()) {
                    return Some(longer.iter().map(|id| graph[id].0.clone()).collect());
                }
                next.push(longer);
            }
        }
        queue = next;
    }
    None
}

/// Every broken rule, in words.
fn violations(metadata: &Value) -> Vec<String> {
    let graph = graph(metadata);
    let workspace: Vec<String> = graph
        .values()
        .map(|(name, _)| name.clone())
        .filter(|name| name.starts_with("dxvpn") || name == "xtask")
        .collect();
    let mut broken = Vec::new();
    let mut rule = |what: &str, from: &str, forbidden: &[&str], any_kind: bool| {
        if let Some(path) = path_to(&graph, from, forbidden, any_kind) {
            broken.push(format!("{what}: {}", path.join(" -> ")));
        }
    };
    for client in CLIENT_CRATES {
        rule(
            "a client crate must not depend on the lab (dev-dependencies may)",
            client,
            &LAB_CRATES,
            false,
        );
    }
    for pure in PURE_CRATES {
        rule(
            "a pure crate must not depend on a runtime or the network",
            pure,
            &NETWORK_CRATES,
            false,
        );
    }
    rule(
        "the network lab knows no twin",
        "dxvpn-netlab",
        &[
            "dxvpn-twin-kit",
            "dxvpn-twin-aws",
            "dxvpn-twin-azure",
            "dxvpn-lab",
        ],
        false,
    );
    for twin in ["dxvpn-twin-kit", "dxvpn-twin-aws", "dxvpn-twin-azure"] {
        rule(
            "a twin knows neither the data plane nor the clients",
            twin,
            &[
                "dxvpn-netlab",
                "dxvpn-lab",
                "dxvpn-aws",
                "dxvpn-azure",
                "dxvpn-deploy",
            ],
            false,
        );
    }
    for name in workspace.iter().filter(|n| *n != CLI) {
        rule("no crate depends on the CLI", name, &[CLI], true);
    }
    broken
}

/// This machine's target triple: the graph that is built here (and needs no download).
fn host_triple() -> String {
    let output = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap()
        .to_owned()
}

fn metadata() -> Value {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host_triple()])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_workspace_keeps_its_architecture_invariants() {
    let metadata = metadata();
    // The rules must see the crates they speak of, or they would pass by matching nothing.
    let names: BTreeSet<String> = graph(&metadata).into_values().map(|(n, _)| n).collect();
    for name in LAB_CRATES.iter().chain(&CLIENT_CRATES).chain(&PURE_CRATES) {
        assert!(names.contains(*name), "{name} is not in the workspace");
    }
    let broken = violations(&metadata);
    assert!(broken.is_empty(), "broken:\n{}", broken.join("\n"));
}

#[test]
fn a_forbidden_dependency_is_named_with_its_path() {
    // Negative control: the real graph with one forbidden edge added, deploy -> netlab through
    // a normal dependency, and aws -> dxvpn (the CLI) through a dev-dependency.
    let mut metadata = metadata();
    let id = |name: &str| {
        metadata["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let (deploy, netlab, aws, cli) = (
        id("dxvpn-deploy"),
        id("dxvpn-netlab"),
        id("dxvpn-aws"),
        id(CLI),
    );
    for node in metadata["resolve"]["nodes"].as_array_mut().unwrap() {
        let edge = if node["id"] == deploy.as_str() {
            Some((&netlab, Value::Null))
        } else if node["id"] == aws.as_str() {
            Some((&cli, Value::from("dev")))
        } else {
            None
        };
        if let Some((to, kind)) = edge {
            node["deps"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                    "name": "added", "pkg": to, "dep_kinds": [{"kind": kind, "target": null}],
                }));
        }
    }
    let broken = violations(&metadata);
    assert!(
        broken
            .iter()
            .any(|b| b.ends_with("dxvpn-deploy -> dxvpn-netlab")),
        "{broken:?}"
    );
    assert!(
        broken.iter().any(|b| b.ends_with("dxvpn-aws -> dxvpn")),
        "{broken:?}"
    );
}
