//! The ARM request bodies dxvpn wants for each Azure resource of a plan, as JSON in the shape of
//! azure_mgmt_network's models, and the comparison that says whether what exists already matches.

use std::net::Ipv4Addr;

use dxvpn_plan::model::{Deferred, GatewayInstance, PskSource, Resource, Spec};
use dxvpn_plan::{MissingInput, Outputs, Plan};
use dxvpn_tunnel::psk::PresharedKey;
use serde_json::{Value, json};

/// ARM ids of the resource group's Microsoft.Network resources.
#[derive(Debug, Clone)]
pub(crate) struct Ids {
    pub(crate) base: String,
}

impl Ids {
    pub(crate) fn new(subscription: &str, resource_group: &str) -> Self {
        Ids {
            base: format!(
                "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Network"
            ),
        }
    }

    pub(crate) fn of(&self, type_path: &str, name: &str) -> String {
        format!("{}/{type_path}/{name}", self.base)
    }
}

/// The body of a public IP: Standard, static, zone-redundant when the gateway SKU is zonal.
pub(crate) fn public_ip(plan: &Plan, resource: &Resource) -> Value {
    let Spec::PublicIp {
        sku,
        allocation,
        zones,
        ..
    } = &resource.spec
    else {
        return Value::Null;
    };
    let mut body = json!({
        "location": plan.azure.location,
        "tags": resource.tags,
        "sku": {"name": sku, "tier": "Regional"},
        "properties": {"publicIPAllocationMethod": allocation, "publicIPAddressVersion": "IPv4"},
    });
    if !zones.is_empty() {
        body["zones"] = json!(zones);
    }
    body
}

/// The name of the public IP of gateway instance `i`.
pub(crate) fn public_ip_name(plan: &Plan, i: usize) -> String {
    plan.resource(&format!("azure.public_ip.{i}")).map_or_else(
        || format!("{}-pip-{}", plan.name, i + 1),
        |r| r.name.clone(),
    )
}

/// The gateway ipConfigurations' ids, in instance order.
pub(crate) fn ip_configuration_ids(gateway_id: &str, instances: &[GatewayInstance]) -> Vec<String> {
    instances
        .iter()
        .map(|i| format!("{gateway_id}/ipConfigurations/{}", i.ip_configuration))
        .collect()
}

