//! Path MTU: the largest packet that crosses to a target unfragmented, and whether larger ones
//! are refused with "fragmentation needed" (the path says so, and TCP adapts) or vanish (a black
//! hole: pings pass, TLS handshakes and large transfers hang).
//!
//! ICMP echoes of several sizes go out at once with Don't Fragment set (`IP_PMTUDISC_PROBE`,
//! which also ignores what the kernel already believes about the path, so a stale belief never
//! hides a black hole), two copies of each so that one lost echo is not taken for a drop. Each
//! round narrows the gap between the largest size answered and the smallest refused; a
//! "fragmentation needed" names its MTU, which the next round tries first. surge-ping cannot set
//! Don't Fragment, so this module opens its own raw socket; it needs what a raw socket needs
//! (root or CAP_NET_RAW), and only a raw socket sees the routers' ICMP errors at all.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use pnet_packet::Packet;
use pnet_packet::icmp::destination_unreachable::DestinationUnreachablePacket;
use pnet_packet::icmp::echo_reply::EchoReplyPacket;
use pnet_packet::icmp::echo_request::MutableEchoRequestPacket;
use pnet_packet::icmp::{IcmpPacket, IcmpTypes, checksum};
use pnet_packet::ipv4::Ipv4Packet;
use rustix::net::sockopt::{Ipv4PathMtuDiscovery, set_ip_mtu_discover};
use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

/// The largest packet a path must carry for dxvpn to call it whole: Ethernet's payload.
pub const FULL_SIZE: u16 = 1500;
/// IPv4 and ICMP echo headers: an echo of `size` bytes carries `size - 28` bytes of payload.
const HEADERS: u16 = 28;
/// TCP's MSS is the MTU less the IPv4 and TCP headers.
pub const TCP_IP_HEADERS: u16 = 40;
/// The first round: full size, the clouds' figures (AWS's 1446, Azure's advice of 1400, 1350
/// as MSS), then coarser steps down to IPv4's minimum reassembly size.
const FIRST_ROUND: [u16; 13] = [
    1500, 1472, 1450, 1446, 1420, 1400, 1380, 1350, 1300, 1200, 1000, 800, 576,
];
/// Sizes per later round, and rounds at most: 16 sizes cut a gap of 1,000 bytes to 1 in three.
const PER_ROUND: usize = 16;
const ROUNDS: usize = 6;

/// What a path did with packets of one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// An echo reply came back.
    Crossed,
    /// A router answered "fragmentation needed" with its next hop's MTU.
    TooBig { mtu: u16, from: Ipv4Addr },
    /// This host could not send it (larger than its own interface's MTU).
    LocalLimit,
    /// Nothing came back, in two rounds: silence a loss does not explain.
    Vanished,
    /// Nothing came back in one round: a congested path loses packets too, so it is asked
    /// again before it counts.
    Lost,
}

/// What the path-MTU probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathMtu {
    /// The largest packet (IP total length, bytes) that crossed; None when none did.
    pub largest: Option<u16>,
    /// The MTU a router named in "fragmentation needed".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_mtu: Option<u16>,
    /// The router that named it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_by: Option<Ipv4Addr>,
    /// The smallest and largest sizes above `largest` that vanished without a word: a black
    /// hole when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vanished: Option<[u16; 2]>,
    /// This host's own interface would not send packets this large.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_limit: Option<u16>,
}

impl PathMtu {
    /// The MSS to clamp TCP to on this path.
    pub fn mss(&self) -> Option<u16> {
        self.largest.map(|l| l.saturating_sub(TCP_IP_HEADERS))
    }
}

/// Why the probe could not run.
#[derive(Debug)]
pub enum PathMtuError {
    /// No raw ICMP socket may be opened here.
    Permission(String),
    /// Anything else the socket said.
    Io(std::io::Error),
}

