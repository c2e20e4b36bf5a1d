//! The lab host's network interface and security group, seeded with the VNet, and the filters
//! Azure applies to that interface as the lab enforces them.
//!
//! Sources: "Network security groups" and "How network security groups filter network traffic"
//! (Azure virtual network docs): inbound traffic passes the subnet's NSG, then the interface's;
//! rules are processed by priority, lowest first, until one matches; NSGs are stateful; every
//! NSG ends with the default rules AllowVnetInBound (65000, VirtualNetwork to VirtualNetwork),
//! AllowAzureLoadBalancerInBound (65001) and DenyAllInBound (65500). "Virtual network service
//! tags": `VirtualNetwork` is the VNet's address space, "all connected on-premises address
//! spaces" and the address prefixes reached through a virtual network gateway (so the VPC,
//! learned over BGP, is inside it); `AzureLoadBalancer` is 168.63.129.16.

use dxvpn_twin_kit::views::{FilterRule, FilterStage, HostFilter};

use super::*;

/// The seeded host's interface and its security group.
const HOST_NIC: &str = "vm1-nic";
const HOST_NSG: &str = "vm1-nsg";
const AZURE_PLATFORM_IP: Ipv4Addr = Ipv4Addr::new(168, 63, 129, 16);

impl Arm {
    /// The lab host's interface at the workload subnet's tenth address, with a security group
    /// of no rules of its own (Azure's defaults only), as a VM's portal-made NSG starts.
    pub(super) fn seed_host_interface(
        &mut self,
        base: &str,
        subnet_id: &str,
        subnet: Ipv4Net,
        location: &str,
    ) -> Result<(), ArmError> {
        let nsg_id = format!("{base}/networkSecurityGroups/{HOST_NSG}");
        self.put(
            &nsg_id,
            Kind::SecurityGroup,
            json!({"location": location, "properties": {"securityRules": []}}),
        )?;
        let ip = dxvpn_cidr::nth_host(subnet, 10).unwrap_or(subnet.network());
        self.put(
            &format!("{base}/networkInterfaces/{HOST_NIC}"),
            Kind::NetworkInterface,
            json!({
                "location": location,
                "properties": {
                    "networkSecurityGroup": {"id": nsg_id},
                    "ipConfigurations": [{
                        "name": "ipconfig1",
                        "properties": {
                            "privateIPAllocationMethod": "Static",
                            "privateIPAddress": ip.to_string(),
                            "subnet": {"id": subnet_id},
                        }
                    }],
                }
            }),
        )?;
        Ok(())
    }

    /// The lab host's filters: its subnet's NSG, then its interface's (inbound only: the
    /// default outbound rules let everything to the VNet and the internet out).
    pub(crate) fn host_filter(&self) -> Option<HostFilter> {
        let nic = self
            .all_live(Kind::NetworkInterface)
            .find(|n| n.name() == HOST_NIC)?;
        let config = nic.props().pointer("/ipConfigurations/0/properties")?;
        let address: Ipv4Addr = config.get("privateIPAddress")?.as_str()?.parse().ok()?;
        let virtual_network = self.virtual_network_prefixes();
        let mut filter = HostFilter {
            address,
            inbound: Vec::new(),
            outbound: Vec::new(),
        };
        let subnet_nsg = ref_id(config.get("subnet"))
            .and_then(|s| self.live(s))
            .and_then(|s| ref_id(s.props().get("networkSecurityGroup")).map(str::to_owned));
        let nic_nsg = ref_id(nic.props().get("networkSecurityGroup")).map(str::to_owned);
        for nsg in [subnet_nsg, nic_nsg].into_iter().flatten() {
            if let Some(nsg) = self.live(&nsg) {
                filter.inbound.push(FilterStage {
                    name: nsg.name().to_owned(),
                    stateful: true,
                    rules: inbound_rules(nsg.props(), address, &virtual_network),
                });
            }
        }
        Some(filter)
    }

