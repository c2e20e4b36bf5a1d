//! From failed checks and both clouds' reports to a short finding with a fix: the most likely
//! cause first, in the order a network engineer would look (ICMP permission, tunnels, route
//! propagation, missing resources, DNS, then the far host's filters).

use std::net::IpAddr;

use dxvpn_plan::{Cloud, Plan};
use serde::Serialize;

use crate::control::{ControlFacts, tunnel_problem};
use crate::probe::{Outcome, Probe};
use crate::{CheckResult, Verdict};

/// A cause, named with a fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable id, e.g. `tunnels-down`, `propagation-off`, `icmp-filtered`.
    pub id: &'static str,
    /// `warn`: works, but something is degraded; `fail`: something does not work.
    pub severity: Verdict,
    /// What is wrong, with the evidence.
    pub message: String,
    /// What to do.
    pub fix: String,
}

/// Where the checks ran, for the words of a finding.
fn from_network(plan: &Plan, from: Option<Cloud>) -> String {
    match from {
        Some(Cloud::Aws) => plan.aws.vpc_cidr.to_string(),
        Some(Cloud::Azure) => plan.azure.vnet_cidr.to_string(),
        None => "this machine's address".into(),
    }
}

fn outcome_of(r: &CheckResult) -> Option<(&Probe, &Outcome)> {
    Some((r.probe.as_ref()?, r.outcome.as_ref()?))
}

/// A ping that got no reply at all.
fn silent_ping(r: &CheckResult) -> Option<IpAddr> {
    match outcome_of(r)? {
        (Probe::Ping { target }, Outcome::Replies { received: 0, .. } | Outcome::Error { .. }) => {
            Some(*target)
        }
        _ => None,
    }
}

/// The host answered something (an echo, a handshake or a reset).
fn host_answered(results: &[CheckResult], ip: IpAddr) -> Option<String> {
    results.iter().find_map(|r| match outcome_of(r)? {
        (Probe::Tcp { target }, Outcome::Connected | Outcome::Refused) if target.ip() == ip => {
            Some(format!("TCP {}", target.port()))
        }
        (Probe::Ping { target }, Outcome::Replies { received, .. })
            if *target == ip && *received > 0 =>
        {
            Some("ping".into())
        }
        _ => None,
    })
}

/// Something across passed: a ping with replies or a TCP connection to another host.
fn other_host_answered(results: &[CheckResult], ip: IpAddr) -> Option<IpAddr> {
    results.iter().find_map(|r| match outcome_of(r)? {
        (Probe::Ping { target }, Outcome::Replies { received, .. })
            if *target != ip && *received > 0 =>
        {
            Some(*target)
        }
        (Probe::Tcp { target }, Outcome::Connected | Outcome::Refused) if target.ip() != ip => {
            Some(target.ip())
        }
        _ => None,
    })
}

/// The other cloud's forwarder hosts, seen from `from` (none from this machine).
fn far_forwarder_hosts(plan: &Plan, from: Option<Cloud>) -> Vec<std::net::Ipv4Addr> {
    from.map(|f| crate::targets::forwarder_hosts(plan, f.other()))
        .unwrap_or_default()
}

/// A check of one of `hosts` itself (a lookup it was asked, or a TCP connection to its 53).
fn is_forwarder_probe(hosts: &[std::net::Ipv4Addr], r: &CheckResult) -> bool {
    let at = |addr: &std::net::SocketAddr| {
        addr.port() == 53 && matches!(addr.ip(), IpAddr::V4(ip) if hosts.contains(&ip))
    };
    match r.probe.as_ref() {
        Some(Probe::Dns {
            server: Some(server),
            ..
        }) => at(server),
        Some(Probe::Tcp { target }) => at(target),
        _ => false,
    }
}

