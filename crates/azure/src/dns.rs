//! The Azure half of cross-cloud DNS on azure_mgmt_dnsresolver (and azure_mgmt_network for the
//! delegated subnets): the bodies dxvpn wants, and the typed calls for each DNS resource type.

use azure_mgmt_dnsresolver::package_2022_07::models as dns_models;
use azure_mgmt_network::package_2024_03::models as net_models;
use dxvpn_plan::model::{Resource, Spec};
use dxvpn_plan::{MissingInput, Outputs, Plan};
use serde_json::{Value, json};

use crate::body::Ids;
use crate::{Azure, Kind};

/// The parent a child resource lives under: a subnet's VNet, an endpoint's resolver, a rule's
/// or link's ruleset. Empty for top-level resources.
pub(crate) fn parent(plan: &Plan, kind: Kind) -> String {
    let name_of = |role: &str| {
        plan.resource(role)
            .map(|r| r.name.clone())
            .unwrap_or_default()
    };
    match kind {
        Kind::Subnet => plan.azure.vnet_name.clone(),
        Kind::InboundEndpoint | Kind::OutboundEndpoint => name_of("azure.dns_resolver"),
        Kind::ForwardingRule | Kind::VnetLink => name_of("azure.dns_forwarding_ruleset"),
        _ => String::new(),
    }
}

/// The delegation name that marks a subnet as this deployment's (subnets have no tags).
fn delegation_name(plan: &Plan) -> String {
    format!("dxvpn-{}", plan.name)
}

