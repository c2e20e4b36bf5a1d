//! An existing VPN gateway (`azure.existing_gateway_id`): checked, and given only the custom
//! APIPA addresses the tunnels need, by a read-modify-write of its raw JSON, so that whatever
//! else it holds goes back as it was. The addresses dxvpn added (not those it found) are recorded
//! in a tag on the gateway, `dxvpn:apipa:<deployment>`, and `down` removes exactly those.

use std::collections::BTreeSet;

use dxvpn_plan::Plan;
use dxvpn_plan::model::{Resource, Spec};
use serde_json::{Value, json};

use crate::{Azure, AzureError, api};

/// The tag that records the APIPA addresses this deployment added to a gateway it does not own.
pub(crate) fn added_tag(plan: &Plan) -> String {
    format!("dxvpn:apipa:{}", plan.name)
}

/// The addresses recorded in `gateway`'s tag `tag`.
fn recorded(gateway: &Value, tag: &str) -> BTreeSet<String> {
    gateway
        .pointer("/tags")
        .and_then(|t| t.get(tag))
        .and_then(Value::as_str)
        .map(|v| v.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Each `customBgpIpAddresses` list of the gateway's peering addresses.
fn custom_lists(gateway: &mut Value) -> impl Iterator<Item = &mut Vec<Value>> {
    gateway
        .pointer_mut("/properties/bgpSettings/bgpPeeringAddresses")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get_mut("customBgpIpAddresses"))
        .filter_map(Value::as_array_mut)
}

impl Azure {
    /// Writes the existing gateway back whole, with only the changes `wanted` made to what was
    /// read, and waits for the update.
    pub(crate) async fn write_existing_gateway(
        &self,
        id: &str,
        role: &str,
        wanted: &Value,
    ) -> Result<(), AzureError> {
        let operation = "PUT virtualNetworkGateways";
        self.report(role, "writing");
        let response = self
            .put_json(id, wanted)
            .await
            .map_err(api(role, operation))?;
        self.settle(response, role, operation).await
    }

    /// `down` for the existing gateway: removes the APIPA addresses this deployment added, and
    /// its tag; every other address and member stays.
    pub(crate) async fn release_existing_gateway(
        &self,
        plan: &Plan,
        resource: &Resource,
        found: &Value,
    ) -> Result<(), AzureError> {
        let tag = added_tag(plan);
        if found.pointer("/tags").and_then(|t| t.get(&tag)).is_none() {
            // This deployment added nothing to it.
            return Ok(());
        }
        let added = recorded(found, &tag);
        let mut wanted = found.clone();
        for list in custom_lists(&mut wanted) {
            list.retain(|ip| ip.as_str().is_none_or(|ip| !added.contains(ip)));
        }
        if let Some(tags) = wanted.get_mut("tags").and_then(Value::as_object_mut) {
            tags.remove(&tag);
        }
        tracing::info!(role = %resource.role, added = added.len(), "removing the APIPA addresses dxvpn added to the existing gateway");
        self.write_existing_gateway(&resource.name, &resource.role, &wanted)
            .await
    }

    /// The existing gateway as it is, plus the custom APIPA addresses the tunnels need, and the
    /// tag recording those it lacked; checks that it can carry them at all.
    pub(crate) fn existing_gateway(
        &self,
        plan: &Plan,
        resource: &Resource,
        found: &Value,
    ) -> Result<Value, AzureError> {
        let problem = |p: String| AzureError::ExistingGateway {
            id: resource.name.clone(),
            problem: p,
        };
        let props = found.get("properties").cloned().unwrap_or_default();
        if props.get("vpnType").and_then(Value::as_str) != Some("RouteBased") {
            return Err(problem(
                "it is not route-based; BGP needs a RouteBased gateway".into(),
            ));
        }
        if props.get("enableBgp").and_then(Value::as_bool) != Some(true) {
            return Err(problem(
                "BGP is not enabled on it; enable it (az network vnet-gateway update --enable-bgp true)".into(),
            ));
        }
        let active_active = props.get("activeActive").and_then(Value::as_bool) == Some(true);
        if active_active != plan.azure.active_active {
            return Err(problem(format!(
                "it is {}active-active, the plan needs {}; pick the matching use case",
                if active_active { "" } else { "not " },
                if plan.azure.active_active {
                    "active-active"
                } else {
                    "a single instance"
                }
            )));
        }
        let asn = props.pointer("/bgpSettings/asn").and_then(Value::as_u64);
        if asn != Some(u64::from(plan.azure.asn)) {
            return Err(problem(format!(
                "its BGP ASN is {}, the config says {}; set azure.asn to the gateway's",
                asn.map_or_else(|| "unset".into(), |a| a.to_string()),
                plan.azure.asn
            )));
        }
        let Spec::VirtualNetworkGateway { instances, .. } = &resource.spec else {
            return Ok(found.clone());
        };
        let configs: Vec<String> = props
            .get("ipConfigurations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let tag = added_tag(plan);
        let mut added = recorded(found, &tag);
        let mut wanted = found.clone();
        let peering = wanted
            .pointer_mut("/properties/bgpSettings/bgpPeeringAddresses")
            .and_then(Value::as_array_mut);
        let Some(peering) = peering else {
            return Err(problem("it reports no bgpPeeringAddresses".into()));
        };
        for (i, instance) in instances.iter().enumerate() {
            let Some(config) = configs.get(i) else {
                return Err(problem(format!(
                    "it has no ipConfiguration for instance {}",
                    i + 1
                )));
            };
            let Some(entry) = peering.iter_mut().find(|p| {
                p.get("ipconfigurationId")
                    .and_then(Value::as_str)
                    .is_some_and(|id| id.eq_ignore_ascii_case(config))
            }) else {
                return Err(problem(format!(
                    "no bgpPeeringAddresses entry for {config}"
                )));
            };
            let list = entry.as_object_mut().map(|o| {
                o.entry("customBgpIpAddresses")
                    .or_insert(Value::Array(vec![]))
            });
            if let Some(Value::Array(list)) = list {
                for ip in &instance.custom_bgp_ip_addresses {
                    let text = ip.to_string();
                    let ip = Value::String(text.clone());
                    if !list.contains(&ip) {
                        list.push(ip);
                        added.insert(text);
                    }
                }
            }
        }
        if !added.is_empty() {
            let record = added.into_iter().collect::<Vec<_>>().join(" ");
            match wanted.get_mut("tags").and_then(Value::as_object_mut) {
                Some(tags) => {
                    tags.insert(tag, Value::String(record));
                }
                None => {
                    wanted["tags"] = json!({ tag: record });
                }
            }
        }
        Ok(wanted)
    }
}
