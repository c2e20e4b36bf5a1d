//! Security groups: the subset resolver endpoints and the lab's host need (create, describe,
//! authorize and revoke ingress, delete), with EC2's error codes.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use super::{Ec2, Ec2Error, Params, Xml, err, ok_return, required, select, tag_field};

/// One ingress permission: protocol, port range, source CIDRs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Permission {
    pub(super) protocol: String,
    pub(super) from_port: i64,
    pub(super) to_port: i64,
    pub(super) cidrs: Vec<String>,
}

impl Permission {
    pub(super) fn new(protocol: &str, from_port: i64, to_port: i64, cidrs: Vec<String>) -> Self {
        Permission {
            protocol: protocol.to_owned(),
            from_port,
            to_port,
            cidrs,
        }
    }

    fn same_rule(&self, other: &Permission) -> bool {
        self.protocol == other.protocol
            && self.from_port == other.from_port
            && self.to_port == other.to_port
    }
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct SecurityGroup {
    pub(super) id: String,
    pub(super) name: String,
    description: String,
    pub(super) vpc_id: String,
    pub(super) ingress: Vec<Permission>,
    pub(super) tags: BTreeMap<String, String>,
    /// Until then the new group's id answers `InvalidGroup.NotFound`, the example the EC2
    /// developer guide gives of eventual consistency ("Eventual consistency in the Amazon EC2 API").
    #[serde(skip)]
    propagated_at: Instant,
}

impl SecurityGroup {
    /// A group that exists before the run (seeded), visible at once.
    pub(super) fn seeded(
        id: String,
        name: &str,
        description: &str,
        vpc_id: &str,
        ingress: Vec<Permission>,
    ) -> Self {
        SecurityGroup {
            id,
            name: name.to_owned(),
            description: description.to_owned(),
            vpc_id: vpc_id.to_owned(),
            ingress,
            tags: BTreeMap::new(),
            propagated_at: Instant::now(),
        }
    }

    fn propagated(&self) -> bool {
        Instant::now() >= self.propagated_at
    }
}

fn permissions(p: &Params) -> Result<Vec<Permission>, Ec2Error> {
    let mut out = Vec::new();
    for entry in p.entries("IpPermissions") {
        let protocol = entry
            .get("IpProtocol")
            .ok_or_else(|| err("MissingParameter", "IpPermissions.N.IpProtocol is required"))?
            .to_owned();
        if !matches!(protocol.as_str(), "tcp" | "udp" | "icmp" | "-1") {
            return Err(err(
                "InvalidParameterValue",
                format!("Invalid value '{protocol}' for IP protocol. Unknown protocol."),
            ));
        }
        let port = |name: &str| -> Result<i64, Ec2Error> {
            entry.get(name).map_or(Ok(-1), |v| {
                v.parse().map_err(|_| {
                    err(
                        "InvalidParameterValue",
                        format!("Invalid value '{v}' for {name}"),
                    )
                })
            })
        };
        let cidrs: Vec<String> = entry
            .entries("IpRanges")
            .into_iter()
            .filter_map(|r| r.get("CidrIp").map(str::to_owned))
            .collect();
        for c in &cidrs {
            if c.parse::<dxvpn_cidr::Ipv4Net>().is_err() {
                return Err(err(
                    "InvalidParameterValue",
                    format!("CIDR block {c} is malformed"),
                ));
            }
        }
        out.push(Permission {
            protocol,
            from_port: port("FromPort")?,
            to_port: port("ToPort")?,
            cidrs,
        });
    }
    Ok(out)
}

impl Ec2 {
    pub(super) fn create_security_group(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let name = required(p, "GroupName")?.to_owned();
        let description = required(p, "GroupDescription")?.to_owned();
        let vpc_id = p
            .get("VpcId")
            .ok_or_else(|| err("VPCIdNotSpecified", "No default VPC for this user"))?
            .to_owned();
        if !self.vpcs.iter().any(|v| v.id == vpc_id) {
            return Err(err(
                "InvalidVpcID.NotFound",
                format!("The vpc ID '{vpc_id}' does not exist"),
            ));
        }
        if self
            .security_groups
            .iter()
            .any(|g| g.vpc_id == vpc_id && g.name == name)
        {
            return Err(err(
                "InvalidGroup.Duplicate",
                format!("The security group '{name}' already exists for VPC '{vpc_id}'"),
            ));
        }
        let id = self.new_id("sg");
        let propagated_at = Instant::now() + self.read_lag();
        self.security_groups.push(SecurityGroup {
            id: id.clone(),
            name,
            description,
            vpc_id,
            ingress: Vec::new(),
            tags: p.tags(),
            propagated_at,
        });
        let mut x = Xml::new();
        x.field("return", "true").field("groupId", &id);
        Ok(x)
    }

