//! `dxvpn graph` output is checked by Mermaid's own parser (mermaid from npm, under Node).
//!
//! `cargo xtask test` installs the pinned parser (tests/mermaid/package.json) and points
//! `DXVPN_MERMAID_DIR` at it. Under CI the test fails when the parser is missing rather than
//! passing without having checked anything.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Directory holding node_modules with mermaid and jsdom, and a copy of check.mjs (ES modules
/// resolve imports next to the script, so the script has to live there).
fn parser_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("DXVPN_MERMAID_DIR").map(PathBuf::from);
    match dir {
        Some(dir) if dir.join("node_modules/mermaid").is_dir() => {
            std::fs::copy(
                root().join("tests/mermaid/check.mjs"),
                dir.join("check.mjs"),
            )
            .unwrap();
            Some(dir)
        }
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "DXVPN_MERMAID_DIR does not hold the Mermaid parser; run the tests with `cargo xtask test`"
            )
        }
        _ => None,
    }
}

fn mermaid_accepts(dir: &Path, diagram: &str) -> (bool, String) {
    let mut child = Command::new("node")
        .arg(dir.join("check.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(diagram.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn graph(config: &str) -> String {
    let out = assert_cmd::Command::cargo_bin("dxvpn")
        .unwrap()
        .current_dir(root())
        .args(["graph", "-c", config])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn graph_output_is_valid_mermaid_and_a_broken_one_is_not() {
    let Some(dir) = parser_dir() else {
        eprintln!("SKIPPED: Mermaid parser not installed; `cargo xtask test` installs it");
        return;
    };
    for config in [
        "examples/development.toml",
        "examples/high_availability.toml",
    ] {
        let diagram = graph(config);
        let (ok, said) = mermaid_accepts(&dir, &diagram);
        assert!(ok, "{config}: Mermaid rejects the graph: {said}\n{diagram}");
        assert!(said.contains("flowchart"), "{said}");
    }
    // Negative control: the same checker must reject a diagram with an unclosed label.
    let broken = graph("examples/high_availability.toml").replacen("\"]", "", 1);
    let (ok, said) = mermaid_accepts(&dir, &broken);
    assert!(!ok, "the checker accepted a broken diagram: {said}");
}

#[test]
fn graph_shows_every_tunnel_with_addresses_and_asns() {
    let diagram = graph("examples/high_availability.toml");
    for expected in [
        "c1t1 169.254.21.0/30",
        "c2t2 169.254.22.4/30",
        "AWS 169.254.21.5 AS 64512",
        "Azure 169.254.22.6 AS 65000",
        "DNS azure.internal",
        "DNS aws.internal",
        "active-active",
    ] {
        assert!(
            diagram.contains(expected),
            "graph lacks {expected:?}:\n{diagram}"
        );
    }
    assert_eq!(diagram.matches("<==>").count(), 4, "one edge per tunnel");
}
