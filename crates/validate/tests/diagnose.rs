//! The diagnosis on its own: the same failed checks read differently depending on what the
//! clouds report, and each story names one cause.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use dxvpn_aws::PropagationState;
use dxvpn_deploy::{Change, ChangeKind, Status, TunnelBytes, TunnelHealth};
use dxvpn_plan::{Cloud, Plan};
use dxvpn_validate::path_mtu::PathMtu;
use dxvpn_validate::probe::{Outcome, Probe, RecordKind};
use dxvpn_validate::{CheckResult, ControlFacts, Report, Verdict};

fn plan() -> Plan {
    dxvpn_plan::plan_from_toml(include_str!("../../../examples/high_availability.toml")).unwrap()
}

fn tunnel(key: &str, up: bool) -> TunnelHealth {
    TunnelHealth {
        key: key.into(),
        outside_ip: "198.18.0.1".into(),
        aws_connection: "vpn-0123".into(),
        aws_status: if up { "UP" } else { "DOWN" }.into(),
        aws_message: if up { "" } else { "IPSEC IS DOWN" }.into(),
        aws_accepted_routes: i32::from(up),
        azure_connection: format!("conn-{key}"),
        azure_status: if up { "Connected" } else { "Connecting" }.into(),
        bgp_neighbor: "169.254.21.1".into(),
        bgp_state: if up { "Connected" } else { "Connecting" }.into(),
        bgp_routes_received: i64::from(up),
        up,
    }
}

/// Facts: tunnels up or not, propagation per route table, missing roles.
fn facts(up: &[bool], propagates: bool, missing: &[&str]) -> ControlFacts {
    let keys = ["c1t1", "c1t2", "c2t1", "c2t2"];
    ControlFacts {
        status: Ok(Status {
            tunnels: up.iter().zip(keys).map(|(u, k)| tunnel(k, *u)).collect(),
            route_propagation: vec![PropagationState {
                route_table_id: "rtb-0a1b2c3d4e5f60001".into(),
                propagates,
            }],
            forwarder_host: None,
            azure_forwarder_host: None,
        }),
        missing: Ok(missing
            .iter()
            .map(|role| Change::new(role, Cloud::Aws, &format!("dx-{role}"), ChangeKind::Create))
            .collect()),
        traffic: Vec::new(),
        filters: Vec::new(),
        millis: 50.0,
    }
}

fn probe(probe: Probe, outcome: Outcome) -> CheckResult {
    let verdict = match &outcome {
        Outcome::Replies { sent, received, .. } if received == sent => Verdict::Pass,
        Outcome::Answer { .. } | Outcome::Connected => Verdict::Pass,
        Outcome::PathMtu(found) if found.vanished.is_none() && found.largest.is_some() => {
            Verdict::Pass
        }
        _ => Verdict::Fail,
    };
    CheckResult {
        kind: match probe {
            Probe::Ping { .. } => "ping",
            Probe::Dns { .. } => "dns",
            Probe::Tcp { .. } => "tcp",
            Probe::PathMtu { .. } => "path_mtu",
        },
        target: dxvpn_validate::probe::describe(&probe),
        verdict,
        millis: 1.0,
        evidence: String::new(),
        probe: Some(probe),
        outcome: Some(outcome),
    }
}

const HOST: [u8; 4] = [10, 51, 1, 4];

fn ping(received: u16) -> CheckResult {
    probe(
        Probe::Ping {
            target: IpAddr::from(HOST),
        },
        Outcome::Replies {
            sent: 3,
            received,
            rtt_ms: None,
        },
    )
}

fn tcp(outcome: Outcome) -> CheckResult {
    probe(
        Probe::Tcp {
            target: SocketAddr::from((HOST, 22)),
        },
        outcome,
    )
}

fn lookup(outcome: Outcome) -> CheckResult {
    probe(
        Probe::Dns {
            name: "vm1.azure.internal".into(),
            server: Some(SocketAddr::from(([10, 1, 0, 2], 53))),
            record: RecordKind::A,
            expect: vec![IpAddr::from(HOST)],
            over_tcp: false,
        },
        outcome,
    )
}

fn path_mtu(largest: Option<u16>, vanished: Option<[u16; 2]>) -> CheckResult {
    probe(
        Probe::PathMtu {
            target: Ipv4Addr::from(HOST),
        },
        Outcome::PathMtu(PathMtu {
            largest,
            reported_mtu: vanished.is_none().then_some(1400),
            reported_by: vanished.is_none().then_some(Ipv4Addr::new(169, 254, 21, 2)),
            vanished,
            local_limit: None,
        }),
    )
}

fn ids(report: &Report) -> Vec<&'static str> {
    report.findings.iter().map(|f| f.id).collect()
}

