//! CloudWatch metric alarms (API 2010-08-01: PutMetricAlarm, DescribeAlarms, DeleteAlarms) over
//! the AWS/VPN `TunnelState` metric that EC2 publishes for every tunnel, evaluated the way
//! CloudWatch evaluates an alarm: per period, M of the last N datapoints, and missing data as
//! `TreatMissingData` says ("Using Amazon CloudWatch alarms", user guide: "Evaluating an
//! alarm", "Configuring how CloudWatch alarms treat missing data"). An alarm's state is
//! computed when it is read, from the tunnel's recorded history, so one time factor scales the
//! periods and nothing runs in the background. `metric_data` serves GetMetricData over the
//! same tunnels; `wire` is the protocol.

mod metric_data;
pub(crate) mod wire;

use metric_data::Traffic;
pub(crate) use metric_data::TunnelSample;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use ciborium::Value;
use dxvpn_twin_kit::scale;
use dxvpn_twin_kit::seed::rank;
use wire::{CwError, map, member, string, strings, text, timestamp};

use crate::iam::ACCOUNT_ID;

/// Statistics a metric alarm may name (PutMetricAlarm `Statistic`).
const STATISTICS: [&str; 5] = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"];
/// The comparisons of a static threshold (PutMetricAlarm `ComparisonOperator`; the anomaly
/// band ones need `ThresholdMetricId`, which the twin does not serve).
const COMPARISONS: [&str; 4] = [
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
];
/// PutMetricAlarm `TreatMissingData`.
const MISSING_DATA: [&str; 4] = ["breaching", "notBreaching", "ignore", "missing"];
/// "An alarm's total current evaluation period can be no longer than seven days, so
/// EvaluationPeriods multiplied by Period cannot be more than 604,800 seconds."
const LONGEST_EVALUATION: i64 = 604_800;
/// DescribeAlarms `MaxRecords`: 1 to 100, default 50.
const PAGE_DEFAULT: usize = 50;

#[derive(Debug, Clone)]
struct Alarm {
    name: String,
    description: Option<String>,
    namespace: String,
    metric: String,
    dimensions: Vec<(String, String)>,
    statistic: String,
    period: i64,
    evaluation_periods: i64,
    datapoints_to_alarm: i64,
    threshold: f64,
    comparison: String,
    treat_missing: String,
    actions_enabled: bool,
    alarm_actions: Vec<String>,
    ok_actions: Vec<String>,
    insufficient_actions: Vec<String>,
    configured_at: SystemTime,
    state: String,
    reason: String,
    state_since: SystemTime,
}

/// TunnelState's history per tunnel: when it changed, and to what (None: no longer
/// published, the VPN connection is gone).
type History = BTreeMap<(String, Ipv4Addr), Vec<(Instant, Option<f64>)>>;

#[derive(Debug)]
pub(crate) struct CloudWatch {
    region: String,
    time_factor: f64,
    seed: u64,
    alarms: BTreeMap<String, Alarm>,
    tunnel_state: History,
    /// Bytes per tunnel, for TunnelDataIn/TunnelDataOut.
    traffic: BTreeMap<(String, Ipv4Addr), Traffic>,
    /// One moment on both clocks: the history is kept in `Instant`s, GetMetricData speaks in
    /// wall time.
    anchor: (Instant, SystemTime),
}

impl CloudWatch {
    pub(crate) fn new(region: &str, time_factor: f64, seed: u64) -> Self {
        CloudWatch {
            region: region.to_owned(),
            time_factor,
            seed,
            alarms: BTreeMap::new(),
            tunnel_state: BTreeMap::new(),
            traffic: BTreeMap::new(),
            anchor: (Instant::now(), SystemTime::now()),
        }
    }

    /// `at` on the wall clock.
    fn wall(&self, at: Instant) -> SystemTime {
        match at.checked_duration_since(self.anchor.0) {
            Some(after) => self.anchor.1 + after,
            None => self.anchor.1 - self.anchor.0.duration_since(at),
        }
    }

    /// The wall-clock moment `at` as an `Instant` (None before the process could have one).
    fn instant(&self, at: SystemTime) -> Option<Instant> {
        match at.duration_since(self.anchor.1) {
            Ok(after) => self.anchor.0.checked_add(after),
            Err(before) => self.anchor.0.checked_sub(before.duration()),
        }
    }

