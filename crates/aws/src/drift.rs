//! How this deployment's AWS resources differ from the plan (`dxvpn diff`), and the ones the
//! plan no longer has.

use dxvpn_plan::model::{Resource, Spec};
use dxvpn_plan::{Drift, FieldChange, Plan};

use aws_sdk_ec2::types::VpnGateway;

use crate::lookup::tag_value;
use crate::snapshot::of_role;
use crate::tunnels::{pair, record, tunnel_changes};
use crate::{Aws, AwsError, Outputs, api, gone_is_done};

/// A resource tagged with this deployment (in this VPC) that the plan does not keep: its role
/// is not planned any more, or it is a second one of a planned role (two runs raced, or a
/// read lagged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stray {
    /// The role its tag names.
    pub role: String,
    /// `vpn_connection`, `customer_gateway`, `vpn_gateway`, `resolver_rule`,
    /// `resolver_endpoint`, `security_group`, `forwarder_instance`, `instance_profile`,
    /// `tunnel_alarm` or `alert_topic` (the plan's kind names).
    pub kind: &'static str,
    /// Its id.
    pub id: String,
    /// Why it goes.
    pub reason: String,
}

impl Aws {
    /// How `resource` differs in AWS from the plan; records its outputs as `observe` does.
    pub async fn drift(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<Drift, AwsError> {
        let role = resource.role.as_str();
        match &resource.spec {
            Spec::VpnGateway { amazon_side_asn } => {
                let gateways = match self.snapshot().await {
                    Some(snapshot) => of_role(&snapshot.vgws, VpnGateway::tags, role)
                        .cloned()
                        .collect(),
                    None => self
                        .ec2
                        .describe_vpn_gateways()
                        .set_filters(Some(Self::live_by_tags(plan, role)))
                        .send()
                        .await
                        .map_err(api(role, "DescribeVpnGateways"))?
                        .vpn_gateways()
                        .to_vec(),
                };
                let Some(vgw) = lowest(&gateways, |g| g.vpn_gateway_id()) else {
                    return Ok(Drift::Missing);
                };
                outputs.set(role, "id", vgw.vpn_gateway_id().unwrap_or_default());
                let now = vgw.amazon_side_asn().unwrap_or_default();
                Ok(if now == i64::from(*amazon_side_asn) {
                    Drift::Same
                } else {
                    Drift::Replace {
                        field: FieldChange::new("amazon_side_asn", now, amazon_side_asn),
                        rule: "a virtual private gateway's Amazon side ASN is set when it is created and no EC2 action changes it: a new gateway, and new VPN connections on it".into(),
                    }
                })
            }
            Spec::CustomerGateway {
                bgp_asn,
                ip_address,
            } => {
                let Some(id) = self.find_cgw(plan, role).await? else {
                    return Ok(Drift::Missing);
                };
                outputs.set(role, "id", &id);
                let held = self.snapshot().await;
                let cgw = match &held {
                    Some(snapshot) => snapshot
                        .cgws
                        .iter()
                        .find(|c| c.customer_gateway_id() == Some(id.as_str()))
                        .cloned(),
                    None => self
                        .ec2
                        .describe_customer_gateways()
                        .customer_gateway_ids(&id)
                        .send()
                        .await
                        .map_err(api(role, "DescribeCustomerGateways"))?
                        .customer_gateways()
                        .first()
                        .cloned(),
                };
                let Some(cgw) = cgw else {
                    return Ok(Drift::Same);
                };
                let rule = "a customer gateway's IP address and ASN cannot change (EC2 has no ModifyCustomerGateway): a new customer gateway, and a new VPN connection on it";
                let now_ip = cgw.ip_address().unwrap_or_default();
                let wanted_ip = match outputs.resolve_ip(role, ip_address) {
                    Ok(ip) => ip.to_string(),
                    // The Azure public IP it points at does not exist yet: it will be new.
                    Err(_) => "(a new Azure public IP)".to_owned(),
                };
                if now_ip != wanted_ip {
                    return Ok(Drift::Replace {
                        field: FieldChange::new("ip_address", now_ip, wanted_ip),
                        rule: rule.into(),
                    });
                }
                let now_asn = cgw.bgp_asn().unwrap_or_default();
                if now_asn != bgp_asn.to_string() {
                    return Ok(Drift::Replace {
                        field: FieldChange::new("bgp_asn", now_asn, bgp_asn),
                        rule: rule.into(),
                    });
                }
                Ok(Drift::Same)
            }
            Spec::VpnConnection { connection, .. } => {
                let cgw_role = format!("aws.customer_gateway.{connection}");
                let cgw = outputs.get(&cgw_role, "id").map(str::to_owned);
                let Some(vpn) = self.find_vpn(plan, role, cgw.as_deref()).await? else {
                    return Ok(Drift::Missing);
                };
                record(plan, role, &vpn, outputs)?;
                if let Some(cgw) = &cgw
                    && vpn.customer_gateway_id() != Some(cgw.as_str())
                {
                    return Ok(Drift::Replace {
                        field: FieldChange::new(
                            "customer_gateway_id",
                            vpn.customer_gateway_id().unwrap_or_default(),
                            cgw,
                        ),
                        rule: "dxvpn builds a VPN connection on its customer gateway: a connection on another one is replaced".into(),
                    });
                }
                let tunnels = vpn
                    .options()
                    .map(|o| o.tunnel_options())
                    .unwrap_or_default();
                let pairs = pair(plan, role, &vpn, outputs)?;
                let mut changes: Vec<FieldChange> = tunnels
                    .iter()
                    .zip(pairs)
                    .flat_map(|(t, i)| tunnel_changes(plan, role, i, t))
                    .collect();
                changes.sort_by(|a, b| a.path.cmp(&b.path));
                Ok(if changes.is_empty() {
                    Drift::Same
                } else {
                    Drift::Update(changes)
                })
            }
            Spec::ForwarderInstance { .. } => {
                self.forwarder_host_drift(plan, resource, outputs).await
            }
            Spec::InstanceProfile { .. } => {
                self.instance_profile_drift(plan, resource, outputs).await
            }
            Spec::TunnelAlarm { .. } => self.alarm_drift(plan, resource, outputs).await,
            Spec::AlertTopic { .. } => self.alert_topic_drift(plan, resource, outputs).await,
            _ => Ok(if self.observe(plan, resource, outputs).await? {
                Drift::Same
            } else {
                Drift::Missing
            }),
        }
    }

    /// This deployment's VPN connections, customer gateways and VPN gateways in this VPC that
    /// the plan does not keep, dependents first, then its DNS resources that the plan does not
    /// have (resolver rules, endpoints, the DNS security group). Of several with one planned role, the one
    /// `drift` and `observe` choose stays: the VPN connection on the customer gateway kept, and
    /// otherwise the lowest id.
    pub async fn strays(&self, plan: &Plan) -> Result<Vec<Stray>, AwsError> {
        let role_of = |tags: &[aws_sdk_ec2::types::Tag]| {
            tag_value(tags, "dxvpn:role").unwrap_or_default().to_owned()
        };
        // The other kinds' strays are listed at the same time: none depends on another.
        let (snapshot, others) = tokio::join!(
            Box::pin(self.held_or_read(plan)),
            Box::pin(self.other_strays(plan))
        );
        let snapshot = snapshot?;
        let dns = Self::dns_strays(plan, &snapshot);
        let alarms = Self::alarm_strays(plan, &snapshot);
        let (vgws, cgws, vpns) = (&snapshot.vgws, &snapshot.cgws, &snapshot.vpns);
        let vgw_list: Vec<(String, String)> = vgws
            .iter()
            .map(|g| {
                (
                    role_of(g.tags()),
                    g.vpn_gateway_id().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let cgw_list: Vec<(String, String)> = cgws
            .iter()
            .map(|c| {
                (
                    role_of(c.tags()),
                    c.customer_gateway_id().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let kept_cgws = kept(plan, &cgw_list, |_| None);
        let vpn_list: Vec<(String, String)> = vpns
            .iter()
            .map(|v| {
                (
                    role_of(v.tags()),
                    v.vpn_connection_id().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let cgw_of_vpn = |id: &str| {
            vpns.iter()
                .find(|v| v.vpn_connection_id() == Some(id))
                .and_then(|v| v.customer_gateway_id())
                .map(str::to_owned)
        };
        let kept_vgws = kept(plan, &vgw_list, |_| None);
        let vgw_of_vpn = |id: &str| {
            vpns.iter()
                .find(|v| v.vpn_connection_id() == Some(id))
                .and_then(|v| v.vpn_gateway_id())
                .map(str::to_owned)
        };
        // A connection stays only on the gateways that stay: one on a duplicate goes with it.
        let on_kept = |id: &str| {
            cgw_of_vpn(id).is_some_and(|c| kept_cgws.contains(&c))
                && vgw_of_vpn(id).is_some_and(|g| kept_vgws.contains(&g))
        };
        let kept_vpns: Vec<String> = kept(plan, &vpn_list, |id| Some(!on_kept(id)))
            .into_iter()
            .filter(|id| on_kept(id))
            .collect();
        let mut strays = Vec::new();
        for (list, kept, kind) in [
            (&vpn_list, &kept_vpns, "vpn_connection"),
            (&cgw_list, &kept_cgws, "customer_gateway"),
            (&vgw_list, &kept_vgws, "vpn_gateway"),
        ] {
            for (role, id) in list {
                if kept.contains(id) {
                    continue;
                }
                let reason = if kind == "vpn_connection"
                    && plan.resource(role).is_some()
                    && !on_kept(id)
                {
                    format!(
                        "a {role} on a duplicate gateway (two runs raced); a new one is made on the gateways that stay"
                    )
                } else if plan.resource(role).is_some() {
                    format!(
                        "a second {role} of this deployment (two runs raced, or a read lagged); the other one stays"
                    )
                } else {
                    format!("{role} is no longer in the plan")
                };
                strays.push(Stray {
                    role: role.clone(),
                    kind,
                    id: id.clone(),
                    reason,
                });
            }
        }
        let [hosts, profiles, topics] = others?;
        strays.extend([hosts, profiles, dns, alarms, topics].concat());
        Ok(strays)
    }

    /// The strays of the kinds the snapshot does not hold: forwarder hosts, instance
    /// profiles and the alert topic, listed at once.
    async fn other_strays(&self, plan: &Plan) -> Result<[Vec<Stray>; 3], AwsError> {
        let (hosts, profiles, topics) = tokio::join!(
            self.forwarder_host_strays(plan),
            self.instance_profile_strays(plan),
            self.alert_topic_strays(plan),
        );
        Ok([hosts?, profiles?, topics?])
    }
}

impl Aws {
    /// Deletes a stray and waits until it is gone; a VPN gateway is detached from the VPC
    /// first. Its dependents must be gone already ([`Aws::strays`] lists them first).
    pub async fn delete_stray(&self, plan: &Plan, stray: &Stray) -> Result<(), AwsError> {
        let (role, id) = (stray.role.as_str(), stray.id.as_str());
        tracing::info!(%role, %id, kind = stray.kind, reason = %stray.reason, "deleting");
        match stray.kind {
            "resolver_rule" | "resolver_endpoint" | "security_group" => {
                return self.delete_dns_stray(plan, stray).await;
            }
            "forwarder_instance" => return self.terminate(role, id).await,
            crate::alarms::KIND => return self.delete_alarm_named(role, id).await,
            crate::alert_topic::KIND => return self.delete_topic_arn(role, id).await,
            crate::instance_profile::KIND => {
                return self.delete_instance_profile(plan, role, id).await;
            }
            "vpn_connection" => {
                self.ec2
                    .delete_vpn_connection()
                    .vpn_connection_id(id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(api(role, "DeleteVpnConnection"))
                    .or_else(gone_is_done)?;
            }
            "customer_gateway" => {
                self.ec2
                    .delete_customer_gateway()
                    .customer_gateway_id(id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(api(role, "DeleteCustomerGateway"))
                    .or_else(gone_is_done)?;
            }
            _ => {
                self.detach(role, id, &plan.aws.vpc_id).await?;
                self.ec2
                    .delete_vpn_gateway()
                    .vpn_gateway_id(id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(api(role, "DeleteVpnGateway"))
                    .or_else(gone_is_done)?;
            }
        }
        self.wait_state(role, stray.kind, id, "deleted").await
    }
}

/// The lowest-id item, the one every lookup of a role chooses.
fn lowest<T>(items: &[T], id: impl Fn(&T) -> Option<&str>) -> Option<&T> {
    items
        .iter()
        .min_by_key(|i| id(i).unwrap_or_default().to_owned())
}

/// The ids kept of `(role, id)` pairs: per planned role, the first by (`behind`, id), where
/// `behind(id)` is `Some(true)` for one that stands on something not kept.
fn kept(
    plan: &Plan,
    list: &[(String, String)],
    behind: impl Fn(&str) -> Option<bool>,
) -> Vec<String> {
    let mut roles: Vec<&String> = list.iter().map(|(r, _)| r).collect();
    roles.sort();
    roles.dedup();
    roles
        .into_iter()
        .filter(|r| plan.resource(r).is_some())
        .filter_map(|r| {
            list.iter()
                .filter(|(role, _)| role == r)
                .min_by_key(|(_, id)| (behind(id).unwrap_or(false), id.clone()))
                .map(|(_, id)| id.clone())
        })
        .collect()
}
