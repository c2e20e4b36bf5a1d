//! Microsoft.Insights `metricAlerts` (api-version 2018-03-01; azure-rest-api-specs,
//! specification/monitor/resource-manager/Microsoft.Insights/stable/2018-03-01/metricAlert_API.json):
//! Create Or Update answers the rule at once (no long-running operation), Get answers it or
//! 404, Delete answers 200 or, for a rule that is not there, 204, and the resource group's list
//! is one page. The rules the reference states are enforced: `location`, `severity` (0-4),
//! `enabled`, `scopes`, `evaluationFrequency` and `windowSize` from Azure's set, the frequency
//! no longer than the window, criteria of a known `odata.type` with at least one criterion.
//! The twin also refuses a scope that is not a live VPN gateway and a metric the gateway does
//! not publish (Azure refuses both; the wording of its messages is a guess). Rules do not fire
//! in the twin. The list comes in no documented order: a seeded one.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::arm::{Arm, ArmError, bad};

pub(crate) const ALERTS_API: &str = "2018-03-01";
/// `evaluationFrequency` and `windowSize` values, in minutes (ISO 8601 in the body).
const DURATIONS: [(&str, u32); 9] = [
    ("PT1M", 1),
    ("PT5M", 5),
    ("PT15M", 15),
    ("PT30M", 30),
    ("PT1H", 60),
    ("PT6H", 360),
    ("PT12H", 720),
    ("P1D", 1440),
    ("P7D", 10_080),
];
const FREQUENCIES: [&str; 5] = ["PT1M", "PT5M", "PT15M", "PT30M", "PT1H"];
const CRITERIA: [&str; 3] = [
    "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
    "Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria",
    "Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria",
];
/// The VPN gateway's metrics ("Supported metrics for Microsoft.Network/virtualNetworkGateways").
const GATEWAY_METRICS: [&str; 9] = [
    "AverageBandwidth",
    "BgpPeerStatus",
    "BgpRoutesAdvertised",
    "BgpRoutesLearned",
    "TunnelAverageBandwidth",
    "TunnelEgressBytes",
    "TunnelIngressBytes",
    "TunnelEgressPackets",
    "TunnelIngressPackets",
];

/// The metric alert rules, by id in lower case.
#[derive(Debug, Default)]
pub(crate) struct MetricAlerts {
    rules: BTreeMap<String, Value>,
}

/// What a path under `.../providers/Microsoft.Insights/metricAlerts` names: the collection's
/// path and, for one rule, its name.
pub(crate) fn alerts_path(path: &str) -> Option<(String, Option<String>)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let named = |i: usize, what: &str| {
        segments
            .get(i)
            .is_some_and(|s| s.eq_ignore_ascii_case(what))
    };
    if !(named(0, "subscriptions")
        && named(2, "resourceGroups")
        && named(4, "providers")
        && named(5, "Microsoft.Insights")
        && named(6, "metricAlerts"))
    {
        return None;
    }
    let collection = format!("/{}", segments[..7].join("/"));
    match segments.len() {
        7 => Some((collection, None)),
        8 => Some((collection, Some(segments[7].to_owned()))),
        _ => None,
    }
}

