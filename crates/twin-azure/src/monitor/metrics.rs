//! `GET {resourceUri}/providers/Microsoft.Insights/metrics` (Metrics - List, api-version
//! 2023-10-01; azure-rest-api-specs, specification/monitor/.../stable/2023-10-01/metrics_API.json
//! and its example GetMetric.json) for a VPN gateway's `TunnelIngressBytes` and
//! `TunnelEgressBytes`. `timespan` is `start/end`; `interval` a time grain (default PT1M, which
//! the VPN gateway does not publish; FULL is not served), adjusted to the closest one served when `AutoAdjustTimegrain=true` and refused
//! otherwise; `aggregation` a list (default the metric's primary one, Total); `$filter`
//! `ConnectionName eq '*'` (one series per connection, at most `top`, default 10) or names
//! joined by `or`; no filter gives one series over all connections. Every grain of the timespan
//! has an entry; one without data has only its `timeStamp` (the reference's `MetricValue`
//! makes every aggregation optional; which grains Azure lists without data is not documented,
//! so the twin takes the less kind answer: a client must skip entries without a value). Series come in no documented
//! order: a seeded one. Grains are real time, not scaled by the time factor.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::Monitor;
use crate::arm::{Arm, ArmError, bad};

/// The api-version of the metrics list the twin serves.
const METRICS_API: &str = "2023-10-01";
/// The gateway's metrics the twin publishes: (name, display name, description).
const METRICS: [(&str, &str, &str); 2] = [
    (
        "TunnelIngressBytes",
        "Tunnel Ingress Bytes",
        "Incoming bytes of a tunnel",
    ),
    (
        "TunnelEgressBytes",
        "Tunnel Egress Bytes",
        "Outgoing bytes of a tunnel",
    ),
];
/// The time grains (ISO 8601) of the gateway's tunnel metrics, in seconds: Azure Monitor's,
/// from five minutes on, the granularity the VPN gateway publishes them at (field-notes,
/// "Monitoring conventions"); a one-minute grain is refused unless adjusted.
const GRAINS: [(&str, u64); 7] = [
    ("PT5M", 300),
    ("PT15M", 900),
    ("PT30M", 1800),
    ("PT1H", 3600),
    ("PT6H", 21_600),
    ("PT12H", 43_200),
    ("P1D", 86_400),
];
/// A twin's limit, not Azure's: no answer of more grains than this is built.
const MOST_GRAINS: u64 = 50_000;
const AGGREGATIONS: [&str; 5] = ["total", "average", "count", "minimum", "maximum"];

/// The resource a metrics path names: the path without `/providers/Microsoft.Insights/metrics`.
pub(crate) fn is_metrics_path(path: &str) -> Option<&str> {
    const SUFFIX: &str = "/providers/microsoft.insights/metrics";
    let trimmed = path.trim_end_matches('/');
    let cut = trimmed.len().checked_sub(SUFFIX.len())?;
    let (resource, suffix) = (trimmed.get(..cut)?, trimmed.get(cut..)?);
    suffix.eq_ignore_ascii_case(SUFFIX).then_some(resource)
}

