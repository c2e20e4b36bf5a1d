//! The packet filters AWS applies to one address of the VPC: the network interface that holds
//! it (DescribeNetworkInterfaces, filter `addresses.private-ip-address`), that interface's
//! security groups' ingress rules and its subnet's network ACL (DescribeSecurityGroups and
//! DescribeNetworkAcls, filter `association.subnet-id`, read at the same time). Read as AWS
//! gives them; `dxvpn-validate` judges them.

use aws_sdk_ec2::types::Filter;
use serde::Serialize;

use crate::{Aws, AwsError, api};

/// What filters traffic to one interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwsHostFilters {
    /// `eni-...`.
    pub interface_id: String,
    /// Its subnet.
    pub subnet_id: String,
    /// Its security groups.
    pub security_groups: Vec<SecurityGroupRules>,
    /// Its subnet's network ACL (every subnet has one; None only if AWS answered none).
    pub network_acl: Option<NetworkAclRules>,
}

/// A security group's ingress rules (allow only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityGroupRules {
    /// `sg-...`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its ingress permissions.
    pub ingress: Vec<IngressRule>,
}

/// One ingress permission with its IPv4 ranges (rules naming other groups or prefix lists
/// have none here: they cannot match the other cloud's addresses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngressRule {
    /// `tcp`, `udp`, `icmp`, a protocol number, or `-1` for all.
    pub protocol: String,
    /// First port (ICMP: the type; -1 or absent: all).
    pub from_port: Option<i32>,
    /// Last port (ICMP: the code).
    pub to_port: Option<i32>,
    /// Source ranges.
    pub cidrs: Vec<String>,
}

/// A network ACL's entries, both directions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkAclRules {
    /// `acl-...`.
    pub id: String,
    /// Its entries as AWS answers them (any order).
    pub entries: Vec<AclRule>,
}

/// One numbered ACL entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AclRule {
    /// Rule number; lower first. 32767 is the `*` rule.
    pub number: i32,
    /// Outbound (true) or inbound.
    pub egress: bool,
    /// A protocol number as text, or `-1`.
    pub protocol: String,
    /// Allow or deny.
    pub allow: bool,
    /// The IPv4 range (None for an IPv6 entry).
    pub cidr: Option<String>,
    /// TCP/UDP ports.
    pub ports: Option<(i32, i32)>,
    /// ICMP type (-1: all).
    pub icmp_type: Option<i32>,
}

impl Aws {
    /// The filters on the interface that holds `address` in `vpc_id`; None when no interface
    /// of the VPC holds it.
    pub async fn host_filters(
        &self,
        vpc_id: &str,
        address: std::net::Ipv4Addr,
    ) -> Result<Option<AwsHostFilters>, AwsError> {
        let role = "aws.host_filters";
        let filter = |name: &str, value: &str| Filter::builder().name(name).values(value).build();
        let interfaces = self
            .ec2
            .describe_network_interfaces()
            .filters(filter("addresses.private-ip-address", &address.to_string()))
            .filters(filter("vpc-id", vpc_id))
            .send()
            .await
            .map_err(api(role, "DescribeNetworkInterfaces"))?;
        let Some(nic) = interfaces.network_interfaces().first() else {
            return Ok(None);
        };
        let subnet_id = nic.subnet_id().unwrap_or_default().to_owned();
        let group_ids: Vec<String> = nic
            .groups()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_owned))
            .collect();
        let groups = async {
            if group_ids.is_empty() {
                return Ok(Vec::new());
            }
            let answer = self
                .ec2
                .describe_security_groups()
                .set_group_ids(Some(group_ids.clone()))
                .send()
                .await
                .map_err(api(role, "DescribeSecurityGroups"))?;
            Ok::<_, AwsError>(answer.security_groups().iter().map(group_rules).collect())
        };
        let acls = async {
            self.ec2
                .describe_network_acls()
                .filters(filter("association.subnet-id", &subnet_id))
                .send()
                .await
                .map_err(api(role, "DescribeNetworkAcls"))
        };
        let (groups, acls) = tokio::try_join!(groups, acls)?;
        Ok(Some(AwsHostFilters {
            interface_id: nic.network_interface_id().unwrap_or_default().to_owned(),
            subnet_id,
            security_groups: groups,
            network_acl: acls.network_acls().first().map(acl_rules),
        }))
    }
}

fn group_rules(g: &aws_sdk_ec2::types::SecurityGroup) -> SecurityGroupRules {
    SecurityGroupRules {
        id: g.group_id().unwrap_or_default().to_owned(),
        name: g.group_name().unwrap_or_default().to_owned(),
        ingress: g
            .ip_permissions()
            .iter()
            .map(|p| IngressRule {
                protocol: p.ip_protocol().unwrap_or("-1").to_owned(),
                from_port: p.from_port(),
                to_port: p.to_port(),
                cidrs: p
                    .ip_ranges()
                    .iter()
                    .filter_map(|r| r.cidr_ip().map(str::to_owned))
                    .collect(),
            })
            .collect(),
    }
}

fn acl_rules(a: &aws_sdk_ec2::types::NetworkAcl) -> NetworkAclRules {
    NetworkAclRules {
        id: a.network_acl_id().unwrap_or_default().to_owned(),
        entries: a
            .entries()
            .iter()
            .map(|e| AclRule {
                number: e.rule_number().unwrap_or(i32::MAX),
                egress: e.egress().unwrap_or(false),
                protocol: e.protocol().unwrap_or("-1").to_owned(),
                allow: e
                    .rule_action()
                    .is_some_and(|a| a.as_str().eq_ignore_ascii_case("allow")),
                cidr: e.cidr_block().map(str::to_owned),
                ports: e.port_range().and_then(|r| Some((r.from()?, r.to()?))),
                icmp_type: e.icmp_type_code().and_then(|c| c.r#type()),
            })
            .collect(),
    }
}
