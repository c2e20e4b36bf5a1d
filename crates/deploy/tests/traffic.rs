//! Both clouds' traffic through the real clients: what the data plane's counters grew by comes
//! back per tunnel from CloudWatch's GetMetricData (AWS twin) and Azure Monitor's metrics list
//! (Azure twin), each tunnel's own; a tunnel named wrong gets nothing (the negative control);
//! a cloud that cannot be read leaves the other's; and Azure Monitor refuses what its reference
//! refuses.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use dxvpn_deploy::{Deployer, Traffic, TunnelBytes};
use dxvpn_test_support::AzureMethod as Method;
use dxvpn_twin_aws::TunnelTelemetry;
use dxvpn_twin_azure::{AzureScenario, Telemetry};

const WINDOW: Duration = Duration::from_secs(900);

fn total(points: &[(u64, f64)]) -> f64 {
    points.iter().map(|p| p.1).sum()
}

fn find<'a>(traffic: &'a Traffic, key: &str, cloud: &str) -> &'a TunnelBytes {
    traffic
        .tunnels
        .iter()
        .find(|t| t.key == key && t.cloud == cloud)
        .unwrap_or_else(|| panic!("no {cloud} traffic of {key}: {traffic:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tunnel_reads_its_own_bytes_from_both_clouds() {
    let aws = dxvpn_test_support::aws_twin(0.0).await;
    let azure = dxvpn_test_support::azure_twin(&AzureScenario::default(), 0.0).await;
    let config = dxvpn_lab::config::lab_config(
        "dx-traffic",
        "development",
        &dxvpn_lab::LabScenario::default(),
        &aws,
        &azure,
    );
    let plan = Arc::new(dxvpn_plan::plan_from_toml(&config).unwrap());
    let deployer = Deployer::connect(&plan).await.unwrap();
    let report = deployer.up(plan.clone()).await;
    assert!(report.ok(), "{:?}", report.failures().collect::<Vec<_>>());
    let status = deployer.status(&plan).await.unwrap();
    let (t1, t2) = (&status.tunnels[0], &status.tunnels[1]);

    // The data plane's counters: c1t1 carries traffic (a rekey resets AWS's "in" counter on
    // the way), c1t2 none.
    let report_counters = |aws_in: u64, azure_in: u64| {
        let up = |bytes_in, bytes_out| TunnelTelemetry {
            ipsec_up: true,
            bgp_up: true,
            accepted_routes: 1,
            bytes_in,
            bytes_out,
        };
        let ip = |t: &dxvpn_deploy::TunnelHealth| t.outside_ip.parse::<Ipv4Addr>().unwrap();
        aws.set_telemetry(&BTreeMap::from([
            (ip(t1), up(aws_in, 2 * aws_in)),
            (ip(t2), up(0, 0)),
        ]));
        azure.set_telemetry(Telemetry {
            connection_bytes: BTreeMap::from([
                (
                    t1.azure_connection.to_ascii_lowercase(),
                    (azure_in, 3 * azure_in),
                ),
                (t2.azure_connection.to_ascii_lowercase(), (0, 0)),
            ]),
            ..Telemetry::default()
        });
    };
    report_counters(1000, 500);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    report_counters(3000, 800);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    report_counters(100, 900);

    let traffic = deployer.traffic(&plan, &status, WINDOW).await;
    assert!(traffic.errors.is_empty(), "{:?}", traffic.errors);
    let aws1 = find(&traffic, &t1.key, "aws");
    assert_eq!(aws1.connection, t1.aws_connection);
    // 1000, then 2000 more, then 100 after the reset (out: 2000, 4000, 200).
    assert_eq!(total(&aws1.bytes_in), 3100.0, "{aws1:?}");
    assert_eq!(total(&aws1.bytes_out), 6200.0);
    let azure1 = find(&traffic, &t1.key, "azure");
    assert_eq!(azure1.connection, t1.azure_connection);
    assert_eq!(total(&azure1.bytes_in), 900.0, "{azure1:?}");
    assert_eq!(total(&azure1.bytes_out), 2700.0);
    for cloud in ["aws", "azure"] {
        let idle = find(&traffic, &t2.key, cloud);
        assert!(
            !idle.bytes_in.is_empty(),
            "an idle tunnel reads 0, not nothing"
        );
        assert_eq!(total(&idle.bytes_in) + total(&idle.bytes_out), 0.0);
    }
    // Periods are the clouds': CloudWatch's minutes, Azure's five minutes.
    for t in &traffic.tunnels {
        let grain = if t.cloud == "aws" { 60 } else { 300 };
        assert!(t.bytes_in.iter().all(|(at, _)| at % grain == 0), "{t:?}");
    }

    // The negative control: a tunnel named by a connection AWS does not have reads nothing.
    let mut wrong = status.clone();
    wrong.tunnels[0].aws_connection = "vpn-00000000000000000".into();
    let misread = deployer.traffic(&plan, &wrong, WINDOW).await;
    assert_eq!(total(&find(&misread, &t1.key, "aws").bytes_in), 0.0);

    // Azure Monitor's refusals, at the gateway the plan made.
    let gateway = &plan.resource("azure.vpn_gateway").unwrap().name;
    let path = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/virtualNetworkGateways/{gateway}/providers/Microsoft.Insights/metrics",
        azure.seeded.subscription_id, azure.seeded.resource_group
    );
    let get = |query: &str| {
        let query = query.to_owned();
        let (azure, path) = (&azure, &path);
        async move { dxvpn_test_support::azure_raw_query(azure, Method::Get, path, &query, None).await }
    };
    let good = "api-version=2023-10-01&metricnames=TunnelIngressBytes&interval=PT5M";
    let (status_code, body) = get(good).await;
    assert_eq!(status_code, 200, "{body}");
    assert_eq!(body["interval"], "PT5M");
    for (bad, code) in [
        ("api-version=2023-10-01&metricnames=CpuPercent", 400),
        (
            "api-version=2023-10-01&metricnames=TunnelIngressBytes&interval=PT2M",
            400,
        ),
        (
            "api-version=2023-10-01&metricnames=TunnelIngressBytes&timespan=2026-01-02T00:00:00Z/2026-01-01T00:00:00Z",
            400,
        ),
        (
            "api-version=2023-10-01&metricnames=TunnelIngressBytes&%24filter=RemoteIP%20eq%20%27x%27",
            400,
        ),
        ("api-version=2021-01-01&metricnames=TunnelIngressBytes", 400),
    ] {
        let (status_code, body) = get(bad).await;
        assert_eq!(status_code, code, "{bad}: {body}");
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    // A grain it does not publish is adjusted when asked to be, as dxvpn asks.
    let (_, adjusted) = get(
        "api-version=2023-10-01&metricnames=TunnelIngressBytes&interval=PT1M&AutoAdjustTimegrain=true",
    )
    .await;
    assert_eq!(adjusted["interval"], "PT5M", "{adjusted}");
    let (status_code, _) = dxvpn_test_support::azure_raw_query(
        &azure,
        Method::Get,
        &path.replace(gateway.as_str(), "no-such-gateway"),
        good,
        None,
    )
    .await;
    assert_eq!(status_code, 404);

    // Azure gone: AWS's traffic still comes, and Azure's failure is said.
    azure.stop().await;
    let half = deployer.traffic(&plan, &status, WINDOW).await;
    assert_eq!(half.errors.len(), 1, "{:?}", half.errors);
    assert_eq!(total(&find(&half, &t1.key, "aws").bytes_in), 3100.0);
    assert!(half.tunnels.iter().all(|t| t.cloud == "aws"));
    aws.stop().await;
}