/// The filter rule that drops a ping without replies or a TCP connection without an answer,
/// judged from what the target's cloud reports (the source is the other cloud's network).
fn filter_block(
    plan: &Plan,
    facts: &ControlFacts,
    probe: &Probe,
    outcome: &Outcome,
) -> Option<crate::filters::Blocked> {
    use crate::filters::Traffic;
    let (target, traffic) = match (probe, outcome) {
        (
            Probe::Ping {
                target: IpAddr::V4(ip),
            },
            Outcome::Replies { received: 0, .. } | Outcome::Error { .. },
        ) => (*ip, Traffic::Ping),
        (Probe::Tcp { target }, Outcome::TimedOut) => match target.ip() {
            IpAddr::V4(ip) => (ip, Traffic::Tcp(target.port())),
            IpAddr::V6(_) => return None,
        },
        _ => return None,
    };
    let source = if plan.aws.vpc_cidr.contains(&target) {
        plan.azure.vnet_cidr
    } else {
        plan.aws.vpc_cidr
    };
    crate::filters::blocked(facts.filters_on(target)?, traffic, source, target)
}

fn push(
    findings: &mut Vec<Finding>,
    id: &'static str,
    severity: Verdict,
    message: String,
    fix: String,
) {
    if !findings.iter().any(|f| f.id == id && f.message == message) {
        findings.push(Finding {
            id,
            severity,
            message,
            fix,
        });
    }
}