fn assemble(results: Vec<CheckResult>, facts: &ControlFacts) -> Report {
    Report::assemble(&plan(), Some(Cloud::Aws), results, facts, 10.0)
}

fn all_pass() -> Vec<CheckResult> {
    vec![
        ping(3),
        tcp(Outcome::Connected),
        lookup(Outcome::Answer {
            records: vec!["10.51.1.4".into()],
        }),
    ]
}

fn all_silent() -> Vec<CheckResult> {
    vec![
        ping(0),
        tcp(Outcome::TimedOut),
        lookup(Outcome::DnsRefusal {
            code: "SERVFAIL".into(),
        }),
    ]
}

#[test]
fn all_well_is_a_pass_with_no_finding() {
    let report = assemble(all_pass(), &facts(&[true; 4], true, &[]));
    assert_eq!(report.verdict, Verdict::Pass);
    assert!(report.findings.is_empty());
}

#[test]
fn a_path_that_says_fragmentation_needed_passes_and_one_that_drops_silently_is_named() {
    let mut results = all_pass();
    results.push(path_mtu(Some(1400), None));
    let report = assemble(results, &facts(&[true; 4], true, &[]));
    assert_eq!(report.verdict, Verdict::Pass, "{:?}", report.findings);

    let mut results = all_pass();
    results.push(path_mtu(Some(1300), Some([1301, 1500])));
    let report = assemble(results, &facts(&[true; 4], true, &[]));
    assert_eq!(report.verdict, Verdict::Fail);
    assert_eq!(ids(&report), ["path-mtu"]);
    let finding = &report.findings[0];
    assert!(
        finding
            .message
            .starts_with("from 10.1.0.0/16 to 10.51.1.4, packets of 1301 to 1500 bytes vanish")
            && finding.message.contains("the largest that crosses is 1300"),
        "{}",
        finding.message
    );
    assert!(finding.fix.contains("--set-mss 1260"), "{}", finding.fix);
    // Not "unreachable": the host answers.
    assert!(!finding.message.contains("unreachable"));

    // A silent host is the ping's finding, not a black hole.
    let mut results = all_silent();
    results.push(path_mtu(None, None));
    let report = assemble(results, &facts(&[true; 4], true, &[]));
    assert!(!ids(&report).contains(&"path-mtu"), "{:?}", ids(&report));
}

#[test]
fn traffic_out_by_one_tunnel_and_back_by_another_is_a_warning_naming_both() {
    let bytes = |key: &str, cloud: &'static str, bytes_in: f64, bytes_out: f64| TunnelBytes {
        key: key.into(),
        cloud,
        connection: "vpn-0123".into(),
        outside_ip: "198.18.0.1".into(),
        bytes_in: vec![(1_700_000_000, bytes_in)],
        bytes_out: vec![(1_700_000_000, bytes_out)],
    };
    let mut facts = facts(&[true; 4], true, &[]);
    facts.traffic = vec![
        bytes("c1t1", "aws", 2.5e6, 2e3),
        bytes("c1t2", "aws", 2e3, 2.5e6),
    ];
    let report = assemble(all_pass(), &facts);
    assert_eq!(report.verdict, Verdict::Warn);
    assert_eq!(ids(&report), ["asymmetric-routing"]);
    let message = &report.findings[0].message;
    assert!(
        message.contains("Azure to AWS only by c1t1 (2.5 MB), AWS to Azure only by c1t2 (2.5 MB)"),
        "{message}"
    );
    // Both ways on one tunnel: nothing to say.
    facts.traffic = vec![
        bytes("c1t1", "aws", 2.5e6, 2.5e6),
        bytes("c1t2", "aws", 2e3, 2e3),
    ];
    assert!(assemble(all_pass(), &facts).findings.is_empty());
}

#[test]
fn one_tunnel_down_while_traffic_flows_is_a_warning() {
    let report = assemble(all_pass(), &facts(&[false, true, true, true], true, &[]));
    assert_eq!(report.verdict, Verdict::Warn);
    assert_eq!(ids(&report), ["redundancy-lost"]);
    assert!(
        report.findings[0]
            .message
            .starts_with("3 of 4 tunnels carry traffic")
    );
}

#[test]
fn every_tunnel_down_explains_the_silence_once() {
    let report = assemble(all_silent(), &facts(&[false; 4], true, &[]));
    assert_eq!(report.verdict, Verdict::Fail);
    // Not also "DNS target silent" or "no path": the tunnels explain both.
    assert_eq!(ids(&report), ["tunnels-down"]);
    assert!(report.findings[0].message.contains("IPsec down"));
}