/// The query parameter `name`, matched without regard to case.
fn param<'a>(query: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Lists the metrics of `resource` (a VPN gateway's id) as the query asks.
pub(crate) fn list_metrics(
    arm: &Arm,
    monitor: &Monitor,
    resource: &str,
    query: &BTreeMap<String, String>,
) -> Result<Value, ArmError> {
    let seed = arm.seeded.seed;
    match param(query, "api-version") {
        Some(METRICS_API) => {}
        Some(other) => {
            return Err(bad(
                "InvalidApiVersionParameter",
                format!(
                    "The api-version '{other}' is invalid. The supported versions are '{METRICS_API}'."
                ),
            ));
        }
        None => {
            return Err(bad(
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            ));
        }
    }
    let Some((location, connections)) = arm.gateway_connections(resource) else {
        return Err(ArmError {
            status: 404,
            code: "ResourceNotFound".into(),
            message: format!(
                "The Resource '{resource}' was not found, or is not a virtual network gateway the twin publishes metrics for."
            ),
        });
    };
    if let Some(ns) = param(query, "metricnamespace")
        && !ns.eq_ignore_ascii_case("Microsoft.Network/virtualNetworkGateways")
    {
        return Err(bad(
            "BadRequest",
            format!(
                "Metric namespace {ns} is not the resource's (Microsoft.Network/virtualNetworkGateways)."
            ),
        ));
    }
    let names = param(query, "metricnames").unwrap_or_default();
    let metrics = names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            METRICS
                .iter()
                .find(|(m, _, _)| m.eq_ignore_ascii_case(n))
                .ok_or_else(|| {
                    bad(
                        "BadRequest",
                        format!(
                            "Failed to find metric configuration for provider: Microsoft.Network, resource Type: virtualNetworkGateways, metric: {n}, Valid metrics: {}",
                            METRICS.map(|m| m.0).join(",")
                        ),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if metrics.is_empty() {
        return Err(bad("BadRequest", "metricnames names no metric."));
    }
    let (start, end) = timespan(param(query, "timespan"))?;
    let auto_adjust =
        param(query, "AutoAdjustTimegrain").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let (grain_name, grain) = grain(param(query, "interval"), auto_adjust)?;
    let aggregations = aggregations(param(query, "aggregation"))?;
    let selected = filter(param(query, "$filter"), &connections)?;
    let top = match param(query, "top") {
        None => 10,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| bad("BadRequest", format!("top {t} is not a number.")))?,
    };
    let grains = grain_starts(start, end, grain);
    let value: Vec<Value> = metrics
        .iter()
        .map(|(name, display, description)| {
            let inbound = *name == "TunnelIngressBytes";
            let increments = |connection: &str| {
                monitor
                    .traffic
                    .get(&connection.to_ascii_lowercase())
                    .map(|(i, e)| (if inbound { i } else { e }).per_period(start, end, grain))
            };
            let series: Vec<Value> = match &selected {
                // One series over every connection of the gateway.
                None => {
                    let mut all: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
                    for c in &connections {
                        for (p, v) in increments(c).unwrap_or_default() {
                            all.entry(p).or_default().extend(v);
                        }
                    }
                    vec![series_value(None, &grains, &all, &aggregations)]
                }
                // A series per connection that published in the timespan, in a seeded order.
                Some(chosen) => {
                    let mut named: Vec<&String> = chosen
                        .iter()
                        .filter(|c| increments(c).is_some_and(|p| !p.is_empty()))
                        .collect();
                    named.sort_by_key(|c| dxvpn_twin_kit::seed::rank(seed, c));
                    named
                        .into_iter()
                        .take(top)
                        .map(|c| {
                            let periods = increments(c).unwrap_or_default();
                            series_value(Some(c), &grains, &periods, &aggregations)
                        })
                        .collect()
                }
            };
            json!({
                "id": format!("{resource}/providers/Microsoft.Insights/metrics/{name}"),
                "type": "Microsoft.Insights/metrics",
                "name": { "value": name, "localizedValue": display },
                "displayDescription": description,
                "unit": "Bytes",
                "timeseries": series,
                "errorCode": "Success",
            })
        })
        .collect();
    Ok(json!({
        "cost": 0,
        "timespan": format!("{}/{}", iso(start), iso(end)),
        "interval": grain_name,
        "namespace": "Microsoft.Network/virtualNetworkGateways",
        "resourceregion": location,
        "value": value,
    }))
}

fn iso(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// `start/end`; absent, the last hour.
fn timespan(text: Option<&str>) -> Result<(SystemTime, SystemTime), ArmError> {
    let Some(text) = text else {
        let now = SystemTime::now();
        return Ok((now - Duration::from_secs(3600), now));
    };
    let invalid = || {
        bad(
            "BadRequest",
            format!(
                "Invalid timespan '{text}': expected 'startDateTime_ISO/endDateTime_ISO' with the start first."
            ),
        )
    };
    let (a, b) = text.split_once('/').ok_or_else(invalid)?;
    let start = humantime::parse_rfc3339_weak(a.trim()).map_err(|_| invalid())?;
    let end = humantime::parse_rfc3339_weak(b.trim()).map_err(|_| invalid())?;
    if start >= end {
        return Err(invalid());
    }
    Ok((start, end))
}

/// The time grain asked for (default PT1M, which these metrics do not have), in seconds.
fn grain(text: Option<&str>, auto_adjust: bool) -> Result<(String, u64), ArmError> {
    let text = text.unwrap_or("PT1M");
    if text.eq_ignore_ascii_case("FULL") {
        return Err(bad(
            "BadRequest",
            "The time grain FULL is not served by the dxvpn Azure twin: name a time grain.",
        ));
    }
    if let Some((name, seconds)) = GRAINS.iter().find(|(g, _)| g.eq_ignore_ascii_case(text)) {
        return Ok(((*name).to_owned(), *seconds));
    }
    let asked = humantime::parse_duration(
        &text
            .trim_start_matches(['P', 'p'])
            .trim_start_matches(['T', 't'])
            .to_ascii_lowercase(),
    )
    .ok()
    .filter(|_| auto_adjust);
    match asked {
        Some(asked) => {
            let closest = GRAINS
                .iter()
                .min_by_key(|(_, s)| s.abs_diff(asked.as_secs()))
                .copied()
                .unwrap_or(("PT5M", 300));
            Ok((closest.0.to_owned(), closest.1))
        }
        None => Err(bad(
            "BadRequest",
            format!(
                "Invalid time grain {text}: this metric supports {}; AutoAdjustTimegrain=true picks the closest.",
                GRAINS.map(|g| g.0).join(", ")
            ),
        )),
    }
}

fn aggregations(text: Option<&str>) -> Result<Vec<String>, ArmError> {
    let Some(text) = text else {
        return Ok(vec!["total".to_owned()]);
    };
    text.split(',')
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| !a.is_empty())
        .map(|a| {
            if AGGREGATIONS.contains(&a.as_str()) {
                Ok(a)
            } else {
                Err(bad(
                    "BadRequest",
                    format!("Unknown aggregation {a}: one of {AGGREGATIONS:?}."),
                ))
            }
        })
        .collect()
}

/// The connections a `$filter` selects: None without one, all for `ConnectionName eq '*'`.
fn filter(text: Option<&str>, connections: &[String]) -> Result<Option<Vec<String>>, ArmError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let invalid = || {
        bad(
            "BadRequest",
            format!(
                "Invalid $filter '{text}': the twin takes ConnectionName eq '<name>' clauses joined by 'or', or ConnectionName eq '*'."
            ),
        )
    };
    let mut chosen = Vec::new();
    for clause in text.split(" or ") {
        let (dimension, value) = clause.trim().split_once(" eq ").ok_or_else(invalid)?;
        if !dimension.trim().eq_ignore_ascii_case("ConnectionName") {
            return Err(invalid());
        }
        let value = value
            .trim()
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .ok_or_else(invalid)?;
        if value == "*" {
            chosen.extend(connections.iter().cloned());
        } else {
            chosen.extend(
                connections
                    .iter()
                    .filter(|c| c.eq_ignore_ascii_case(value))
                    .cloned(),
            );
        }
    }
    chosen.sort();
    chosen.dedup();
    Ok(Some(chosen))
}

/// The start of every grain in [start, end), aligned to the grain since the epoch.
fn grain_starts(start: SystemTime, end: SystemTime, grain: u64) -> Vec<u64> {
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    };
    let step = grain.max(1);
    let first = secs(start) / step * step;
    let last = secs(end);
    let count = last.saturating_sub(first).div_ceil(step).min(MOST_GRAINS);
    (0..count).map(|i| first + i * step).collect()
}

