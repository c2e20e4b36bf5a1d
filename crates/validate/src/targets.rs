//! What to check: the plan's `[[validate.targets]]` seen from one cloud, or `--target` values,
//! turned into probes.

use std::net::{IpAddr, SocketAddr};

use dxvpn_plan::model::{Spec, ValidateTarget};
use dxvpn_plan::{Cloud, Plan};

use crate::probe::{Probe, RecordKind};

/// The resolver a host of `from` asks by default: the VPC resolver (VPC base + 2) on AWS,
/// 168.63.129.16 on Azure; None (this machine's resolver configuration) elsewhere.
pub fn default_dns_server(plan: &Plan, from: Option<Cloud>) -> Option<SocketAddr> {
    match from? {
        Cloud::Aws => Some(SocketAddr::from((plan.aws.vpc_resolver_ip, 53))),
        Cloud::Azure => Some(SocketAddr::from((plan.azure.azure_resolver_ip, 53))),
    }
}

/// The probes for `targets` from `from`: targets in the other cloud only (every target when
/// `from` is None), each pinged (and its path MTU measured), its name resolved through `dns_server` (expecting its
/// address) and its TCP ports connected to.
pub fn probes_for_targets(
    targets: &[ValidateTarget],
    from: Option<Cloud>,
    dns_server: Option<SocketAddr>,
) -> Vec<Probe> {
    let mut probes = Vec::new();
    for t in targets.iter().filter(|t| Some(t.cloud) != from) {
        if let (Some(ip), true) = (t.address, t.ping) {
            probes.push(Probe::Ping {
                target: IpAddr::V4(ip),
            });
        }
        if let Some(name) = &t.name {
            probes.push(Probe::Dns {
                name: name.clone(),
                server: dns_server,
                record: RecordKind::A,
                expect: t.address.map(IpAddr::V4).into_iter().collect(),
                over_tcp: false,
            });
        }
        if let Some(ip) = t.address {
            probes.extend(t.tcp_ports.iter().map(|port| Probe::Tcp {
                target: SocketAddr::from((ip, *port)),
            }));
        }
    }
    with_path_mtu(probes)
}

/// `probes` with the path MTU measured after the first ping of each IPv4 address, once per
/// address: it is the path's, and two measurements at once would crowd each other's echoes.
pub fn with_path_mtu(probes: Vec<Probe>) -> Vec<Probe> {
    let mut measured = Vec::new();
    let mut out = Vec::with_capacity(probes.len() * 2);
    for probe in probes {
        let first_ping_of = match &probe {
            Probe::Ping {
                target: IpAddr::V4(ip),
            } if !measured.contains(ip) => Some(*ip),
            _ => None,
        };
        out.push(probe);
        if let Some(ip) = first_ping_of {
            measured.push(ip);
            out.push(Probe::PathMtu { target: ip });
        }
    }
    out
}

/// The forwarder hosts of the development DNS path in `cloud`, created by `up` or the user's:
/// where the other cloud's queries for `cloud`'s zones arrive.
pub fn forwarder_hosts(plan: &Plan, cloud: Cloud) -> Vec<std::net::Ipv4Addr> {
    plan.resources
        .iter()
        .filter(|r| r.cloud == cloud)
        .filter_map(|r| match &r.spec {
            Spec::ForwarderInstance { ip, .. } | Spec::DnsForwarder { ip, .. } => Some(*ip),
            _ => None,
        })
        .collect()
}

