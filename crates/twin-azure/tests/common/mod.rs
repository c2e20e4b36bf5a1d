//! What the Azure twin's wire tests share: twins with the real azure_mgmt_network client, a
//! small ARM helper, and the official examples.
#![allow(dead_code, unreachable_pub)] // each test file uses its own share of these

use std::sync::Arc;

use azure_core::Url;
use azure_mgmt_network::package_2024_03::{Client, models};
use dxvpn_azure::StaticToken;
use dxvpn_twin_azure::{AzureScenario, AzureTwin, SeedSubnet};
use serde_json::{Value, json};

pub const EXAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/reference/examples"
);

pub fn scenario(
    subscription: &str,
    rg: &str,
    vnet: &str,
    cidr: &str,
    subnets: &[(&str, &str)],
) -> AzureScenario {
    AzureScenario {
        subscription_id: subscription.into(),
        resource_group: rg.into(),
        location: "centralus".into(),
        vnet_name: vnet.into(),
        vnet_cidr: cidr.parse().unwrap(),
        subnets: subnets
            .iter()
            .map(|(n, c)| SeedSubnet {
                name: (*n).into(),
                cidr: c.parse().unwrap(),
            })
            .collect(),
        existing_gateway: None,
    }
}

/// A twin where everything takes 1/10000 of Azure's time (a 40-minute gateway: 0.24 s).
pub async fn twin_with(scenario: &AzureScenario) -> (AzureTwin, Client) {
    twin_at(scenario, 0.0001).await
}

/// A twin where Azure's durations are multiplied by `factor`, and the real client for it.
pub async fn twin_at(scenario: &AzureScenario, factor: f64) -> (AzureTwin, Client) {
    let twin = AzureTwin::start("127.0.0.1:0".parse().unwrap(), scenario, factor)
        .await
        .unwrap();
    let client = Client::builder(Arc::new(StaticToken::new("lab-token")))
        .endpoint(Url::parse(&twin.endpoint).unwrap())
        .scopes(&["https://management.azure.com/.default"])
        .build()
        .unwrap();
    (twin, client)
}

pub async fn twin() -> (AzureTwin, Client) {
    twin_with(&AzureScenario::default()).await
}

pub fn model<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// The ARM error code of a failed call.
pub fn code(e: &azure_core::Error) -> String {
    e.as_http_error()
        .and_then(|h| h.error_code())
        .unwrap_or("<none>")
        .to_owned()
}

pub struct Lab {
    pub twin: AzureTwin,
    pub client: Client,
    pub sub: String,
    pub rg: String,
}

impl Lab {
    pub async fn new() -> Self {
        Self::with_time_factor(0.0001).await
    }

    /// A lab where Azure's durations are multiplied by `factor`.
    pub async fn with_time_factor(factor: f64) -> Self {
        let (twin, client) = twin_at(&AzureScenario::default(), factor).await;
        let sub = twin.seeded.subscription_id.clone();
        let rg = twin.seeded.resource_group.clone();
        Lab {
            twin,
            client,
            sub,
            rg,
        }
    }