/// Names the causes of the failures in `results` (data and control plane checks together),
/// using what both clouds report in `facts`. `from` is where the data-plane checks ran (None:
/// this machine).
pub fn diagnose(
    plan: &Plan,
    from: Option<Cloud>,
    results: &[CheckResult],
    facts: &ControlFacts,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let failed: Vec<&CheckResult> = results
        .iter()
        .filter(|r| r.probe.is_some() && r.verdict == Verdict::Fail)
        .collect();
    let unreachable: Vec<String> = failed
        .iter()
        .filter(|r| r.kind != "dns" && r.kind != "path_mtu")
        .map(|r| r.target.clone())
        .collect();
    let lead = if unreachable.is_empty() {
        String::new()
    } else {
        format!("{} unreachable: ", unreachable.join(", "))
    };
    let source = from_network(plan, from);

    if let Some(error) = results.iter().find_map(|r| match outcome_of(r)? {
        (Probe::Ping { .. }, Outcome::NoIcmpPermission { error }) => Some(error.clone()),
        _ => None,
    }) {
        push(
            &mut findings,
            "icmp-permission",
            Verdict::Fail,
            format!("pings could not run: this process may not open an ICMP socket ({error})"),
            "run as root, or grant the raw-socket capability (sudo setcap cap_net_raw+ep \"$(command -v dxvpn)\"), or allow ping sockets for your group (sudo sysctl -w net.ipv4.ping_group_range=\"0 2147483647\")".into(),
        );
    }

    // Tunnels: all down explains every failure across; some down is lost redundancy.
    let tunnels = facts.tunnels();
    let down: Vec<String> = tunnels
        .iter()
        .filter_map(|t| tunnel_problem(t).map(|why| format!("{} {why}", t.key)))
        .collect();
    let all_down = !tunnels.is_empty() && down.len() == tunnels.len();
    if all_down {
        let ipsec = down.iter().any(|d| d.contains("IPsec down"));
        let fix = if ipsec {
            "IPsec does not establish: the gateways do not reach each other on UDP 500 and 4500 (an outage on the path, a firewall, a changed public address), or the pre-shared keys or IKE/IPsec policy differ. `dxvpn status` shows each end's words; `dxvpn up` rewrites keys and addresses on both sides"
        } else {
            "IPsec is up but BGP is not: the ASNs or the APIPA inside addresses differ between the clouds. `dxvpn status` shows each session; `dxvpn up` rewrites them on both sides"
        };
        push(
            &mut findings,
            "tunnels-down",
            Verdict::Fail,
            format!("{lead}tunnels down: {}", down.join("; ")),
            fix.into(),
        );
    } else if !down.is_empty() {
        push(
            &mut findings,
            "redundancy-lost",
            Verdict::Warn,
            format!(
                "{} of {} tunnels carry traffic, so the connection holds, without redundancy: {}",
                tunnels.len() - down.len(),
                tunnels.len(),
                down.join("; ")
            ),
            "`dxvpn status` shows both ends; a cut in a provider's path recovers by itself, and if it stays down `dxvpn up` re-applies keys and addresses".into(),
        );
    }

    // Traffic out by one tunnel and back by another: fine for the gateways, fatal to a stateful
    // device between them and the hosts.
    if let Some(found) = crate::asymmetry::asymmetry(&facts.traffic) {
        let (into, out_of) = match found.cloud {
            "aws" => ("Azure to AWS", "AWS to Azure"),
            _ => ("AWS to Azure", "Azure to AWS"),
        };
        let list = |tunnels: &[(String, f64)]| {
            tunnels
                .iter()
                .map(|(key, bytes)| format!("{key} ({:.1} MB)", bytes / 1e6))
                .collect::<Vec<_>>()
                .join(", ")
        };
        push(
            &mut findings,
            "asymmetric-routing",
            Verdict::Warn,
            format!(
                "traffic leaves by one tunnel and returns by another ({} counts over the last {} minutes): {into} only by {}, {out_of} only by {}. The gateways route without state, but a stateful firewall or appliance between a gateway and the hosts drops the returns it did not see leave",
                found.cloud.to_uppercase(),
                crate::asymmetry::WINDOW.as_secs() / 60,
                list(&found.inbound_only),
                list(&found.outbound_only),
            ),
            "make both directions prefer the same tunnel (AWS sends by the tunnel with the best BGP attributes: AS-path prepending on the other tunnels' announcements from Azure moves AWS's side), or let the stateful device accept asymmetric flows (AWS knowledge center, \"How do I avoid asymmetry in route-based VPN\"); with nothing stateful on the path, nothing is lost".into(),
        );
    }

    // Route propagation: the VGW learns the VNet, but the subnets never hear of it.
    let off = facts.not_propagating();
    if !off.is_empty() {
        let learned = if tunnels.iter().all(|t| t.up) {
            format!(
                "all tunnels UP and {} learned by the VPN gateway, but ",
                plan.azure.vnet_cidr
            )
        } else {
            String::new()
        };
        push(
            &mut findings,
            "propagation-off",
            Verdict::Fail,
            format!(
                "{lead}{learned}route table {} does not propagate it, so its subnets have no route to {}",
                off.join(", "),
                plan.azure.vnet_cidr
            ),
            format!(
                "enable propagation (`dxvpn up` fixes this), or: aws ec2 enable-vgw-route-propagation --route-table-id {} --gateway-id <vgw>",
                off[0]
            ),
        );
    }

    // Resources the plan has and the clouds lack.
    let missing = facts.missing();
    let is_dns = |role: &str| role.contains("dns") || role.contains("resolver");
    let dns_failures: Vec<&&CheckResult> = failed.iter().filter(|r| r.kind == "dns").collect();
    let missing_dns: Vec<String> = missing
        .iter()
        .filter(|p| is_dns(&p.role))
        .map(|p| format!("{} ({})", p.role, p.name))
        .collect();
    if !missing_dns.is_empty() {
        let lead = dns_failures
            .iter()
            .map(|r| format!("{} {}", r.target, r.evidence))
            .collect::<Vec<_>>()
            .join("; ");
        let lead = if lead.is_empty() {
            String::new()
        } else {
            format!("{lead}: ")
        };
        push(
            &mut findings,
            "dns-rule-missing",
            Verdict::Fail,
            format!(
                "{lead}{} missing, so the other cloud's zones are not forwarded",
                missing_dns.join(", ")
            ),
            "`dxvpn up` recreates it (and changes nothing else)".into(),
        );
    }
    // A missing propagation is the propagation finding above, not a second one.
    let missing_other: Vec<&str> = missing
        .iter()
        .filter(|p| !is_dns(&p.role) && !p.role.starts_with("aws.route_propagation."))
        .map(|p| p.role.as_str())
        .collect();
    if !missing_other.is_empty() {
        push(
            &mut findings,
            "resource-missing",
            Verdict::Fail,
            format!(
                "{lead}missing from the clouds: {}",
                missing_other.join(", ")
            ),
            "`dxvpn up` recreates what is missing; `dxvpn plan` shows what each one is".into(),
        );
    }
    let path_explained = all_down || !off.is_empty() || !missing_other.is_empty();

    // A forwarder host asked directly: its own finding, which explains the lookups behind it.
    let forwarders = far_forwarder_hosts(plan, from);
    let forwarder_failures: Vec<String> = failed
        .iter()
        .filter(|r| is_forwarder_probe(&forwarders, r))
        .map(|r| format!("{} {}", r.target, r.evidence))
        .collect();
    if !forwarder_failures.is_empty() && missing_dns.is_empty() && !path_explained {
        push(
            &mut findings,
            "forwarder-host",
            Verdict::Fail,
            format!(
                "the forwarder host does not answer as it should: {}",
                forwarder_failures.join("; ")
            ),
            "`dxvpn status` shows the host's state; on the host, `systemctl status dxvpn-forwarder` and `journalctl -u dxvpn-forwarder` show the forwarder, and `dxvpn render --side aws --format forwarder` what it should run; its security group or NSG must allow UDP and TCP 53 from both networks".into(),
        );
    }
    let behind_forwarder = !forwarder_failures.is_empty();

    // DNS answers, when the resources exist.
    if missing_dns.is_empty() {
        for r in dns_failures
            .iter()
            .filter(|r| !(behind_forwarder || is_forwarder_probe(&forwarders, r)))
        {
            let Some((_, outcome)) = outcome_of(r) else {
                continue;
            };
            match outcome {
                // A silent target is what a broken path looks like; that is named above.
                Outcome::DnsRefusal { code } if code.starts_with("SERVFAIL") && path_explained => {}
                Outcome::DnsRefusal { code } if code.starts_with("SERVFAIL") => push(
                    &mut findings,
                    "dns-target-silent",
                    Verdict::Fail,
                    format!("{} answered {code}: the resolver forwards the name, but the other cloud's receiver does not answer", r.target),
                    format!("the receiving endpoint or forwarder host must accept UDP and TCP 53 from {source}: check its security group or NSG, that the forwarder host runs (development), and the tunnels (`dxvpn status`)"),
                ),
                Outcome::DnsRefusal { code } => push(
                    &mut findings,
                    "dns-not-forwarded",
                    Verdict::Fail,
                    format!("{} answered {code}: the resolver does not forward the name's zone, or the zone has no such record", r.target),
                    "list the zone in the other cloud's private_dns_zones (`dxvpn plan` shows the forwarding) and check the record exists in it".into(),
                ),
                Outcome::TimedOut if !path_explained => push(
                    &mut findings,
                    "dns-server-silent",
                    Verdict::Fail,
                    format!("{} got no answer: the server asked does not answer", r.target),
                    "ask the VPC resolver (VPC base + 2) from AWS and 168.63.129.16 from Azure, or pass --dns-server; a security group or NSG must allow UDP and TCP 53".into(),
                ),
                Outcome::Answer { .. } => push(
                    &mut findings,
                    "dns-wrong-answer",
                    Verdict::Fail,
                    format!("{} {}", r.target, r.evidence),
                    "the record in the private zone points elsewhere: fix the record, or the target's address in [[validate.targets]]".into(),
                ),
                _ => {}
            }
        }
    }

    // The far host: filters when the path is sound.
    if !path_explained {
        for r in failed
            .iter()
            .filter(|r| !is_forwarder_probe(&forwarders, r))
        {
            let Some((probe, outcome)) = outcome_of(r) else {
                continue;
            };
            if let Some(block) = filter_block(plan, facts, probe, outcome) {
                push(
                    &mut findings,
                    "filter-blocks",
                    Verdict::Fail,
                    block.message,
                    block.fix,
                );
                continue;
            }
            if let Some(ip) = silent_ping(r) {
                if let Some(other) = host_answered(results, ip) {
                    push(
                        &mut findings,
                        "icmp-filtered",
                        Verdict::Fail,
                        format!(
                            "{ip} answers {other} but not ICMP echo: a security group, NSG or host firewall drops ICMP"
                        ),
                        format!(
                            "allow ICMP echo from {source} in the security group or NSG of {ip} (both clouds drop it unless a rule allows it), or set ping = false for this target"
                        ),
                    );
                } else if let Some(other) = other_host_answered(results, ip) {
                    push(
                        &mut findings,
                        "host-unreachable",
                        Verdict::Fail,
                        format!(
                            "{ip} does not answer while {other} across does: the host is down, or its security group or NSG drops traffic from {source}"
                        ),
                        format!(
                            "check that the VM at {ip} runs and that its security group or NSG allows {source}"
                        ),
                    );
                } else if tunnels.iter().all(|t| t.up) && !tunnels.is_empty() {
                    push(
                        &mut findings,
                        "no-path",
                        Verdict::Fail,
                        format!(
                            "{ip} unreachable although both clouds report every tunnel up and the routes propagated"
                        ),
                        format!(
                            "check the security groups or NSGs of the hosts (they must allow {source}), user-defined routes on the Azure subnet, and firewalls on the path"
                        ),
                    );
                }
                continue;
            }
            match (probe, outcome) {
                (Probe::PathMtu { target }, Outcome::PathMtu(found)) => {
                    if let (Some(largest), Some([from, to])) = (found.largest, found.vanished) {
                        push(
                            &mut findings,
                            "path-mtu",
                            Verdict::Fail,
                            format!(
                                "from {source} to {target}, packets of {from} to {to} bytes vanish without \"fragmentation needed\" coming back (the largest that crosses is {largest}): pings pass, but TCP connections that send full-size segments hang (TLS handshakes, large transfers)"
                            ),
                            format!(
                                "clamp TCP MSS to {mss} where traffic enters the path (e.g. iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss {mss}), or set the hosts' MTU to {largest} (ip link set dev eth0 mtu {largest}); then find what drops large packets silently on the way (a firewall that filters ICMP type 3 code 4, a device with a smaller MTU): AWS tunnels carry up to 1446 bytes, and Azure advises an MSS of 1350",
                                mss = largest.saturating_sub(crate::path_mtu::TCP_IP_HEADERS)
                            ),
                        );
                    }
                }
                (Probe::Tcp { target }, Outcome::Refused) => push(
                    &mut findings,
                    "tcp-refused",
                    Verdict::Fail,
                    format!(
                        "{target} refused the connection: the path works, but nothing listens on port {}",
                        target.port()
                    ),
                    "start the service on that host, or correct tcp_ports in [[validate.targets]]"
                        .into(),
                ),
                (Probe::Tcp { target }, Outcome::TimedOut)
                    if host_answered(results, target.ip()).is_some() =>
                {
                    push(
                        &mut findings,
                        "tcp-filtered",
                        Verdict::Fail,
                        format!(
                            "{target} does not answer while {} answers ping: a security group, NSG or host firewall drops TCP {}",
                            target.ip(),
                            target.port()
                        ),
                        format!(
                            "allow TCP {} from {source} in the security group or NSG of {}",
                            target.port(),
                            target.ip()
                        ),
                    )
                }
                _ => {}
            }
        }
    }
    findings
}