/// Finds the path MTU towards `target`. `timeout` bounds each round's wait for a reply; once
/// one size has answered, the others get three times its round trip (at least 200 ms).
pub async fn probe_path_mtu(target: Ipv4Addr, timeout: Duration) -> Result<PathMtu, PathMtuError> {
    let socket = open_socket()?;
    let identifier = crate::probe::next_identifier().0;
    let mut fates: BTreeMap<u16, Fate> = BTreeMap::new();
    let mut sequence: u16 = 0;
    let mut round: Vec<u16> = FIRST_ROUND.to_vec();
    for _ in 0..ROUNDS {
        let seen = run_round(&socket, target, identifier, &mut sequence, &round, timeout).await?;
        for (size, fate) in seen {
            let fate = match (fate, fates.get(&size)) {
                (Fate::Vanished, None) => Fate::Lost,
                (fate, _) => fate,
            };
            fates.insert(size, fate);
        }
        round = next_round(&fates);
        if round.is_empty() {
            break;
        }
    }
    Ok(summarize(&fates))
}

/// A raw ICMP socket with Don't Fragment, driven by tokio as a datagram socket (as surge-ping
/// drives its own).
fn open_socket() -> Result<UdpSocket, PathMtuError> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            PathMtuError::Permission(e.to_string())
        } else {
            PathMtuError::Io(e)
        }
    })?;
    socket.set_nonblocking(true).map_err(PathMtuError::Io)?;
    // A raw socket gets a copy of every ICMP packet the host receives: with other probes'
    // full-size echoes arriving at the same time, the default buffer overflows and drops ours.
    // Best effort: the kernel caps it at net.core.rmem_max.
    let _ = socket.set_recv_buffer_size(4 << 20);
    // Don't Fragment on every packet, whatever the kernel has learned of the path.
    set_ip_mtu_discover(&socket, Ipv4PathMtuDiscovery::PROBE)
        .map_err(|e| PathMtuError::Io(e.into()))?;
    UdpSocket::from_std(socket.into()).map_err(PathMtuError::Io)
}

/// The sizes still worth trying: between the largest that crossed and the smallest that did
/// not, the size a router named first, and the sizes lost once above the largest, asked again.
fn next_round(fates: &BTreeMap<u16, Fate>) -> Vec<u16> {
    let mut sizes = narrowing(fates);
    let largest = largest_crossed(fates);
    let named = named_mtu(fates);
    if largest > 0 {
        sizes.extend(
            fates
                .iter()
                .filter(|(s, f)| **s > largest && **f == Fate::Lost)
                .map(|(s, _)| *s)
                .filter(|s| named.is_none_or(|m| *s <= m)),
        );
        sizes.sort_unstable();
        sizes.dedup();
    }
    sizes
}

fn largest_crossed(fates: &BTreeMap<u16, Fate>) -> u16 {
    fates
        .iter()
        .filter(|(_, f)| **f == Fate::Crossed)
        .map(|(s, _)| *s)
        .max()
        .unwrap_or(0)
}

/// The smallest MTU a router named: sizes above it are refused, and a refusal that does not
/// come is a router's ICMP rate limit (Linux: `icmp_ratelimit`), not a black hole.
fn named_mtu(fates: &BTreeMap<u16, Fate>) -> Option<u16> {
    fates
        .values()
        .filter_map(|f| match f {
            Fate::TooBig { mtu, .. } => Some(*mtu),
            _ => None,
        })
        .min()
}

/// The gap between the largest size that crossed and the smallest that did not, cut up.
fn narrowing(fates: &BTreeMap<u16, Fate>) -> Vec<u16> {
    let largest = fates
        .iter()
        .filter(|(_, f)| **f == Fate::Crossed)
        .map(|(s, _)| *s)
        .max()
        .unwrap_or(0);
    let Some(refused) = fates
        .iter()
        .find(|(s, f)| **s > largest && **f != Fate::Crossed)
        .map(|(s, _)| *s)
    else {
        return Vec::new();
    };
    // A router that named the MTU the largest answer has reached has said the rest.
    let named_edge = fates
        .values()
        .any(|f| matches!(f, Fate::TooBig { mtu, .. } if *mtu == largest));
    if largest == 0 || refused <= largest + 1 || named_edge {
        // Nothing crossed (the target is silent: the ping check says so), or the edge is found.
        return Vec::new();
    }
    let mut sizes: Vec<u16> = fates
        .values()
        .filter_map(|f| match f {
            Fate::TooBig { mtu, .. } if *mtu > largest && *mtu < refused => Some(*mtu),
            _ => None,
        })
        .collect();
    let gap = refused - largest - 1;
    let count = (gap as usize).min(PER_ROUND);
    for i in 1..=count {
        let size = largest + (u32::from(gap + 1) * i as u32 / (count as u32 + 1)) as u16;
        sizes.push(size.clamp(largest + 1, refused - 1));
    }
    sizes.sort_unstable();
    sizes.dedup();
    sizes.retain(|s| !fates.contains_key(s));
    sizes
}

