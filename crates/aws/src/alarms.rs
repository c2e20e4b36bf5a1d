//! The tunnel alarms (`Spec::TunnelAlarm`): a CloudWatch metric alarm per tunnel on AWS/VPN
//! `TunnelState` (dimensions VpnId and TunnelIpAddress), Maximum over one-minute periods below
//! 1, for as many periods as the plan lets a tunnel be down; missing data counts as down, since
//! a tunnel that publishes nothing carries nothing. AWS's guidance: "traffic metrics alone do
//! not tell that a tunnel is alive; alarm on TunnelState per tunnel" (Site-to-Site VPN user
//! guide, "Monitoring your Site-to-Site VPN connection").
//!
//! Alarms have no tags to look up by and no id: they are found by name, which carries the
//! deployment and the VPC (alarm names are unique per account and region), and PutMetricAlarm
//! creates or overwrites by name, so a retry never duplicates one.

use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, MetricAlarm, Statistic, Tag as AlarmTag,
};
use dxvpn_plan::model::{Resource, Spec};
use dxvpn_plan::{Drift, FieldChange, MissingInput, Outputs, Plan};

use crate::drift::Stray;
use crate::snapshot::Snapshot;
use crate::{Aws, AwsError, api};

/// The plan's kind name of a tunnel alarm.
pub(crate) const KIND: &str = "tunnel_alarm";

/// Every alarm of this deployment in this VPC starts so.
pub(crate) fn prefix(plan: &Plan) -> String {
    format!("dxvpn-{}-{}-", plan.name, plan.aws.vpc_id)
}

/// The alarm's name: `dxvpn-<deployment>-<vpc>-<tunnel>-tunnel-down`.
pub(crate) fn alarm_name(plan: &Plan, tunnel: &str) -> String {
    format!("{}{tunnel}-tunnel-down", prefix(plan))
}

/// What the alarm of `resource` must be.
struct Wanted {
    name: String,
    vpn_id: String,
    outside_ip: String,
    minutes: u32,
    actions: Vec<String>,
}

impl Wanted {
    fn of(plan: &Plan, resource: &Resource, outputs: &Outputs) -> Result<Self, AwsError> {
        let role = resource.role.as_str();
        let Spec::TunnelAlarm {
            tunnel,
            minutes,
            actions,
            notify_alert_topic,
        } = &resource.spec
        else {
            return Err(AwsError::Api {
                role: role.to_owned(),
                action: "PutMetricAlarm",
                code: "NotAnAlarm".into(),
                message: "not a tunnel alarm".into(),
            });
        };
        let t = plan
            .tunnels
            .iter()
            .find(|t| t.key == *tunnel)
            .ok_or_else(|| MissingInput {
                role: role.to_owned(),
                from: tunnel.clone(),
                output: "tunnel".into(),
            })?;
        let connection = t.connection_role();
        Ok(Wanted {
            name: alarm_name(plan, tunnel),
            vpn_id: outputs.need(role, &connection, "id")?,
            outside_ip: outputs.need(
                role,
                &connection,
                crate::tunnels::outside_ip_output(t.pairing.aws_tunnel),
            )?,
            minutes: *minutes,
            actions: {
                let mut all = actions.clone();
                if *notify_alert_topic {
                    let topic = dxvpn_plan::model::ALERT_TOPIC_ROLE;
                    all.push(outputs.need(role, topic, "arn")?);
                }
                all
            },
        })
    }

    /// The fields of `alarm` that differ from this, as `diff` shows them.
    fn changes(&self, alarm: &MetricAlarm) -> Vec<FieldChange> {
        let dimension = |name: &str| {
            alarm
                .dimensions()
                .iter()
                .find(|d| d.name() == Some(name))
                .and_then(|d| d.value())
                .unwrap_or_default()
                .to_owned()
        };
        let mut changes = Vec::new();
        let mut differs = |path: &str, from: String, to: String| {
            if from != to {
                changes.push(FieldChange::new(path, from, to));
            }
        };
        differs("dimensions.VpnId", dimension("VpnId"), self.vpn_id.clone());
        differs(
            "dimensions.TunnelIpAddress",
            dimension("TunnelIpAddress"),
            self.outside_ip.clone(),
        );
        differs(
            "evaluation_periods",
            alarm.evaluation_periods().unwrap_or(0).to_string(),
            self.minutes.to_string(),
        );
        differs(
            "metric",
            format!(
                "{}/{} {:?} {:?} {} {}",
                alarm.namespace().unwrap_or_default(),
                alarm.metric_name().unwrap_or_default(),
                alarm.statistic(),
                alarm.comparison_operator(),
                alarm.threshold().unwrap_or_default(),
                alarm.period().unwrap_or_default(),
            ),
            format!(
                "AWS/VPN/TunnelState {:?} {:?} 1 60",
                Some(Statistic::Maximum),
                Some(ComparisonOperator::LessThanThreshold)
            ),
        );
        differs(
            "alarm_actions",
            alarm.alarm_actions().join(","),
            self.actions.join(","),
        );
        changes
    }
}

