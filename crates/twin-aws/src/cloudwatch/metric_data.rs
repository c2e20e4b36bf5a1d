//! GetMetricData over the metrics EC2 publishes for each tunnel in AWS/VPN: `TunnelState`,
//! `TunnelDataIn` ("The bytes received on the AWS side of the connection through the VPN
//! tunnel from a customer gateway") and `TunnelDataOut` ("The bytes sent from the AWS side of
//! the connection through the VPN tunnel to the customer gateway"), Site-to-Site VPN user
//! guide, "Monitoring with CloudWatch". Datapoints are per period, aligned to multiples of the
//! period since the epoch; a period with nothing published has no datapoint; "VPN metric data
//! is automatically sent to CloudWatch as it becomes available", so the current period's
//! datapoint grows until it ends. Unlike alarms, periods are not scaled by the time factor:
//! GetMetricData names real timestamps. Request rules from the GetMetricData API reference.

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use ciborium::Value;
use dxvpn_twin_kit::counters::Increments;

use super::wire::{self, CwError, map, member, string, text, timestamp};
use super::{CloudWatch, datapoint, statistic};

/// One tunnel as EC2 publishes it at one moment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TunnelSample {
    pub(crate) vpn_id: String,
    pub(crate) outside_ip: Ipv4Addr,
    /// `TunnelState`: 1 or 0.
    pub(crate) state: f64,
    /// AWS's end's byte counters so far (a fall is a reset).
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
}

/// The bytes through one tunnel, in and out.
#[derive(Debug, Default)]
pub(super) struct Traffic {
    bytes_in: Increments,
    bytes_out: Increments,
}

impl Traffic {
    pub(super) fn record(&mut self, now: SystemTime, bytes_in: u64, bytes_out: u64) {
        self.bytes_in.record(now, bytes_in);
        self.bytes_out.record(now, bytes_out);
    }
}

/// "MaxDatapoints: ... If you omit this, the default of 100,800 is used."
const MAX_DATAPOINTS_DEFAULT: usize = 100_800;
/// "A single GetMetricData call can include as many as 500 MetricDataQuery structures."
const MAX_QUERIES: usize = 500;
/// MetricStat `Stat`: the statistics the twin computes (percentiles are not served).
const STATS: [&str; 5] = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"];

struct Query<'a> {
    id: &'a str,
    label: String,
    return_data: bool,
    namespace: &'a str,
    metric: &'a str,
    dimensions: Vec<(&'a str, &'a str)>,
    period: u64,
    stat: &'a str,
}

impl CloudWatch {
    pub(super) fn get_metric_data(&self, input: &Value) -> Result<Value, CwError> {
        let start = wire::time(input, "StartTime").ok_or_else(|| CwError::missing("StartTime"))?;
        let end = wire::time(input, "EndTime").ok_or_else(|| CwError::missing("EndTime"))?;
        if start >= end {
            return Err(CwError::invalid(
                "The parameter StartTime must be less than the parameter EndTime.",
            ));
        }
        let descending = match text(input, "ScanBy") {
            None | Some("TimestampDescending") => true,
            Some("TimestampAscending") => false,
            Some(other) => {
                return Err(CwError::invalid(format!(
                    "ScanBy {other} is not TimestampDescending or TimestampAscending"
                )));
            }
        };
        let max = match wire::integer(input, "MaxDatapoints") {
            None => MAX_DATAPOINTS_DEFAULT,
            Some(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
            Some(n) => {
                return Err(CwError::invalid(format!(
                    "MaxDatapoints {n} must be at least 1"
                )));
            }
        };
        let skip = match text(input, "NextToken") {
            None => 0,
            Some(token) => token
                .strip_prefix("dxvpn-datapoint-")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| CwError {
                    status: 400,
                    code: "InvalidNextToken",
                    message: "The service can't find the NextToken you gave".into(),
                })?,
        };
        let queries = wire::maps(input, "MetricDataQueries")
            .into_iter()
            .map(query)
            .collect::<Result<Vec<_>, _>>()?;
        if queries.is_empty() {
            return Err(CwError::missing("MetricDataQueries"));
        }
        if queries.len() > MAX_QUERIES {
            return Err(CwError::invalid(format!(
                "MetricDataQueries takes at most {MAX_QUERIES} queries"
            )));
        }
        for (i, q) in queries.iter().enumerate() {
            if queries[..i].iter().any(|o| o.id == q.id) {
                return Err(CwError::invalid(format!("The Id {} is used twice", q.id)));
            }
        }
        // Datapoints are paged over the queries in order: a token says how many went before.
        let (mut seen, mut left) = (0usize, max);
        let mut results = Vec::new();
        let mut more = false;
        for q in queries.iter().filter(|q| q.return_data) {
            let mut points = self.datapoints(q, start, end);
            if descending {
                points.reverse();
            }
            let first = skip.saturating_sub(seen).min(points.len());
            seen += points.len();
            let taken: Vec<_> = points[first..].iter().take(left).copied().collect();
            left -= taken.len();
            let partial = first + taken.len() < points.len();
            more |= partial;
            results.push(map(vec![
                ("Id", string(q.id)),
                ("Label", string(&q.label)),
                (
                    "Timestamps",
                    Some(Value::Array(
                        taken.iter().filter_map(|(t, _)| timestamp(*t)).collect(),
                    )),
                ),
                (
                    "Values",
                    Some(Value::Array(
                        taken.iter().map(|(_, v)| Value::Float(*v)).collect(),
                    )),
                ),
                (
                    "StatusCode",
                    string(if partial { "PartialData" } else { "Complete" }),
                ),
            ]));
        }
        let next = more.then(|| format!("dxvpn-datapoint-{}", skip + (max - left)));
        Ok(map(vec![
            ("MetricDataResults", Some(Value::Array(results))),
            ("Messages", Some(Value::Array(Vec::new()))),
            ("NextToken", next.as_deref().and_then(string)),
        ]))
    }

