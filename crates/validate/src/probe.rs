//! The data-plane checks: ICMP echo (surge-ping), DNS lookups (hickory-resolver) and TCP
//! connects, all started at once on the current tokio runtime.
//!
//! Probes open their sockets where they run, so a caller that runs them on a thread inside a
//! network namespace (the lab's VPC host) tests from that host.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use hickory_resolver::Resolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use serde::Serialize;
use surge_ping::{Client, Config, ICMP, IcmpPacket, PingIdentifier, PingSequence};

use crate::path_mtu::{FULL_SIZE, PathMtu, PathMtuError, probe_path_mtu};
use crate::{CheckResult, Verdict};

/// One data-plane check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Probe {
    /// ICMP echo requests to `target`.
    Ping {
        /// The address pinged.
        target: IpAddr,
    },
    /// A DNS lookup of `name`.
    Dns {
        /// The name looked up.
        name: String,
        /// The server asked; None: this machine's resolver configuration (/etc/resolv.conf).
        server: Option<SocketAddr>,
        /// The record type.
        record: RecordKind,
        /// Addresses the answer must contain (empty: any answer passes).
        expect: Vec<IpAddr>,
        /// Asked over TCP only (else UDP, with TCP when the answer is truncated).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        over_tcp: bool,
    },
    /// A TCP connection to `target`.
    Tcp {
        /// Address and port.
        target: SocketAddr,
    },
    /// The largest packet that crosses to `target` with Don't Fragment set, and what happens
    /// to larger ones ([`crate::path_mtu`]).
    PathMtu {
        /// The address echoed.
        target: std::net::Ipv4Addr,
    },
}

/// Record types a lookup asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordKind {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Alias.
    Cname,
}

impl RecordKind {
    fn record_type(self) -> RecordType {
        match self {
            RecordKind::A => RecordType::A,
            RecordKind::Aaaa => RecordType::AAAA,
            RecordKind::Cname => RecordType::CNAME,
        }
    }
}

/// How hard each probe tries.
#[derive(Debug, Clone, Copy)]
pub struct ProbeOptions {
    /// Echo requests per ping.
    pub count: u16,
    /// Time between echo requests.
    pub interval: Duration,
    /// How long one echo reply, one DNS answer or one TCP handshake may take.
    pub timeout: Duration,
}

impl Default for ProbeOptions {
    /// Three echoes 200 ms apart, two seconds for any answer: a pass in about half a second.
    fn default() -> Self {
        ProbeOptions {
            count: 3,
            interval: Duration::from_millis(200),
            timeout: Duration::from_secs(2),
        }
    }
}

/// What a probe saw: the facts the diagnosis reasons on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Echo replies received.
    Replies {
        /// Requests sent.
        sent: u16,
        /// Replies received.
        received: u16,
        /// Round-trip times of the replies: min, avg, max in ms.
        rtt_ms: Option<[f64; 3]>,
    },
    /// No ICMP socket may be opened here.
    NoIcmpPermission {
        /// The system's words.
        error: String,
    },
    /// The server answered with records.
    Answer {
        /// Each record's data, e.g. `10.1.1.10`.
        records: Vec<String>,
    },
    /// The server answered without the records: NXDOMAIN, SERVFAIL, REFUSED, or NOERROR with
    /// none of the type asked.
    DnsRefusal {
        /// The response code (`NXDOMAIN`, `SERVFAIL`, ... or `NOERROR` for no records).
        code: String,
    },
    /// A TCP handshake completed.
    Connected,
    /// The host answered the handshake with a reset: reached, but nothing listens.
    Refused,
    /// No answer within the timeout.
    TimedOut,
    /// What the path did with packets of each size.
    PathMtu(PathMtu),
    /// Something else failed (an unreachable network, a bad name).
    Error {
        /// The error.
        error: String,
    },
}

/// Runs every probe at once and returns a result per probe, in the order given.
pub async fn run_probes(probes: &[Probe], options: &ProbeOptions) -> Vec<CheckResult> {
    join_all(probes.iter().map(|p| run_probe(p, options))).await
}