    /// What the `VirtualNetwork` tag stands for: the VNet's space and what its gateway learned.
    fn virtual_network_prefixes(&self) -> Vec<Ipv4Net> {
        let mut prefixes: Vec<Ipv4Net> = self
            .live(&self.seeded.vnet_id)
            .and_then(|v| v.props().pointer("/addressSpace/addressPrefixes"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str()?.parse().ok())
            .collect();
        prefixes.extend(self.telemetry.learned_routes.iter().map(|(p, _, _)| *p));
        prefixes
    }
}

/// An NSG's inbound rules that concern `address`, by priority, then Azure's defaults.
fn inbound_rules(
    props: &Map<String, Value>,
    address: Ipv4Addr,
    virtual_network: &[Ipv4Net],
) -> Vec<FilterRule> {
    let mut custom: Vec<(u64, &Map<String, Value>)> = props
        .get("securityRules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("properties")?.as_object())
        .filter(|p| p.get("direction").and_then(Value::as_str) == Some("Inbound"))
        .map(|p| (p.get("priority").and_then(Value::as_u64).unwrap_or(0), p))
        .collect();
    custom.sort_by_key(|(priority, _)| *priority);
    let mut rules = Vec::new();
    for (_, p) in custom {
        let destinations = prefixes(p, "destinationAddressPrefix", virtual_network);
        if !destinations.iter().any(|d| d.contains(&address)) {
            continue;
        }
        let protocol = match p.get("protocol").and_then(Value::as_str) {
            Some("Tcp") => Some(6),
            Some("Udp") => Some(17),
            Some("Icmp") => Some(1),
            Some("Esp") => Some(50),
            Some("Ah") => Some(51),
            _ => None,
        };
        let peers = prefixes(p, "sourceAddressPrefix", virtual_network);
        let allow = p.get("access").and_then(Value::as_str) == Some("Allow");
        for ports in port_ranges(p) {
            rules.push(FilterRule {
                protocol,
                ports: if protocol == Some(6) || protocol == Some(17) {
                    ports
                } else {
                    None
                },
                peers: peers.clone(),
                allow,
            });
        }
    }
    let any = Ipv4Net::new_assert(Ipv4Addr::UNSPECIFIED, 0);
    for (peers, allow) in [
        (virtual_network.to_vec(), true),
        (vec![Ipv4Net::new_assert(AZURE_PLATFORM_IP, 32)], true),
        (vec![any], false),
    ] {
        rules.push(FilterRule {
            protocol: None,
            ports: None,
            peers,
            allow,
        });
    }
    rules
}

/// `{name}` and `{name}es` of a rule as ranges: `*`/`Any`, a CIDR, an address, or the service
/// tags the lab can stand for (`Internet` and other tags match nothing here).
fn prefixes(p: &Map<String, Value>, name: &str, virtual_network: &[Ipv4Net]) -> Vec<Ipv4Net> {
    let plural = format!("{name}es");
    let texts = p.get(name).and_then(Value::as_str).into_iter().chain(
        p.get(&plural)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str),
    );
    let mut out = Vec::new();
    for text in texts {
        match text {
            "*" | "Any" => out.push(Ipv4Net::new_assert(Ipv4Addr::UNSPECIFIED, 0)),
            "VirtualNetwork" => out.extend_from_slice(virtual_network),
            "AzureLoadBalancer" => out.push(Ipv4Net::new_assert(AZURE_PLATFORM_IP, 32)),
            other => {
                if let Ok(net) = other.parse::<Ipv4Net>() {
                    out.push(net);
                } else if let Ok(ip) = other.parse::<Ipv4Addr>() {
                    out.push(Ipv4Net::new_assert(ip, 32));
                }
            }
        }
    }
    out
}

/// `destinationPortRange` and `destinationPortRanges`: `*`, `22` or `1000-2000`.
fn port_ranges(p: &Map<String, Value>) -> Vec<Option<(u16, u16)>> {
    let texts: Vec<&str> = p
        .get("destinationPortRange")
        .and_then(Value::as_str)
        .into_iter()
        .chain(
            p.get("destinationPortRanges")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str),
        )
        .collect();
    if texts.is_empty() {
        return vec![None];
    }
    texts
        .into_iter()
        .map(|t| {
            if t == "*" {
                return None;
            }
            let (from, to) = t.split_once('-').unwrap_or((t, t));
            Some((from.trim().parse().ok()?, to.trim().parse().ok()?))
        })
        .collect()
}
