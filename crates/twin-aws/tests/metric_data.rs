//! GetMetricData through the real aws-sdk-cloudwatch: a tunnel's TunnelDataIn/TunnelDataOut
//! sums what its byte counters grew by (a counter that falls was reset and counts whole),
//! per period and aligned to it; TunnelState per period; newest first unless asked otherwise;
//! pages of MaxDatapoints; no data for a series EC2 does not publish; the API reference's
//! refusals.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    Dimension, Metric, MetricDataQuery, MetricDataResult, MetricStat, ScanBy, StatusCode,
};
use dxvpn_twin_aws::{AwsScenario, AwsTwin, TunnelTelemetry};

/// Both tunnels up; tunnel 1's counters at `bytes` (in, out), tunnel 2's at 0.
fn counters(twin: &AwsTwin, ips: &[Ipv4Addr], bytes: (u64, u64)) {
    let up = |bytes_in, bytes_out| TunnelTelemetry {
        ipsec_up: true,
        bgp_up: true,
        accepted_routes: 1,
        bytes_in,
        bytes_out,
    };
    let reports = BTreeMap::from([(ips[0], up(bytes.0, bytes.1)), (ips[1], up(0, 0))]);
    twin.set_telemetry(&reports);
}

fn query(
    id: &str,
    metric: &str,
    dimensions: &[(&str, &str)],
    period: i32,
    stat: &str,
) -> MetricDataQuery {
    let mut m = Metric::builder().namespace("AWS/VPN").metric_name(metric);
    for (name, value) in dimensions {
        m = m.dimensions(Dimension::builder().name(*name).value(*value).build());
    }
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(m.build())
                .period(period)
                .stat(stat)
                .build(),
        )
        .build()
}

/// The last ten minutes and the next one.
fn window() -> (DateTime, DateTime) {
    let now = SystemTime::now();
    (
        DateTime::from(now - Duration::from_secs(600)),
        DateTime::from(now + Duration::from_secs(60)),
    )
}

async fn results(
    cw: &aws_sdk_cloudwatch::Client,
    queries: Vec<MetricDataQuery>,
) -> BTreeMap<String, MetricDataResult> {
    let (start, end) = window();
    let out = cw
        .get_metric_data()
        .set_metric_data_queries(Some(queries))
        .start_time(start)
        .end_time(end)
        .send()
        .await
        .unwrap();
    assert!(out.next_token().is_none());
    out.metric_data_results()
        .iter()
        .map(|r| (r.id().unwrap().to_owned(), r.clone()))
        .collect()
}

fn total(r: &MetricDataResult) -> f64 {
    r.values().iter().sum()
}

