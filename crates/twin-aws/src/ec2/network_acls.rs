//! Network ACLs: each VPC's default ACL (seeded with the VPC, associated with every subnet),
//! DescribeNetworkAcls, and CreateNetworkAclEntry / DeleteNetworkAclEntry.
//!
//! Sources: the VPC user guide, "Control subnet traffic with network access control lists":
//! "Your VPC automatically comes with a modifiable default network ACL. By default, it allows
//! all inbound and outbound IPv4 traffic" (rule 100 allow, then the `*` rule, number 32767, that
//! denies and cannot be changed); rules are "evaluated in order, starting with the lowest
//! numbered rule", and ACLs are stateless. The EC2 API reference for CreateNetworkAclEntry:
//! rule numbers 1 to 32766, protocol a number or -1, `PortRange` for TCP and UDP, `Icmp` for
//! ICMP; `NetworkAclEntryAlreadyExists` for a taken number in that direction;
//! DeleteNetworkAclEntry's `InvalidNetworkAclEntry.NotFound`. Response members: the model's
//! `NetworkAcl` (`networkAclId`, `vpcId`, `default`, `entrySet`, `associationSet`) and
//! `NetworkAclEntry` (`ruleNumber`, `protocol`, `ruleAction`, `egress`, `cidrBlock`,
//! `icmpTypeCode`, `portRange`).

use std::collections::BTreeMap;

use dxvpn_cidr::Ipv4Net;
use serde::Serialize;

use super::{Ec2, Ec2Error, Params, Xml, err, ok_return, required, select, tag_field};

/// The rule every ACL ends with: it matches everything and denies it.
pub(super) const LAST_RULE: i64 = 32767;

/// One numbered rule of one direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct AclEntry {
    pub(super) number: i64,
    pub(super) egress: bool,
    /// A protocol number as text, or "-1".
    pub(super) protocol: String,
    pub(super) allow: bool,
    pub(super) cidr: Ipv4Net,
    /// TCP/UDP port range.
    pub(super) ports: Option<(i64, i64)>,
    /// ICMP (type, code); -1 is all.
    pub(super) icmp: Option<(i64, i64)>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct NetworkAcl {
    pub(super) id: String,
    pub(super) vpc_id: String,
    pub(super) default: bool,
    pub(super) entries: Vec<AclEntry>,
    /// (association id, subnet id).
    pub(super) associations: Vec<(String, String)>,
    tags: BTreeMap<String, String>,
}

impl NetworkAcl {
    /// A VPC's default ACL: rule 100 allows everything both ways, and the `*` rule.
    pub(super) fn default_for(id: String, vpc_id: String) -> Self {
        let any = Ipv4Net::new_assert(std::net::Ipv4Addr::UNSPECIFIED, 0);
        let mut entries = Vec::new();
        for egress in [false, true] {
            for (number, allow) in [(100, true), (LAST_RULE, false)] {
                entries.push(AclEntry {
                    number,
                    egress,
                    protocol: "-1".into(),
                    allow,
                    cidr: any,
                    ports: None,
                    icmp: None,
                });
            }
        }
        NetworkAcl {
            id,
            vpc_id,
            default: true,
            entries,
            associations: Vec::new(),
            tags: BTreeMap::new(),
        }
    }

    /// Entries of one direction in the order AWS evaluates them.
    pub(super) fn ordered(&self, egress: bool) -> Vec<&AclEntry> {
        let mut out: Vec<&AclEntry> = self.entries.iter().filter(|e| e.egress == egress).collect();
        out.sort_by_key(|e| e.number);
        out
    }
}

fn int_param(p: &Params, name: &str) -> Result<Option<i64>, Ec2Error> {
    p.get(name)
        .map(|v| {
            v.parse().map_err(|_| {
                err(
                    "InvalidParameterValue",
                    format!("Invalid value '{v}' for {name}"),
                )
            })
        })
        .transpose()
}

/// The protocol as AWS stores it: a number, "-1" for all; the CLI's names are accepted too.
fn protocol(p: &Params) -> Result<String, Ec2Error> {
    let text = required(p, "Protocol")?;
    let number = match text.to_ascii_lowercase().as_str() {
        "all" | "-1" => return Ok("-1".into()),
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        other => other.parse::<u8>().map_err(|_| {
            err(
                "InvalidParameterValue",
                format!("Invalid value '{text}' for protocol"),
            )
        })?,
    };
    Ok(number.to_string())
}

