//! Cross-cloud DNS on the whole lab, as root: `up` creates the DNS resources through the real
//! SDKs, the lab's resolvers apply exactly what the twins hold, and `dig` from the VPC host and
//! from the VNet host resolves the other cloud's private names across the tunnels. Negative
//! controls: without the rule association (AWS) or the VNet link (Azure) the name does not
//! resolve; `up` puts them back; `down` removes every DNS resource, in order.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dxvpn_deploy::Deployer;
use dxvpn_lab::Lab;
use dxvpn_netlab::resolvers::AZURE_RESOLVER_IP;
use dxvpn_plan::{Outputs, Plan};

const CONVERGE: Duration = Duration::from_secs(120);

/// The A record `dig` gets for `name` from `server`, asked inside namespace `ns`.
async fn dig(ns: &str, server: Ipv4Addr, name: &str) -> Option<Ipv4Addr> {
    let out = tokio::process::Command::new("ip")
        .args(["netns", "exec", ns, "dig", "+short", "+time=2", "+tries=1"])
        .arg(format!("@{server}"))
        .args([name, "A"])
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().parse().ok())
}

/// Waits until `dig` answers `want` (Some: that address; None: no address).
async fn wait_dig(ns: &str, server: Ipv4Addr, name: &str, want: Option<Ipv4Addr>) {
    let start = Instant::now();
    loop {
        let got = dig(ns, server, name).await;
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < CONVERGE,
            "{name} @{server} from {ns}: got {got:?}, wanted {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn wait_healthy(deployer: &Deployer, plan: &Plan) {
    let start = Instant::now();
    while !deployer.status(plan).await.unwrap().healthy() {
        assert!(start.elapsed() < CONVERGE, "tunnels not up");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn resource<'a>(plan: &'a Plan, role: &str) -> &'a dxvpn_plan::Resource {
    plan.resource(role)
        .unwrap_or_else(|| panic!("no {role} in the plan"))
}

async fn names_resolve_across_and_not_without_their_rules(use_case: &str) {
    let lab = Lab::start_on_loopback(0.0005).await.unwrap();
    let plan = Arc::new(
        dxvpn_plan::plan_from_toml(&lab.config(&format!("dx-dns-{}", &use_case[..3]), use_case))
            .unwrap(),
    );
    let deployer = Deployer::connect(&plan).await.unwrap();
    let report = deployer.up(plan.clone()).await;
    assert!(report.ok(), "{:?}", report.failures().collect::<Vec<_>>());
    wait_healthy(&deployer, &plan).await;

    let prefix = lab.state().prefix.unwrap();
    let topology = dxvpn_test_support::routes_across(&prefix).await;
    let (aws_ns, azure_ns) = (format!("{prefix}-aws-host"), format!("{prefix}-az-host"));
    let vpc_resolver = Ipv4Addr::from(u32::from(topology.aws.vpc_cidr.network()) + 2);
    let (vpc_host, vnet_host) = (topology.aws.host_ip, topology.azure.host_ip);

    // Each side's own name, and the other side's across the tunnel.
    wait_dig(&aws_ns, vpc_resolver, "vm1.aws.internal", Some(vpc_host)).await;
    wait_dig(&aws_ns, vpc_resolver, "vm1.azure.internal", Some(vnet_host)).await;
    wait_dig(
        &azure_ns,
        AZURE_RESOLVER_IP,
        "vm1.aws.internal",
        Some(vpc_host),
    )
    .await;

    // Negative control (AWS): without the rule association the name does not resolve...
    let aws = dxvpn_aws::Aws::connect(&plan).await;
    let association = resource(&plan, "aws.resolver_rule_association.azure.internal");
    aws.delete(&plan, association, &mut Outputs::default())
        .await
        .unwrap();
    wait_dig(&aws_ns, vpc_resolver, "vm1.azure.internal", None).await;
    for _ in 0..3 {
        assert_eq!(dig(&aws_ns, vpc_resolver, "vm1.azure.internal").await, None);
    }
    // ... while the other direction still does.
    assert_eq!(
        dig(&azure_ns, AZURE_RESOLVER_IP, "vm1.aws.internal").await,
        Some(vpc_host)
    );

    // Negative control (Azure): without the ruleset's VNet link, neither does the AWS name.
    let azure = dxvpn_azure::Azure::connect(&plan).unwrap();
    let link = resource(&plan, "azure.dns_vnet_link");
    azure
        .delete(&plan, link, &mut Outputs::default())
        .await
        .unwrap();
    wait_dig(&azure_ns, AZURE_RESOLVER_IP, "vm1.aws.internal", None).await;
    assert_eq!(
        dig(&azure_ns, AZURE_RESOLVER_IP, "vm1.aws.internal").await,
        None
    );

    // `up` puts both back, writing only what was missing.
    let report = deployer.up(plan.clone()).await;
    assert!(report.ok(), "{:?}", report.failures().collect::<Vec<_>>());
    wait_dig(&aws_ns, vpc_resolver, "vm1.azure.internal", Some(vnet_host)).await;
    wait_dig(
        &azure_ns,
        AZURE_RESOLVER_IP,
        "vm1.aws.internal",
        Some(vpc_host),
    )
    .await;
    assert!(deployer.status(&plan).await.unwrap().healthy());

    // Down removes every DNS resource: nothing left in either twin.
    let down = deployer.down(plan.clone()).await;
    assert!(down.ok(), "{:?}", down.failures().collect::<Vec<_>>());
    let inventory = lab.aws.inventory();
    // The seeded host's workload group is the scenario's, not the deployment's.
    let seeded_group = lab
        .aws
        .seeded
        .host_security_group_id
        .clone()
        .map(serde_json::Value::from);
    for list in [
        "resolver_rule_associations",
        "resolver_rules",
        "resolver_endpoints",
        "security_groups",
    ] {
        let left: Vec<&serde_json::Value> = inventory[list]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| Some(&r["id"]) != seeded_group.as_ref())
            .collect();
        assert!(left.is_empty(), "{list}: {inventory}");
    }
    assert_eq!(lab.azure.live_ids(), lab.azure.seed_ids());
    // Rule associations went before rules, rules before endpoints.
    let order: Vec<String> = down
        .nodes
        .iter()
        .filter(|n| n.role.starts_with("aws.resolver"))
        .map(|n| format!("{:>10?} {}", n.started, n.role))
        .collect();
    let finished = |role: &str| {
        down.nodes
            .iter()
            .find(|n| n.role == role)
            .map(|n| n.started + n.took)
            .unwrap()
    };
    let begun = |role: &str| down.nodes.iter().find(|n| n.role == role).unwrap().started;
    assert!(
        finished("aws.resolver_rule_association.azure.internal")
            <= begun("aws.resolver_rule.azure.internal"),
        "{order:#?}"
    );
    assert!(
        finished("aws.resolver_rule.azure.internal") <= begun("aws.resolver_endpoint.outbound"),
        "{order:#?}"
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_availability_names_resolve_across_through_managed_endpoints() {
    names_resolve_across_and_not_without_their_rules("high_availability").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_names_resolve_across_through_forwarder_hosts() {
    names_resolve_across_and_not_without_their_rules("development").await;
}
