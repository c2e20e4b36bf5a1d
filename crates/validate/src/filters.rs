//! Judging the clouds' packet filters for one probe: does a security group, network ACL or NSG
//! on the target let the other network's ping or TCP connection in, and if not, which rule
//! drops it or which allow is missing, with the command that fixes it.
//!
//! How each cloud evaluates (the sources the twins cite too):
//! - AWS network ACLs: entries in ascending rule number, the first that matches decides, the
//!   `*` rule (32767) denies; stateless, so the answer must pass the outbound entries too (an
//!   echo reply, or TCP to the client's ephemeral port: Linux uses 32768-60999). VPC user guide,
//!   "Control subnet traffic with network access control lists".
//! - AWS security groups: allow rules only, the union of every group on the interface;
//!   stateful ("Security group rules"). ICMP's `FromPort` is the type, -1 all types.
//! - Azure NSGs: the subnet's group, then the interface's; in each, rules by priority, lowest
//!   first, the first that matches decides; then the defaults AllowVnetInBound (65000),
//!   AllowAzureLoadBalancerInBound (65001), DenyAllInBound (65500). The `VirtualNetwork` tag
//!   includes address spaces connected through the VPN gateway, so the other cloud's network
//!   is allowed by default ("Network security groups", "Virtual network service tags").
//!
//! The source is the other cloud's whole network: an allow counts when its range holds all of
//! it, a deny when its range touches it.

use std::net::Ipv4Addr;

use dxvpn_aws::{AclRule, AwsHostFilters, IngressRule};
use dxvpn_azure::{AzureHostFilters, NsgRule};
use dxvpn_cidr::Ipv4Net;
use dxvpn_deploy::HostFilters;

/// What a probe sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// ICMP echo.
    Ping,
    /// A TCP connection to this port.
    Tcp(u16),
}

impl Traffic {
    fn words(self) -> String {
        match self {
            Traffic::Ping => "ICMP echo".into(),
            Traffic::Tcp(port) => format!("TCP {port}"),
        }
    }
}

/// A filter that drops the probe's traffic, and how to let it through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// What drops it, naming the filter and the rule (or the missing allow).
    pub message: String,
    /// The command that lets it through.
    pub fix: String,
}

/// The first of `filters` that drops `traffic` from `source` to `target`; None when all let
/// it through.
pub fn blocked(
    filters: &HostFilters,
    traffic: Traffic,
    source: Ipv4Net,
    target: Ipv4Addr,
) -> Option<Blocked> {
    match filters {
        HostFilters::Aws(f) => aws_blocked(f, traffic, source, target),
        HostFilters::Azure(f) => azure_blocked(f, traffic, source, target),
    }
}

fn net(text: &str) -> Option<Ipv4Net> {
    text.parse::<Ipv4Net>()
        .ok()
        .or_else(|| text.parse::<Ipv4Addr>().ok().map(Ipv4Net::from))
}

/// Whether a rule's range concerns `source`: all of it for an allow, any of it for a deny.
fn covers(range: Ipv4Net, source: Ipv4Net, allow: bool) -> bool {
    if allow {
        range.contains(&source)
    } else {
        range.contains(&source) || source.contains(&range)
    }
}

/// (protocol number, port or ICMP type) of a packet.
fn packet(traffic: Traffic, reply: bool) -> (u8, i32) {
    match (traffic, reply) {
        (Traffic::Ping, false) => (1, 8),
        (Traffic::Ping, true) => (1, 0),
        (Traffic::Tcp(port), false) => (6, i32::from(port)),
        // The client's ephemeral port: the start of Linux's range.
        (Traffic::Tcp(_), true) => (6, 32768),
    }
}

fn acl_matches(e: &AclRule, (protocol, port): (u8, i32), source: Ipv4Net) -> bool {
    let Some(range) = e.cidr.as_deref().and_then(net) else {
        return false;
    };
    let protocol_ok = e.protocol == "-1" || e.protocol == protocol.to_string();
    let port_ok = match (e.protocol.as_str(), e.ports, e.icmp_type) {
        ("6" | "17", Some((from, to)), _) => (from..=to).contains(&port),
        ("1", _, Some(kind)) => kind == -1 || kind == port,
        _ => true,
    };
    protocol_ok && port_ok && covers(range, source, e.allow)
}

