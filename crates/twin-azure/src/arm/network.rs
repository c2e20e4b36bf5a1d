//! Virtual networks and subnets: address spaces, subnets inside them and apart from each other,
//! inline subnets kept in step with the child resources, delegation to the DNS resolver, and
//! which subnets are in use.

use super::*;

impl Arm {
    /// Subnet ids referenced by live gateways, network interfaces (until they are gone) and DNS
    /// endpoints: (subnet key, user id).
    pub(super) fn subnet_users(&self) -> Vec<(String, String)> {
        let mut users = Vec::new();
        for r in self.records.values().filter(|r| r.phase() != Phase::Gone) {
            match r.kind {
                Kind::Gateway | Kind::NetworkInterface => {
                    for c in r
                        .props()
                        .get("ipConfigurations")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(s) = c.pointer("/properties/subnet/id").and_then(Value::as_str)
                        {
                            let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
                            users.push((key_of(s), format!("{}/ipConfigurations/{name}", r.id)));
                        }
                    }
                }
                Kind::InboundEndpoint => {
                    for c in r
                        .props()
                        .get("ipConfigurations")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(s) = c.pointer("/subnet/id").and_then(Value::as_str) {
                            users.push((key_of(s), r.id.clone()));
                        }
                    }
                }
                Kind::OutboundEndpoint => {
                    if let Some(s) = r
                        .props()
                        .get("subnet")
                        .and_then(|v| v.get("id"))
                        .and_then(Value::as_str)
                    {
                        users.push((key_of(s), r.id.clone()));
                    }
                }
                _ => {}
            }
        }
        users
    }
}

impl Arm {
    pub(super) fn sync_inline_subnets(
        &mut self,
        vnet_id: &str,
        subnets: &[Value],
    ) -> Result<(), ArmError> {
        let mut wanted = BTreeSet::new();
        for s in subnets {
            let name = s.get("name").and_then(Value::as_str).ok_or_else(|| {
                bad(
                    "InvalidRequestFormat",
                    "properties.subnets[].name is required.",
                )
            })?;
            let sub_id = format!("{vnet_id}/subnets/{name}");
            wanted.insert(key_of(&sub_id));
            let body =
                json!({"properties": s.get("properties").cloned().unwrap_or_else(|| json!({}))});
            self.put(&sub_id, Kind::Subnet, body)?;
        }
        let stale: Vec<String> = self
            .children_of(vnet_id, Kind::Subnet)
            .map(|r| r.id.clone())
            .filter(|id| !wanted.contains(&key_of(id)))
            .collect();
        for id in stale {
            self.check_subnet_free(&id)?;
            self.records.remove(&key_of(&id));
        }
        Ok(())
    }
}

impl Arm {
    pub(super) fn check_vnet(&self, id: &str, body: &Map<String, Value>) -> Result<(), ArmError> {
        let prefixes = required_list(
            body,
            "/properties/addressSpace/addressPrefixes",
            "properties.addressSpace.addressPrefixes needs at least one prefix.",
        )?;
        let space: Vec<Ipv4Net> = prefixes
            .iter()
            .map(|p| {
                parse_prefix(
                    p.as_str().unwrap_or_default(),
                    "properties.addressSpace.addressPrefixes",
                )
            })
            .collect::<Result<_, _>>()?;
        let mut seen: Vec<Ipv4Net> = Vec::new();
        for s in body
            .pointer("/properties/subnets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
            let props = s
                .get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let prefix = subnet_prefix(&props, &format!("properties.subnets['{name}']"))?;
            if !space.iter().any(|v| dxvpn_cidr::contains(*v, prefix)) {
                return Err(bad(
                    "NetcfgSubnetRangeOutsideVnet",
                    format!(
                        "Subnet '{name}' is not valid because its IP address range is outside the IP address range of virtual network '{}'.",
                        id.rsplit('/').next().unwrap_or(id)
                    ),
                ));
            }
            if let Some(other) = seen.iter().find(|o| dxvpn_cidr::overlaps(**o, prefix)) {
                return Err(bad(
                    "NetcfgSubnetRangesOverlap",
                    format!(
                        "Subnet '{name}' ({prefix}) overlaps another subnet ({other}) of the virtual network."
                    ),
                ));
            }
            seen.push(prefix);
        }
        Ok(())
    }