fn summarize(fates: &BTreeMap<u16, Fate>) -> PathMtu {
    let largest = fates
        .iter()
        .filter(|(_, f)| **f == Fate::Crossed)
        .map(|(s, _)| *s)
        .max();
    let named = named_mtu(fates);
    let above = |s: &u16| largest.is_none_or(|l| *s > l) && named.is_none_or(|m| *s <= m);
    let vanished: Vec<u16> = fates
        .iter()
        .filter(|(s, f)| above(s) && **f == Fate::Vanished)
        .map(|(s, _)| *s)
        .collect();
    let reported = fates.values().find_map(|f| match f {
        Fate::TooBig { mtu, from } => Some((*mtu, *from)),
        _ => None,
    });
    let local_limit = fates
        .iter()
        .filter(|(_, f)| **f == Fate::LocalLimit)
        .map(|(s, _)| *s)
        .min();
    PathMtu {
        largest,
        reported_mtu: reported.map(|r| r.0),
        reported_by: reported.map(|r| r.1),
        // With nothing crossing, silence is the target's, not the path's.
        vanished: largest
            .and(vanished.first().zip(vanished.last()))
            .map(|(a, b)| [*a, *b]),
        local_limit,
    }
}

/// Sends two echoes of each size and collects their fates until each is known or time is up.
async fn run_round(
    socket: &UdpSocket,
    target: Ipv4Addr,
    identifier: u16,
    sequence: &mut u16,
    sizes: &[u16],
    timeout: Duration,
) -> Result<BTreeMap<u16, Fate>, PathMtuError> {
    let to = SocketAddr::new(IpAddr::V4(target), 0);
    let mut pending: BTreeMap<u16, u16> = BTreeMap::new(); // sequence -> size
    let mut fates: BTreeMap<u16, Fate> = BTreeMap::new();
    let started = Instant::now();
    for &size in sizes {
        for _copy in 0..2 {
            let seq = *sequence;
            *sequence = sequence.wrapping_add(1);
            let packet = echo_request(identifier, seq, size.saturating_sub(HEADERS));
            match socket.send_to(&packet, to).await {
                Ok(_) => {
                    pending.insert(seq, size);
                }
                // Larger than this host's own interface: it never left.
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::MSGSIZE.raw_os_error()) => {
                    fates.insert(size, Fate::LocalLimit);
                }
                Err(e) => return Err(PathMtuError::Io(e)),
            }
        }
    }
    let mut deadline = started + timeout;
    let mut buf = [0u8; 2048];
    while pending.values().any(|s| !fates.contains_key(s)) {
        let read = match tokio::time::timeout_at(deadline.into(), socket.recv(&mut buf)).await {
            Ok(read) => read.map_err(PathMtuError::Io)?,
            Err(_elapsed) => break,
        };
        let Some((seq, fate)) = classify(&buf[..read], target, identifier) else {
            continue;
        };
        let Some(&size) = pending.get(&seq) else {
            continue;
        };
        if fate == Fate::Crossed {
            // The path's round trip is known: what has not come back in three of them will not.
            let rtt = started.elapsed();
            deadline = deadline.min(started + (rtt * 3).max(Duration::from_millis(200)));
        }
        // A reply outranks a refusal of the other copy (a route that changed mid-round).
        if fates.get(&size) != Some(&Fate::Crossed) {
            fates.insert(size, fate);
        }
    }
    for size in pending.values() {
        fates.entry(*size).or_insert(Fate::Vanished);
    }
    Ok(fates)
}

