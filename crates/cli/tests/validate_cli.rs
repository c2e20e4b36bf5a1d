//! `dxvpn validate` on the binary against the whole lab, as root: after `up`, pings, names and a
//! TCP port cross from the VPC host and from the VNet host, for both use cases, and the path
//! MTU is the tunnels' own. Negative controls, each with the failure and the finding it must
//! name: ICMP dropped on the far host, packets over 1300 bytes black-holed on the way,
//! route propagation removed, a DNS rule association removed, both development tunnels cut;
//! and one high-availability tunnel cut, which passes with a warning that redundancy is lost.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dxvpn_deploy::Deployer;
use dxvpn_lab::Lab;
use dxvpn_netlab::run::run;
use dxvpn_netlab::{DataPlane, Side};
use dxvpn_plan::{Outputs, Plan};
use serde_json::Value;

const CONVERGE: Duration = Duration::from_secs(120);

/// The config file of a test, removed when dropped.
struct ConfigFile(PathBuf);

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `dxvpn validate --output json` from `from` in lab run `prefix`: (exit code, report).
async fn validate(config: &Path, from: &str, prefix: &str) -> (i32, Value) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dxvpn"))
        .arg("validate")
        .arg("-c")
        .arg(config)
        .args(["--from", from, "--run", prefix, "--output", "json"])
        .output()
        .await
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "validate printed no JSON (exit {:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn finding_ids(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Validates until `done(exit code, report)` holds, and returns that report.
async fn validate_until(
    config: &Path,
    from: &str,
    prefix: &str,
    what: &str,
    done: impl Fn(i32, &Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let (code, report) = validate(config, from, prefix).await;
        if done(code, &report) {
            return report;
        }
        assert!(
            start.elapsed() < CONVERGE,
            "{what}: not reached in {CONVERGE:?}; last (exit {code}): {report:#}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs nft in the lab namespace `ns` (one this test's lab made).
async fn nft(ns: &str, args: &[&str]) {
    let mut all = vec!["ip", "netns", "exec", ns, "nft"];
    all.extend_from_slice(args);
    run(&all).await.unwrap();
}

/// Every data-plane check of each kind passed, and there was one at least.
fn assert_all_pass(report: &Value, code: i32) {
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["verdict"], "pass", "{report:#}");
    let checks = report["checks"].as_array().unwrap();
    for kind in [
        "ping",
        "path_mtu",
        "dns",
        "tcp",
        "tunnel",
        "propagation",
        "resources",
    ] {
        let of_kind: Vec<&Value> = checks.iter().filter(|c| c["kind"] == kind).collect();
        assert!(!of_kind.is_empty(), "no {kind} check: {report:#}");
        assert!(
            of_kind.iter().all(|c| c["verdict"] == "pass"),
            "{kind}: {report:#}"
        );
    }
    assert!(finding_ids(report).is_empty(), "{report:#}");
}

/// The lab with the deployment up and its data plane converged: (lab, plan, config, prefix).
async fn deployed(use_case: &str) -> (Lab, Arc<Plan>, ConfigFile, String) {
    let lab = Lab::start_on_loopback(0.0005).await.unwrap();
    let text = lab.config(&format!("dx-val-{}", &use_case[..3]), use_case);
    let config = ConfigFile(std::env::temp_dir().join(format!(
        "dxvpn-validate-{}-{use_case}.toml",
        std::process::id()
    )));
    std::fs::write(&config.0, &text).unwrap();
    let deployed = dxvpn_test_support::converged(&lab, &text).await;
    let (plan, prefix) = (deployed.plan, deployed.prefix);
    (lab, plan, config, prefix)
}

/// Both directions pass once the far side has learned the way back.
async fn both_directions_pass(config: &Path, prefix: &str) {
    for from in ["aws", "azure"] {
        let report =
            validate_until(config, from, prefix, "all checks pass", |code, _| code == 0).await;
        assert_all_pass(&report, 0);
        assert_eq!(report["from"], from);
        // The tunnels' real MTU, from this side: libipsec's TUN carries 1400 bytes, and the
        // tunnel end says "fragmentation needed" for anything larger.
        for check in report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["kind"] == "path_mtu")
        {
            let outcome = &check["outcome"];
            assert_eq!(outcome["largest"], 1400, "{check:#}");
            assert_eq!(outcome["reported_mtu"], 1400, "{check:#}");
            assert!(outcome["vanished"].is_null(), "{check:#}");
            assert!(
                check["evidence"]
                    .as_str()
                    .unwrap()
                    .ends_with("clamp TCP MSS to 1360"),
                "{check:#}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_validates_across_and_names_each_failure() {
    let (lab, plan, config, prefix) = deployed("development").await;
    let config = &config.0;
    both_directions_pass(config, &prefix).await;

    // ICMP dropped on the VNet host, as an NSG would: ping fails, TCP to it still connects.
    let far = format!("{prefix}-az-host");
    nft(&far, &["add", "table", "inet", "dxvtest"]).await;
    nft(
        &far,
        &[
            "add",
            "chain",
            "inet",
            "dxvtest",
            "input",
            "{ type filter hook input priority 0; }",
        ],
    )
    .await;
    nft(
        &far,
        &[
            "add",
            "rule",
            "inet",
            "dxvtest",
            "input",
            "icmp",
            "type",
            "echo-request",
            "drop",
        ],
    )
    .await;
    let (code, report) = validate(config, "aws", &prefix).await;
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(finding_ids(&report), ["icmp-filtered"], "{report:#}");
    assert!(
        report["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("answers TCP 53 but not ICMP echo"),
        "{report:#}"
    );
    nft(&far, &["delete", "table", "inet", "dxvtest"]).await;
    let (code, report) = validate(config, "aws", &prefix).await;
    assert_all_pass(&report, code);

    // Packets over 1300 bytes vanish at the AWS gateway without "fragmentation needed": pings,
    // lookups and TCP handshakes still pass, and only the path MTU names it.
    let plane = DataPlane::attach(&prefix).unwrap();
    plane.black_hole_above(1300).await.unwrap();
    let (code, report) = validate(config, "aws", &prefix).await;
    plane.restore().await.unwrap();
    plane.detach().unwrap();
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(finding_ids(&report), ["path-mtu"], "{report:#}");
    let message = report["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("packets of 1301 to 1500 bytes vanish")
            && message.contains("the largest that crosses is 1300"),
        "{report:#}"
    );
    assert!(
        report["findings"][0]["fix"]
            .as_str()
            .unwrap()
            .contains("--set-mss 1260"),
        "{report:#}"
    );
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] != "pass")
        .collect();
    assert!(
        failed.iter().all(|c| c["kind"] == "path_mtu"),
        "only the path MTU fails: {report:#}"
    );
    let (code, report) = validate(config, "aws", &prefix).await;
    assert_all_pass(&report, code);

    // Route propagation removed from one route table: the VPC host loses its route.
    let aws = dxvpn_aws::Aws::connect(&plan).await;
    let rtb = &plan.aws.route_table_ids[0];
    let propagation = plan
        .resource(&format!("aws.route_propagation.{rtb}"))
        .unwrap();
    aws.delete(&plan, propagation, &mut Outputs::default())
        .await
        .unwrap();
    // The control plane says so at once; the data plane follows at the binder's next poll (a
    // ping under way then may still get a reply: wait until both probes have failed).
    let report = validate_until(config, "aws", &prefix, "propagation-off", |code, r| {
        code == 1
            && finding_ids(r) == ["propagation-off"]
            && r["findings"][0]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("10.1.1.10, 10.1.1.10:53 unreachable"))
    })
    .await;
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "propagation-off")
        .unwrap();
    let message = finding["message"].as_str().unwrap();
    assert!(
        message.contains(rtb.as_str())
            && message.starts_with("10.1.1.10, 10.1.1.10:53 unreachable"),
        "{finding:#}"
    );
    assert!(
        finding["fix"].as_str().unwrap().contains("dxvpn up"),
        "{finding:#}"
    );
    // ... and `up` fixes it, as the finding says.
    let deployer = Deployer::connect(&plan).await.unwrap();
    assert!(deployer.up(plan.clone()).await.ok());
    validate_until(config, "aws", &prefix, "propagation back", |code, _| {
        code == 0
    })
    .await;

    // The rule that sends Azure's zone to Azure is gone: the name does not resolve from AWS.
    let association = plan
        .resource("aws.resolver_rule_association.azure.internal")
        .unwrap();
    aws.delete(&plan, association, &mut Outputs::default())
        .await
        .unwrap();
    // Again the clouds say so first; the lookup fails once the resolver has applied it.
    let report = validate_until(config, "aws", &prefix, "dns-rule-missing", |code, r| {
        code == 1
            && finding_ids(r) == ["dns-rule-missing"]
            && r["checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["kind"] == "dns" && c["verdict"] == "fail")
    })
    .await;
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] != "pass")
        .collect();
    assert_eq!(failed.len(), 2, "the lookup and the resources: {report:#}");
    assert!(failed.iter().any(|c| c["kind"] == "dns"), "{report:#}");
    assert!(
        report["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("aws.resolver_rule_association.azure.internal"),
        "{report:#}"
    );
    // The other direction is untouched.
    let (code, report) = validate(config, "azure", &prefix).await;
    assert_eq!(code, 1, "resources are missing: {report:#}");
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["probe"].is_object())
            .all(|c| c["verdict"] == "pass"),
        "{report:#}"
    );
    assert!(deployer.up(plan.clone()).await.ok());
    validate_until(config, "aws", &prefix, "rule back", |code, _| code == 0).await;

    // Out by c1t1 and back by c1t2: AWS counts one tunnel's bytes all in and the other's all
    // out, and validate warns. Both ways by c1t1, with ten times the bytes, and it stops.
    let plane = DataPlane::attach(&prefix).unwrap();
    let far = plane.topology().azure.host_ip;
    plane.pin_paths("c1t1", "c1t2").await.unwrap();
    let (sent, received) = plane.bulk(Side::Aws, far, 400, 1200).await;
    assert!(received * 10 >= sent * 9, "{received}/{sent} replies");
    let report = validate_until(config, "aws", &prefix, "asymmetric-routing", |code, r| {
        code == 0 && finding_ids(r) == ["asymmetric-routing"]
    })
    .await;
    assert_eq!(report["verdict"], "warn", "{report:#}");
    let message = report["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("Azure to AWS only by c1t2")
            && message.contains("AWS to Azure only by c1t1"),
        "{report:#}"
    );
    plane.pin_paths("c1t1", "c1t1").await.unwrap();
    let (sent, received) = plane.bulk(Side::Aws, far, 6000, 1200).await;
    assert!(received * 10 >= sent * 9, "{received}/{sent} replies");
    let report = validate_until(config, "aws", &prefix, "symmetric again", |code, r| {
        code == 0 && finding_ids(r).is_empty()
    })
    .await;
    let c1t1 = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "traffic" && c["target"] == "c1t1")
        .unwrap();
    assert!(
        c1t1["evidence"]
            .as_str()
            .unwrap()
            .starts_with("AWS counted"),
        "{c1t1:#}"
    );
    plane.restore().await.unwrap();
    plane.detach().unwrap();

    // Both tunnels cut: nothing crosses and both clouds say why.
    let plane = DataPlane::attach(&prefix).unwrap();
    plane.cut_tunnel("c1t1").await.unwrap();
    plane.cut_tunnel("c1t2").await.unwrap();
    plane.detach().unwrap();
    let report = validate_until(config, "aws", &prefix, "tunnels-down", |code, r| {
        code == 1
            && finding_ids(r)
                .first()
                .is_some_and(|id| id == "tunnels-down")
    })
    .await;
    assert_eq!(finding_ids(&report), ["tunnels-down"], "{report:#}");
    let tunnels: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "tunnel")
        .collect();
    assert!(
        tunnels.len() == 2 && tunnels.iter().all(|t| t["verdict"] == "fail"),
        "{report:#}"
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_availability_validates_across_and_warns_when_redundancy_is_lost() {
    let (lab, _plan, config, prefix) = deployed("high_availability").await;
    let config = &config.0;
    both_directions_pass(config, &prefix).await;

    // One of four tunnels cut: traffic moves to the others, validation passes with a warning.
    let plane = DataPlane::attach(&prefix).unwrap();
    plane.cut_tunnel("c1t1").await.unwrap();
    plane.detach().unwrap();
    let report = validate_until(config, "aws", &prefix, "redundancy-lost", |code, r| {
        code == 0 && finding_ids(r) == ["redundancy-lost"]
    })
    .await;
    assert_eq!(report["verdict"], "warn", "{report:#}");
    let c1t1 = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "tunnel" && c["target"] == "c1t1")
        .unwrap();
    assert_eq!(c1t1["verdict"], "warn", "{report:#}");
    assert!(
        report["findings"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("3 of 4 tunnels carry traffic"),
        "{report:#}"
    );
    let (code, report) = validate(config, "azure", &prefix).await;
    assert_eq!(
        (code, report["verdict"].as_str()),
        (0, Some("warn")),
        "{report:#}"
    );
    lab.stop().await;
}

#[test]
fn bad_input_exits_2_naming_the_flag_or_key_before_any_check() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/development.toml");
    let no_targets =
        std::env::temp_dir().join(format!("dxvpn-validate-{}-none.toml", std::process::id()));
    let text = std::fs::read_to_string(&example).unwrap();
    let cut = text.find("# What `dxvpn validate` reaches").unwrap();
    std::fs::write(&no_targets, &text[..cut]).unwrap();
    let _remove = ConfigFile(no_targets.clone());
    let cases: [(&Path, &[&str], &str); 5] = [
        (&example, &["--target", "10.1.1"], "--target: `10.1.1`"),
        (&example, &["--target", "10.51.1.4:0"], "--target"),
        (&example, &["--count", "0"], "--count"),
        (&example, &["--dns-server", "resolver"], "--dns-server"),
        (&no_targets, &[], "validate.targets"),
    ];
    for (config, flags, named) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dxvpn"))
            .arg("validate")
            .arg("-c")
            .arg(config)
            .args(flags)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(
            stderr.contains(named) && stderr.contains("fix:"),
            "{flags:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{flags:?}: no check ran");
    }
}