impl MetricAlerts {
    /// Serves one call; (status, body).
    pub(crate) fn handle(
        &mut self,
        arm: &Arm,
        method: &str,
        (collection, name): (&str, Option<&str>),
        api_version: Option<&str>,
        body: &[u8],
    ) -> Result<(u16, Value), ArmError> {
        match api_version {
            Some(ALERTS_API) => {}
            Some(other) => {
                return Err(bad(
                    "InvalidApiVersionParameter",
                    format!(
                        "The api-version '{other}' is invalid. The supported versions are '{ALERTS_API}'."
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
        if !collection
            .split('/')
            .nth(4)
            .is_some_and(|rg| rg.eq_ignore_ascii_case(&arm.seeded.resource_group))
        {
            return Err(ArmError {
                status: 404,
                code: "ResourceGroupNotFound".into(),
                message: format!("Resource group of '{collection}' could not be found."),
            });
        }
        let Some(name) = name else {
            if method != "GET" {
                return Err(bad("MethodNotAllowed", format!("{method} on a collection")));
            }
            let mut rules: Vec<&Value> = self.rules.values().collect();
            rules.sort_by_key(|r| dxvpn_twin_kit::seed::rank(arm.seeded.seed, r["id"].as_str()));
            return Ok((200, json!({ "value": rules })));
        };
        let id = format!("{collection}/{name}");
        let key = id.to_ascii_lowercase();
        match method {
            "GET" => self.rules.get(&key).map(|r| (200, r.clone())).ok_or_else(|| ArmError {
                status: 404,
                code: "ResourceNotFound".into(),
                message: format!("The Resource 'Microsoft.Insights/metricAlerts/{name}' under resource group '{}' was not found.", arm.seeded.resource_group),
            }),
            "DELETE" => Ok(match self.rules.remove(&key) {
                Some(_) => (200, Value::Null),
                None => (204, Value::Null),
            }),
            "PUT" => {
                let body: Value = serde_json::from_slice(body)
                    .map_err(|e| bad("InvalidRequestContent", format!("The request content was invalid: {e}")))?;
                let rule = checked(arm, &id, name, body)?;
                self.rules.insert(key, rule.clone());
                Ok((200, rule))
            }
            other => Err(bad("MethodNotAllowed", format!("{other} is not served for metric alerts"))),
        }
    }

    /// Names of the rules, for the inventory.
    pub(crate) fn inventory(&self) -> Value {
        Value::Array(
            self.rules
                .values()
                .map(|r| json!({ "id": r["id"], "tags": r["tags"], "scopes": r["properties"]["scopes"] }))
                .collect(),
        )
    }
}

/// The rule as Azure keeps it, or the first rule the body breaks.
fn checked(arm: &Arm, id: &str, name: &str, body: Value) -> Result<Value, ArmError> {
    let invalid = |m: String| bad("BadRequest", m);
    let Value::Object(mut body) = body else {
        return Err(invalid("The request body is not a JSON object.".into()));
    };
    if body
        .get("location")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(bad(
            "LocationRequired",
            "The location property is required for this definition.",
        ));
    }
    let props = body
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| invalid("properties is required.".into()))?;
    match props.get("severity").and_then(Value::as_i64) {
        Some(0..=4) => {}
        _ => {
            return Err(invalid(
                "properties.severity is required and must be 0 to 4.".into(),
            ));
        }
    }
    if props.get("enabled").and_then(Value::as_bool).is_none() {
        return Err(invalid("properties.enabled is required.".into()));
    }
    let minutes = |key: &str| -> Result<u32, ArmError> {
        let text = props.get(key).and_then(Value::as_str).unwrap_or_default();
        DURATIONS
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(text))
            .map(|(_, m)| *m)
            .ok_or_else(|| {
                invalid(format!(
                    "properties.{key} '{text}' is not one of {:?}.",
                    DURATIONS.map(|d| d.0)
                ))
            })
    };
    let window = minutes("windowSize")?;
    let frequency = minutes("evaluationFrequency")?;
    let frequency_text = props
        .get("evaluationFrequency")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !FREQUENCIES
        .iter()
        .any(|f| f.eq_ignore_ascii_case(frequency_text))
        || frequency > window
    {
        return Err(invalid(format!(
            "properties.evaluationFrequency must be one of {FREQUENCIES:?} and no longer than windowSize."
        )));
    }
    let scopes: Vec<String> = props
        .get("scopes")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if scopes.is_empty() {
        return Err(invalid(
            "properties.scopes needs at least one resource id.".into(),
        ));
    }
    for scope in &scopes {
        if arm.gateway_connections(scope).is_none() {
            return Err(invalid(format!(
                "The scope {scope} is not a virtual network gateway that exists (the dxvpn twin serves alerts on gateways only)."
            )));
        }
    }
    let criteria = props.get("criteria").cloned().unwrap_or(Value::Null);
    let kind = criteria
        .get("odata.type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !CRITERIA.contains(&kind) {
        return Err(invalid(format!(
            "properties.criteria.odata.type '{kind}' is not one of {CRITERIA:?}."
        )));
    }
    let all_of = criteria
        .get("allOf")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if all_of.is_empty() {
        return Err(invalid(
            "properties.criteria.allOf needs at least one criterion.".into(),
        ));
    }
    for c in &all_of {
        let metric = c
            .get("metricName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !GATEWAY_METRICS
            .iter()
            .any(|m| m.eq_ignore_ascii_case(metric))
        {
            return Err(invalid(format!(
                "Couldn't find a metric named {metric}. Make sure the name is correct. Valid metrics: {}",
                GATEWAY_METRICS.join(",")
            )));
        }
        for key in ["name", "operator", "timeAggregation"] {
            if c.get(key).and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(invalid(format!("criterion {metric} needs {key}.")));
            }
        }
        if c.get("threshold").and_then(Value::as_f64).is_none() {
            return Err(invalid(format!("criterion {metric} needs a threshold.")));
        }
    }
    props.entry("autoMitigate").or_insert(json!(true));
    props.entry("actions").or_insert(json!([]));
    props.insert("isMigrated".into(), json!(false));
    props.insert(
        "lastUpdatedTime".into(),
        json!(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()),
    );
    let mut rule = Map::new();
    rule.insert("id".into(), json!(id));
    rule.insert("name".into(), json!(name));
    rule.insert("type".into(), json!("Microsoft.Insights/metricAlerts"));
    for key in ["location", "tags", "properties"] {
        if let Some(v) = body.remove(key) {
            rule.insert(key.into(), v);
        }
    }
    rule.entry("tags").or_insert(json!({}));
    Ok(Value::Object(rule))
}