    pub fn id(&self, path: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/{path}",
            self.sub, self.rg
        )
    }

    pub fn subnet(&self, name: &str) -> String {
        self.id(&format!("virtualNetworks/dxvpn-lab-vnet/subnets/{name}"))
    }

    pub async fn pip(
        &self,
        name: &str,
        sku: &str,
        allocation: &str,
    ) -> Result<models::PublicIpAddress, azure_core::Error> {
        self.client
            .public_ip_addresses_client()
            .create_or_update(
                &self.rg,
                name,
                model::<models::PublicIpAddress>(json!({
                    "location": "italynorth",
                    "sku": {"name": sku},
                    "properties": {"publicIPAllocationMethod": allocation},
                })),
                &self.sub,
            )
            .await
    }

    pub fn gateway_body(
        &self,
        active_active: bool,
        subnet: &str,
        asn: u32,
        customs: &[&[&str]],
    ) -> models::VirtualNetworkGateway {
        let n = if active_active { 2 } else { 1 };
        let configs: Vec<Value> = (0..n)
            .map(|i| {
                json!({"name": format!("vpnConfig{}", i + 1), "properties": {
                    "privateIPAllocationMethod": "Dynamic",
                    "subnet": {"id": self.subnet(subnet)},
                    "publicIPAddress": {"id": self.id(&format!("publicIPAddresses/pip-{}", i + 1))},
                }})
            })
            .collect();
        let peering: Vec<Value> = customs
            .iter()
            .enumerate()
            .map(|(i, ips)| json!({"ipconfigurationId": self.id(&format!("virtualNetworkGateways/vpngw/ipConfigurations/vpnConfig{}", i + 1)), "customBgpIpAddresses": ips}))
            .collect();
        model(json!({
            "location": "italynorth",
            "properties": {
                "gatewayType": "Vpn", "vpnType": "RouteBased", "sku": {"name": "VpnGw2AZ", "tier": "VpnGw2AZ"},
                "activeActive": active_active, "enableBgp": true,
                "bgpSettings": {"asn": asn, "bgpPeeringAddresses": peering},
                "ipConfigurations": configs,
            }
        }))
    }

    /// Two Standard public IPs and an active-active gateway with the tutorial's APIPA addresses.
    pub async fn gateway(&self) -> models::VirtualNetworkGateway {
        for name in ["pip-1", "pip-2"] {
            self.pip(name, "Standard", "Static").await.unwrap();
        }
        self.client
            .virtual_network_gateways_client()
            .create_or_update(
                &self.rg,
                "vpngw",
                self.gateway_body(
                    true,
                    "GatewaySubnet",
                    65000,
                    &[
                        &["169.254.21.2", "169.254.22.2"],
                        &["169.254.21.6", "169.254.22.6"],
                    ],
                ),
                &self.sub,
            )
            .await
            .unwrap()
    }

    pub async fn lng(&self, name: &str, ip: &str, peer: &str) -> models::LocalNetworkGateway {
        self.client
            .local_network_gateways_client()
            .create_or_update(
                &self.rg,
                name,
                model::<models::LocalNetworkGateway>(
                    json!({"location": "italynorth", "properties": {
                        "gatewayIpAddress": ip, "localNetworkAddressSpace": {"addressPrefixes": []},
                        "bgpSettings": {"asn": 64512, "bgpPeeringAddress": peer},
                    }}),
                ),
                &self.sub,
            )
            .await
            .unwrap()
    }

    pub fn connection_body(
        &self,
        lng: &str,
        key: &str,
        customs: &[&str],
    ) -> models::VirtualNetworkGatewayConnection {
        let customs: Vec<Value> = customs
            .iter()
            .enumerate()
            .map(|(i, ip)| json!({"ipConfigurationId": self.id(&format!("virtualNetworkGateways/vpngw/ipConfigurations/vpnConfig{}", i + 1)), "customBgpIpAddress": ip}))
            .collect();
        model(json!({"location": "italynorth", "properties": {
            "connectionType": "IPsec", "connectionProtocol": "IKEv2", "enableBgp": true, "sharedKey": key,
            "virtualNetworkGateway1": {"id": self.id("virtualNetworkGateways/vpngw"), "properties": {}},
            "localNetworkGateway2": {"id": self.id(&format!("localNetworkGateways/{lng}")), "properties": {}},
            "gatewayCustomBgpIpAddresses": customs,
            "ipsecPolicies": [{"saLifeTimeSeconds": 3600, "saDataSizeKilobytes": 102400000, "ipsecEncryption": "AES256",
                "ipsecIntegrity": "SHA256", "ikeEncryption": "AES256", "ikeIntegrity": "SHA256", "dhGroup": "DHGroup14", "pfsGroup": "PFS2048"}],
        }}))
    }
}

pub fn example(dir: &str, file: &str) -> Value {
    let path = format!("{EXAMPLES}/{dir}/{file}");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Every JSON path of a value (`properties.bgpSettings.bgpPeeringAddresses[].tunnelIpAddresses`).
pub fn paths(v: &Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                paths(v, &p, out);
            }
        }
        Value::Array(a) => {
            for v in a {
                paths(v, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

pub async fn raw_get(lab: &Lab, id: &str) -> Value {
    dxvpn_test_support::azure_raw_get(&lab.twin, id).await
}
