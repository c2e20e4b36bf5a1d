//! The bytes through each tunnel, from CloudWatch: AWS/VPN `TunnelDataIn` ("bytes received on
//! the AWS side ... from a customer gateway") and `TunnelDataOut` (bytes sent from the AWS
//! side), statistic Sum per minute, dimensions VpnId and TunnelIpAddress (Site-to-Site VPN user
//! guide, "Monitoring with CloudWatch"). CloudWatch gives sums per period, not a counter: the
//! caller keeps one (the Prometheus exporter adds each period once, taking a period's latest
//! sum while it is still filling).

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use serde::Serialize;

use crate::{Aws, AwsError, api};

/// The period of the sums read, in seconds: CloudWatch's standard resolution (the queries'
/// `Period`).
pub const TRAFFIC_PERIOD_SECONDS: u64 = 60;

/// Bytes through one tunnel per period: (period start in epoch seconds, bytes), oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TunnelTraffic {
    /// `vpn-...`.
    pub connection_id: String,
    /// The tunnel's outside address.
    pub outside_ip: String,
    /// `TunnelDataIn`: received by AWS from the other end.
    pub bytes_in: Vec<(u64, f64)>,
    /// `TunnelDataOut`: sent by AWS to the other end.
    pub bytes_out: Vec<(u64, f64)>,
}

impl Aws {
    /// The last `window` of traffic of each tunnel (VPN connection id, outside address), read
    /// in one GetMetricData (two queries a tunnel; 500 queries a call is the API's limit) and
    /// its pages.
    pub async fn tunnel_traffic(
        &self,
        tunnels: &[(String, String)],
        window: Duration,
    ) -> Result<Vec<TunnelTraffic>, AwsError> {
        let mut found: Vec<TunnelTraffic> = tunnels
            .iter()
            .map(|(vpn, ip)| TunnelTraffic {
                connection_id: vpn.clone(),
                outside_ip: ip.clone(),
                ..TunnelTraffic::default()
            })
            .collect();
        if tunnels.is_empty() {
            return Ok(found);
        }
        let queries: Vec<MetricDataQuery> = tunnels
            .iter()
            .enumerate()
            .flat_map(|(i, (vpn, ip))| {
                [("in", "TunnelDataIn"), ("out", "TunnelDataOut")]
                    .map(|(id, metric)| query(&format!("{id}{i}"), metric, vpn, ip))
            })
            .collect();
        let now = SystemTime::now();
        let mut pages = self
            .cloudwatch
            .get_metric_data()
            .set_metric_data_queries(Some(queries))
            .start_time(DateTime::from(now - window))
            // The period now filling is read too: its sum grows until it ends.
            .end_time(DateTime::from(
                now + Duration::from_secs(TRAFFIC_PERIOD_SECONDS),
            ))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(api("aws.tunnel_traffic", "GetMetricData"))?;
            for result in page.metric_data_results() {
                let id = result.id().unwrap_or_default();
                let (direction, index) = match id.strip_prefix("in") {
                    Some(i) => ("in", i),
                    None => ("out", id.strip_prefix("out").unwrap_or_default()),
                };
                let Some(t) = index.parse::<usize>().ok().and_then(|i| found.get_mut(i)) else {
                    continue;
                };
                let points = result
                    .timestamps()
                    .iter()
                    .zip(result.values())
                    .filter_map(|(at, v)| Some((u64::try_from(at.secs()).ok()?, *v)));
                match direction {
                    "in" => t.bytes_in.extend(points),
                    _ => t.bytes_out.extend(points),
                }
            }
        }
        for t in &mut found {
            t.bytes_in.sort_by_key(|p| p.0);
            t.bytes_out.sort_by_key(|p| p.0);
        }
        Ok(found)
    }
}

fn query(id: &str, metric: &str, vpn: &str, ip: &str) -> MetricDataQuery {
    let dimension = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("AWS/VPN")
                        .metric_name(metric)
                        .dimensions(dimension("VpnId", vpn))
                        .dimensions(dimension("TunnelIpAddress", ip))
                        .build(),
                )
                .period(60)
                .stat("Sum")
                .build(),
        )
        .build()
}
