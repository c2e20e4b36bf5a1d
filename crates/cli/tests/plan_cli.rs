//! `dxvpn plan` on the binary: exit codes, JSON fields, the bad-input corpus, help text.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dxvpn() -> Command {
    let mut cmd = Command::cargo_bin("dxvpn").expect("binary built");
    cmd.current_dir(root());
    cmd
}

fn plan_json(example: &str) -> Value {
    let out = dxvpn()
        .args(["plan", "-c", example, "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("plan --output json is JSON")
}

#[test]
fn high_availability_plan_has_the_four_tutorial_tunnels() {
    let plan = plan_json("examples/high_availability.toml");
    let tunnels: Vec<String> = plan["tunnels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{} {} {} {}",
                t["inside_cidr"].as_str().unwrap(),
                t["aws_inside_ip"].as_str().unwrap(),
                t["azure_inside_ip"].as_str().unwrap(),
                t["azure_instance"]
            )
        })
        .collect();
    assert_eq!(
        tunnels,
        [
            "169.254.21.0/30 169.254.21.1 169.254.21.2 0",
            "169.254.22.0/30 169.254.22.1 169.254.22.2 0",
            "169.254.21.4/30 169.254.21.5 169.254.21.6 1",
            "169.254.22.4/30 169.254.22.5 169.254.22.6 1",
        ]
    );
    let resources = plan["resources"].as_array().unwrap();
    for r in resources {
        for field in ["cloud", "kind", "role", "depends_on"] {
            assert!(!r[field].is_null(), "resources[].{field} missing in {r}");
        }
    }
    let count = |kind: &str| resources.iter().filter(|r| r["kind"] == kind).count();
    assert_eq!(count("vpn_connection"), 2);
    assert_eq!(count("customer_gateway"), 2);
    assert_eq!(count("public_ip"), 2);
    assert_eq!(count("local_network_gateway"), 4);
    assert_eq!(count("gateway_connection"), 4);
    assert_eq!(count("dns_inbound_endpoint"), 1);
    let monthly = plan["cost"]["monthly_usd"].as_f64().unwrap();
    assert!(
        monthly > 500.0,
        "an HA deployment with managed DNS costs hundreds a month, got {monthly}"
    );
}

#[test]
fn development_plan_gives_two_tunnels_to_one_instance() {
    let plan = plan_json("examples/development.toml");
    let tunnels = plan["tunnels"].as_array().unwrap();
    assert_eq!(tunnels.len(), 2);
    assert!(tunnels.iter().all(|t| t["azure_instance"] == 0));
    let gateway = plan["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "virtual_network_gateway")
        .unwrap();
    assert_eq!(gateway["active_active"], false);
    assert_eq!(
        gateway["instances"][0]["custom_bgp_ip_addresses"],
        serde_json::json!(["169.254.21.2", "169.254.22.2"])
    );
    assert_eq!(plan["dns"]["mode"], "forwarder");
}

#[test]
fn plan_text_names_resources_tunnels_dns_and_cost() {
    let out = dxvpn()
        .args(["plan", "-c", "examples/high_availability.toml"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "aws.vpn_connection.1",
        "azure.connection.c2t2",
        "169.254.22.4/30",
        "aws -> azure: azure.internal",
        "azure -> aws: aws.internal",
        "USD a month",
    ] {
        assert!(
            text.contains(expected),
            "plan output lacks {expected:?}:\n{text}"
        );
    }
}

/// Reads `# expect: PATH RULE` from a corpus file.
fn expectation(file: &Path) -> (String, String) {
    let text = std::fs::read_to_string(file).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("{} has no expect line", file.display()));
    let (path, rule) = line.rsplit_once(' ').unwrap();
    (path.to_owned(), rule.to_owned())
}

/// Pre-shared keys written in a config file, which must never be echoed.
fn keys_in(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("preshared_keys = "))
        .flat_map(|list| {
            list.split('"')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_invalid_config_exits_2_naming_its_path_and_rule() {
    let dir = root().join("tests/configs/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 50, "the corpus holds one config per rule");
    let mut failures = Vec::new();
    for file in &files {
        let (path, rule) = expectation(file);
        let json = dxvpn()
            .args(["plan", "--output", "json", "-c"])
            .arg(file)
            .output()
            .unwrap();
        let text = dxvpn().args(["plan", "-c"]).arg(file).output().unwrap();
        let report: Value = serde_json::from_slice(&json.stdout).unwrap_or(Value::Null);
        let found = report["errors"].as_array().is_some_and(|errors| {
            errors
                .iter()
                .any(|e| e["path"] == path.as_str() && e["rule"] == rule.as_str())
        });
        let stderr = String::from_utf8_lossy(&text.stderr);
        let all_output = format!(
            "{}{}{}",
            String::from_utf8_lossy(&json.stdout),
            stderr,
            String::from_utf8_lossy(&text.stdout)
        );
        let leaked: Vec<_> = keys_in(file)
            .into_iter()
            .filter(|k| all_output.contains(k.as_str()))
            .collect();
        if json.status.code() != Some(2)
            || text.status.code() != Some(2)
            || !found
            || !text.stdout.is_empty()
            || !stderr.contains(&path)
            || !leaked.is_empty()
        {
            failures.push(format!(
                "{}: exit {:?}/{:?}, expected {path} [{rule}], leaked {leaked:?}\n{}",
                file.display(),
                json.status.code(),
                text.status.code(),
                String::from_utf8_lossy(&json.stdout)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus files failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn problems_carry_rule_message_and_hint() {
    let out = dxvpn()
        .args([
            "plan",
            "--output",
            "json",
            "-c",
            "tests/configs/invalid/networks-overlap.toml",
        ])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = &report["errors"][0];
    assert_eq!(e["path"], "azure.vnet_cidr");
    assert!(e["message"].as_str().unwrap().contains("10.1.0.0/16"));
    assert!(!e["hint"].as_str().unwrap().is_empty());
}

#[test]
fn unreadable_config_is_bad_input() {
    let out = dxvpn()
        .args(["plan", "-c", "no/such/file.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/file.toml"));
}

#[test]
fn every_command_has_help_with_an_example() {
    for command in ["plan", "graph"] {
        let out = dxvpn().args([command, "--help"]).output().unwrap();
        assert!(out.status.success());
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(
            help.contains("Examples:") && help.contains(&format!("dxvpn {command} -c")),
            "{command}: {help}"
        );
    }
}

#[test]
fn completions_cover_every_command_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_dxvpn()"),
        ("zsh", "#compdef dxvpn"),
        ("fish", "complete -c dxvpn"),
    ] {
        let out = dxvpn().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: no {marker}");
        for command in ["plan", "up", "status", "validate", "down", "lab"] {
            assert!(script.contains(command), "{shell}: no {command}");
        }
    }
    // Negative control: an unknown shell is bad input.
    let out = dxvpn().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
