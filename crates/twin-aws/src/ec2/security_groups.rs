//! Security groups: the subset resolver endpoints need (create, describe, authorize ingress,
//! delete), with EC2's error codes.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use super::{Ec2, Ec2Error, Params, Xml, err, ok_return, required, select, tag_field};

/// One ingress permission: protocol, port range, source CIDRs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Permission {
    protocol: String,
    from_port: i64,
    to_port: i64,
    cidrs: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct SecurityGroup {
    pub(super) id: String,
    name: String,
    description: String,
    pub(super) vpc_id: String,
    ingress: Vec<Permission>,
    pub(super) tags: BTreeMap<String, String>,
    /// Until then the new group's id answers `InvalidGroup.NotFound`, the example the EC2
    /// developer guide gives of eventual consistency ("Eventual consistency in the Amazon EC2 API").
    #[serde(skip)]
    propagated_at: Instant,
}

impl SecurityGroup {
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
            x.tags(&g.tags);
        });
        Ok(x)
    }

    pub(super) fn authorize_ingress(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let id = required(p, "GroupId")?.to_owned();
        let wanted = permissions(p)?;
        let group = self
            .security_groups
            .iter_mut()
            .find(|g| g.id == id && g.propagated())
            .ok_or_else(|| {
                err(
                    "InvalidGroup.NotFound",
                    format!("The security group '{id}' does not exist"),
                )
            })?;
        for perm in &wanted {
            for cidr in &perm.cidrs {
                let exists = group.ingress.iter().any(|g| {
                    g.protocol == perm.protocol
                        && g.from_port == perm.from_port
                        && g.to_port == perm.to_port
                        && g.cidrs.contains(cidr)
                });
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
