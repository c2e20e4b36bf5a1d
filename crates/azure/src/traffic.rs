//! The bytes through each connection, from Azure Monitor: the VPN gateway's
//! `TunnelIngressBytes` and `TunnelEgressBytes`, aggregation Total, split by the ConnectionName
//! dimension ("Monitoring Azure VPN Gateway data reference"), read with Metrics - List
//! (api-version 2023-10-01) as JSON: no crate of the owner's set has the Microsoft.Insights
//! models. One-minute grains are asked with `AutoAdjustTimegrain=true`: the gateway publishes
//! five-minute ones and answers with those (asked without it, Azure refuses the grain). Like
//! CloudWatch, Azure gives totals per grain; the caller keeps the counter.

use std::time::{Duration, SystemTime};

use azure_core::Method;
use dxvpn_plan::Plan;
use dxvpn_plan::model::Spec;
use serde::{Deserialize, Serialize};

use crate::raw::json_body;
use crate::{Azure, AzureError, Kind, api};

/// The api-version of Azure Monitor's metrics list.
const METRICS_API_VERSION: &str = "2023-10-01";

/// Bytes through one connection per grain: (grain start in epoch seconds, bytes), oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConnectionTraffic {
    /// The connection's name (the ConnectionName dimension).
    pub name: String,
    /// `TunnelIngressBytes`: into the gateway from the other end.
    pub ingress: Vec<(u64, f64)>,
    /// `TunnelEgressBytes`: out of the gateway to the other end.
    pub egress: Vec<(u64, f64)>,
}

/// Metrics - List's answer, as far as it is read.
#[derive(Debug, Deserialize)]
struct MetricsAnswer {
    value: Vec<MetricAnswer>,
}

#[derive(Debug, Deserialize)]
struct MetricAnswer {
    name: LocalizableString,
    #[serde(default)]
    timeseries: Vec<TimeSeries>,
}

#[derive(Debug, Deserialize)]
struct LocalizableString {
    value: String,
}

#[derive(Debug, Deserialize)]
struct TimeSeries {
    #[serde(default)]
    metadatavalues: Vec<MetadataValue>,
    #[serde(default)]
    data: Vec<MetricValue>,
}

#[derive(Debug, Deserialize)]
struct MetadataValue {
    name: LocalizableString,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Deserialize)]
struct MetricValue {
    #[serde(rename = "timeStamp")]
    time_stamp: String,
    /// Absent for a grain with no data.
    total: Option<f64>,
}

impl Azure {
    /// The last `window` of traffic of each planned connection, in one call for the gateway.
    /// Empty when the plan has no gateway or the gateway does not exist.
    pub async fn connection_traffic(
        &self,
        plan: &Plan,
        window: Duration,
    ) -> Result<Vec<ConnectionTraffic>, AzureError> {
        let mut found: Vec<ConnectionTraffic> = plan
            .resources
            .iter()
            .filter(|r| matches!(r.spec, Spec::GatewayConnection { .. }))
            .map(|r| ConnectionTraffic {
                name: self.locate_top(Kind::Connection, r).1,
                ..ConnectionTraffic::default()
            })
            .collect();
        if plan.resource("azure.vpn_gateway").is_none() {
            return Ok(found);
        }
        let id = format!(
            "{}/providers/Microsoft.Insights/metrics",
            self.gateway_id(plan)
        );
        let now = SystemTime::now();
        let iso = |t: SystemTime| azure_core::date::to_rfc3339(&t.into());
        let timespan = format!(
            "{}/{}",
            iso(now - window),
            iso(now + Duration::from_secs(60))
        );
        let top = found.len().max(10).to_string();
        let role = "azure.tunnel_traffic";
        let response = self
            .raw_query(
                Method::Get,
                &id,
                METRICS_API_VERSION,
                &[
                    ("metricnames", "TunnelIngressBytes,TunnelEgressBytes"),
                    (
                        "metricnamespace",
                        "Microsoft.Network/virtualNetworkGateways",
                    ),
                    ("aggregation", "Total"),
                    ("interval", "PT1M"),
                    ("AutoAdjustTimegrain", "true"),
                    ("timespan", &timespan),
                    ("$filter", "ConnectionName eq '*'"),
                    ("top", &top),
                ],
                None,
            )
            .await;
        let response = match response {
            Ok(r) => r,
            // No gateway yet: no traffic to read.
            Err(e)
                if e.as_http_error()
                    .is_some_and(|h| h.status() == azure_core::StatusCode::NotFound) =>
            {
                return Ok(found);
            }
            Err(e) => return Err(api(role, "Metrics - List")(e)),
        };
        let body = json_body(response)
            .await
            .map_err(api(role, "Metrics - List"))?;
        let answer: MetricsAnswer = serde_json::from_value(body).map_err(|e| {
            api(role, "Metrics - List")(azure_core::Error::new(
                azure_core::error::ErrorKind::DataConversion,
                e,
            ))
        })?;
        for metric in answer.value {
            let ingress = metric.name.value.eq_ignore_ascii_case("TunnelIngressBytes");
            for series in metric.timeseries {
                let connection = series
                    .metadatavalues
                    .iter()
                    .find(|m| m.name.value.eq_ignore_ascii_case("connectionname"))
                    .map(|m| m.value.as_str());
                let Some(t) = connection
                    .and_then(|c| found.iter_mut().find(|t| t.name.eq_ignore_ascii_case(c)))
                else {
                    continue;
                };
                let points = series.data.iter().filter_map(|d| {
                    let at = azure_core::date::parse_rfc3339(&d.time_stamp).ok()?;
                    Some((u64::try_from(at.unix_timestamp()).ok()?, d.total?))
                });
                if ingress {
                    t.ingress.extend(points);
                } else {
                    t.egress.extend(points);
                }
            }
        }
        for t in &mut found {
            t.ingress.sort_by_key(|p| p.0);
            t.egress.sort_by_key(|p| p.0);
        }
        Ok(found)
    }
}
