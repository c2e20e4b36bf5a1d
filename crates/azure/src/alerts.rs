//! The tunnel and traffic alerts (`Spec::TunnelAlert`, `Spec::TrafficAlert`) and the action
//! group they tell (`Spec::ActionGroup`,
//! e-mail receivers for `alerts.emails`): an Azure Monitor metric alert per tunnel on the VPN
//! gateway's `BgpPeerStatus` for the tunnel's BGP peer, Azure's counterpart of the CloudWatch
//! alarm on TunnelState. Microsoft.Insights `metricAlerts` (api-version 2018-03-01, a global
//! resource in the deployment's resource group) are written as JSON: no crate of the owner's
//! set has their models. The PUT is synchronous (no long-running operation), the rest is the
//! generic path of every JSON kind: read by name, written when missing or different, deleted
//! and awaited until a GET answers 404, and listed for strays by the `dxvpn:deployment` tag.

use dxvpn_plan::Plan;
use dxvpn_plan::model::{Resource, Spec};
use serde_json::{Value, json};

use crate::{Azure, AzureError, Kind};

/// The api-version of Microsoft.Insights/metricAlerts.
pub(crate) const METRIC_ALERTS_API_VERSION: &str = "2018-03-01";
/// The api-version of Microsoft.Insights/actionGroups.
pub(crate) const ACTION_GROUPS_API_VERSION: &str = "2023-01-01";

/// The gateway's metric namespace.
const NAMESPACE: &str = "Microsoft.Network/virtualNetworkGateways";

impl Azure {
    /// The body of the metric alert of `resource`: on the plan's gateway, telling the action
    /// group dxvpn makes when the plan has one.
    pub(crate) fn alert_body(&self, plan: &Plan, resource: &Resource) -> Result<Value, AzureError> {
        if plan.resource("azure.vpn_gateway").is_none() {
            return Err(AzureError::Api {
                role: resource.role.clone(),
                operation: "PUT metricAlerts".into(),
                code: "NoGateway".into(),
                message: "the plan has no VPN gateway to watch".into(),
                transient: false,
            });
        }
        let gateway_id = self.gateway_id(plan);
        let own_group = plan
            .resource(dxvpn_plan::model::ACTION_GROUP_ROLE)
            .map(|g| {
                self.ids
                    .of_provider("Microsoft.Insights", Kind::ActionGroup.type_path(), &g.name)
            });
        Ok(metric_alert(resource, &gateway_id, own_group.as_deref()))
    }
}

/// `PT5M`, `PT1H`, `P1D`: a window of whole minutes as ISO 8601.
fn iso_minutes(minutes: u32) -> String {
    match minutes {
        m if m % 1440 == 0 => format!("P{}D", m / 1440),
        m if m % 60 == 0 => format!("PT{}H", m / 60),
        m => format!("PT{m}M"),
    }
}

/// The body of the alert of `resource` on the gateway `gateway_id`; `own_group` is the id of
/// the action group dxvpn makes, when the plan has one. A tunnel alert watches BgpPeerStatus
/// of the tunnel's peer, Maximum over the gateway's instances (the instance that holds the
/// session says 1), below 1 for the whole window; a traffic alert watches TunnelIngressBytes of
/// the tunnel's connection, Total at 0. Both are evaluated every five minutes, the gateway's
/// grain, and resolve by themselves (`autoMitigate`).
pub(crate) fn metric_alert(
    resource: &Resource,
    gateway_id: &str,
    own_group: Option<&str>,
) -> Value {
    let criterion = |name: &str, metric: &str, dimension: (&str, &str), test: (&str, f64, &str)| {
        json!({
            "criterionType": "StaticThresholdCriterion",
            "name": name,
            "metricName": metric,
            "metricNamespace": NAMESPACE,
            "dimensions": [{ "name": dimension.0, "operator": "Include", "values": [dimension.1] }],
            "operator": test.0,
            "threshold": test.1,
            "timeAggregation": test.2,
        })
    };
    let (description, criterion, window, groups, notify) = match &resource.spec {
        Spec::TunnelAlert {
            tunnel,
            peer,
            window_minutes,
            action_groups,
            notify_action_group,
        } => (
            format!(
                "dxvpn: tunnel {tunnel}'s BGP session with {peer} has been down for {window_minutes} minutes"
            ),
            criterion(
                "bgp-peer-down",
                "BgpPeerStatus",
                ("BgpPeerAddress", &peer.to_string()),
                ("LessThan", 1.0, "Maximum"),
            ),
            window_minutes,
            action_groups,
            notify_action_group,
        ),
        Spec::TrafficAlert {
            tunnel,
            connection,
            window_minutes,
            action_groups,
            notify_action_group,
        } => (
            format!(
                "dxvpn: tunnel {tunnel} ({connection}) has brought no bytes in for {window_minutes} minutes"
            ),
            criterion(
                "no-ingress",
                "TunnelIngressBytes",
                ("ConnectionName", connection),
                ("LessThanOrEqual", 0.0, "Total"),
            ),
            window_minutes,
            action_groups,
            notify_action_group,
        ),
        _ => return Value::Null,
    };
    let actions: Vec<Value> = groups
        .iter()
        .map(String::as_str)
        .chain(own_group.filter(|_| *notify))
        .map(|id| json!({ "actionGroupId": id }))
        .collect();
    json!({
        "location": "global",
        "tags": resource.tags,
        "properties": {
            "description": description,
            "severity": 1,
            "enabled": true,
            "scopes": [gateway_id],
            "evaluationFrequency": "PT5M",
            "windowSize": iso_minutes(*window),
            "criteria": {
                "odata.type": "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                "allOf": [criterion],
            },
            "autoMitigate": true,
            "actions": actions,
        },
    })
}

/// The body of the action group of `resource`: global (action groups are), an e-mail
/// receiver per address, in the common alert schema.
pub(crate) fn action_group(resource: &Resource) -> Value {
    let Spec::ActionGroup { short_name, emails } = &resource.spec else {
        return Value::Null;
    };
    let receivers: Vec<Value> = emails
        .iter()
        .enumerate()
        .map(|(i, email)| {
            json!({
                "name": format!("email-{}", i + 1),
                "emailAddress": email,
                "useCommonAlertSchema": true,
            })
        })
        .collect();
    json!({
        "location": "Global",
        "tags": resource.tags,
        "properties": {
            "groupShortName": short_name,
            "enabled": true,
            "emailReceivers": receivers,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_written_as_iso_durations() {
        assert_eq!(iso_minutes(5), "PT5M");
        assert_eq!(iso_minutes(15), "PT15M");
        assert_eq!(iso_minutes(60), "PT1H");
        assert_eq!(iso_minutes(720), "PT12H");
        assert_eq!(iso_minutes(1440), "P1D");
    }
}
