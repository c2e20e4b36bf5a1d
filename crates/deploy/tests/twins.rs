//! The deploy engine against both twins, with the real SDKs: up converges for both use cases,
//! AWS work overlaps the Azure gateway's build, a re-run writes nothing, a failure is reported
//! with the cloud's error and a re-run resumes, and down returns both clouds to their seeds.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::sync::Arc;

use dxvpn_deploy::{Deployer, NodeState, Report};
use dxvpn_plan::Plan;
use dxvpn_test_support::{aws_live, azure_count};
use dxvpn_twin_aws::{AwsTwin, Fault, FaultKind};
use dxvpn_twin_azure::{AzureScenario, AzureTwin};

struct Clouds {
    aws: AwsTwin,
    azure: AzureTwin,
    plan: Arc<Plan>,
    deployer: Deployer,
}

async fn clouds(use_case: &str) -> Clouds {
    clouds_with(use_case, dxvpn_test_support::aws_twin(0.0005).await).await
}

async fn clouds_with(use_case: &str, aws: AwsTwin) -> Clouds {
    // Slow enough that the gateway (30-45 min real) still builds while AWS, which first lets
    // its reads settle, makes the VPN connection.
    let azure = dxvpn_test_support::azure_twin(&AzureScenario::default(), 0.003).await;
    clouds_of(use_case, aws, azure).await
}

async fn clouds_of(use_case: &str, aws: AwsTwin, azure: AzureTwin) -> Clouds {
    let config = dxvpn_lab::config::lab_config(
        "dx-deploy",
        use_case,
        &dxvpn_lab::LabScenario::default(),
        &aws,
        &azure,
    );
    let plan = Arc::new(dxvpn_plan::plan_from_toml(&config).unwrap());
    let deployer = Deployer::connect(&plan).await.unwrap();
    Clouds {
        aws,
        azure,
        plan,
        deployer,
    }
}

fn node<'a>(report: &'a Report, role: &str) -> &'a dxvpn_deploy::NodeReport {
    report.nodes.iter().find(|n| n.role == role).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_converges_overlaps_the_clouds_reruns_quietly_and_down_returns_to_the_seeds() {
    for (use_case, connections, tunnels) in [("development", 1, 2), ("high_availability", 2, 4)] {
        let c = clouds(use_case).await;
        let report = c.deployer.up(c.plan.clone()).await;
        assert!(
            report.ok(),
            "{use_case}: {:?}",
            report.failures().collect::<Vec<_>>()
        );
        assert_eq!(azure_count(&c.azure, "virtualNetworkGateways"), 1);
        assert_eq!(azure_count(&c.azure, "connections"), tunnels);
        assert_eq!(
            aws_live(&c.aws, "vpn_connections"),
            connections,
            "{use_case}: {}",
            c.aws.inventory()
        );

        // The AWS side was built while the Azure gateway was still provisioning.
        let gateway = node(&report, "azure.vpn_gateway");
        let vpn = node(&report, "aws.vpn_connection.0");
        assert!(
            vpn.started < gateway.started + gateway.took,
            "{vpn:?} {gateway:?}"
        );
        // And the connections waited for the gateway.
        let conn = node(&report, "azure.connection.c1t1");
        assert!(conn.started >= gateway.started + gateway.took);

        let (aws_before, azure_before) = (c.aws.mutating_calls(), c.azure.mutating_calls());
        let rerun = c.deployer.up(c.plan.clone()).await;
        assert!(rerun.ok());
        assert_eq!(
            (c.aws.mutating_calls(), c.azure.mutating_calls()),
            (aws_before, azure_before),
            "{use_case}: a converged re-run writes nothing"
        );
        // Speed is measured, not asserted (the e2e test and `cargo xtask bench up` report it).
        println!("{use_case}: converged re-run took {:?}", rerun.makespan);

        let down = c.deployer.down(c.plan.clone()).await;
        assert!(down.ok(), "{:?}", down.failures().collect::<Vec<_>>());
        assert_eq!(
            c.azure.live_ids(),
            c.azure.seed_ids(),
            "{use_case}: Azure back to its seed"
        );
        for list in ["vpn_gateways", "customer_gateways", "vpn_connections"] {
            assert_eq!(aws_live(&c.aws, list), 0, "{use_case}: {list} left");
        }
    }
}