impl Ec2 {
    pub(super) fn describe_network_acls(&self, p: &Params) -> Result<Xml, Ec2Error> {
        let matched = select(
            self.seed,
            p,
            "NetworkAclId",
            self.network_acls.iter(),
            |a| &a.id,
            ("InvalidNetworkAclID.NotFound", "network ACL"),
            |a, name| {
                Some(match name {
                    "network-acl-id" => vec![a.id.clone()],
                    "vpc-id" => vec![a.vpc_id.clone()],
                    "default" => vec![a.default.to_string()],
                    "association.subnet-id" => {
                        a.associations.iter().map(|(_, s)| s.clone()).collect()
                    }
                    "association.association-id" => {
                        a.associations.iter().map(|(id, _)| id.clone()).collect()
                    }
                    _ => return tag_field(&a.tags, name),
                })
            },
        )?;
        let mut x = Xml::new();
        x.set("networkAclSet", matched, |x, a| {
            x.field("networkAclId", &a.id)
                .field("vpcId", &a.vpc_id)
                .field("default", a.default)
                .field("ownerId", "123456789012");
            x.set("entrySet", &a.entries, |x, e| {
                x.field("ruleNumber", e.number)
                    .field("protocol", &e.protocol)
                    .field("ruleAction", if e.allow { "allow" } else { "deny" })
                    .field("egress", e.egress)
                    .field("cidrBlock", e.cidr);
                if let Some((kind, code)) = e.icmp {
                    x.element("icmpTypeCode", |x| {
                        x.field("code", code).field("type", kind);
                    });
                }
                if let Some((from, to)) = e.ports {
                    x.element("portRange", |x| {
                        x.field("from", from).field("to", to);
                    });
                }
            });
            x.set("associationSet", &a.associations, |x, (id, subnet)| {
                x.field("networkAclAssociationId", id)
                    .field("networkAclId", &a.id)
                    .field("subnetId", subnet);
            });
            x.tags(&a.tags);
        });
        Ok(x)
    }

    fn acl_mut(&mut self, p: &Params) -> Result<&mut NetworkAcl, Ec2Error> {
        let id = required(p, "NetworkAclId")?.to_owned();
        self.network_acls
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or_else(|| {
                err(
                    "InvalidNetworkAclID.NotFound",
                    format!("The networkAcl ID '{id}' does not exist"),
                )
            })
    }

    fn entry_key(p: &Params) -> Result<(i64, bool), Ec2Error> {
        let number = int_param(p, "RuleNumber")?
            .ok_or_else(|| err("MissingParameter", "RuleNumber is required"))?;
        if !(1..LAST_RULE).contains(&number) {
            return Err(err(
                "InvalidParameterValue",
                format!("Invalid value '{number}' for ruleNumber: must be between 1 and 32766"),
            ));
        }
        Ok((number, p.get("Egress") == Some("true")))
    }

    pub(super) fn create_network_acl_entry(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let (number, egress) = Self::entry_key(p)?;
        let protocol = protocol(p)?;
        let allow = match required(p, "RuleAction")? {
            "allow" => true,
            "deny" => false,
            other => {
                return Err(err(
                    "InvalidParameterValue",
                    format!("Invalid value '{other}' for ruleAction"),
                ));
            }
        };
        let cidr_text = required(p, "CidrBlock")?;
        let cidr: Ipv4Net = cidr_text.parse().map_err(|_| {
            err(
                "InvalidParameterValue",
                format!("CIDR block {cidr_text} is malformed"),
            )
        })?;
        let ports = match (
            int_param(p, "PortRange.From")?,
            int_param(p, "PortRange.To")?,
        ) {
            (Some(from), Some(to)) => Some((from, to)),
            _ if protocol == "6" || protocol == "17" => {
                return Err(err(
                    "InvalidParameterValue",
                    "TCP and UDP rules need PortRange.From and PortRange.To",
                ));
            }
            _ => None,
        };
        let icmp = (protocol == "1").then(|| {
            (
                int_param(p, "Icmp.Type").ok().flatten().unwrap_or(-1),
                int_param(p, "Icmp.Code").ok().flatten().unwrap_or(-1),
            )
        });
        let acl = self.acl_mut(p)?;
        if acl
            .entries
            .iter()
            .any(|e| e.number == number && e.egress == egress)
        {
            return Err(err(
                "NetworkAclEntryAlreadyExists",
                format!("The network acl entry identified by {number} already exists."),
            ));
        }
        acl.entries.push(AclEntry {
            number,
            egress,
            protocol,
            allow,
            cidr,
            ports,
            icmp,
        });
        Ok(ok_return())
    }

    pub(super) fn delete_network_acl_entry(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let (number, egress) = Self::entry_key(p)?;
        let acl = self.acl_mut(p)?;
        let before = acl.entries.len();
        acl.entries
            .retain(|e| !(e.number == number && e.egress == egress));
        if acl.entries.len() == before {
            return Err(err(
                "InvalidNetworkAclEntry.NotFound",
                format!("The network acl entry identified by {number} does not exist."),
            ));
        }
        Ok(ok_return())
    }

    /// The ACL a subnet is associated with.
    pub(super) fn acl_of_subnet(&self, subnet_id: &str) -> Option<&NetworkAcl> {
        self.network_acls
            .iter()
            .find(|a| a.associations.iter().any(|(_, s)| s == subnet_id))
    }
}