fn aws_blocked(
    f: &AwsHostFilters,
    traffic: Traffic,
    source: Ipv4Net,
    target: Ipv4Addr,
) -> Option<Blocked> {
    if let Some(acl) = &f.network_acl {
        for (egress, what) in [(false, "in"), (true, "out")] {
            let mut entries: Vec<&AclRule> =
                acl.entries.iter().filter(|e| e.egress == egress).collect();
            entries.sort_by_key(|e| e.number);
            let packet = packet(traffic, egress);
            let first = entries.into_iter().find(|e| acl_matches(e, packet, source));
            let direction = if egress { "--egress" } else { "--ingress" };
            match first {
                Some(e) if e.allow => {}
                Some(e) if e.number < 32767 => {
                    let words = if egress {
                        format!("the answers of {} to {source}", traffic.words())
                    } else {
                        format!("{} from {source} to {target}", traffic.words())
                    };
                    return Some(Blocked {
                        message: format!(
                            "network ACL {} of subnet {}: rule {} denies {words} ({what}bound, {} {})",
                            acl.id,
                            f.subnet_id,
                            e.number,
                            protocol_words(&e.protocol),
                            e.cidr.as_deref().unwrap_or("")
                        ),
                        fix: format!(
                            "aws ec2 delete-network-acl-entry --network-acl-id {} {direction} --rule-number {} (or add an allow for {source} with a lower rule number)",
                            acl.id, e.number
                        ),
                    });
                }
                _ => {
                    return Some(Blocked {
                        message: format!(
                            "network ACL {} of subnet {}: no {what}bound rule allows {} {} {source}, so its last rule (*) denies it",
                            acl.id,
                            f.subnet_id,
                            traffic.words(),
                            if egress { "answers to" } else { "from" }
                        ),
                        fix: format!(
                            "aws ec2 create-network-acl-entry --network-acl-id {} {direction} --rule-number 100 --protocol -1 --cidr-block {source} --rule-action allow (use a free rule number)",
                            acl.id
                        ),
                    });
                }
            }
        }
    }
    let allowed = f
        .security_groups
        .iter()
        .flat_map(|g| g.ingress.iter())
        .any(|rule| permission_allows(rule, traffic, source));
    if allowed || f.security_groups.is_empty() {
        return None;
    }
    let groups: Vec<String> = f
        .security_groups
        .iter()
        .map(|g| format!("{} ({})", g.id, g.name))
        .collect();
    let permission = match traffic {
        Traffic::Ping => {
            format!("IpProtocol=icmp,FromPort=-1,ToPort=-1,IpRanges=[{{CidrIp={source}}}]")
        }
        Traffic::Tcp(port) => {
            format!("IpProtocol=tcp,FromPort={port},ToPort={port},IpRanges=[{{CidrIp={source}}}]")
        }
    };
    Some(Blocked {
        message: format!(
            "security group {} of {} allows no {} from {source} to {target} (security groups only allow; what no rule allows is dropped)",
            groups.join(", "),
            f.interface_id,
            traffic.words()
        ),
        fix: format!(
            "aws ec2 authorize-security-group-ingress --group-id {} --ip-permissions '{permission}'",
            f.security_groups[0].id
        ),
    })
}

fn protocol_words(protocol: &str) -> String {
    match protocol {
        "-1" => "all traffic".into(),
        "6" => "TCP".into(),
        "17" => "UDP".into(),
        "1" => "ICMP".into(),
        other => format!("protocol {other}"),
    }
}

fn permission_allows(rule: &IngressRule, traffic: Traffic, source: Ipv4Net) -> bool {
    let from = rule.from_port.unwrap_or(-1);
    let to = rule.to_port.unwrap_or(-1);
    let kind_ok = match (rule.protocol.as_str(), traffic) {
        ("-1", _) => true,
        ("icmp" | "1", Traffic::Ping) => from == -1 || from == 8,
        ("tcp" | "6", Traffic::Tcp(port)) => from == -1 || (from..=to).contains(&i32::from(port)),
        _ => false,
    };
    kind_ok
        && rule
            .cidrs
            .iter()
            .filter_map(|c| net(c))
            .any(|range| range.contains(&source))
}

/// Whether an NSG prefix holds (`allow`) or touches the address range `addresses`.
fn prefix_covers(prefix: &str, addresses: Ipv4Net, allow: bool) -> bool {
    match prefix {
        "*" | "Any" | "0.0.0.0/0" => true,
        // Connected through the VPN gateway: inside the tag.
        "VirtualNetwork" => true,
        other => net(other).is_some_and(|range| covers(range, addresses, allow)),
    }
}