/// From `from`, every name of a target in the other cloud asked of that cloud's forwarder host
/// directly, and its TCP 53: a forwarder host that is silent or answers wrong is then named as
/// such, apart from the resolvers and rules in front of it.
pub fn probes_for_forwarder_hosts(plan: &Plan, from: Cloud) -> Vec<Probe> {
    let other = from.other();
    let mut probes = Vec::new();
    for host in forwarder_hosts(plan, other) {
        // Over UDP, then the same names over TCP: a forwarder must answer both (large
        // answers, and clients that only use TCP).
        for over_tcp in [false, true] {
            for t in plan.validate_targets.iter().filter(|t| t.cloud == other) {
                if let Some(name) = &t.name {
                    probes.push(Probe::Dns {
                        name: name.clone(),
                        server: Some(SocketAddr::from((host, 53))),
                        record: RecordKind::A,
                        expect: t.address.map(IpAddr::V4).into_iter().collect(),
                        over_tcp,
                    });
                }
            }
        }
    }
    probes
}

/// Reads one `--target`: `IP` (pinged), `IP:PORT` (TCP connect) or a DNS name (resolved
/// through `dns_server`). The error says which forms are accepted.
pub fn parse_target(text: &str, dns_server: Option<SocketAddr>) -> Result<Probe, String> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(Probe::Ping { target: ip });
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err(format!("`{text}`: port 0 cannot be connected to"));
        }
        return Ok(Probe::Tcp { target: addr });
    }
    let name = text.trim_end_matches('.');
    // A name, not a mistyped address: at least one letter.
    let labels_ok = name.contains(|c: char| c.is_ascii_alphabetic())
        && dxvpn_plan::is_dns_name(&name.to_ascii_lowercase());
    if labels_ok {
        Ok(Probe::Dns {
            name: name.to_ascii_lowercase(),
            server: dns_server,
            record: RecordKind::A,
            expect: Vec::new(),
            over_tcp: false,
        })
    } else {
        Err(format!(
            "`{text}` is neither an IP address, an IP:PORT nor a DNS name"
        ))
    }
}

/// The addresses of either network that `probes` ping or connect to, once each: where
/// `validate` reads the packet filters.
pub fn filtered_addresses(plan: &Plan, probes: &[Probe]) -> Vec<std::net::Ipv4Addr> {
    let mut out = Vec::new();
    for probe in probes {
        let ip = match probe {
            Probe::Ping {
                target: IpAddr::V4(ip),
            } => *ip,
            Probe::Tcp { target } => match target.ip() {
                IpAddr::V4(ip) => ip,
                IpAddr::V6(_) => continue,
            },
            _ => continue,
        };
        let ours = plan.aws.vpc_cidr.contains(&ip) || plan.azure.vnet_cidr.contains(&ip);
        if ours && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_one_path_mtu_measurement_after_its_first_ping() {
        let ping = |last: u8| Probe::Ping {
            target: IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 1, last)),
        };
        let mtu = |last: u8| Probe::PathMtu {
            target: std::net::Ipv4Addr::new(10, 1, 1, last),
        };
        let probes = with_path_mtu(vec![ping(10), ping(10), ping(11), ping(10)]);
        assert_eq!(
            probes,
            [ping(10), mtu(10), ping(10), ping(11), mtu(11), ping(10)]
        );
    }

    #[test]
    fn target_forms() {
        let server = Some(SocketAddr::from(([10, 0, 0, 2], 53)));
        assert_eq!(
            parse_target("10.1.1.10", server),
            Ok(Probe::Ping {
                target: "10.1.1.10".parse().unwrap()
            })
        );
        assert_eq!(
            parse_target("10.1.1.10:22", server),
            Ok(Probe::Tcp {
                target: "10.1.1.10:22".parse().unwrap()
            })
        );
        assert_eq!(
            parse_target("VM1.Azure.Internal.", server),
            Ok(Probe::Dns {
                name: "vm1.azure.internal".into(),
                server,
                record: RecordKind::A,
                expect: vec![],
                over_tcp: false,
            })
        );
        for bad in [
            "",
            "10.1.1.10:0",
            "10.1.1.300",
            "-bad.example",
            "a..b",
            "10.1.1",
        ] {
            assert!(parse_target(bad, server).is_err(), "{bad} was accepted");
        }
    }
}