    /// The query's datapoints in [start, end), oldest first. Only AWS/VPN's per-tunnel series
    /// (dimensions VpnId and TunnelIpAddress) have data in the twin.
    fn datapoints(
        &self,
        q: &Query<'_>,
        start: SystemTime,
        end: SystemTime,
    ) -> Vec<(SystemTime, f64)> {
        let dimension = |name: &str| {
            q.dimensions
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v)
        };
        let (Some(vpn), Some(ip)) = (dimension("VpnId"), dimension("TunnelIpAddress")) else {
            return Vec::new();
        };
        let Ok(ip) = ip.parse::<Ipv4Addr>() else {
            return Vec::new();
        };
        if q.namespace != "AWS/VPN" || q.dimensions.len() != 2 {
            return Vec::new();
        }
        let key = (vpn.to_owned(), ip);
        let period = Duration::from_secs(q.period);
        let buckets =
            |from: SystemTime| buckets(from.max(start), end.min(SystemTime::now()), period);
        match q.metric {
            "TunnelState" => {
                let Some(history) = self.tunnel_state.get(&key) else {
                    return Vec::new();
                };
                let Some(first) = history.first().map(|(t, _)| self.wall(*t)) else {
                    return Vec::new();
                };
                buckets(first)
                    .into_iter()
                    .filter_map(|b| {
                        let value = datapoint(
                            history,
                            self.instant(b)?,
                            self.instant(b + period)?,
                            q.stat,
                        )?;
                        Some((b, value))
                    })
                    .collect()
            }
            "TunnelDataIn" | "TunnelDataOut" => {
                let Some(traffic) = self.traffic.get(&key) else {
                    return Vec::new();
                };
                let counter = if q.metric == "TunnelDataIn" {
                    &traffic.bytes_in
                } else {
                    &traffic.bytes_out
                };
                counter
                    .per_period(start, end, q.period)
                    .into_iter()
                    .filter_map(|(s, values)| {
                        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(s);
                        Some((at, statistic(&values, q.stat)?))
                    })
                    .collect()
            }
            _ => Vec::new(),
        }
    }
}

/// The starts of the periods that overlap [from, to), each a multiple of `period` since the
/// epoch.
fn buckets(from: SystemTime, to: SystemTime, period: Duration) -> Vec<SystemTime> {
    let epoch = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    };
    let step = period.as_secs().max(1);
    let first = epoch(from) / step * step;
    (first..epoch(to).max(first))
        .step_by(usize::try_from(step).unwrap_or(usize::MAX))
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
        .collect()
}

/// One MetricDataQuery, checked as the API reference says.
fn query(q: &Value) -> Result<Query<'_>, CwError> {
    let id = text(q, "Id").ok_or_else(|| CwError::missing("MetricDataQueries.member.Id"))?;
    // "The first character must be a lowercase letter", then letters, numbers and underscores.
    let well_formed = id.len() <= 255
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !well_formed {
        return Err(CwError::invalid(format!(
            "The Id {id} must start with a lowercase letter and hold only letters, numbers and underscores"
        )));
    }
    if member(q, "Expression").is_some() {
        return Err(CwError::invalid(
            "metric math expressions are not served by the dxvpn AWS twin",
        ));
    }
    let stat_of = member(q, "MetricStat").ok_or_else(|| {
        CwError::invalid(format!(
            "The query {id} needs a MetricStat or an Expression"
        ))
    })?;
    let metric = member(stat_of, "Metric").ok_or_else(|| CwError::missing("MetricStat.Metric"))?;
    let period =
        wire::integer(stat_of, "Period").ok_or_else(|| CwError::missing("MetricStat.Period"))?;
    // "Valid values are 1, 5, 10, 20, 30, 60, and any multiple of 60."
    if !(matches!(period, 1 | 5 | 10 | 20 | 30) || (period >= 60 && period % 60 == 0)) {
        return Err(CwError::invalid(format!(
            "Period {period} must be 1, 5, 10, 20, 30 or a multiple of 60"
        )));
    }
    let stat = text(stat_of, "Stat").ok_or_else(|| CwError::missing("MetricStat.Stat"))?;
    if !STATS.contains(&stat) {
        return Err(CwError::invalid(format!(
            "Stat {stat} is not one the dxvpn AWS twin computes ({STATS:?})"
        )));
    }
    let dimensions = wire::maps(metric, "Dimensions")
        .into_iter()
        .map(|d| match (text(d, "Name"), text(d, "Value")) {
            (Some(n), Some(v)) => Ok((n, v)),
            _ => Err(CwError::invalid("a dimension needs a Name and a Value")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let metric_name =
        text(metric, "MetricName").ok_or_else(|| CwError::missing("Metric.MetricName"))?;
    Ok(Query {
        id,
        label: text(q, "Label").unwrap_or(metric_name).to_owned(),
        return_data: wire::boolean(q, "ReturnData").unwrap_or(true),
        namespace: text(metric, "Namespace").ok_or_else(|| CwError::missing("Metric.Namespace"))?,
        metric: metric_name,
        dimensions,
        period: period.unsigned_abs(),
        stat,
    })
}