/// Runs one probe.
pub async fn run_probe(probe: &Probe, options: &ProbeOptions) -> CheckResult {
    let started = Instant::now();
    let outcome = match probe {
        Probe::Ping { target } => ping(*target, options).await,
        Probe::Dns {
            name,
            server,
            record,
            over_tcp,
            ..
        } => lookup(name, *server, *record, *over_tcp, options.timeout).await,
        Probe::Tcp { target } => connect(*target, options.timeout).await,
        Probe::PathMtu { target } => match probe_path_mtu(*target, options.timeout).await {
            Ok(found) => Outcome::PathMtu(found),
            Err(PathMtuError::Permission(error)) => Outcome::NoIcmpPermission { error },
            Err(PathMtuError::Io(e)) => Outcome::Error {
                error: e.to_string(),
            },
        },
    };
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    let (verdict, evidence) = judge(probe, &outcome);
    CheckResult {
        kind: match probe {
            Probe::Ping { .. } => "ping",
            Probe::Dns { .. } => "dns",
            Probe::Tcp { .. } => "tcp",
            Probe::PathMtu { .. } => "path_mtu",
        },
        target: describe(probe),
        verdict,
        millis,
        evidence,
        probe: Some(probe.clone()),
        outcome: Some(outcome),
    }
}

/// How a probe is named in a report: `10.1.1.10`, `vm1.azure.internal @10.0.0.2`, `10.1.1.10:53`.
pub fn describe(probe: &Probe) -> String {
    match probe {
        Probe::Ping { target } => target.to_string(),
        Probe::Dns {
            name,
            server,
            record,
            over_tcp,
            ..
        } => {
            let kind = match record {
                RecordKind::A => String::new(),
                other => format!(" {other:?}").to_uppercase(),
            } + if *over_tcp { " (TCP)" } else { "" };
            match server {
                Some(s) if s.port() == 53 => format!("{name}{kind} @{}", s.ip()),
                Some(s) => format!("{name}{kind} @{s}"),
                None => format!("{name}{kind}"),
            }
        }
        Probe::Tcp { target } => target.to_string(),
        Probe::PathMtu { target } => target.to_string(),
    }
}

fn judge(probe: &Probe, outcome: &Outcome) -> (Verdict, String) {
    match outcome {
        Outcome::Replies {
            sent,
            received,
            rtt_ms,
        } => {
            let rtt = rtt_ms
                .map(|[min, avg, max]| format!(", rtt min/avg/max {min:.1}/{avg:.1}/{max:.1} ms"))
                .unwrap_or_default();
            let verdict = if received == sent {
                Verdict::Pass
            } else if *received > 0 {
                Verdict::Warn
            } else {
                Verdict::Fail
            };
            (verdict, format!("{received}/{sent} replies{rtt}"))
        }
        // Pings may use the unprivileged ICMP socket; the path MTU needs a raw one, and its
        // absence leaves the path unproven, not broken.
        Outcome::NoIcmpPermission { error } if matches!(probe, Probe::PathMtu { .. }) => (
            Verdict::Warn,
            format!(
                "not measured: a raw ICMP socket needs root or CAP_NET_RAW (sudo setcap cap_net_raw+ep \"$(command -v dxvpn)\"): {error}"
            ),
        ),
        Outcome::NoIcmpPermission { error } => (
            Verdict::Fail,
            format!("cannot open an ICMP socket: {error}"),
        ),
        Outcome::Answer { records } => {
            let Probe::Dns { expect, .. } = probe else {
                return (Verdict::Fail, "an answer to a non-DNS probe".into());
            };
            let missing: Vec<String> = expect
                .iter()
                .map(ToString::to_string)
                .filter(|e| !records.contains(e))
                .collect();
            if missing.is_empty() {
                (Verdict::Pass, records.join(", "))
            } else {
                (
                    Verdict::Fail,
                    format!(
                        "answered {}, expected {}",
                        records.join(", "),
                        missing.join(", ")
                    ),
                )
            }
        }
        Outcome::DnsRefusal { code } => (Verdict::Fail, format!("answered {code}")),
        Outcome::Connected => (Verdict::Pass, "connected".into()),
        Outcome::Refused => (
            Verdict::Fail,
            "connection refused: the host is reached but nothing listens on the port".into(),
        ),
        Outcome::TimedOut => (Verdict::Fail, "no answer within the timeout".into()),
        Outcome::PathMtu(found) => judge_path_mtu(found),
        Outcome::Error { error } => (Verdict::Fail, error.clone()),
    }
}

