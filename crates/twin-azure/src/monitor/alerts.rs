//! Microsoft.Insights `metricAlerts` (api-version 2018-03-01; azure-rest-api-specs,
//! specification/monitor/resource-manager/Microsoft.Insights/stable/2018-03-01/metricAlert_API.json):
//! Create Or Update answers the rule at once (no long-running operation), Get answers it or
//! 404, Delete answers 200 or, for a rule that is not there, 204, and the resource group's list
//! is one page. The rules the reference states are enforced: `location`, `severity` (0-4),
//! `enabled`, `scopes`, `evaluationFrequency` and `windowSize` from Azure's set, the frequency
//! no longer than the window, criteria of a known `odata.type` with at least one criterion.
//! The twin also refuses a scope that is not a live VPN gateway and a metric the gateway does
//! not publish (Azure refuses both; the wording of its messages is a guess). Rules do not fire
//! in the twin. Action groups (`actionGroups`, 2023-01-01) are kept the same way: global, a
//! short name of at most 12 characters, e-mail receivers with unique names. Lists come in no
//! documented order: a seeded one.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::arm::{Arm, ArmError, bad};

pub(crate) const ALERTS_API: &str = "2018-03-01";
/// Microsoft.Insights/actionGroups (azure-rest-api-specs, .../stable/2023-01-01/actionGroups_API.json).
pub(crate) const ACTION_GROUPS_API: &str = "2023-01-01";
/// "groupShortName: The short name of the action group. This will be used in SMS messages",
/// at most 12 characters.
const SHORT_NAME_MAX: usize = 12;
/// An action group takes at most 1000 e-mail receivers (Azure Monitor service limits).
const EMAIL_RECEIVERS_MAX: usize = 1000;
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

/// The Microsoft.Insights resources the twin keeps: metric alert rules and action groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InsightsType {
    MetricAlert,
    ActionGroup,
}

impl InsightsType {
    pub(crate) fn path(self) -> &'static str {
        match self {
            InsightsType::MetricAlert => "metricAlerts",
            InsightsType::ActionGroup => "actionGroups",
        }
    }

    /// The api-version served: metricAlerts' 2018-03-01, actionGroups' 2023-01-01.
    fn api(self) -> &'static str {
        match self {
            InsightsType::MetricAlert => ALERTS_API,
            InsightsType::ActionGroup => ACTION_GROUPS_API,
        }
    }
}

/// The rules and the action groups, by id in lower case.
#[derive(Debug, Default)]
pub(crate) struct MetricAlerts {
    rules: BTreeMap<String, Value>,
    groups: BTreeMap<String, Value>,
}

/// What a path under `.../providers/Microsoft.Insights/{metricAlerts|actionGroups}` names: the
/// type, the collection's path and, for one resource, its name.
pub(crate) fn alerts_path(path: &str) -> Option<(InsightsType, String, Option<String>)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let named = |i: usize, what: &str| {
        segments
            .get(i)
            .is_some_and(|s| s.eq_ignore_ascii_case(what))
    };
    if !(named(0, "subscriptions")
        && named(2, "resourceGroups")
        && named(4, "providers")
        && named(5, "Microsoft.Insights"))
    {
        return None;
    }
    let kind = if named(6, "metricAlerts") {
        InsightsType::MetricAlert
    } else if named(6, "actionGroups") {
        InsightsType::ActionGroup
    } else {
        return None;
    };
    let collection = format!("/{}", segments[..7].join("/"));
    match segments.len() {
        7 => Some((kind, collection, None)),
        8 => Some((kind, collection, Some(segments[7].to_owned()))),
        _ => None,
    }
}

