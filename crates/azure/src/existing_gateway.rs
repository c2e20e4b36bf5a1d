//! An existing VPN gateway (`azure.existing_gateway_id`): checked, and given only the custom
//! APIPA addresses the tunnels need.

use dxvpn_plan::Plan;
use dxvpn_plan::model::{Resource, Spec};
use serde_json::Value;

use crate::{Azure, AzureError};

impl Azure {
    /// The existing gateway as it is, plus the custom APIPA addresses the tunnels need; checks
    /// that it can carry them at all.
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
                    let ip = Value::String(ip.to_string());
                    if !list.contains(&ip) {
                        list.push(ip);
                    }
                }
            }
        }
        Ok(wanted)
    }
}