/// A path MTU in words: how large a packet crosses, what happens to larger ones, the MSS.
fn judge_path_mtu(found: &PathMtu) -> (Verdict, String) {
    let Some(largest) = found.largest else {
        return (
            Verdict::Fail,
            "no echo came back at any size (the ping check says why)".into(),
        );
    };
    let mss = largest.saturating_sub(crate::path_mtu::TCP_IP_HEADERS);
    if let Some([from, to]) = found.vanished {
        return (
            Verdict::Fail,
            format!(
                "{largest} bytes cross; {from}-{to} byte packets vanish without \"fragmentation needed\": clamp TCP MSS to {mss}"
            ),
        );
    }
    if largest >= FULL_SIZE {
        return (
            Verdict::Pass,
            format!("{FULL_SIZE} bytes cross unfragmented"),
        );
    }
    let said = match (found.reported_mtu, found.reported_by) {
        (Some(mtu), Some(by)) => {
            format!("; {by} answers larger ones \"fragmentation needed, MTU {mtu}\"")
        }
        _ => String::new(),
    };
    let local = found
        .local_limit
        .map(|l| format!("; this host's interface sends at most {}", l - 1))
        .unwrap_or_default();
    (
        Verdict::Pass,
        format!("path MTU {largest}{said}{local}: clamp TCP MSS to {mss}"),
    )
}

/// A fresh identifier per ping, so that concurrent pings to one host never take each other's
/// replies.
pub(crate) fn next_identifier() -> PingIdentifier {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = std::process::id() as u16;
    PingIdentifier(base.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)))
}

async fn ping(target: IpAddr, options: &ProbeOptions) -> Outcome {
    let kind = if target.is_ipv4() { ICMP::V4 } else { ICMP::V6 };
    // A socket per ping: unprivileged ICMP sockets match replies by sequence only, so pings to
    // one host sharing a socket would collide.
    let client = match Client::new(&Config::builder().kind(kind).build()) {
        Ok(client) => client,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Outcome::NoIcmpPermission {
                error: e.to_string().lines().last().unwrap_or_default().to_owned(),
            };
        }
        Err(e) => {
            return Outcome::Error {
                error: e.to_string(),
            };
        }
    };
    let identifier = next_identifier();
    let payload = [0u8; 56];
    let echoes = (0..options.count).map(|seq| {
        let client = &client;
        let payload = &payload;
        async move {
            tokio::time::sleep(options.interval * u32::from(seq)).await;
            let mut pinger = client.pinger(target, identifier).await;
            pinger.timeout(options.timeout);
            pinger.ping(PingSequence(seq), payload).await
        }
    });
    let results = join_all(echoes).await;
    let rtts: Vec<f64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|(packet, _)| is_echo_reply(packet, target))
        .map(|(_, rtt)| rtt.as_secs_f64() * 1000.0)
        .collect();
    if rtts.is_empty() {
        // Not a silence: a router said the target is unreachable, or the kernel would not send.
        let refusal = results.iter().find_map(|r| match r {
            Ok((IcmpPacket::V4(p), _)) => Some(format!(
                "{} from {}",
                icmp_error(p.get_icmp_type().0, p.get_icmp_code().0),
                p.get_source()
            )),
            Ok((IcmpPacket::V6(p), _)) => Some(format!("ICMPv6 error from {}", p.get_source())),
            Err(surge_ping::SurgeError::Timeout { .. }) => None,
            Err(e) => Some(e.to_string()),
        });
        if let Some(error) = refusal {
            return Outcome::Error { error };
        }
    }
    let rtt_ms = (!rtts.is_empty()).then(|| {
        let min = rtts.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rtts.iter().copied().fold(0.0, f64::max);
        [min, rtts.iter().sum::<f64>() / rtts.len() as f64, max]
    });
    Outcome::Replies {
        sent: options.count,
        received: rtts.len() as u16,
        rtt_ms,
    }
}

