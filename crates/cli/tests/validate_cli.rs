//! `dxvpn validate` on the binary against the whole lab, as root: after `up`, pings, names and a
//! TCP port cross from the VPC host and from the VNet host, for both use cases, and the path
//! MTU is the tunnels' own. Negative controls, each with the failure and the finding it must
//! name: ICMP dropped on the far host, packets over 1300 bytes black-holed on the way, rules
//! written through the clouds' APIs that the lab enforces on the hosts (an NSG rule denying TCP
//! 53 from the VPC, a security group without ICMP from the VNet, a network ACL entry denying
//! TCP 53), route propagation removed, a DNS rule association removed, both development tunnels cut;
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

    // After the asymmetry: these validations' own traffic crosses both tunnels.
    filters_written_through_the_apis_drop_packets_and_are_named(&lab, &plan, config, &prefix).await;

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

/// The one finding of a failing validation, which must be `filter-blocks`: (message, fix).
async fn only_filter_blocks(
    config: &Path,
    from: &str,
    prefix: &str,
    what: &str,
) -> (String, String) {
    let report = validate_until(config, from, prefix, what, |code, r| {
        code == 1 && finding_ids(r) == ["filter-blocks"]
    })
    .await;
    let finding = &report["findings"][0];
    (
        finding["message"].as_str().unwrap().to_owned(),
        finding["fix"].as_str().unwrap().to_owned(),
    )
}

/// Each rule is written through the cloud's API, the lab loads it on the host, a probe fails,
/// and the finding names the rule (or the missing allow) and the command that fixes it; with
/// the rule undone, everything passes again.
async fn filters_written_through_the_apis_drop_packets_and_are_named(
    lab: &Lab,
    plan: &Plan,
    config: &Path,
    prefix: &str,
) {
    use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, PortRange, RuleAction};
    let vpc = plan.aws.vpc_cidr.to_string();
    let vnet = plan.azure.vnet_cidr.to_string();

    // An NSG rule on the VNet host's interface denies TCP 53 from the VPC.
    let nsg = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/networkSecurityGroups/vm1-nsg",
        plan.azure.subscription_id, plan.azure.resource_group
    );
    let with_rules = |rules: Value| serde_json::json!({"location": plan.azure.location, "properties": {"securityRules": rules}});
    let deny = serde_json::json!([{"name": "deny-dns-from-vpc", "properties": {
        "priority": 200, "direction": "Inbound", "access": "Deny", "protocol": "Tcp",
        "sourceAddressPrefix": vpc, "sourcePortRange": "*",
        "destinationAddressPrefix": "*", "destinationPortRange": "53"}}]);
    dxvpn_test_support::azure_raw_put(&lab.azure, &nsg, &with_rules(deny)).await;
    let (message, fix) = only_filter_blocks(config, "aws", prefix, "NSG deny").await;
    assert!(
        message.contains("NSG vm1-nsg")
            && message.contains("rule deny-dns-from-vpc (priority 200")
            && message.contains("TCP 53"),
        "{message}"
    );
    assert!(
        fix.contains("az network nsg rule delete") && fix.contains("-n deny-dns-from-vpc"),
        "{fix}"
    );
    dxvpn_test_support::azure_raw_put(&lab.azure, &nsg, &with_rules(Value::Array(Vec::new())))
        .await;
    validate_until(config, "aws", prefix, "NSG rule gone", |code, _| code == 0).await;

    // The VPC host's security group allows TCP 53 from the private range, but no ICMP.
    let ec2 = dxvpn_test_support::ec2_client(&lab.aws.endpoint);
    let groups = ec2
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name("group-name")
                .values("lab-workload")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let group = groups.security_groups()[0].group_id().unwrap().to_owned();
    let permission = |protocol: &str, port: i32| {
        IpPermission::builder()
            .ip_protocol(protocol)
            .from_port(port)
            .to_port(port)
            .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/8").build())
            .build()
    };
    let swap = |out: IpPermission, r#in: IpPermission| {
        let (ec2, group) = (ec2.clone(), group.clone());
        async move {
            ec2.revoke_security_group_ingress()
                .group_id(&group)
                .ip_permissions(out)
                .send()
                .await
                .unwrap();
            ec2.authorize_security_group_ingress()
                .group_id(&group)
                .ip_permissions(r#in)
                .send()
                .await
                .unwrap();
        }
    };
    swap(permission("-1", -1), permission("tcp", 53)).await;
    let (message, fix) = only_filter_blocks(config, "azure", prefix, "no ICMP in the SG").await;
    assert!(
        message.contains(&format!("security group {group} (lab-workload)"))
            && message.contains(&format!("allows no ICMP echo from {vnet}")),
        "{message}"
    );
    assert!(
        fix.contains(&format!(
            "authorize-security-group-ingress --group-id {group}"
        )) && fix.contains("IpProtocol=icmp"),
        "{fix}"
    );
    swap(permission("tcp", 53), permission("-1", -1)).await;
    validate_until(config, "azure", prefix, "ICMP back", |code, _| code == 0).await;

    // A network ACL entry numbered before the default allow denies TCP 53 from the VNet.
    let acls = ec2
        .describe_network_acls()
        .filters(
            Filter::builder()
                .name("association.subnet-id")
                .values(&plan.aws.private_subnets[0].id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let acl = acls.network_acls()[0].network_acl_id().unwrap().to_owned();
    ec2.create_network_acl_entry()
        .network_acl_id(&acl)
        .rule_number(50)
        .protocol("6")
        .port_range(PortRange::builder().from(53).to(53).build())
        .cidr_block(&vnet)
        .rule_action(RuleAction::Deny)
        .egress(false)
        .send()
        .await
        .unwrap();
    let (message, fix) = only_filter_blocks(config, "azure", prefix, "NACL deny").await;
    assert!(
        message.contains(&format!("network ACL {acl}"))
            && message.contains("rule 50 denies TCP 53"),
        "{message}"
    );
    assert!(fix.contains("--ingress --rule-number 50"), "{fix}");
    ec2.delete_network_acl_entry()
        .network_acl_id(&acl)
        .rule_number(50)
        .egress(false)
        .send()
        .await
        .unwrap();
    validate_until(config, "azure", prefix, "NACL entry gone", |code, _| {
        code == 0
    })
    .await;
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