#[test]
fn propagation_off_with_tunnels_up_names_the_route_table() {
    let report = assemble(
        all_silent(),
        &facts(
            &[true; 4],
            false,
            &["aws.route_propagation.rtb-0a1b2c3d4e5f60001"],
        ),
    );
    assert_eq!(ids(&report), ["propagation-off"]);
    let message = &report.findings[0].message;
    assert!(message.contains("all tunnels UP and 10.51.0.0/16 learned by the VPN gateway"));
    assert!(message.contains("rtb-0a1b2c3d4e5f60001"));
}

#[test]
fn icmp_dropped_on_a_host_that_answers_tcp_is_a_filter() {
    let results = vec![ping(0), tcp(Outcome::Connected)];
    let report = assemble(results, &facts(&[true; 4], true, &[]));
    assert_eq!(ids(&report), ["icmp-filtered"]);
    // Negative control: with nothing answering at all, it is not called a filter.
    let report = assemble(
        vec![ping(0), tcp(Outcome::TimedOut)],
        &facts(&[true; 4], true, &[]),
    );
    assert_eq!(ids(&report), ["no-path"]);
}

#[test]
fn a_missing_rule_explains_a_refused_lookup() {
    let results = vec![
        ping(3),
        lookup(Outcome::DnsRefusal {
            code: "NXDOMAIN".into(),
        }),
    ];
    let report = assemble(
        results.clone(),
        &facts(
            &[true; 4],
            true,
            &["aws.resolver_rule_association.azure.internal"],
        ),
    );
    assert_eq!(ids(&report), ["dns-rule-missing"]);
    assert!(
        report.findings[0]
            .message
            .contains("aws.resolver_rule_association.azure.internal")
    );
    // With every resource present, the same answer points at the zone list instead.
    let report = assemble(results, &facts(&[true; 4], true, &[]));
    assert_eq!(ids(&report), ["dns-not-forwarded"]);
}

#[test]
fn a_refused_connection_means_the_path_works() {
    let report = assemble(
        vec![ping(3), tcp(Outcome::Refused)],
        &facts(&[true; 4], true, &[]),
    );
    assert_eq!(ids(&report), ["tcp-refused"]);
}

#[test]
fn no_icmp_permission_says_how_to_grant_it() {
    let results = vec![probe(
        Probe::Ping {
            target: IpAddr::from(HOST),
        },
        Outcome::NoIcmpPermission {
            error: "Operation not permitted".into(),
        },
    )];
    let report = assemble(results, &facts(&[true; 4], true, &[]));
    assert_eq!(ids(&report)[0], "icmp-permission");
    let fix = &report.findings[0].fix;
    assert!(
        fix.contains("cap_net_raw") && fix.contains("ping_group_range"),
        "{fix}"
    );
}

/// Development from Azure: the lookup through Azure's resolver fails, and so does the same
/// lookup asked of the AWS forwarder host directly; the host is the cause, named once, and the
/// lookup behind it gets no second finding. Negative control: with the host answering, the
/// same failure through the resolver is not blamed on it.
#[test]
fn a_forwarder_host_that_fails_its_own_lookup_is_named_as_the_cause() {
    let plan =
        dxvpn_plan::plan_from_toml(include_str!("../../../examples/development.toml")).unwrap();
    let host = dxvpn_validate::targets::forwarder_hosts(&plan, Cloud::Aws)[0];
    let ask = |server: SocketAddr, outcome: Outcome| {
        probe(
            Probe::Dns {
                name: "vm1.aws.internal".into(),
                server: Some(server),
                record: RecordKind::A,
                expect: vec![],
                over_tcp: false,
            },
            outcome,
        )
    };
    let servfail = || Outcome::DnsRefusal {
        code: "SERVFAIL".into(),
    };
    let through_resolver = ask(SocketAddr::from(([168, 63, 129, 16], 53)), servfail());
    let facts = facts(&[true; 2], true, &[]);
    let report = Report::assemble(
        &plan,
        Some(Cloud::Azure),
        vec![
            through_resolver.clone(),
            ask(SocketAddr::from((host, 53)), servfail()),
        ],
        &facts,
        10.0,
    );
    assert_eq!(ids(&report), ["forwarder-host"], "{:?}", report.findings);
    assert!(report.findings[0].message.contains(&host.to_string()));

    let report = Report::assemble(
        &plan,
        Some(Cloud::Azure),
        vec![
            through_resolver,
            ask(
                SocketAddr::from((host, 53)),
                Outcome::Answer {
                    records: vec!["10.1.1.10".into()],
                },
            ),
        ],
        &facts,
        10.0,
    );
    assert!(
        !ids(&report).contains(&"forwarder-host"),
        "{:?}",
        report.findings
    );
    assert!(
        ids(&report).contains(&"dns-target-silent"),
        "{:?}",
        report.findings
    );
}