fn series_value(
    connection: Option<&str>,
    grains: &[u64],
    periods: &BTreeMap<u64, Vec<f64>>,
    aggregations: &[String],
) -> Value {
    let data: Vec<Value> = grains
        .iter()
        .map(|g| {
            let mut point = serde_json::Map::new();
            point.insert(
                "timeStamp".into(),
                json!(iso(SystemTime::UNIX_EPOCH + Duration::from_secs(*g))),
            );
            if let Some(values) = periods.get(g).filter(|v| !v.is_empty()) {
                let total: f64 = values.iter().sum();
                let count = values.len() as f64;
                for a in aggregations {
                    let v = match a.as_str() {
                        "total" => total,
                        "count" => count,
                        "average" => total / count,
                        "minimum" => values.iter().copied().fold(f64::MAX, f64::min),
                        _ => values.iter().copied().fold(f64::MIN, f64::max),
                    };
                    point.insert(a.clone(), json!(v));
                }
            }
            Value::Object(point)
        })
        .collect();
    let metadata: Vec<Value> = connection
        .map(|c| {
            json!({
                "name": { "value": "connectionname", "localizedValue": "connectionname" },
                "value": c,
            })
        })
        .into_iter()
        .collect();
    json!({ "metadatavalues": metadata, "data": data })
}
