//! Public IP addresses: Standard and static only (as VPN gateways of the AZ SKUs need), an
//! address from the lab's internet, refused while a gateway uses it.

use super::*;

impl Arm {
    pub(super) fn allocate_public_ip(&self) -> Result<Ipv4Addr, ArmError> {
        let used: BTreeSet<Ipv4Addr> = self.records.values().filter_map(|r| r.ip).collect();
        (1..=254u8)
            .map(|n| Ipv4Addr::new(198, 18, 2, n))
            .find(|ip| !used.contains(ip))
            .ok_or_else(|| {
                bad(
                    "PublicIPCountLimitReached",
                    "The lab's internet has no free public IP address left.",
                )
            })
    }
}

impl Arm {
    pub(super) fn check_public_ip(&self, body: &Map<String, Value>) -> Result<(), ArmError> {
        let sku = body
            .get("sku")
            .and_then(|s| s.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("Basic");
        if !["Basic", "Standard"].contains(&sku) {
            return Err(bad(
                "InvalidRequestFormat",
                format!("sku.name '{sku}' is not one of Basic, Standard."),
            ));
        }
        let props = body.get("properties").and_then(Value::as_object);
        let allocation = props
            .and_then(|p| p.get("publicIPAllocationMethod"))
            .and_then(Value::as_str)
            .unwrap_or(if sku == "Standard" {
                "Static"
            } else {
                "Dynamic"
            });
        if !["Static", "Dynamic"].contains(&allocation) {
            return Err(bad(
                "InvalidRequestFormat",
                format!("publicIPAllocationMethod '{allocation}' is not one of Static, Dynamic."),
            ));
        }
        if sku == "Standard" && allocation == "Dynamic" {
            return Err(bad(
                "StandardSkuPublicIPAddressesCannotBeDynamic",
                "Standard sku publicIp addresses must have publicIPAllocationMethod set to Static.",
            ));
        }
        Ok(())
    }
}

impl Arm {
    /// The gateway ipConfiguration using public IP `pip_id`, if any.
    pub(super) fn public_ip_user(&self, pip_id: &str) -> Option<String> {
        self.all_live(Kind::Gateway).find_map(|g| {
            g.props()
                .get("ipConfigurations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find_map(|c| {
                    (c.pointer("/properties/publicIPAddress/id")
                        .and_then(Value::as_str)
                        .map(key_of)
                        == Some(key_of(pip_id)))
                    .then(|| {
                        format!(
                            "{}/ipConfigurations/{}",
                            g.id,
                            c.get("name").and_then(Value::as_str).unwrap_or_default()
                        )
                    })
                })
        })
    }
}
