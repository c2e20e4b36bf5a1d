//! The DNS private resolver: resolvers, inbound and outbound endpoints in delegated subnets,
//! forwarding rulesets, their rules and virtual network links.

use super::*;

impl Arm {
    pub(super) fn check_resolver(
        &self,
        id: &str,
        body: &Map<String, Value>,
    ) -> Result<(), ArmError> {
        let vnet = self.referenced(
            body.pointer("/properties/virtualNetwork/id")
                .and_then(Value::as_str),
            Kind::VirtualNetwork,
            id,
            "properties.virtualNetwork",
        )?;
        let vnet_key = key_of(&vnet.id);
        if let Some(other) = self.all_live(Kind::DnsResolver).find(|r| {
            key_of(&r.id) != key_of(id)
                && r.props()
                    .pointer("/virtualNetwork/id")
                    .and_then(Value::as_str)
                    .map(key_of)
                    .as_deref()
                    == Some(vnet_key.as_str())
        }) {
            return Err(ArmError {
                status: 409,
                code: "Conflict".into(),
                message: format!(
                    "Virtual network {} already has DNS resolver {}; only one is allowed per virtual network.",
                    vnet.name(),
                    other.name()
                ),
            });
        }
        Ok(())
    }

    pub(super) fn check_endpoint(
        &self,
        id: &str,
        kind: Kind,
        body: &Map<String, Value>,
    ) -> Result<(), ArmError> {
        let resolver_id = id
            .rsplit_once('/')
            .and_then(|(p, _)| p.rsplit_once('/'))
            .map_or(id, |(p, _)| p);
        let resolver = self.live(resolver_id).ok_or_else(|| {
            not_found(resolver_id, Kind::DnsResolver, &self.seeded.resource_group)
        })?;
        let vnet_key = resolver
            .props()
            .pointer("/virtualNetwork/id")
            .and_then(Value::as_str)
            .map(key_of)
            .unwrap_or_default();
        let subnet_refs: Vec<(String, Option<&Value>)> = if kind == Kind::InboundEndpoint {
            let configs = required_list(
                body,
                "/properties/ipConfigurations",
                "properties.ipConfigurations needs at least one entry.",
            )?;
            configs
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("properties.ipConfigurations[{i}].subnet"), Some(c)))
                .collect()
        } else {
            vec![("properties.subnet".into(), body.get("properties"))]
        };
        for (field, holder) in subnet_refs {
            let subnet = self.referenced(
                holder
                    .and_then(|h| h.get("subnet"))
                    .and_then(|s| s.get("id"))
                    .and_then(Value::as_str),
                Kind::Subnet,
                id,
                &field,
            )?;
            if !key_of(&subnet.id).starts_with(&format!("{vnet_key}/subnets/")) {
                return Err(bad(
                    "SubnetNotInResolverVirtualNetwork",
                    format!(
                        "{field}: subnet {} is not in the resolver's virtual network.",
                        subnet.name()
                    ),
                ));
            }
            let delegated = subnet
                .props()
                .get("delegations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|d| {
                    d.pointer("/properties/serviceName").and_then(Value::as_str)
                        == Some(DNS_DELEGATION)
                });
            if !delegated {
                return Err(bad(
                    "SubnetNotDelegated",
                    format!(
                        "{field}: subnet {} must be delegated to {DNS_DELEGATION}.",
                        subnet.name()
                    ),
                ));
            }
            if let Some((_, user)) = self
                .subnet_users()
                .into_iter()
                .find(|(s, user)| *s == key_of(&subnet.id) && key_of(user) != key_of(id))
            {
                return Err(bad(
                    "SubnetInUse",
                    format!(
                        "{field}: subnet {} is already used by {user}; each endpoint needs its own subnet.",
                        subnet.name()
                    ),
                ));
            }
            if let (Some(h), Ok(prefix)) = (holder, subnet_prefix(subnet.props(), "subnet"))
                && h.get("privateIpAllocationMethod").and_then(Value::as_str) == Some("Static")
            {
                let ip = parse_ip(
                    h.get("privateIpAddress")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                    &format!("{field}.privateIpAddress"),
                )?;
                if !prefix.contains(&ip) {
                    return Err(bad(
                        "InvalidPrivateIpAddress",
                        format!("{field}: {ip} is not in subnet {prefix}."),
                    ));
                }
            }
        }
        Ok(())
    }

    pub(super) fn check_ruleset(
        &self,
        id: &str,
        body: &Map<String, Value>,
    ) -> Result<(), ArmError> {
        let outs = required_list(
            body,
            "/properties/dnsResolverOutboundEndpoints",
            "properties.dnsResolverOutboundEndpoints needs at least one outbound endpoint.",
        )?;
        for (i, o) in outs.iter().enumerate() {
            self.referenced(
                o.get("id").and_then(Value::as_str),
                Kind::OutboundEndpoint,
                id,
                &format!("properties.dnsResolverOutboundEndpoints[{i}]"),
            )?;
        }
        Ok(())
    }

    pub(super) fn check_rule(body: &Map<String, Value>) -> Result<(), ArmError> {
        let domain = body
            .pointer("/properties/domainName")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("InvalidRequestFormat", "properties.domainName is required."))?;
        if !domain.ends_with('.') || domain.len() < 2 {
            return Err(bad(
                "InvalidDomainName",
                format!(
                    "properties.domainName '{domain}' must be a fully qualified name ending with a dot, e.g. 'contoso.com.'."
                ),
            ));
        }
        let targets = body
            .pointer("/properties/targetDnsServers")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty() && a.len() <= 6)
            .ok_or_else(|| {
                bad(
                    "InvalidRequestFormat",
                    "properties.targetDnsServers needs 1 to 6 servers.",
                )
            })?;
        for (i, t) in targets.iter().enumerate() {
            let ip = parse_ip(
                t.get("ipAddress")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                &format!("properties.targetDnsServers[{i}].ipAddress"),
            )?;
            if ip == Ipv4Addr::new(168, 63, 129, 16) {
                return Err(bad(
                    "InvalidTargetDnsServer",
                    "168.63.129.16 (Azure's own resolver) cannot be a forwarding target.",
                ));
            }
        }
        Ok(())
    }

    pub(super) fn check_link(&self, id: &str, body: &Map<String, Value>) -> Result<(), ArmError> {
        self.referenced(
            body.pointer("/properties/virtualNetwork/id")
                .and_then(Value::as_str),
            Kind::VirtualNetwork,
            id,
            "properties.virtualNetwork",
        )?;
        Ok(())
    }
}