/// Whether `found` is a subnet this deployment made: delegated under its delegation name, or
/// (the forwarder VM's subnet, which no delegation may hold) behind its security group: the
/// plan's, or one of `our_groups` (names of groups tagged as this deployment's).
pub(crate) fn marked_subnet(plan: &Plan, found: &Value, our_groups: &[String]) -> bool {
    let wanted = delegation_name(plan);
    let delegated = found
        .pointer("/properties/delegations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|d| d.get("name").and_then(Value::as_str) == Some(wanted.as_str()));
    let guarded = found
        .pointer("/properties/networkSecurityGroup/id")
        .and_then(Value::as_str)
        .and_then(|id| id.rsplit('/').next())
        .is_some_and(|nsg| {
            our_groups.iter().any(|g| g.eq_ignore_ascii_case(nsg))
                || plan.resources.iter().any(|r| {
                    matches!(r.spec, Spec::NetworkSecurityGroup { .. })
                        && r.name.eq_ignore_ascii_case(nsg)
                })
        });
    delegated || guarded
}

fn vnet_id(plan: &Plan, ids: &Ids) -> String {
    ids.of("virtualNetworks", &plan.azure.vnet_name)
}

/// The body dxvpn wants for a DNS resource.
pub(crate) fn body(
    plan: &Plan,
    resource: &Resource,
    ids: &Ids,
    outputs: &Outputs,
) -> Result<Value, MissingInput> {
    let role = resource.role.as_str();
    let location = plan.azure.location.clone();
    let tags = &resource.tags;
    let metadata = json!({ "dxvpn:deployment": plan.name, "dxvpn:role": role });
    Ok(match &resource.spec {
        Spec::Subnet {
            cidr,
            delegation,
            security_group,
        } => {
            let mut properties = json!({ "addressPrefix": cidr.to_string() });
            if !delegation.is_empty() {
                properties["delegations"] = json!([{
                    "name": delegation_name(plan),
                    "properties": { "serviceName": delegation },
                }]);
            }
            if let Some(group) = security_group {
                properties["networkSecurityGroup"] =
                    json!({ "id": outputs.need(role, group, "id")? });
            }
            json!({ "properties": properties })
        }
        Spec::DnsResolver { .. } => json!({
            "location": location, "tags": tags,
            "properties": { "virtualNetwork": { "id": vnet_id(plan, ids) } },
        }),
        Spec::DnsInboundEndpoint { subnet, private_ip } => json!({
            "location": location, "tags": tags,
            "properties": { "ipConfigurations": [{
                "subnet": { "id": outputs.need(role, subnet, "id")? },
                "privateIpAllocationMethod": "Static",
                "privateIpAddress": private_ip.to_string(),
            }] },
        }),
        Spec::DnsOutboundEndpoint { subnet } => json!({
            "location": location, "tags": tags,
            "properties": { "subnet": { "id": outputs.need(role, subnet, "id")? } },
        }),
        Spec::DnsForwardingRuleset { outbound_endpoint } => json!({
            "location": location, "tags": tags,
            "properties": { "dnsResolverOutboundEndpoints": [
                { "id": outputs.need(role, outbound_endpoint, "id")? }
            ] },
        }),
        Spec::DnsForwardingRule {
            domain_name,
            target_ips,
        } => {
            let targets: Vec<Value> = outputs
                .resolve_ips(role, target_ips)?
                .iter()
                .map(|ip| json!({ "ipAddress": ip.to_string(), "port": 53 }))
                .collect();
            json!({ "properties": {
                "domainName": domain_name, "targetDnsServers": targets,
                "forwardingRuleState": "Enabled", "metadata": metadata,
            } })
        }
        Spec::DnsVnetLink { .. } => json!({ "properties": {
            "virtualNetwork": { "id": vnet_id(plan, ids) }, "metadata": metadata,
        } }),
        _ => Value::Null,
    })
}

/// Sends a request builder and keeps the raw response (its headers carry the LRO contract).
macro_rules! raw {
    ($builder:expr) => {
        $builder.send().await.map(|r| r.into_raw_response())
    };
}

fn to_value<T: serde::Serialize>(m: T) -> Value {
    serde_json::to_value(m).unwrap_or_default()
}

impl Azure {
    /// GET of a DNS resource (or a subnet) as JSON.
    pub(crate) async fn dns_get(
        &self,
        kind: Kind,
        rg: &str,
        parent: &str,
        name: &str,
    ) -> azure_core::Result<Value> {
        let sub = self.subscription.as_str();
        let d = &self.dns;
        match kind {
            Kind::Subnet => self
                .network
                .subnets_client()
                .get(rg, parent, name, sub)
                .await
                .map(to_value),
            Kind::DnsResolver => d
                .dns_resolvers_client()
                .get(sub, rg, name)
                .await
                .map(to_value),
            Kind::InboundEndpoint => d
                .inbound_endpoints_client()
                .get(sub, rg, parent, name)
                .await
                .map(to_value),
            Kind::OutboundEndpoint => d
                .outbound_endpoints_client()
                .get(sub, rg, parent, name)
                .await
                .map(to_value),
            Kind::Ruleset => d
                .dns_forwarding_rulesets_client()
                .get(sub, rg, name)
                .await
                .map(to_value),
            Kind::ForwardingRule => d
                .forwarding_rules_client()
                .get(sub, rg, parent, name)
                .await
                .map(to_value),
            Kind::VnetLink => d
                .virtual_network_links_client()
                .get(sub, rg, parent, name)
                .await
                .map(to_value),
            _ => Ok(Value::Null),
        }
    }

    /// PUT of a DNS resource (or a subnet); the raw response carries the LRO headers. The
    /// outer error is a body that does not fit the SDK's model.
    pub(crate) async fn dns_put(
        &self,
        kind: Kind,
        rg: &str,
        parent: &str,
        name: &str,
        body: Value,
    ) -> Result<azure_core::Result<azure_core::Response>, serde_json::Error> {
        let (sub, d) = (self.subscription.as_str(), &self.dns);
        Ok(match kind {
            Kind::Subnet => {
                let m: net_models::Subnet = serde_json::from_value(body)?;
                raw!(
                    self.network
                        .subnets_client()
                        .create_or_update(rg, parent, name, m, sub)
                )
            }
            Kind::DnsResolver => {
                let m: dns_models::DnsResolver = serde_json::from_value(body)?;
                raw!(d.dns_resolvers_client().create_or_update(sub, rg, name, m))
            }
            Kind::InboundEndpoint => {
                let m: dns_models::InboundEndpoint = serde_json::from_value(body)?;
                raw!(
                    d.inbound_endpoints_client()
                        .create_or_update(sub, rg, parent, name, m)
                )
            }
            Kind::OutboundEndpoint => {
                let m: dns_models::OutboundEndpoint = serde_json::from_value(body)?;
                raw!(
                    d.outbound_endpoints_client()
                        .create_or_update(sub, rg, parent, name, m)
                )
            }
            Kind::Ruleset => {
                let m: dns_models::DnsForwardingRuleset = serde_json::from_value(body)?;
                raw!(
                    d.dns_forwarding_rulesets_client()
                        .create_or_update(sub, rg, name, m)
                )
            }
            Kind::ForwardingRule => {
                let m: dns_models::ForwardingRule = serde_json::from_value(body)?;
                raw!(
                    d.forwarding_rules_client()
                        .create_or_update(sub, rg, parent, name, m)
                )
            }
            Kind::VnetLink => {
                let m: dns_models::VirtualNetworkLink = serde_json::from_value(body)?;
                raw!(
                    d.virtual_network_links_client()
                        .create_or_update(sub, rg, parent, name, m)
                )
            }
            _ => {
                return Err(serde::de::Error::custom(
                    "not a DNS resource type; use the gateway family's client",
                ));
            }
        })
    }

    /// DELETE of a DNS resource (or a subnet).
    pub(crate) async fn dns_delete(
        &self,
        kind: Kind,
        (rg, parent, name): (&str, &str, &str),
    ) -> azure_core::Result<azure_core::Response> {
        let (sub, d) = (self.subscription.as_str(), &self.dns);
        match kind {
            Kind::Subnet => raw!(self.network.subnets_client().delete(rg, parent, name, sub)),
            Kind::DnsResolver => raw!(d.dns_resolvers_client().delete(sub, rg, name)),
            Kind::InboundEndpoint => {
                raw!(d.inbound_endpoints_client().delete(sub, rg, parent, name))
            }
            Kind::OutboundEndpoint => {
                raw!(d.outbound_endpoints_client().delete(sub, rg, parent, name))
            }
            Kind::Ruleset => raw!(d.dns_forwarding_rulesets_client().delete(sub, rg, name)),
            Kind::ForwardingRule => raw!(d.forwarding_rules_client().delete(sub, rg, parent, name)),
            Kind::VnetLink => raw!(
                d.virtual_network_links_client()
                    .delete(sub, rg, parent, name)
            ),
            _ => Err(azure_core::Error::message(
                azure_core::error::ErrorKind::Other,
                "not a DNS resource type",
            )),
        }
    }
}
