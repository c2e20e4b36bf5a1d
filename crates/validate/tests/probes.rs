//! The probes on loopback against real servers: dxvpn's own DNS forwarder (a local zone, a
//! silent forward target, no upstream), TCP listeners and closed ports, ICMP echo (as root).
//! Each outcome a diagnosis relies on is produced for real, and 200 probes at once all pass.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use dxvpn_dns::{ForwardZone, Forwarder, ForwarderConfig, LocalZone};
use dxvpn_validate::Verdict;
use dxvpn_validate::probe::{Outcome, Probe, ProbeOptions, RecordKind, run_probe, run_probes};

/// A port on loopback that nothing listens on (TCP) or answers (UDP).
fn closed_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    drop((socket, tcp));
    port
}

async fn forwarder() -> Forwarder {
    let silent = closed_port();
    Forwarder::start(&ForwarderConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: Vec::new(),
        timeout_ms: 300,
        forward: vec![ForwardZone {
            zone: "silent.test".into(),
            targets: vec![format!("127.0.0.1:{silent}")],
        }],
        local: vec![LocalZone {
            zone: "lab.test".into(),
            records: BTreeMap::from([("vm1".to_owned(), "10.9.9.9".parse().unwrap())]),
        }],
        allow: Vec::new(),
    })
    .await
    .unwrap()
}

fn dns(name: &str, server: SocketAddr, expect: &[&str]) -> Probe {
    Probe::Dns {
        name: name.into(),
        server: Some(server),
        record: RecordKind::A,
        expect: expect.iter().map(|e| e.parse().unwrap()).collect(),
        over_tcp: false,
    }
}

fn options() -> ProbeOptions {
    ProbeOptions {
        timeout: Duration::from_secs(1),
        ..ProbeOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_outcomes_are_told_apart() {
    let server = forwarder().await;
    let at = server.addr;
    let cases = [
        (
            dns("vm1.lab.test", at, &["10.9.9.9"]),
            Verdict::Pass,
            "10.9.9.9",
        ),
        // Negative controls: a wrong expectation, a missing name, a silent target, no zone.
        (
            dns("vm1.lab.test", at, &["10.9.9.8"]),
            Verdict::Fail,
            "answered 10.9.9.9, expected 10.9.9.8",
        ),
        (
            dns("nothere.lab.test", at, &[]),
            Verdict::Fail,
            "answered NXDOMAIN",
        ),
        (
            dns("vm1.silent.test", at, &[]),
            Verdict::Fail,
            "answered SERVFAIL",
        ),
        (
            dns("vm1.example.org", at, &[]),
            Verdict::Fail,
            "answered REFUSED",
        ),
    ];
    for (probe, verdict, evidence) in cases {
        let result = run_probe(&probe, &options()).await;
        assert_eq!(
            (result.verdict, result.evidence.as_str()),
            (verdict, evidence),
            "{probe:?}: {result:?}"
        );
    }
    // Nobody answers at all: a timeout, not a refusal.
    let result = run_probe(
        &dns(
            "vm1.lab.test",
            SocketAddr::from(([127, 0, 0, 1], closed_port())),
            &[],
        ),
        &ProbeOptions {
            timeout: Duration::from_millis(300),
            ..options()
        },
    )
    .await;
    assert_eq!(result.outcome, Some(Outcome::TimedOut), "{result:?}");

    // Over TCP: the forwarder answers there too; a UDP-only server does not (negative control).
    let tcp = |server: SocketAddr| Probe::Dns {
        name: "vm1.lab.test".into(),
        server: Some(server),
        record: RecordKind::A,
        expect: vec!["10.9.9.9".parse().unwrap()],
        over_tcp: true,
    };
    let result = run_probe(&tcp(at), &options()).await;
    assert_eq!(result.verdict, Verdict::Pass, "{result:?}");
    assert!(result.target.contains("(TCP)"), "{}", result.target);
    let udp_only = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_addr = udp_only.local_addr().unwrap();
    let result = run_probe(&tcp(udp_addr), &options()).await;
    assert_eq!(result.verdict, Verdict::Fail, "{result:?}");
    drop(udp_only);
    server.stop().await;
}

#[tokio::test]
async fn tcp_connected_refused_and_ping_replies() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = listener.local_addr().unwrap();
    let closed = SocketAddr::from(([127, 0, 0, 1], closed_port()));
    let results = run_probes(
        &[
            Probe::Tcp { target: open },
            Probe::Tcp { target: closed },
            Probe::Ping {
                target: IpAddr::from([127, 0, 0, 1]),
            },
        ],
        &options(),
    )
    .await;
    assert_eq!(results[0].outcome, Some(Outcome::Connected));
    assert_eq!(results[1].outcome, Some(Outcome::Refused));
    assert_eq!(results[1].verdict, Verdict::Fail);
    // Run as root (CI is): the ICMP socket opens and loopback answers every echo.
    match &results[2].outcome {
        Some(Outcome::Replies {
            sent: 3,
            received: 3,
            rtt_ms: Some([min, avg, max]),
        }) => {
            assert!(min <= avg && avg <= max, "{:?}", results[2]);
        }
        other => panic!("ping 127.0.0.1: {other:?}"),
    }
    assert_eq!(results[2].verdict, Verdict::Pass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_probes_at_once_each_get_their_own_answer() {
    let server = forwarder().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = listener.local_addr().unwrap();
    let mut probes = Vec::new();
    for _ in 0..80 {
        // Pings to one host share sequence numbers: each must still get its own replies.
        probes.push(Probe::Ping {
            target: IpAddr::from([127, 0, 0, 1]),
        });
        probes.push(dns("vm1.lab.test", server.addr, &["10.9.9.9"]));
    }
    probes.extend((0..40).map(|_| Probe::Tcp { target: open }));
    let results = run_probes(&probes, &options()).await;
    assert_eq!(results.len(), 200);
    let failed: Vec<_> = results
        .iter()
        .filter(|r| r.verdict != Verdict::Pass)
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    server.stop().await;
}

#[tokio::test]
async fn path_mtu_over_loopback_is_full_size() {
    // Loopback carries 64 KiB: every size answers, nothing vanishes.
    let results = run_probes(
        &[Probe::PathMtu {
            target: std::net::Ipv4Addr::LOCALHOST,
        }],
        &ProbeOptions::default(),
    )
    .await;
    let result = &results[0];
    assert_eq!(result.kind, "path_mtu");
    match &result.outcome {
        Some(Outcome::PathMtu(found)) => {
            assert_eq!(found.largest, Some(1500), "{result:?}");
            assert_eq!(found.vanished, None, "{result:?}");
            assert_eq!(result.verdict, Verdict::Pass);
            assert_eq!(result.evidence, "1500 bytes cross unfragmented");
        }
        // Not root: the check says it could not measure, and only warns.
        Some(Outcome::NoIcmpPermission { .. }) => assert_eq!(result.verdict, Verdict::Warn),
        other => panic!("{other:?}"),
    }
}
