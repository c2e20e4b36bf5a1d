//! Asymmetric routing across tunnels, read from the clouds' per-tunnel byte counts: traffic that
//! leaves by one tunnel and comes back by another. AWS's knowledge center ("How do I avoid
//! asymmetry in route-based VPN", vpn-avoid-asymmetry-static-routing) names the sign: "one
//! tunnel has data points for the metric TunnelDataIn, the second tunnel has data points for the
//! metric TunnelDataOut", and the harm: a stateful device that saw a flow leave by one tunnel
//! drops its return by the other.

use std::time::Duration;

use dxvpn_deploy::TunnelBytes;
use serde::Serialize;

/// How far back the counts are read: five of CloudWatch's one-minute periods.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Below this, a tunnel's bytes in a direction over the window are BGP's keepalives and the
/// probes', not traffic (a keepalive crosses every 10 s: a few kilobytes a window).
pub const NOISE_BYTES: f64 = 64.0 * 1024.0;
/// A tunnel carries a direction when it has at least this share of that direction's bytes.
const SHARE: f64 = 0.1;

/// Tunnels that carry one direction only, while others carry the other.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Asymmetry {
    /// Whose counts these are: `aws` (TunnelDataIn/Out) or `azure` (TunnelIngress/EgressBytes).
    pub cloud: &'static str,
    /// Tunnels that received from the other cloud and sent (almost) nothing back, with bytes.
    pub inbound_only: Vec<(String, f64)>,
    /// Tunnels that sent to the other cloud and received (almost) nothing, with bytes.
    pub outbound_only: Vec<(String, f64)>,
}

/// The asymmetry in `tunnels` over the window, from AWS's counts when it has any (the
/// knowledge center's own test), else Azure's; None when every tunnel that carries traffic
/// carries both directions.
pub fn asymmetry(tunnels: &[TunnelBytes]) -> Option<Asymmetry> {
    let (cloud, sums) = counted(tunnels);
    let all_in: f64 = sums.iter().map(|s| s.1).sum();
    let all_out: f64 = sums.iter().map(|s| s.2).sum();
    let carries = |bytes: f64, all: f64| bytes >= NOISE_BYTES && bytes >= SHARE * all;
    let inbound_only: Vec<(String, f64)> = sums
        .iter()
        .filter(|(_, i, o)| carries(*i, all_in) && !carries(*o, all_out))
        .map(|(k, i, _)| ((*k).to_owned(), *i))
        .collect();
    let outbound_only: Vec<(String, f64)> = sums
        .iter()
        .filter(|(_, i, o)| carries(*o, all_out) && !carries(*i, all_in))
        .map(|(k, _, o)| ((*k).to_owned(), *o))
        .collect();
    (!inbound_only.is_empty() && !outbound_only.is_empty()).then_some(Asymmetry {
        cloud,
        inbound_only,
        outbound_only,
    })
}

/// Whose counts to judge by (AWS's when it has any, else Azure's), and each of its tunnels'
/// bytes in and out over the window.
pub fn counted(tunnels: &[TunnelBytes]) -> (&'static str, Vec<(&str, f64, f64)>) {
    let cloud = if tunnels.iter().any(|t| t.cloud == "aws") {
        "aws"
    } else {
        "azure"
    };
    let sums = tunnels
        .iter()
        .filter(|t| t.cloud == cloud)
        .map(|t| (t.key.as_str(), total(&t.bytes_in), total(&t.bytes_out)))
        .collect();
    (cloud, sums)
}

fn total(periods: &[(u64, f64)]) -> f64 {
    periods.iter().map(|(_, bytes)| bytes).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tunnel(cloud: &'static str, key: &str, bytes_in: f64, bytes_out: f64) -> TunnelBytes {
        TunnelBytes {
            key: key.into(),
            cloud,
            connection: "vpn-1".into(),
            outside_ip: "198.18.0.1".into(),
            bytes_in: vec![(0, bytes_in / 2.0), (60, bytes_in / 2.0)],
            bytes_out: vec![(0, bytes_out)],
        }
    }

    #[test]
    fn in_by_one_tunnel_and_out_by_another_is_asymmetric() {
        let found = asymmetry(&[
            tunnel("aws", "c1t1", 2e6, 3e3),
            tunnel("aws", "c1t2", 3e3, 2e6),
            tunnel("azure", "c1t1", 3e3, 2e6),
        ])
        .unwrap();
        assert_eq!(found.cloud, "aws");
        assert_eq!(found.inbound_only, [("c1t1".to_owned(), 2e6)]);
        assert_eq!(found.outbound_only, [("c1t2".to_owned(), 2e6)]);
    }

    #[test]
    fn both_ways_on_each_tunnel_keepalives_only_or_one_tunnel_idle_are_not() {
        // ECMP: each tunnel carries some of each direction.
        assert_eq!(
            asymmetry(&[
                tunnel("aws", "c1t1", 1e6, 9e5),
                tunnel("aws", "c1t2", 8e5, 1e6)
            ]),
            None
        );
        // Only BGP keepalives: nothing to judge.
        assert_eq!(
            asymmetry(&[
                tunnel("aws", "c1t1", 4e3, 3e3),
                tunnel("aws", "c1t2", 3e3, 4e3)
            ]),
            None
        );
        // Everything on one tunnel, both ways: symmetric.
        assert_eq!(
            asymmetry(&[
                tunnel("aws", "c1t1", 2e6, 2e6),
                tunnel("aws", "c1t2", 3e3, 3e3)
            ]),
            None
        );
        // Azure's counts when AWS's could not be read (Azure's in is AWS's out).
        let found = asymmetry(&[
            tunnel("azure", "c1t1", 2e6, 1e3),
            tunnel("azure", "c1t2", 1e3, 2e6),
        ])
        .unwrap();
        assert_eq!(found.cloud, "azure");
    }
}