/// An ICMPv4 error in words (RFC 792, RFC 1812).
fn icmp_error(kind: u8, code: u8) -> String {
    match (kind, code) {
        (3, 0) => "network unreachable".into(),
        (3, 1) => "host unreachable".into(),
        (3, 9 | 10 | 13) => "administratively prohibited (a filter)".into(),
        (3, _) => format!("destination unreachable (code {code})"),
        (11, _) => "time to live exceeded (a routing loop?)".into(),
        _ => format!("ICMP type {kind} code {code}"),
    }
}

/// An echo reply from the target itself; ICMP errors from routers on the way are routed to the
/// waiting ping too, and are not replies.
fn is_echo_reply(packet: &IcmpPacket, target: IpAddr) -> bool {
    match packet {
        IcmpPacket::V4(p) => p.get_icmp_type().0 == 0 && IpAddr::V4(p.get_source()) == target,
        IcmpPacket::V6(p) => IpAddr::V6(p.get_source()) == target,
    }
}

async fn lookup(
    name: &str,
    server: Option<SocketAddr>,
    record: RecordKind,
    over_tcp: bool,
    timeout: Duration,
) -> Outcome {
    let builder = match server {
        Some(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            ns.connections = if over_tcp { vec![tcp] } else { vec![udp, tcp] };
            let config = ResolverConfig::from_parts(None, vec![], vec![ns]);
            Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        }
        None => match Resolver::builder_tokio() {
            Ok(builder) => builder,
            Err(e) => {
                return Outcome::Error {
                    error: format!("this machine's resolver configuration: {e}"),
                };
            }
        },
    };
    let mut builder = builder;
    let options = builder.options_mut();
    options.timeout = timeout;
    // One try: a retry would hide a lossy path, and the verdict must come within the timeout.
    options.attempts = 1;
    options.cache_size = 0;
    let resolver = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Error {
                error: e.to_string(),
            };
        }
    };
    // A name asked of a given server is absolute: no search domains appended.
    let query = match server {
        Some(_) if !name.ends_with('.') => format!("{name}."),
        _ => name.to_owned(),
    };
    match resolver.lookup(query.as_str(), record.record_type()).await {
        Ok(found) => {
            let records: Vec<String> = found
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(a.0.to_string()),
                    RData::AAAA(a) => Some(a.0.to_string()),
                    RData::CNAME(c) => Some(c.0.to_string()),
                    _ => None,
                })
                .collect();
            if records.is_empty() {
                Outcome::DnsRefusal {
                    code: "NOERROR (no records)".into(),
                }
            } else {
                Outcome::Answer { records }
            }
        }
        Err(e) => dns_failure(&e),
    }
}

fn dns_failure(e: &NetError) -> Outcome {
    // The mnemonics dig prints: NXDOMAIN, SERVFAIL, REFUSED, ...
    let code = |c: ResponseCode| Outcome::DnsRefusal {
        code: format!("{c:?}").to_ascii_uppercase(),
    };
    match e {
        NetError::Timeout => Outcome::TimedOut,
        NetError::Dns(DnsError::ResponseCode(c)) => code(*c),
        NetError::Dns(DnsError::NoRecordsFound(n)) if n.response_code == ResponseCode::NoError => {
            Outcome::DnsRefusal {
                code: "NOERROR (no records)".into(),
            }
        }
        NetError::Dns(DnsError::NoRecordsFound(n)) => code(n.response_code),
        other => Outcome::Error {
            error: other.to_string(),
        },
    }
}

async fn connect(target: SocketAddr, timeout: Duration) -> Outcome {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(target)).await {
        Ok(Ok(_stream)) => Outcome::Connected,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Outcome::Refused,
        Ok(Err(e)) => Outcome::Error {
            error: e.to_string(),
        },
        Err(_) => Outcome::TimedOut,
    }
}