impl MetricAlerts {
    /// Serves one call; (status, body).
    pub(crate) fn handle(
        &mut self,
        arm: &Arm,
        method: &str,
        (kind, collection, name): (InsightsType, &str, Option<&str>),
        api_version: Option<&str>,
        body: &[u8],
    ) -> Result<(u16, Value), ArmError> {
        match api_version {
            Some(v) if v == kind.api() => {}
            Some(other) => {
                return Err(bad(
                    "InvalidApiVersionParameter",
                    format!(
                        "The api-version '{other}' is invalid. The supported versions are '{}'.",
                        kind.api()
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
        let store = match kind {
            InsightsType::MetricAlert => &mut self.rules,
            InsightsType::ActionGroup => &mut self.groups,
        };
        let Some(name) = name else {
            if method != "GET" {
                return Err(bad("MethodNotAllowed", format!("{method} on a collection")));
            }
            let mut rules: Vec<&Value> = store.values().collect();
            rules.sort_by_key(|r| dxvpn_twin_kit::seed::rank(arm.seeded.seed, r["id"].as_str()));
            return Ok((200, json!({ "value": rules })));
        };
        let id = format!("{collection}/{name}");
        let key = id.to_ascii_lowercase();
        match method {
            "GET" => store.get(&key).map(|r| (200, r.clone())).ok_or_else(|| ArmError {
                status: 404,
                code: "ResourceNotFound".into(),
                message: format!("The Resource 'Microsoft.Insights/{}/{name}' under resource group '{}' was not found.", kind.path(), arm.seeded.resource_group),
            }),
            "DELETE" => Ok(match store.remove(&key) {
                Some(_) => (200, Value::Null),
                None => (204, Value::Null),
            }),
            "PUT" => {
                let body: Value = serde_json::from_slice(body)
                    .map_err(|e| bad("InvalidRequestContent", format!("The request content was invalid: {e}")))?;
                let resource = match kind {
                    InsightsType::MetricAlert => checked(arm, &id, name, body)?,
                    InsightsType::ActionGroup => checked_group(&id, name, body)?,
                };
                store.insert(key, resource.clone());
                Ok((200, resource))
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

    /// The action groups, for the inventory.
    pub(crate) fn groups_inventory(&self) -> Value {
        Value::Array(
            self.groups
                .values()
                .map(|g| {
                    let receivers = g["properties"]["emailReceivers"].as_array().map(Vec::len);
                    json!({ "id": g["id"], "tags": g["tags"], "email_receivers": receivers })
                })
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
    Ok(kept_as_resource(
        id,
        name,
        "Microsoft.Insights/metricAlerts",
        body,
    ))
}

/// A resource as ARM answers it: id, name and type, then the body's location, tags (empty
/// when none) and properties.
fn kept_as_resource(id: &str, name: &str, type_name: &str, mut body: Map<String, Value>) -> Value {
    let mut resource = Map::new();
    resource.insert("id".into(), json!(id));
    resource.insert("name".into(), json!(name));
    resource.insert("type".into(), json!(type_name));
    for key in ["location", "tags", "properties"] {
        if let Some(v) = body.remove(key) {
            resource.insert(key.into(), v);
        }
    }
    resource.entry("tags").or_insert(json!({}));
    Value::Object(resource)
}

/// The action group as Azure keeps it, or the first rule the body breaks: global, a short
/// name of at most 12 characters, `enabled`, e-mail receivers each with a unique name and an
/// address (each answered with `status: Enabled`).
fn checked_group(id: &str, name: &str, body: Value) -> Result<Value, ArmError> {
    let invalid = |m: String| bad("BadRequest", m);
    let Value::Object(mut body) = body else {
        return Err(invalid("The request body is not a JSON object.".into()));
    };
    if !body
        .get("location")
        .and_then(Value::as_str)
        .is_some_and(|l| l.eq_ignore_ascii_case("global"))
    {
        return Err(bad(
            "LocationNotAvailableForResourceType",
            "An action group's location is Global.",
        ));
    }
    let props = body
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| invalid("properties is required.".into()))?;
    let short = props
        .get("groupShortName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if short.is_empty() || short.chars().count() > SHORT_NAME_MAX {
        return Err(invalid(format!(
            "properties.groupShortName '{short}' must be 1 to {SHORT_NAME_MAX} characters."
        )));
    }
    if props.get("enabled").and_then(Value::as_bool).is_none() {
        return Err(invalid("properties.enabled is required.".into()));
    }
    let receivers = props
        .get_mut("emailReceivers")
        .and_then(Value::as_array_mut)
        .map(std::mem::take)
        .unwrap_or_default();
    if receivers.len() > EMAIL_RECEIVERS_MAX {
        return Err(invalid(format!(
            "at most {EMAIL_RECEIVERS_MAX} emailReceivers."
        )));
    }
    let mut names: Vec<String> = Vec::new();
    let mut kept = Vec::new();
    for mut r in receivers {
        let receiver = r
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let address = r
            .get("emailAddress")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if receiver.is_empty() || !address.contains('@') {
            return Err(invalid(
                "each email receiver needs a name and an emailAddress.".into(),
            ));
        }
        if names.iter().any(|n| n.eq_ignore_ascii_case(&receiver)) {
            return Err(invalid(format!(
                "the receiver name {receiver} is used twice."
            )));
        }
        names.push(receiver);
        if let Some(r) = r.as_object_mut() {
            r.insert("status".into(), json!("Enabled"));
        }
        kept.push(r);
    }
    props.insert("emailReceivers".into(), Value::Array(kept));
    Ok(kept_as_resource(
        id,
        name,
        "Microsoft.Insights/ActionGroups",
        body,
    ))
}