/// The body of the route-based VPN gateway with BGP and the custom APIPA addresses.
pub(crate) fn gateway(plan: &Plan, resource: &Resource, ids: &Ids, gateway_id: &str) -> Value {
    let Spec::VirtualNetworkGateway {
        sku,
        active_active,
        asn,
        instances,
    } = &resource.spec
    else {
        return Value::Null;
    };
    let subnet = format!(
        "{}/subnets/GatewaySubnet",
        ids.of("virtualNetworks", &plan.azure.vnet_name)
    );
    let config_ids = ip_configuration_ids(gateway_id, instances);
    let ip_configurations: Vec<Value> = instances
        .iter()
        .enumerate()
        .map(|(i, instance)| {
            json!({
                "name": instance.ip_configuration,
                "properties": {
                    "privateIPAllocationMethod": "Dynamic",
                    "subnet": {"id": subnet},
                    "publicIPAddress": {"id": ids.of("publicIPAddresses", &public_ip_name(plan, i))},
                }
            })
        })
        .collect();
    let peering: Vec<Value> = instances
        .iter()
        .zip(&config_ids)
        .map(|(instance, id)| {
            json!({
                "ipconfigurationId": id,
                "customBgpIpAddresses": instance.custom_bgp_ip_addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        })
        .collect();
    // Generation2 exists from VpnGw2 up; VpnGw1 is Generation1 only.
    let generation = if sku.starts_with("VpnGw1") {
        "Generation1"
    } else {
        "Generation2"
    };
    json!({
        "location": plan.azure.location,
        "tags": resource.tags,
        "properties": {
            "gatewayType": "Vpn",
            "vpnType": "RouteBased",
            "vpnGatewayGeneration": generation,
            "sku": {"name": sku, "tier": sku},
            "activeActive": active_active,
            "enableBgp": true,
            "bgpSettings": {"asn": asn, "bgpPeeringAddresses": peering},
            "ipConfigurations": ip_configurations,
        }
    })
}

/// The body of the local network gateway for one AWS tunnel: its outside IP and BGP peer.
pub(crate) fn local_gateway(
    plan: &Plan,
    resource: &Resource,
    outputs: &Outputs,
) -> Result<Value, MissingInput> {
    let Spec::LocalNetworkGateway {
        gateway_ip_address,
        bgp_asn,
        bgp_peering_address,
        ..
    } = &resource.spec
    else {
        return Ok(Value::Null);
    };
    let ip = outputs.resolve_ip(&resource.role, gateway_ip_address)?;
    Ok(json!({
        "location": plan.azure.location,
        "tags": resource.tags,
        "properties": {
            "gatewayIpAddress": ip.to_string(),
            // BGP carries the routes: no static prefixes.
            "localNetworkAddressSpace": {"addressPrefixes": []},
            "bgpSettings": {"asn": bgp_asn, "bgpPeeringAddress": bgp_peering_address.to_string()},
        }
    }))
}

/// The pre-shared key of one tunnel: from the config, or as AWS holds it.
pub(crate) fn tunnel_key(
    plan: &Plan,
    resource: &Resource,
    outputs: &Outputs,
) -> Result<PresharedKey, MissingInput> {
    let Spec::GatewayConnection {
        tunnel, shared_key, ..
    } = &resource.spec
    else {
        return Err(missing(resource, "tunnel", "spec"));
    };
    let t = plan
        .tunnels
        .iter()
        .find(|t| &t.key == tunnel)
        .ok_or_else(|| missing(resource, tunnel, "tunnel"))?;
    let vpn = format!("aws.vpn_connection.{}", t.pairing.aws_connection);
    match (shared_key, &t.preshared_key) {
        (Deferred::Known(PskSource::Config), Some(key)) => Ok(key.clone()),
        _ => outputs
            .key(&vpn, t.pairing.aws_tunnel)
            .cloned()
            .ok_or_else(|| missing(resource, &vpn, "preshared_keys")),
    }
}

fn missing(resource: &Resource, from: &str, output: &str) -> MissingInput {
    MissingInput {
        role: resource.role.clone(),
        from: from.to_owned(),
        output: output.to_owned(),
    }
}

/// The body of the IPsec connection for one AWS tunnel. Every gateway instance gets a custom
/// APIPA address: the tunnel's own on its instance, the same position's on the other.
pub(crate) fn connection(
    plan: &Plan,
    resource: &Resource,
    gateway: &Resource,
    gateway_id: &str,
    config_ids: &[String],
    local_gateway_id: &str,
    key: &PresharedKey,
) -> Value {
    let (
        Spec::GatewayConnection {
            azure_instance,
            custom_bgp_ip_address,
            enable_bgp,
            ..
        },
        Spec::VirtualNetworkGateway { instances, .. },
    ) = (&resource.spec, &gateway.spec)
    else {
        return Value::Null;
    };
    let position = instances
        .get(*azure_instance)
        .and_then(|i| {
            i.custom_bgp_ip_addresses
                .iter()
                .position(|a| a == custom_bgp_ip_address)
        })
        .unwrap_or(0);
    let customs: Vec<Value> = config_ids
        .iter()
        .zip(instances)
        .enumerate()
        .filter_map(|(i, (id, instance))| {
            let address: Ipv4Addr = if i == *azure_instance {
                *custom_bgp_ip_address
            } else {
                *instance
                    .custom_bgp_ip_addresses
                    .get(position)
                    .or_else(|| instance.custom_bgp_ip_addresses.first())?
            };
            Some(json!({"ipConfigurationId": id, "customBgpIpAddress": address.to_string()}))
        })
        .collect();
    let policy = plan.ipsec_policy.azure();
    json!({
        "location": plan.azure.location,
        "tags": resource.tags,
        "properties": {
            "connectionType": "IPsec",
            "connectionProtocol": "IKEv2",
            "virtualNetworkGateway1": {"id": gateway_id, "properties": {}},
            "localNetworkGateway2": {"id": local_gateway_id, "properties": {}},
            "sharedKey": key.expose(),
            "enableBgp": enable_bgp,
            "gatewayCustomBgpIpAddresses": customs,
            "ipsecPolicies": [policy],
            "dpdTimeoutSeconds": plan.ipsec_policy.dpd_timeout_seconds,
            "usePolicyBasedTrafficSelectors": false,
            "connectionMode": "Default",
        }
    })
}

/// The first member of `wanted` that `actual` lacks or holds differently, as a JSON path.
/// Objects match when `actual` has every member of `wanted` (extra, server-side members are
/// fine); arrays match element by element; ids and enum strings compare case-insensitively, as
/// ARM does.
pub(crate) fn first_difference(wanted: &Value, actual: &Value) -> Option<String> {
    differences(wanted, actual).into_iter().next().map(|d| d.0)
}

/// Every member of `wanted` that `actual` lacks or holds differently, by the rules of
/// [`first_difference`]: the path, the value `actual` holds (null when it lacks it) and the one
/// wanted. An array of another length is one difference.
pub(crate) fn differences(wanted: &Value, actual: &Value) -> Vec<(String, Value, Value)> {
    fn walk(wanted: &Value, actual: &Value, path: &str, out: &mut Vec<(String, Value, Value)>) {
        match (wanted, actual) {
            (Value::Object(w), Value::Object(a)) => {
                for (k, v) in w {
                    let at = format!("{path}.{k}");
                    match a.get(k) {
                        // Keys are case-sensitive, unlike ids and enum values.
                        Some(av) if k == "sharedKey" => {
                            if v != av {
                                out.push((at, av.clone(), v.clone()));
                            }
                        }
                        Some(av) => walk(v, av, &at, out),
                        // An empty list or object the server omits is the same as none.
                        None if is_empty(v) => {}
                        None => out.push((at, Value::Null, v.clone())),
                    }
                }
            }
            (Value::Array(w), Value::Array(a)) if w.len() == a.len() => {
                for (i, (wv, av)) in w.iter().zip(a).enumerate() {
                    walk(wv, av, &format!("{path}[{i}]"), out);
                }
            }
            (Value::String(w), Value::String(a)) if w.eq_ignore_ascii_case(a) => {}
            (Value::Number(w), Value::Number(a)) if w.as_f64() == a.as_f64() => {}
            (w, Value::Null) if is_empty(w) => {}
            (w, a) if w == a => {}
            (w, a) => out.push((
                if path.is_empty() {
                    ".".to_owned()
                } else {
                    path.to_owned()
                },
                a.clone(),
                w.clone(),
            )),
        }
    }
    fn is_empty(v: &Value) -> bool {
        match v {
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            Value::Null => true,
            _ => false,
        }
    }
    let mut out = Vec::new();
    walk(wanted, actual, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_matches_what_the_server_adds_to_it() {
        let wanted =
            json!({"properties": {"enableBgp": true, "sku": {"name": "VpnGw1"}, "list": []}});
        let actual = json!({"id": "x", "properties": {"enableBgp": true, "provisioningState": "Succeeded", "sku": {"name": "vpngw1", "capacity": 2}}});
        assert_eq!(first_difference(&wanted, &actual), None);
    }

    #[test]
    fn a_changed_member_is_named_by_its_path() {
        let wanted =
            json!({"properties": {"bgpSettings": {"asn": 65000}, "ips": ["169.254.21.2"]}});
        let asn = json!({"properties": {"bgpSettings": {"asn": 65001}, "ips": ["169.254.21.2"]}});
        let ips = json!({"properties": {"bgpSettings": {"asn": 65000}, "ips": []}});
        assert_eq!(
            first_difference(&wanted, &asn).as_deref(),
            Some(".properties.bgpSettings.asn")
        );
        assert_eq!(
            first_difference(&wanted, &ips).as_deref(),
            Some(".properties.ips")
        );
    }
}
