//! Network interfaces: the lab host's interface, seeded in the first subnet with a workload
//! security group, DescribeNetworkInterfaces, and the filters AWS applies to that interface
//! as the lab enforces them.
//!
//! Sources: the EC2 API reference, DescribeNetworkInterfaces (filters
//! `addresses.private-ip-address`, `private-ip-address`, `network-interface-id`, `subnet-id`,
//! `vpc-id`, `group-id`; members `networkInterfaceId`, `subnetId`, `vpcId`, `privateIpAddress`,
//! `groupSet`, `privateIpAddressesSet`, `status`, `interfaceType`), and the VPC user guide:
//! a packet to an instance passes its subnet's network ACL (stateless: the answer is judged
//! again on the way out) and then the interface's security groups (stateful, allow rules only:
//! "If there is more than one rule for a specific port, we apply the most permissive rule").

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use dxvpn_cidr::Ipv4Net;
use dxvpn_twin_kit::views::{FilterRule, FilterStage, HostFilter};
use serde::Serialize;

use super::network_acls::AclEntry;
use super::security_groups::Permission;
use super::{Ec2, Ec2Error, Params, Xml, select, tag_field};

#[derive(Debug, Clone, Serialize)]
pub(super) struct NetworkInterface {
    pub(super) id: String,
    pub(super) subnet_id: String,
    pub(super) vpc_id: String,
    pub(super) private_ip: Ipv4Addr,
    pub(super) groups: Vec<String>,
    pub(super) description: String,
    pub(super) tags: BTreeMap<String, String>,
}

impl Ec2 {
    /// The lab host's interface at the subnet's tenth address, in a security group that
    /// allows everything from the private 10.0.0.0/8 range: a common workload group, and what
    /// lets the other cloud in until a test takes it away.
    pub(super) fn seed_host_interface(&mut self, vpc_id: &str, subnet_id: &str, subnet: Ipv4Net) {
        let group_id = self.new_id("sg");
        let everything = Permission::new("-1", -1, -1, vec!["10.0.0.0/8".into()]);
        self.security_groups
            .push(super::security_groups::SecurityGroup::seeded(
                group_id.clone(),
                "lab-workload",
                "Workloads: everything from the private network",
                vpc_id,
                vec![everything],
            ));
        self.seeded.host_security_group_id = Some(group_id.clone());
        let id = self.new_id("eni");
        self.network_interfaces.push(NetworkInterface {
            id,
            subnet_id: subnet_id.to_owned(),
            vpc_id: vpc_id.to_owned(),
            private_ip: dxvpn_cidr::nth_host(subnet, 10).unwrap_or(subnet.network()),
            groups: vec![group_id],
            description: "lab host vm1".into(),
            tags: BTreeMap::from([("Name".to_owned(), "vm1".to_owned())]),
        });
    }

    pub(super) fn describe_network_interfaces(&self, p: &Params) -> Result<Xml, Ec2Error> {
        let matched = select(
            self.seed,
            p,
            "NetworkInterfaceId",
            self.network_interfaces.iter(),
            |n| &n.id,
            ("InvalidNetworkInterfaceID.NotFound", "network interface"),
            |n, name| {
                Some(match name {
                    "network-interface-id" => vec![n.id.clone()],
                    "addresses.private-ip-address" | "private-ip-address" => {
                        vec![n.private_ip.to_string()]
                    }
                    "subnet-id" => vec![n.subnet_id.clone()],
                    "vpc-id" => vec![n.vpc_id.clone()],
                    "group-id" => n.groups.clone(),
                    "status" => vec!["available".into()],
                    _ => return tag_field(&n.tags, name),
                })
            },
        )?;
        let mut x = Xml::new();
        x.set("networkInterfaceSet", matched, |x, n| {
            x.field("networkInterfaceId", &n.id)
                .field("subnetId", &n.subnet_id)
                .field("vpcId", &n.vpc_id)
                .field("description", &n.description)
                .field("ownerId", "123456789012")
                .field("status", "available")
                .field("privateIpAddress", n.private_ip)
                .field("sourceDestCheck", true)
                .field("interfaceType", "interface");
            x.set("groupSet", &n.groups, |x, g| {
                let name = self
                    .security_groups
                    .iter()
                    .find(|s| s.id == *g)
                    .map_or("", |s| s.name.as_str());
                x.field("groupId", g).field("groupName", name);
            });
            x.set("privateIpAddressesSet", [n.private_ip], |x, ip| {
                x.field("privateIpAddress", ip).field("primary", true);
            });
            x.tags(&n.tags);
        });
        Ok(x)
    }

    /// The lab host's filters: its subnet's ACL in, its security groups, the ACL out.
    pub(super) fn host_filter(&self) -> Option<HostFilter> {
        let vpc = self.vpcs.first()?;
        let nic = self
            .network_interfaces
            .iter()
            .find(|n| n.vpc_id == vpc.id)?;
        let mut filter = HostFilter {
            address: nic.private_ip,
            inbound: Vec::new(),
            outbound: Vec::new(),
        };
        if let Some(acl) = self.acl_of_subnet(&nic.subnet_id) {
            for (egress, stages) in [(false, &mut filter.inbound), (true, &mut filter.outbound)] {
                stages.push(FilterStage {
                    name: acl.id.clone(),
                    stateful: false,
                    rules: acl.ordered(egress).into_iter().map(acl_rule).collect(),
                });
            }
        }
        let rules = self
            .security_groups
            .iter()
            .filter(|g| nic.groups.contains(&g.id))
            .flat_map(|g| g.ingress.iter().map(permission_rule))
            .collect();
        filter.inbound.push(FilterStage {
            name: nic.groups.join(","),
            stateful: true,
            rules,
        });
        Some(filter)
    }
}

fn acl_rule(e: &AclEntry) -> FilterRule {
    let protocol = e.protocol.parse::<u8>().ok();
    let ports = match (protocol, e.ports, e.icmp) {
        (Some(6 | 17), Some(range), _) => port_range(range),
        (Some(1), _, Some((kind, _))) => port_range((kind, kind)),
        _ => None,
    };
    FilterRule {
        protocol,
        ports,
        peers: vec![e.cidr],
        allow: e.allow,
    }
}

fn permission_rule(perm: &Permission) -> FilterRule {
    let protocol = match perm.protocol.as_str() {
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        _ => None,
    };
    // For ICMP, FromPort is the type (-1: all) and ToPort the code.
    let ports = match protocol {
        Some(1) => port_range((perm.from_port, perm.from_port)),
        Some(_) => port_range((perm.from_port, perm.to_port)),
        None => None,
    };
    FilterRule {
        protocol,
        ports,
        peers: perm.cidrs.iter().filter_map(|c| c.parse().ok()).collect(),
        allow: true,
    }
}

/// -1 (or anything out of range) is "all".
fn port_range((from, to): (i64, i64)) -> Option<(u16, u16)> {
    Some((u16::try_from(from).ok()?, u16::try_from(to).ok()?))
}