    pub(super) fn check_subnet(&self, id: &str, body: &Map<String, Value>) -> Result<(), ArmError> {
        let (vnet_id, _) = id.rsplit_once("/subnets/").unwrap_or((id, ""));
        let name = id.rsplit('/').next().unwrap_or(id);
        let props = body
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let prefix = subnet_prefix(&props, "properties")?;
        let vnet = self
            .live(vnet_id)
            .ok_or_else(|| not_found(vnet_id, Kind::VirtualNetwork, &self.seeded.resource_group))?;
        let space: Vec<Ipv4Net> = vnet
            .props()
            .get("addressSpace")
            .and_then(|a| a.get("addressPrefixes"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().and_then(|p| dxvpn_cidr::parse_network(p).ok()))
            .collect();
        if !space.iter().any(|v| dxvpn_cidr::contains(*v, prefix)) {
            return Err(bad(
                "NetcfgSubnetRangeOutsideVnet",
                format!(
                    "Subnet '{name}' is not valid because its IP address range ({prefix}) is outside the IP address range of virtual network '{}'.",
                    vnet.name()
                ),
            ));
        }
        for sibling in self.children_of(vnet_id, Kind::Subnet) {
            if key_of(&sibling.id) == key_of(id) {
                continue;
            }
            if let Ok(other) = subnet_prefix(sibling.props(), "subnet")
                && dxvpn_cidr::overlaps(other, prefix)
            {
                return Err(bad(
                    "NetcfgSubnetRangesOverlap",
                    format!(
                        "Subnet '{name}' ({prefix}) overlaps subnet '{}' ({other}). Pick a free range of the virtual network.",
                        sibling.name()
                    ),
                ));
            }
        }
        let delegations = props
            .get("delegations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if name.eq_ignore_ascii_case("GatewaySubnet") && !delegations.is_empty() {
            return Err(bad(
                "GatewaySubnet",
                "Subnet with name 'GatewaySubnet' can be used only for the Gateway resource; it cannot be delegated.",
            ));
        }
        for d in &delegations {
            if d.pointer("/properties/serviceName").and_then(Value::as_str) == Some(DNS_DELEGATION)
                && !(24..=28).contains(&prefix.prefix_len())
            {
                return Err(bad(
                    "InvalidSubnetSizeForDnsResolver",
                    format!(
                        "Subnet '{name}' ({prefix}) delegated to {DNS_DELEGATION} must be between /28 and /24."
                    ),
                ));
            }
        }
        self.check_group_reference(props.get("networkSecurityGroup"), id)?;
        // A subnet in use keeps its range.
        if let Some(current) = self.live(id)
            && subnet_prefix(current.props(), "subnet").ok() != Some(prefix)
            && let Some((_, user)) = self
                .subnet_users()
                .into_iter()
                .find(|(s, _)| *s == key_of(id))
        {
            return Err(bad(
                "InUseSubnetCannotBeUpdated",
                format!("Subnet {name} is in use by {user}; its address prefix cannot change."),
            ));
        }
        Ok(())
    }

    pub(super) fn check_subnet_free(&self, id: &str) -> Result<(), ArmError> {
        if let Some((_, user)) = self
            .subnet_users()
            .into_iter()
            .find(|(s, _)| *s == key_of(id))
        {
            let name = id.rsplit('/').next().unwrap_or(id);
            return Err(bad(
                "InUseSubnetCannotBeDeleted",
                format!(
                    "Subnet {name} is in use by {user} and cannot be deleted. In order to delete the subnet, delete all the resources within the subnet. See aka.ms/deletesubnet."
                ),
            ));
        }
        Ok(())
    }
}