#[tokio::test]
async fn tunnel_data_sums_counter_growth_per_period_and_pages() {
    let twin = AwsTwin::start(dxvpn_test_support::loopback(), &AwsScenario::default(), 0.0)
        .await
        .unwrap();
    let cw = dxvpn_test_support::cloudwatch_client(&twin.endpoint);
    let (vpn, ips) = dxvpn_test_support::twin_vpn_connection(&twin.endpoint).await;
    let (t1, t2) = (ips[0].to_string(), ips[1].to_string());

    // 1000 in, then 3000 (2000 more), then a rekey: the counter starts again at 200.
    counters(&twin, &ips, (1000, 400));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    counters(&twin, &ips, (3000, 900));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    counters(&twin, &ips, (200, 50));

    let d1 = [("VpnId", vpn.as_str()), ("TunnelIpAddress", t1.as_str())];
    let d2 = [("VpnId", vpn.as_str()), ("TunnelIpAddress", t2.as_str())];
    let got = results(
        &cw,
        vec![
            query("in1", "TunnelDataIn", &d1, 60, "Sum"),
            query("out1", "TunnelDataOut", &d1, 60, "Sum"),
            query("in2", "TunnelDataIn", &d2, 60, "Sum"),
            query("state1", "TunnelState", &d1, 60, "Maximum"),
            // Not what EC2 publishes: one dimension alone, another namespace's metric, a
            // tunnel that does not exist.
            query("ipalone", "TunnelDataIn", &d1[1..], 60, "Sum"),
            query("other", "CPUUtilization", &d1, 60, "Sum"),
            query(
                "nowhere",
                "TunnelDataIn",
                &[("VpnId", &vpn), ("TunnelIpAddress", "198.51.100.1")],
                60,
                "Sum",
            ),
        ],
    )
    .await;
    assert_eq!(total(&got["in1"]), 3200.0, "{:?}", got["in1"]);
    assert_eq!(total(&got["out1"]), 950.0, "{:?}", got["out1"]);
    // An idle tunnel publishes zeros, not nothing.
    assert!(!got["in2"].values().is_empty());
    assert_eq!(total(&got["in2"]), 0.0);
    assert!(got["state1"].values().iter().all(|v| *v == 1.0));
    for empty in ["ipalone", "other", "nowhere"] {
        assert!(got[empty].values().is_empty(), "{empty}: {:?}", got[empty]);
        assert_eq!(got[empty].status_code(), Some(&StatusCode::Complete));
    }
    // Timestamps are the starts of their periods.
    for t in got["in1"].timestamps() {
        assert_eq!(t.secs() % 60, 0, "{t:?}");
        assert_eq!(t.subsec_nanos(), 0);
    }

    // Per second: three periods, newest first unless asked otherwise, and pages of one.
    let per_second = || query("in1", "TunnelDataIn", &d1, 1, "Sum");
    let (start, end) = window();
    let call = || {
        cw.get_metric_data()
            .metric_data_queries(per_second())
            .start_time(start)
            .end_time(end)
    };
    let newest_first = call().send().await.unwrap();
    let stamps = newest_first.metric_data_results()[0].timestamps().to_vec();
    assert!(stamps.len() >= 3, "{stamps:?}");
    assert!(stamps.windows(2).all(|w| w[0] > w[1]), "{stamps:?}");
    let oldest_first = call()
        .scan_by(ScanBy::TimestampAscending)
        .send()
        .await
        .unwrap();
    let values = oldest_first.metric_data_results()[0].values().to_vec();
    assert_eq!(values.first(), Some(&1000.0), "{values:?}");
    assert_eq!(values.last(), Some(&200.0), "{values:?}");

    let first_page = call().max_datapoints(1).send().await.unwrap();
    let first = &first_page.metric_data_results()[0];
    assert_eq!(first.values().len(), 1);
    assert_eq!(first.status_code(), Some(&StatusCode::PartialData));
    assert!(first_page.next_token().is_some());
    let mut paged = Vec::new();
    let mut pages = call().max_datapoints(1).into_paginator().send();
    while let Some(page) = pages.next().await {
        paged.extend(page.unwrap().metric_data_results()[0].values().to_vec());
    }
    assert_eq!(paged, newest_first.metric_data_results()[0].values());
    twin.stop().await;
}

#[tokio::test]
async fn get_metric_data_refuses_what_the_api_reference_refuses() {
    let twin = AwsTwin::start(dxvpn_test_support::loopback(), &AwsScenario::default(), 0.0)
        .await
        .unwrap();
    let cw = dxvpn_test_support::cloudwatch_client(&twin.endpoint);
    let (start, end) = window();
    let tunnel = [("VpnId", "vpn-1"), ("TunnelIpAddress", "198.51.100.1")];
    let refused = |queries: Vec<MetricDataQuery>, start: DateTime, end: DateTime| {
        let cw = cw.clone();
        async move {
            let e = cw
                .get_metric_data()
                .set_metric_data_queries(Some(queries))
                .start_time(start)
                .end_time(end)
                .send()
                .await
                .unwrap_err();
            e.code().unwrap_or_default().to_owned()
        }
    };
    let good = || vec![query("in1", "TunnelDataIn", &tunnel, 60, "Sum")];
    // The control: the same call with good parts is answered.
    assert!(
        cw.get_metric_data()
            .set_metric_data_queries(Some(good()))
            .start_time(start)
            .end_time(end)
            .send()
            .await
            .is_ok()
    );
    assert_eq!(refused(good(), end, start).await, "InvalidParameterValue");
    for bad in [
        query("In1", "TunnelDataIn", &tunnel, 60, "Sum"),
        query("in1", "TunnelDataIn", &tunnel, 45, "Sum"),
        query("in1", "TunnelDataIn", &tunnel, 60, "p99"),
        MetricDataQuery::builder()
            .id("math")
            .expression("SUM(METRICS())")
            .build(),
    ] {
        assert_eq!(
            refused(vec![bad.clone()], start, end).await,
            "InvalidParameterValue",
            "{bad:?}"
        );
    }
    let twice = vec![good().remove(0), good().remove(0)];
    assert_eq!(refused(twice, start, end).await, "InvalidParameterValue");
    twin.stop().await;
}