    /// Records each live tunnel's TunnelState (for BGP VPNs 1 only with the session
    /// established, AWS/VPN metrics reference) and byte counters now; tunnels no longer listed
    /// stop publishing.
    pub(crate) fn record_tunnels(&mut self, samples: &[TunnelSample], now: Instant) {
        for (key, history) in &mut self.tunnel_state {
            let listed = samples
                .iter()
                .any(|s| (&s.vpn_id, &s.outside_ip) == (&key.0, &key.1));
            if !listed && history.last().is_some_and(|(_, v)| v.is_some()) {
                history.push((now, None));
            }
        }
        let wall = self.wall(now);
        for s in samples {
            let key = (s.vpn_id.clone(), s.outside_ip);
            let history = self.tunnel_state.entry(key.clone()).or_default();
            if history.last().map(|(_, v)| *v) != Some(Some(s.state)) {
                history.push((now, Some(s.state)));
            }
            self.traffic
                .entry(key)
                .or_default()
                .record(wall, s.bytes_in, s.bytes_out);
        }
    }

    pub(crate) fn inventory(&mut self) -> serde_json::Value {
        let now = Instant::now();
        let names: Vec<String> = self.alarms.keys().cloned().collect();
        for name in &names {
            self.evaluate(name, now);
        }
        let alarms: Vec<serde_json::Value> = self
            .alarms
            .values()
            .map(|a| {
                serde_json::json!({
                    "name": a.name, "metric": a.metric, "state": a.state,
                    "dimensions": a.dimensions, "alarm_actions": a.alarm_actions,
                })
            })
            .collect();
        serde_json::json!({ "alarms": alarms })
    }

    pub(crate) fn handle(
        &mut self,
        operation: &str,
        input: &Value,
    ) -> Result<Option<Value>, CwError> {
        match operation {
            "PutMetricAlarm" => self.put_metric_alarm(input).map(|()| None),
            "DescribeAlarms" => self.describe_alarms(input).map(Some),
            "DeleteAlarms" => self.delete_alarms(input).map(|()| None),
            "GetMetricData" => self.get_metric_data(input).map(Some),
            _ => Err(CwError {
                status: 400,
                code: "UnknownOperationException",
                message: format!("{operation} is not served by the dxvpn AWS twin"),
            }),
        }
    }