/// An echo request with `payload` zero bytes.
fn echo_request(identifier: u16, sequence: u16, payload: u16) -> Vec<u8> {
    let mut buf = vec![0u8; 8 + usize::from(payload)];
    if let Some(mut echo) = MutableEchoRequestPacket::new(&mut buf) {
        echo.set_icmp_type(IcmpTypes::EchoRequest);
        echo.set_identifier(identifier);
        echo.set_sequence_number(sequence);
        if let Some(icmp) = IcmpPacket::new(echo.packet()) {
            let sum = checksum(&icmp);
            echo.set_checksum(sum);
        }
    }
    buf
}

/// A packet read from the raw socket (IPv4 header included): the sequence it answers and how,
/// when it is about one of our echoes to `target`.
fn classify(raw: &[u8], target: Ipv4Addr, identifier: u16) -> Option<(u16, Fate)> {
    let ip = Ipv4Packet::new(raw)?;
    let icmp = IcmpPacket::new(ip.payload())?;
    match icmp.get_icmp_type() {
        IcmpTypes::EchoReply => {
            let reply = EchoReplyPacket::new(ip.payload())?;
            (ip.get_source() == target && reply.get_identifier() == identifier)
                .then(|| (reply.get_sequence_number(), Fate::Crossed))
        }
        IcmpTypes::DestinationUnreachable => {
            let error = DestinationUnreachablePacket::new(ip.payload())?;
            // The error quotes our packet: its IPv4 header, then the echo's first 8 bytes.
            let quoted = Ipv4Packet::new(error.payload())?;
            let echo = quoted.payload();
            if quoted.get_destination() != target || echo.len() < 8 {
                return None;
            }
            let quoted_id = u16::from_be_bytes([echo[4], echo[5]]);
            let quoted_seq = u16::from_be_bytes([echo[6], echo[7]]);
            if quoted_id != identifier {
                return None;
            }
            // RFC 1191: code 4 carries the next hop's MTU; other codes mean no route or a
            // filter, which the ping check names.
            (icmp.get_icmp_code().0 == 4).then(|| {
                (
                    quoted_seq,
                    Fate::TooBig {
                        mtu: error.get_next_hop_mtu(),
                        from: ip.get_source(),
                    },
                )
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fates(list: &[(u16, Fate)]) -> BTreeMap<u16, Fate> {
        list.iter().copied().collect()
    }

    const ROUTER: Ipv4Addr = Ipv4Addr::new(169, 254, 0, 1);

    #[test]
    fn a_router_that_names_its_mtu_is_tried_first_and_ends_the_search() {
        let too_big = Fate::TooBig {
            mtu: 1446,
            from: ROUTER,
        };
        let seen = fates(&[
            (1500, too_big),
            (1472, too_big),
            (1450, too_big),
            (1446, Fate::Crossed),
            (1420, Fate::Crossed),
        ]);
        assert!(next_round(&seen).is_empty(), "1446 crossed, 1450 refused");
        let seen = fates(&[(1500, too_big), (1400, Fate::Crossed)]);
        let next = next_round(&seen);
        assert!(
            next.contains(&1446) && next.len() <= PER_ROUND + 1,
            "{next:?}"
        );
        assert!(next.iter().all(|s| (1401..1500).contains(s)), "{next:?}");
    }

    #[test]
    fn silence_above_the_largest_answer_is_a_black_hole_and_is_narrowed_to_one_byte() {
        let mut seen = fates(&[(1500, Fate::Vanished), (1420, Fate::Vanished)]);
        seen.insert(1400, Fate::Crossed);
        let mut rounds = 0;
        loop {
            let next = next_round(&seen);
            if next.is_empty() {
                break;
            }
            rounds += 1;
            for s in next {
                seen.insert(
                    s,
                    if s <= 1407 {
                        Fate::Crossed
                    } else {
                        Fate::Vanished
                    },
                );
            }
        }
        assert!(rounds <= 2, "{rounds} rounds");
        let found = summarize(&seen);
        assert_eq!(found.largest, Some(1407));
        assert_eq!(found.vanished, Some([1408, 1500]));
        assert_eq!(found.mss(), Some(1367));
    }

    #[test]
    fn a_size_lost_once_is_asked_again_and_a_refusal_rate_limited_is_no_black_hole() {
        // 1300 lost once under load: asked again with the sizes below it.
        let too_big = Fate::TooBig {
            mtu: 1400,
            from: ROUTER,
        };
        let mut seen = fates(&[(1500, too_big), (1300, Fate::Lost), (1200, Fate::Crossed)]);
        assert!(next_round(&seen).contains(&1300), "{:?}", next_round(&seen));
        seen.insert(1300, Fate::Crossed);
        seen.insert(1400, Fate::Crossed);
        seen.insert(1420, Fate::Vanished);
        assert!(next_round(&seen).is_empty());
        // 1420 got no refusal while 1500 did: the router's ICMP rate limit, not a black hole.
        let found = summarize(&seen);
        assert_eq!((found.largest, found.vanished), (Some(1400), None));
        assert_eq!(found.reported_mtu, Some(1400));
        // Lost twice, it counts.
        let seen = fates(&[
            (1500, Fate::Vanished),
            (1300, Fate::Vanished),
            (1299, Fate::Crossed),
        ]);
        assert_eq!(summarize(&seen).vanished, Some([1300, 1500]));
    }

    #[test]
    fn a_silent_target_is_not_called_a_black_hole() {
        let seen = fates(&[(1500, Fate::Vanished), (576, Fate::Vanished)]);
        assert!(next_round(&seen).is_empty());
        let found = summarize(&seen);
        assert_eq!((found.largest, found.vanished), (None, None));
    }

    /// An IPv4 header (no options, total length set) from `src` to `dst`, then `payload`.
    fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, total: u16, payload: &[u8]) -> Vec<u8> {
        let mut packet = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 1, 0, 0];
        packet[2..4].copy_from_slice(&total.to_be_bytes());
        packet.extend_from_slice(&src.octets());
        packet.extend_from_slice(&dst.octets());
        packet.extend_from_slice(payload);
        packet
    }

    #[test]
    fn only_our_echoes_to_the_target_are_read() {
        let here = Ipv4Addr::new(10, 0, 1, 10);
        let target = Ipv4Addr::new(10, 1, 1, 10);
        let request = echo_request(7, 3, 100);
        let len = 20 + request.len() as u16;
        // Our own request, as a raw socket sees outgoing echoes on loopback: not a reply.
        assert_eq!(
            classify(&ipv4(here, target, len, &request), target, 7),
            None
        );
        let mut reply = request.clone();
        reply[0] = 0; // type 0: echo reply
        let reply = ipv4(target, here, len, &reply);
        assert_eq!(classify(&reply, target, 7), Some((3, Fate::Crossed)));
        assert_eq!(
            classify(&reply, target, 8),
            None,
            "another prober's identifier"
        );
        let elsewhere = Ipv4Addr::new(10, 1, 1, 11);
        assert_eq!(classify(&reply, elsewhere, 7), None, "another target");
        // "Fragmentation needed" from a router, quoting our 1500-byte request to the target.
        let mut error = vec![3, 4, 0, 0, 0, 0, 0x05, 0x78]; // next hop MTU 1400
        error.extend_from_slice(&ipv4(here, target, 1500, &request[..8]));
        let packet = ipv4(ROUTER, here, 20 + error.len() as u16, &error);
        let too_big = Fate::TooBig {
            mtu: 1400,
            from: ROUTER,
        };
        assert_eq!(classify(&packet, target, 7), Some((3, too_big)));
        // Other unreachables (a filter, no route) are not about size.
        let mut filtered = packet.clone();
        filtered[21] = 13;
        assert_eq!(classify(&filtered, target, 7), None);
    }
}