    pub(super) fn describe_security_groups(&self, p: &Params) -> Result<Xml, Ec2Error> {
        let matched = select(
            self.seed,
            p,
            "GroupId",
            self.security_groups.iter().filter(|g| g.propagated()),
            |g| &g.id,
            ("InvalidGroup.NotFound", "security group"),
            |g, name| {
                Some(match name {
                    "group-id" => vec![g.id.clone()],
                    "group-name" => vec![g.name.clone()],
                    "vpc-id" => vec![g.vpc_id.clone()],
                    _ => return tag_field(&g.tags, name),
                })
            },
        )?;
        let mut x = Xml::new();
        x.set("securityGroupInfo", matched, |x, g| {
            x.field("ownerId", "123456789012")
                .field("groupId", &g.id)
                .field("groupName", &g.name)
                .field("groupDescription", &g.description)
                .field("vpcId", &g.vpc_id);
            x.set("ipPermissions", &g.ingress, |x, perm| {
                x.field("ipProtocol", &perm.protocol);
                if perm.protocol != "-1" {
                    x.field("fromPort", perm.from_port)
                        .field("toPort", perm.to_port);
                }
                x.set("ipRanges", &perm.cidrs, |x, c| {
                    x.field("cidrIp", c);
                });
            });
            // "When you create a security group, it has an outbound rule that allows all
            // outbound traffic" (VPC user guide, "Security group rules"); the twin has no
            // egress writes, so every group keeps it.
            x.set("ipPermissionsEgress", [()], |x, ()| {
                x.field("ipProtocol", "-1");
                x.set("ipRanges", ["0.0.0.0/0"], |x, c| {
                    x.field("cidrIp", c);
                });
            });
            x.tags(&g.tags);
        });
        Ok(x)
    }

    /// The group `GroupId` names, once reads show it.
    fn group_named_by(&mut self, p: &Params) -> Result<&mut SecurityGroup, Ec2Error> {
        let id = required(p, "GroupId")?.to_owned();
        self.security_groups
            .iter_mut()
            .find(|g| g.id == id && g.propagated())
            .ok_or_else(|| {
                err(
                    "InvalidGroup.NotFound",
                    format!("The security group '{id}' does not exist"),
                )
            })
    }

    /// Removes the named ranges from matching rules; a rule left without ranges goes. A
    /// permission that matches nothing is `InvalidPermission.NotFound` (EC2 API reference,
    /// RevokeSecurityGroupIngress; error codes: "The specified rule does not exist in this
    /// security group").
    pub(super) fn revoke_ingress(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let unwanted = permissions(p)?;
        let group = self.group_named_by(p)?;
        for perm in &unwanted {
            let found = perm.cidrs.iter().all(|c| {
                group
                    .ingress
                    .iter()
                    .any(|g| g.same_rule(perm) && g.cidrs.contains(c))
            });
            if !found {
                return Err(err(
                    "InvalidPermission.NotFound",
                    "The specified rule does not exist in this security group.",
                ));
            }
        }
        for perm in &unwanted {
            for rule in group.ingress.iter_mut().filter(|g| g.same_rule(perm)) {
                rule.cidrs.retain(|c| !perm.cidrs.contains(c));
            }
        }
        group.ingress.retain(|g| !g.cidrs.is_empty());
        Ok(ok_return())
    }

    pub(super) fn authorize_ingress(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let wanted = permissions(p)?;
        let group = self.group_named_by(p)?;
        for perm in &wanted {
            for cidr in &perm.cidrs {
                let exists = group
                    .ingress
                    .iter()
                    .any(|g| g.same_rule(perm) && g.cidrs.contains(cidr));
                if exists {
                    return Err(err(
                        "InvalidPermission.Duplicate",
                        format!(
                            "the specified rule \"peer: {cidr}, {}, from port: {}, to port: {}, ALLOW\" already exists",
                            perm.protocol.to_uppercase(),
                            perm.from_port,
                            perm.to_port
                        ),
                    ));
                }
            }
        }
        group.ingress.extend(wanted);
        Ok(ok_return())
    }

    pub(super) fn delete_security_group(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let id = required(p, "GroupId")?.to_owned();
        // "You can't delete a security group that is associated with an instance" (EC2 API
        // reference, DeleteSecurityGroup): DependencyViolation until it is terminated.
        if let Some(instance) = self.instance_using_group(&id) {
            return Err(Ec2Error {
                status: 400,
                code: "DependencyViolation".into(),
                message: format!("resource {id} has a dependent object ({instance})"),
            });
        }
        let before = self.security_groups.len();
        self.security_groups.retain(|g| g.id != id);
        if self.security_groups.len() == before {
            return Err(err(
                "InvalidGroup.NotFound",
                format!("The security group '{id}' does not exist"),
            ));
        }
        Ok(ok_return())
    }
}