impl Aws {
    async fn find_alarm(&self, role: &str, name: &str) -> Result<Option<MetricAlarm>, AwsError> {
        // The snapshot holds every alarm named with this deployment's prefix.
        if let Some(snapshot) = self.snapshot().await {
            return Ok(snapshot
                .alarms
                .iter()
                .find(|a| a.alarm_name() == Some(name))
                .cloned());
        }
        let out = self
            .cloudwatch
            .describe_alarms()
            .alarm_names(name)
            .send()
            .await
            .map_err(api(role, "DescribeAlarms"))?;
        Ok(out
            .metric_alarms()
            .iter()
            .find(|a| a.alarm_name() == Some(name))
            .cloned())
    }

    /// How the alarm differs from the plan; missing while its VPN connection is.
    pub(crate) async fn alarm_drift(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &Outputs,
    ) -> Result<Drift, AwsError> {
        let wanted = match Wanted::of(plan, resource, outputs) {
            Ok(wanted) => wanted,
            Err(AwsError::MissingInput(_)) => return Ok(Drift::Missing),
            Err(e) => return Err(e),
        };
        Ok(match self.find_alarm(&resource.role, &wanted.name).await? {
            None => Drift::Missing,
            Some(alarm) => {
                let changes = wanted.changes(&alarm);
                if changes.is_empty() {
                    Drift::Same
                } else {
                    Drift::Update(changes)
                }
            }
        })
    }

    /// The alarm exists as planned (one that differs is written again by `ensure`).
    pub(crate) async fn observe_alarm(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &Outputs,
    ) -> Result<bool, AwsError> {
        Ok(matches!(
            self.alarm_drift(plan, resource, outputs).await?,
            Drift::Same
        ))
    }

    /// PutMetricAlarm: creates the alarm, or overwrites one of the same name.
    pub(crate) async fn put_alarm(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &Outputs,
    ) -> Result<Option<String>, AwsError> {
        let role = resource.role.as_str();
        let w = Wanted::of(plan, resource, outputs)?;
        tracing::info!(%role, name = %w.name, "putting tunnel alarm");
        let dimension =
            |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
        let mut put = self
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(&w.name)
            .alarm_description(format!(
                "dxvpn {}: tunnel {} of {} ({}) down for {} minutes",
                plan.name, resource.role, w.vpn_id, w.outside_ip, w.minutes
            ))
            .namespace("AWS/VPN")
            .metric_name("TunnelState")
            .dimensions(dimension("VpnId", &w.vpn_id))
            .dimensions(dimension("TunnelIpAddress", &w.outside_ip))
            .statistic(Statistic::Maximum)
            .period(60)
            .evaluation_periods(i32::try_from(w.minutes).unwrap_or(i32::MAX))
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::LessThanThreshold)
            .treat_missing_data("breaching")
            .set_alarm_actions(Some(w.actions.clone()))
            .set_ok_actions(Some(w.actions.clone()));
        for (k, v) in &resource.tags {
            put = put.tags(AlarmTag::builder().key(k).value(v).build());
        }
        put.send().await.map_err(api(role, "PutMetricAlarm"))?;
        Ok(None)
    }

    /// Deletes the alarm of `resource`; an alarm already gone is done.
    pub(crate) async fn delete_alarm(
        &self,
        plan: &Plan,
        resource: &Resource,
    ) -> Result<(), AwsError> {
        let Spec::TunnelAlarm { tunnel, .. } = &resource.spec else {
            return Ok(());
        };
        self.delete_alarm_named(&resource.role, &alarm_name(plan, tunnel))
            .await
    }

    /// DeleteAlarms deletes the names it knows and ignores the others (API reference).
    pub(crate) async fn delete_alarm_named(&self, role: &str, name: &str) -> Result<(), AwsError> {
        tracing::info!(%role, %name, "deleting tunnel alarm");
        self.cloudwatch
            .delete_alarms()
            .alarm_names(name)
            .send()
            .await
            .map(drop)
            .map_err(api(role, "DeleteAlarms"))
    }

    /// This deployment's alarms (by name prefix, every page: the snapshot's) whose tunnel the
    /// plan does not alarm on.
    pub(crate) fn alarm_strays(plan: &Plan, snapshot: &Snapshot) -> Vec<Stray> {
        let planned: Vec<String> = plan
            .resources
            .iter()
            .filter_map(|r| match &r.spec {
                Spec::TunnelAlarm { tunnel, .. } => Some(alarm_name(plan, tunnel)),
                _ => None,
            })
            .collect();
        let prefix = prefix(plan);
        let mut strays = Vec::new();
        for name in snapshot.alarms.iter().filter_map(|a| a.alarm_name()) {
            if !planned.iter().any(|p| p == name) {
                let tunnel = name
                    .strip_prefix(&prefix)
                    .and_then(|n| n.strip_suffix("-tunnel-down"))
                    .unwrap_or(name);
                let role = format!("aws.tunnel_alarm.{tunnel}");
                strays.push(Stray {
                    reason: format!("{role} is no longer in the plan"),
                    role,
                    kind: KIND,
                    id: name.to_owned(),
                });
            }
        }
        strays
    }
}
