//! The network security groups Azure applies to one address of the VNet: the network
//! interface in the resource group that holds it (Network Interfaces - List), the group on
//! that interface and the one on its subnet (GET of each), as JSON. Inbound traffic passes the
//! subnet's group, then the interface's ("How network security groups filter network
//! traffic"). Read as Azure gives them; `dxvpn-validate` judges them, Azure's default rules
//! included.

use azure_core::Method;
use serde::Serialize;
use serde_json::Value;

use crate::raw::{NETWORK_API_VERSION, json_body};
use crate::{Azure, AzureError, Kind, api};

/// What filters traffic to one interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AzureHostFilters {
    /// The interface's name.
    pub interface: String,
    /// Its subnet's name.
    pub subnet: String,
    /// The group on the subnet, then the one on the interface (each may be missing).
    pub groups: Vec<NsgRules>,
}

/// One network security group's own rules (not the defaults, which are Azure's and fixed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NsgRules {
    /// The group's name.
    pub name: String,
    /// Its resource group (for `az network nsg rule create -g`).
    pub resource_group: String,
    /// Where it is attached: `subnet` or `interface`.
    pub attached_to: String,
    /// Its `securityRules`.
    pub rules: Vec<NsgRule>,
}

/// One security rule, its members as ARM names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NsgRule {
    /// Rule name.
    pub name: String,
    /// 100 to 4096, lower first.
    pub priority: u32,
    /// `Inbound` or `Outbound`.
    pub direction: String,
    /// `Allow` or `Deny`.
    pub access: String,
    /// `Tcp`, `Udp`, `Icmp`, `Esp`, `Ah` or `*`.
    pub protocol: String,
    /// `sourceAddressPrefix` and `sourceAddressPrefixes`.
    pub sources: Vec<String>,
    /// `destinationAddressPrefix` and `destinationAddressPrefixes`.
    pub destinations: Vec<String>,
    /// `destinationPortRange` and `destinationPortRanges`.
    pub ports: Vec<String>,
}

fn strings(p: &Value, one: &str, many: &str) -> Vec<String> {
    let single = p.get(one).and_then(Value::as_str).map(str::to_owned);
    let list = p
        .get(many)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned));
    single.into_iter().chain(list).collect()
}

fn rules_of(group: &Value) -> Vec<NsgRule> {
    group
        .pointer("/properties/securityRules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| {
            let p = r.get("properties").cloned().unwrap_or_default();
            let text = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            NsgRule {
                name: r
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                priority: p
                    .get("priority")
                    .and_then(Value::as_u64)
                    .and_then(|v| u32::try_from(v).ok())
                    .unwrap_or(u32::MAX),
                direction: text("direction"),
                access: text("access"),
                protocol: text("protocol"),
                sources: strings(&p, "sourceAddressPrefix", "sourceAddressPrefixes"),
                destinations: strings(&p, "destinationAddressPrefix", "destinationAddressPrefixes"),
                ports: strings(&p, "destinationPortRange", "destinationPortRanges"),
            }
        })
        .collect()
}

/// `/subscriptions/s/resourceGroups/RG/...`: RG.
fn resource_group_of(id: &str) -> String {
    let mut parts = id.split('/');
    while let Some(part) = parts.next() {
        if part.eq_ignore_ascii_case("resourceGroups") {
            return parts.next().unwrap_or_default().to_owned();
        }
    }
    String::new()
}

impl Azure {
    /// The groups on the interface of the resource group that holds `address`; None when no
    /// interface there holds it.
    pub async fn host_filters(
        &self,
        address: std::net::Ipv4Addr,
    ) -> Result<Option<AzureHostFilters>, AzureError> {
        let wanted = address.to_string();
        let nics = self.list(Kind::NetworkInterface, "").await?;
        let found = nics.iter().find_map(|nic| {
            let configs = nic.pointer("/properties/ipConfigurations")?.as_array()?;
            let config = configs.iter().find(|c| {
                c.pointer("/properties/privateIPAddress")
                    .and_then(Value::as_str)
                    == Some(wanted.as_str())
            })?;
            Some((nic, config))
        });
        let Some((nic, config)) = found else {
            return Ok(None);
        };
        let subnet_id = config
            .pointer("/properties/subnet/id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let nic_group = nic
            .pointer("/properties/networkSecurityGroup/id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let subnet = async {
            match subnet_id.is_empty() {
                true => Ok(None),
                false => self.get_json(&subnet_id).await,
            }
        };
        let interface_group = async {
            match &nic_group {
                Some(id) => self.get_json(id).await,
                None => Ok(None),
            }
        };
        let (subnet, interface_group) = tokio::try_join!(subnet, interface_group)?;
        let subnet_group_id = subnet
            .as_ref()
            .and_then(|s| s.pointer("/properties/networkSecurityGroup/id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let subnet_group = match &subnet_group_id {
            Some(id) => self.get_json(id).await?,
            None => None,
        };
        let mut groups = Vec::new();
        for (group, attached_to) in [(subnet_group, "subnet"), (interface_group, "interface")] {
            if let Some(g) = group {
                let id = g.get("id").and_then(Value::as_str).unwrap_or_default();
                groups.push(NsgRules {
                    name: g
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    resource_group: resource_group_of(id),
                    attached_to: attached_to.to_owned(),
                    rules: rules_of(&g),
                });
            }
        }
        Ok(Some(AzureHostFilters {
            interface: nic
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            subnet: subnet_id.rsplit('/').next().unwrap_or_default().to_owned(),
            groups,
        }))
    }

    /// A Microsoft.Network resource as JSON; None when ARM answers 404.
    async fn get_json(&self, id: &str) -> Result<Option<Value>, AzureError> {
        let operation = "GET";
        match self
            .raw_call(Method::Get, id, NETWORK_API_VERSION, None)
            .await
        {
            Ok(response) => json_body(response)
                .await
                .map(Some)
                .map_err(api("azure.host_filters", operation)),
            Err(e) if crate::error::is_not_found(&e) => Ok(None),
            Err(e) => Err(api("azure.host_filters", operation)(e)),
        }
    }
}