    fn put_metric_alarm(&mut self, input: &Value) -> Result<(), CwError> {
        let required = |key: &str| text(input, key).ok_or_else(|| CwError::missing(key));
        let name = required("AlarmName")?;
        if name.is_empty() || name.chars().count() > 255 {
            return Err(CwError::invalid("AlarmName must be 1 to 255 characters"));
        }
        if member(input, "Metrics").is_some() || member(input, "ThresholdMetricId").is_some() {
            return Err(CwError::invalid(
                "metric math and anomaly detection alarms are not served by the dxvpn AWS twin",
            ));
        }
        let namespace = required("Namespace")?;
        let metric = required("MetricName")?;
        let statistic = match (text(input, "Statistic"), text(input, "ExtendedStatistic")) {
            (Some(s), None) if STATISTICS.contains(&s) => s,
            (Some(s), None) => {
                return Err(CwError::invalid(format!(
                    "Statistic {s} is not one of {STATISTICS:?}"
                )));
            }
            (Some(_), Some(_)) => {
                return Err(CwError::combination(
                    "Statistic and ExtendedStatistic cannot both be given",
                ));
            }
            (None, Some(_)) => {
                return Err(CwError::invalid(
                    "ExtendedStatistic (percentiles) is not served by the dxvpn AWS twin",
                ));
            }
            (None, None) => return Err(CwError::missing("Statistic")),
        };
        let period = wire::integer(input, "Period").ok_or_else(|| CwError::missing("Period"))?;
        // "Valid values are 10, 20, 30, and any multiple of 60."
        if !(matches!(period, 10 | 20 | 30) || (period >= 60 && period % 60 == 0)) {
            return Err(CwError::invalid(format!(
                "Period {period} must be 10, 20, 30 or a multiple of 60"
            )));
        }
        let evaluation_periods = wire::integer(input, "EvaluationPeriods")
            .ok_or_else(|| CwError::missing("EvaluationPeriods"))?;
        if evaluation_periods < 1 || evaluation_periods.saturating_mul(period) > LONGEST_EVALUATION
        {
            return Err(CwError::invalid(format!(
                "EvaluationPeriods {evaluation_periods} times Period {period} must be 1 to {LONGEST_EVALUATION} seconds"
            )));
        }
        let datapoints_to_alarm =
            wire::integer(input, "DatapointsToAlarm").unwrap_or(evaluation_periods);
        if !(1..=evaluation_periods).contains(&datapoints_to_alarm) {
            return Err(CwError::invalid(
                "DatapointsToAlarm must be 1 to EvaluationPeriods",
            ));
        }
        let threshold =
            wire::float(input, "Threshold").ok_or_else(|| CwError::missing("Threshold"))?;
        let comparison = required("ComparisonOperator")?;
        if !COMPARISONS.contains(&comparison) {
            return Err(CwError::invalid(format!(
                "ComparisonOperator {comparison} is not one of {COMPARISONS:?}"
            )));
        }
        let treat_missing = text(input, "TreatMissingData").unwrap_or("missing");
        if !MISSING_DATA.contains(&treat_missing) {
            return Err(CwError::invalid(format!(
                "TreatMissingData {treat_missing} is not one of {MISSING_DATA:?}"
            )));
        }
        let actions = |key: &str| -> Result<Vec<String>, CwError> {
            let arns = wire::texts(input, key);
            // "Maximum number of 5 items", each an ARN.
            if arns.len() > 5 || arns.iter().any(|a| !a.starts_with("arn:")) {
                return Err(CwError::invalid(format!(
                    "{key} takes at most 5 ARNs: {arns:?}"
                )));
            }
            Ok(arns)
        };
        let dimensions = wire::maps(input, "Dimensions")
            .into_iter()
            .map(|d| match (text(d, "Name"), text(d, "Value")) {
                (Some(n), Some(v)) => Ok((n.to_owned(), v.to_owned())),
                _ => Err(CwError::invalid("a dimension needs a Name and a Value")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if dimensions.len() > 30 {
            return Err(CwError::invalid("at most 30 dimensions"));
        }
        let now = SystemTime::now();
        // "If you are using this operation to update an existing alarm ... the alarm state is
        // left unchanged"; a new one starts as INSUFFICIENT_DATA and is evaluated.
        let (state, reason, state_since) = match self.alarms.get(name) {
            Some(old) => (old.state.clone(), old.reason.clone(), old.state_since),
            None => (
                "INSUFFICIENT_DATA".to_owned(),
                "Unchecked: Initial alarm creation".to_owned(),
                now,
            ),
        };
        let alarm = Alarm {
            name: name.to_owned(),
            description: text(input, "AlarmDescription").map(str::to_owned),
            namespace: namespace.to_owned(),
            metric: metric.to_owned(),
            dimensions,
            statistic: statistic.to_owned(),
            period,
            evaluation_periods,
            datapoints_to_alarm,
            threshold,
            comparison: comparison.to_owned(),
            treat_missing: treat_missing.to_owned(),
            actions_enabled: wire::boolean(input, "ActionsEnabled").unwrap_or(true),
            alarm_actions: actions("AlarmActions")?,
            ok_actions: actions("OKActions")?,
            insufficient_actions: actions("InsufficientDataActions")?,
            configured_at: now,
            state,
            reason,
            state_since,
        };
        self.alarms.insert(name.to_owned(), alarm);
        Ok(())
    }

    fn describe_alarms(&mut self, input: &Value) -> Result<Value, CwError> {
        let names = wire::texts(input, "AlarmNames");
        let prefix = text(input, "AlarmNamePrefix");
        if !names.is_empty() && prefix.is_some() {
            return Err(CwError::combination(
                "AlarmNames and AlarmNamePrefix cannot both be given",
            ));
        }
        if names.len() > 100 {
            return Err(CwError::invalid("AlarmNames takes at most 100 names"));
        }
        let page = match wire::integer(input, "MaxRecords") {
            None => PAGE_DEFAULT,
            Some(n @ 1..=100) => n as usize,
            Some(n) => return Err(CwError::invalid(format!("MaxRecords {n} must be 1 to 100"))),
        };
        let state_value = text(input, "StateValue");
        // "If you omit this parameter, only metric alarms are returned."
        let types = wire::texts(input, "AlarmTypes");
        let metric_alarms = types.is_empty() || types.iter().any(|t| t == "MetricAlarm");
        let now = Instant::now();
        let mut matching: Vec<String> = self
            .alarms
            .keys()
            .filter(|n| names.is_empty() || names.contains(n))
            .filter(|n| prefix.is_none_or(|p| n.starts_with(p)))
            .cloned()
            .collect();
        for name in &matching {
            self.evaluate(name, now);
        }
        matching.retain(|n| state_value.is_none_or(|s| self.alarms[n].state == s));
        if !metric_alarms {
            matching.clear();
        }
        // The order is not documented: a seeded one, stable from page to page.
        matching.sort_by_key(|n| rank(self.seed, n));
        let start = match text(input, "NextToken") {
            None => 0,
            Some(token) => token
                .strip_prefix("dxvpn-page-")
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n <= matching.len())
                .ok_or_else(|| CwError {
                    status: 400,
                    code: "InvalidNextToken",
                    message: "The service can't find the NextToken you gave".into(),
                })?,
        };
        let end = (start + page).min(matching.len());
        let alarms: Vec<Value> = matching[start..end]
            .iter()
            .map(|n| self.alarm_value(&self.alarms[n]))
            .collect();
        let next = (end < matching.len()).then(|| format!("dxvpn-page-{end}"));
        Ok(map(vec![
            ("MetricAlarms", Some(Value::Array(alarms))),
            ("CompositeAlarms", Some(Value::Array(Vec::new()))),
            ("NextToken", next.as_deref().and_then(string)),
        ]))
    }

    /// "If you specify any incorrect alarm names, the alarms you specify with correct names
    /// are still deleted" (DeleteAlarms); at most 100 names.
    fn delete_alarms(&mut self, input: &Value) -> Result<(), CwError> {
        let names = wire::texts(input, "AlarmNames");
        if names.is_empty() {
            return Err(CwError::missing("AlarmNames"));
        }
        if names.len() > 100 {
            return Err(CwError::invalid("AlarmNames takes at most 100 names"));
        }
        for name in names {
            self.alarms.remove(&name);
        }
        Ok(())
    }

    fn alarm_value(&self, a: &Alarm) -> Value {
        let dimensions = a
            .dimensions
            .iter()
            .map(|(n, v)| map(vec![("Name", string(n)), ("Value", string(v))]))
            .collect();
        map(vec![
            ("AlarmName", string(&a.name)),
            (
                "AlarmArn",
                string(&format!(
                    "arn:aws:cloudwatch:{}:{ACCOUNT_ID}:alarm:{}",
                    self.region, a.name
                )),
            ),
            (
                "AlarmDescription",
                a.description.as_deref().and_then(string),
            ),
            (
                "AlarmConfigurationUpdatedTimestamp",
                timestamp(a.configured_at),
            ),
            ("ActionsEnabled", Some(Value::Bool(a.actions_enabled))),
            ("OKActions", strings(&a.ok_actions)),
            ("AlarmActions", strings(&a.alarm_actions)),
            ("InsufficientDataActions", strings(&a.insufficient_actions)),
            ("StateValue", string(&a.state)),
            ("StateReason", string(&a.reason)),
            ("StateUpdatedTimestamp", timestamp(a.state_since)),
            ("StateTransitionedTimestamp", timestamp(a.state_since)),
            ("MetricName", string(&a.metric)),
            ("Namespace", string(&a.namespace)),
            ("Statistic", string(&a.statistic)),
            ("Dimensions", Some(Value::Array(dimensions))),
            ("Period", Some(Value::Integer(a.period.into()))),
            (
                "EvaluationPeriods",
                Some(Value::Integer(a.evaluation_periods.into())),
            ),
            (
                "DatapointsToAlarm",
                Some(Value::Integer(a.datapoints_to_alarm.into())),
            ),
            ("Threshold", Some(Value::Float(a.threshold))),
            ("ComparisonOperator", string(&a.comparison)),
            ("TreatMissingData", string(&a.treat_missing)),
        ])
    }

    /// The series an alarm watches: AWS/VPN TunnelState of one tunnel (dimensions VpnId and
    /// TunnelIpAddress). The twin publishes no other metric, so any other alarm has no data.
    fn series(&self, a: &Alarm) -> Option<&Vec<(Instant, Option<f64>)>> {
        if a.namespace != "AWS/VPN" || a.metric != "TunnelState" {
            return None;
        }
        let dimension = |name: &str| {
            a.dimensions
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let ip: Ipv4Addr = dimension("TunnelIpAddress")?.parse().ok()?;
        self.tunnel_state.get(&(dimension("VpnId")?.to_owned(), ip))
    }

    /// The alarm's state now, from its last `evaluation_periods` periods (newest first).
    fn evaluate(&mut self, name: &str, now: Instant) {
        let Some(a) = self.alarms.get(name) else {
            return;
        };
        let period = scale(
            Duration::from_secs(a.period.unsigned_abs()),
            self.time_factor,
        )
        .max(Duration::from_millis(1));
        let datapoints: Vec<Option<f64>> = (0..a.evaluation_periods)
            .map(|i| {
                let i = u32::try_from(i).unwrap_or(u32::MAX);
                let end = now.checked_sub(period.saturating_mul(i))?;
                let start = end.checked_sub(period)?;
                datapoint(self.series(a)?, start, end, &a.statistic)
            })
            .collect();
        let breaches = |v: f64| match a.comparison.as_str() {
            "GreaterThanOrEqualToThreshold" => v >= a.threshold,
            "GreaterThanThreshold" => v > a.threshold,
            "LessThanThreshold" => v < a.threshold,
            _ => v <= a.threshold,
        };
        let present = datapoints.iter().flatten().count();
        let missing_breaches = a.treat_missing == "breaching";
        let breaching = datapoints
            .iter()
            .filter(|d| d.map_or(missing_breaches, breaches))
            .count() as i64;
        // The reasons' wording follows CloudWatch's console text only roughly (a guess): no
        // client should parse it, and ours does not.
        let (state, reason) = if present == 0
            && matches!(a.treat_missing.as_str(), "missing" | "ignore")
        {
            if a.treat_missing == "ignore" {
                (a.state.clone(), a.reason.clone())
            } else {
                (
                    "INSUFFICIENT_DATA".to_owned(),
                    format!(
                        "Insufficient Data: {} datapoints were unknown.",
                        datapoints.len()
                    ),
                )
            }
        } else if breaching >= a.datapoints_to_alarm {
            (
                "ALARM".to_owned(),
                format!(
                    "Threshold Crossed: {breaching} out of the last {} datapoints crossed the threshold ({}) with {} ({} datapoints for OK -> ALARM transition).",
                    a.evaluation_periods, a.threshold, a.comparison, a.datapoints_to_alarm
                ),
            )
        } else {
            (
                "OK".to_owned(),
                format!(
                    "Threshold Crossed: {breaching} out of the last {} datapoints crossed the threshold ({}).",
                    a.evaluation_periods, a.threshold
                ),
            )
        };
        if let Some(a) = self.alarms.get_mut(name)
            && a.state != state
        {
            a.state = state;
            a.reason = reason;
            a.state_since = SystemTime::now();
        }
    }
}

/// The statistic of a series over [start, end): the value in effect at `start` and every value
/// it took until `end`; None when nothing was published then.
fn datapoint(
    series: &[(Instant, Option<f64>)],
    start: Instant,
    end: Instant,
    statistic_name: &str,
) -> Option<f64> {
    let at_start = series
        .iter()
        .rev()
        .find(|(t, _)| *t <= start)
        .and_then(|(_, v)| *v);
    let values: Vec<f64> = at_start
        .into_iter()
        .chain(
            series
                .iter()
                .filter(|(t, _)| *t > start && *t < end)
                .filter_map(|(_, v)| *v),
        )
        .collect();
    statistic(&values, statistic_name)
}

/// A statistic of the values published in one period; None when none was.
fn statistic(values: &[f64], statistic: &str) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    Some(match statistic {
        "Maximum" => values.iter().copied().fold(f64::MIN, f64::max),
        "Minimum" => values.iter().copied().fold(f64::MAX, f64::min),
        "Sum" => values.iter().sum(),
        "SampleCount" => n,
        _ => values.iter().sum::<f64>() / n,
    })
}