/// `up` then `down` converge whatever the twins choose where the clouds promise nothing: one of
/// everything after `up`, every tunnel paired with its planned inside CIDR, nothing after
/// `down`, for each of `DXVPN_SEEDS` seeds in a row (2 here; `cargo xtask bench seeds` runs 20).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_and_down_converge_for_each_twin_seed() {
    let seeds: u64 = std::env::var("DXVPN_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    let first: u64 = std::env::var("DXVPN_TWIN_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    for seed in first..first + seeds {
        let aws = dxvpn_test_support::aws_twin_seeded(0.0005, seed).await;
        let azure =
            dxvpn_test_support::azure_twin_seeded(&AzureScenario::default(), 0.0002, seed).await;
        let c = clouds_of("high_availability", aws, azure).await;
        let report = c.deployer.up(c.plan.clone()).await;
        assert!(
            report.ok(),
            "seed {seed}: {:?}",
            report.failures().collect::<Vec<_>>()
        );
        assert_eq!(aws_live(&c.aws, "vpn_connections"), 2, "seed {seed}");
        assert_eq!(azure_count(&c.azure, "connections"), 4, "seed {seed}");
        let status = c.deployer.status(&c.plan).await.unwrap();
        for t in &status.tunnels {
            let planned = c.plan.tunnels.iter().find(|p| p.key == t.key).unwrap();
            let held = c.aws.inventory()["vpn_connections"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|v| v["tunnels"].as_array().unwrap().clone())
                .find(|x| x["outside_ip"] == t.outside_ip.as_str())
                .unwrap();
            assert_eq!(
                held["inside_cidr"],
                planned.pairing.inside_cidr.to_string(),
                "seed {seed}: {} reads another tunnel",
                t.key
            );
        }
        let down = c.deployer.down(c.plan.clone()).await;
        assert!(
            down.ok(),
            "seed {seed}: {:?}",
            down.failures().collect::<Vec<_>>()
        );
        assert_eq!(c.azure.live_ids(), c.azure.seed_ids(), "seed {seed}");
        for list in ["vpn_gateways", "customer_gateways", "vpn_connections"] {
            assert_eq!(aws_live(&c.aws, list), 0, "seed {seed}: {list} left");
        }
        println!("seed {seed}: up and down converged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_stops_new_work_reports_the_cloud_error_and_a_rerun_resumes() {
    let c = clouds("development").await;
    // The customer gateway is refused on every try (dxvpn-aws tries a create 6 times).
    for at_call in 1..=6 {
        c.aws.inject(Fault {
            action: "CreateCustomerGateway".into(),
            at_call,
            kind: FaultKind::Error {
                code: "CustomerGatewayLimitExceeded".into(),
                message: "The maximum number of customer gateways has been reached (injected)."
                    .into(),
            },
            after_effect: false,
        });
    }
    let report = c.deployer.up(c.plan.clone()).await;
    assert!(!report.ok());
    let failed: Vec<_> = report.failures().map(|n| n.role.as_str()).collect();
    assert_eq!(failed, ["aws.customer_gateway.0"]);
    match &node(&report, "aws.customer_gateway.0").state {
        NodeState::Failed(message) => assert!(
            message.contains("CustomerGatewayLimitExceeded"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    // What needs it never started; what was running finished.
    assert_eq!(
        node(&report, "aws.vpn_connection.0").state,
        NodeState::NotStarted
    );
    assert_eq!(
        node(&report, "azure.connection.c1t1").state,
        NodeState::NotStarted
    );
    assert_eq!(node(&report, "azure.vpn_gateway").state, NodeState::Done);

    let rerun = c.deployer.up(c.plan.clone()).await;
    assert!(rerun.ok(), "{:?}", rerun.failures().collect::<Vec<_>>());
    assert_eq!(aws_live(&c.aws, "customer_gateways"), 1);
    assert_eq!(azure_count(&c.azure, "virtualNetworkGateways"), 1);
    let down = c.deployer.down(c.plan.clone()).await;
    assert!(down.ok());
    assert_eq!(c.azure.live_ids(), c.azure.seed_ids());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_and_down_succeed_while_a_fifth_of_all_calls_fail_transiently() {
    // Seeds can be replayed: DXVPN_CHAOS_SEED=N runs both use cases with N and N + 100.
    let base: Option<u64> = std::env::var("DXVPN_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    for (use_case, seed) in [("development", 7), ("high_availability", 11)] {
        let seed = base.unwrap_or(seed);
        let c = clouds(use_case).await;
        // A bad day on both clouds: 5xx, throttling (ARM's 429 with Retry-After) and dropped
        // connections, some after the call took effect, on a fifth of all EC2, Route 53
        // Resolver and ARM calls, operation polls included.
        c.aws.set_chaos(0.2, seed);
        c.azure.set_chaos(0.2, seed + 100);
        let up = c.deployer.up(c.plan.clone()).await;
        assert!(
            up.ok(),
            "{use_case} seed {seed}: {:?}",
            up.failures().collect::<Vec<_>>()
        );
        // One of everything: no retried create left a duplicate.
        let tunnels = if use_case == "development" { 2 } else { 4 };
        assert_eq!(aws_live(&c.aws, "vpn_gateways"), 1, "{use_case}");
        assert_eq!(
            aws_live(&c.aws, "vpn_connections"),
            tunnels / 2,
            "{use_case}"
        );
        assert_eq!(azure_count(&c.azure, "connections"), tunnels, "{use_case}");
        assert_eq!(
            azure_count(&c.azure, "virtualNetworkGateways"),
            1,
            "{use_case}"
        );
        let down = c.deployer.down(c.plan.clone()).await;
        assert!(
            down.ok(),
            "{use_case} seed {seed}: {:?}",
            down.failures().collect::<Vec<_>>()
        );
        assert_eq!(c.azure.live_ids(), c.azure.seed_ids(), "{use_case}");
        for list in ["vpn_gateways", "customer_gateways", "vpn_connections"] {
            assert_eq!(aws_live(&c.aws, list), 0, "{use_case}: {list} left");
        }
        // The faults happened on both sides: this is not a quiet run.
        let (aws, azure) = (c.aws.chaos_injected(), c.azure.chaos_injected());
        assert!(
            aws >= 5 && azure >= 5,
            "{use_case}: {aws} AWS, {azure} Azure"
        );
        eprintln!("{use_case} seed {seed}: survived {aws} AWS and {azure} Azure injected faults");
    }

    // Negative controls: when every call of either cloud fails, up fails and says so (the
    // faults bite, and neither side's retries turn a dead cloud into success).
    let (aws_dead, azure_dead) = tokio::join!(clouds("development"), clouds("development"));
    aws_dead.aws.set_chaos(1.0, 3);
    azure_dead.azure.set_chaos(1.0, 3);
    let (aws_up, azure_up) = tokio::join!(
        aws_dead.deployer.up(aws_dead.plan.clone()),
        azure_dead.deployer.up(azure_dead.plan.clone())
    );
    assert!(!aws_up.ok());
    assert!(!azure_up.ok());
    assert!(
        azure_up.failures().all(|n| n.role.starts_with("azure.")),
        "{:?}",
        azure_up.failures().collect::<Vec<_>>()
    );
}