fn nsg_matches(rule: &NsgRule, traffic: Traffic, source: Ipv4Net, target: Ipv4Addr) -> bool {
    let allow = rule.access.eq_ignore_ascii_case("Allow");
    let (protocol, port) = match traffic {
        Traffic::Ping => ("Icmp", None),
        Traffic::Tcp(port) => ("Tcp", Some(port)),
    };
    let protocol_ok = rule.protocol == "*" || rule.protocol.eq_ignore_ascii_case(protocol);
    let port_ok = port.is_none_or(|port| {
        rule.ports.is_empty()
            || rule.ports.iter().any(|range| {
                if range == "*" {
                    return true;
                }
                let (from, to) = range.split_once('-').unwrap_or((range, range));
                match (from.trim().parse::<u16>(), to.trim().parse::<u16>()) {
                    (Ok(from), Ok(to)) => (from..=to).contains(&port),
                    _ => false,
                }
            })
    });
    let target = Ipv4Net::from(target);
    protocol_ok
        && port_ok
        && rule.sources.iter().any(|p| prefix_covers(p, source, allow))
        && (rule.destinations.is_empty()
            || rule
                .destinations
                .iter()
                .any(|p| prefix_covers(p, target, true)))
}

fn azure_blocked(
    f: &AzureHostFilters,
    traffic: Traffic,
    source: Ipv4Net,
    target: Ipv4Addr,
) -> Option<Blocked> {
    for group in &f.groups {
        let mut inbound: Vec<&NsgRule> = group
            .rules
            .iter()
            .filter(|r| r.direction.eq_ignore_ascii_case("Inbound"))
            .collect();
        inbound.sort_by_key(|r| r.priority);
        // No own rule decides: AllowVnetInBound lets the VPN-connected network in.
        let Some(rule) = inbound
            .into_iter()
            .find(|r| nsg_matches(r, traffic, source, target))
        else {
            continue;
        };
        if rule.access.eq_ignore_ascii_case("Allow") {
            continue;
        }
        let (protocol, ports) = match traffic {
            Traffic::Ping => ("Icmp", "'*'".to_owned()),
            Traffic::Tcp(port) => ("Tcp", port.to_string()),
        };
        let priority = rule.priority.saturating_sub(1).max(100);
        return Some(Blocked {
            message: format!(
                "NSG {} on the {} of {} ({}): rule {} (priority {}, Deny {} from {}) drops {} from {source} to {target}",
                group.name,
                group.attached_to,
                if group.attached_to == "subnet" {
                    &f.subnet
                } else {
                    &f.interface
                },
                target,
                rule.name,
                rule.priority,
                rule.protocol,
                rule.sources.join(", "),
                traffic.words()
            ),
            fix: format!(
                "az network nsg rule delete -g {rg} --nsg-name {nsg} -n {name}, or put an allow before it: az network nsg rule create -g {rg} --nsg-name {nsg} -n allow-{protocol_lower}-from-peer --priority {priority} --direction Inbound --access Allow --protocol {protocol} --source-address-prefixes {source} --destination-port-ranges {ports}",
                rg = group.resource_group,
                nsg = group.name,
                name = rule.name,
                protocol_lower = protocol.to_ascii_lowercase(),
            ),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use dxvpn_aws::{NetworkAclRules, SecurityGroupRules};
    use dxvpn_azure::NsgRules;

    fn source() -> Ipv4Net {
        "10.1.0.0/16".parse().expect("net")
    }

    fn aws(ingress: Vec<IngressRule>, extra: Vec<AclRule>) -> HostFilters {
        let entry = |number, egress, allow| AclRule {
            number,
            egress,
            protocol: "-1".into(),
            allow,
            cidr: Some("0.0.0.0/0".into()),
            ports: None,
            icmp_type: None,
        };
        let mut entries = vec![
            entry(100, false, true),
            entry(32767, false, false),
            entry(100, true, true),
            entry(32767, true, false),
        ];
        entries.extend(extra);
        HostFilters::Aws(AwsHostFilters {
            interface_id: "eni-1".into(),
            subnet_id: "subnet-1".into(),
            security_groups: vec![SecurityGroupRules {
                id: "sg-1".into(),
                name: "web".into(),
                ingress,
            }],
            network_acl: Some(NetworkAclRules {
                id: "acl-1".into(),
                entries,
            }),
        })
    }

    fn permission(protocol: &str, from: i32, to: i32, cidr: &str) -> IngressRule {
        IngressRule {
            protocol: protocol.into(),
            from_port: Some(from),
            to_port: Some(to),
            cidrs: vec![cidr.into()],
        }
    }

    const TARGET: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 10);

    #[test]
    fn a_security_group_without_icmp_blocks_ping_but_not_its_tcp_port() {
        let f = aws(vec![permission("tcp", 53, 53, "10.0.0.0/8")], Vec::new());
        let b = blocked(&f, Traffic::Ping, source(), TARGET).expect("ping blocked");
        assert!(b.message.contains("sg-1 (web)"), "{}", b.message);
        assert!(b.fix.contains("--group-id sg-1"), "{}", b.fix);
        assert!(b.fix.contains("IpProtocol=icmp"), "{}", b.fix);
        assert_eq!(blocked(&f, Traffic::Tcp(53), source(), TARGET), None);
        assert!(blocked(&f, Traffic::Tcp(22), source(), TARGET).is_some());
        // A range that holds only part of the source does not allow it.
        let partial = aws(vec![permission("-1", -1, -1, "10.1.1.0/24")], Vec::new());
        assert!(blocked(&partial, Traffic::Ping, source(), TARGET).is_some());
    }

    #[test]
    fn a_network_acl_deny_before_the_allow_is_named_by_its_number() {
        let deny = AclRule {
            number: 50,
            egress: false,
            protocol: "1".into(),
            allow: false,
            cidr: Some("10.1.0.0/16".into()),
            ports: None,
            icmp_type: Some(-1),
        };
        let f = aws(
            vec![permission("-1", -1, -1, "10.0.0.0/8")],
            vec![deny.clone()],
        );
        let b = blocked(&f, Traffic::Ping, source(), TARGET).expect("blocked");
        assert!(
            b.message.contains("rule 50 denies ICMP echo"),
            "{}",
            b.message
        );
        assert!(b.fix.contains("--ingress --rule-number 50"), "{}", b.fix);
        assert_eq!(blocked(&f, Traffic::Tcp(53), source(), TARGET), None);
        // Numbered after the allow, it never decides.
        let late = AclRule {
            number: 200,
            ..deny
        };
        let f = aws(vec![permission("-1", -1, -1, "10.0.0.0/8")], vec![late]);
        assert_eq!(blocked(&f, Traffic::Ping, source(), TARGET), None);
    }

    #[test]
    fn an_nsg_deny_is_named_and_the_defaults_let_the_vpn_network_in() {
        let rule = |name: &str, priority, access: &str, port: &str| NsgRule {
            name: name.into(),
            priority,
            direction: "Inbound".into(),
            access: access.into(),
            protocol: "Tcp".into(),
            sources: vec!["10.0.0.0/16".into()],
            destinations: vec!["*".into()],
            ports: vec![port.into()],
        };
        let filters = |rules| {
            HostFilters::Azure(AzureHostFilters {
                interface: "vm1-nic".into(),
                subnet: "workload".into(),
                groups: vec![NsgRules {
                    name: "vm1-nsg".into(),
                    resource_group: "rg".into(),
                    attached_to: "interface".into(),
                    rules,
                }],
            })
        };
        let vpc: Ipv4Net = "10.0.0.0/16".parse().expect("net");
        let target = Ipv4Addr::new(10, 1, 1, 10);
        let f = filters(vec![rule("deny-dns", 200, "Deny", "53")]);
        let b = blocked(&f, Traffic::Tcp(53), vpc, target).expect("blocked");
        assert!(
            b.message.contains("rule deny-dns (priority 200"),
            "{}",
            b.message
        );
        assert!(b.fix.contains("-n deny-dns"), "{}", b.fix);
        assert!(b.fix.contains("--priority 199"), "{}", b.fix);
        assert_eq!(blocked(&f, Traffic::Ping, vpc, target), None);
        let allowed_first = filters(vec![
            rule("deny-dns", 200, "Deny", "53"),
            rule("allow-dns", 150, "Allow", "50-60"),
        ]);
        assert_eq!(blocked(&allowed_first, Traffic::Tcp(53), vpc, target), None);
        assert_eq!(
            blocked(&filters(Vec::new()), Traffic::Tcp(53), vpc, target),
            None
        );
    }
}
