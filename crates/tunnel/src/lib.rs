//! Tunnels and BGP between an AWS virtual private gateway and an Azure VPN gateway.
//!
//! This crate owns the rules that make a tunnel come up on both clouds: which ASNs each cloud
//! accepts, how pre-shared keys are generated and checked (AWS's rules are the stricter ones),
//! the IKEv2/IPsec policy both sides are configured with, and the pairing of AWS tunnels with
//! Azure gateway instances and inside addresses. It is a model only: no I/O, no cloud calls.
//!
//! ```
//! use dxvpn_tunnel::{UseCase, pair_tunnels, psk::PresharedKey};
//!
//! let tunnels = pair_tunnels(UseCase::HighAvailability, &[]).unwrap();
//! assert_eq!(tunnels.len(), 4);
//! assert_eq!(tunnels[2].azure_instance, 1);
//! assert_eq!(tunnels[2].azure_inside_ip.to_string(), "169.254.21.6");
//!
//! let psk = PresharedKey::generate();
//! assert!(!format!("{psk:?}").contains(psk.expose()), "a key never shows in Debug output");
//! ```

pub mod asn;
pub mod policy;
pub mod psk;
pub mod render;

use std::net::Ipv4Addr;

use dxvpn_cidr::Ipv4Net;
use dxvpn_cidr::inside::{
    InsideCidrsExhausted, allocate_tunnel_inside_cidrs, aws_inside_ip, azure_inside_ip,
};
use serde::{Deserialize, Serialize};

/// The two shapes of deployment, as in the original module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UseCase {
    /// One AWS VPN connection (2 tunnels) to a single-instance Azure gateway.
    Development,
    /// Two AWS VPN connections (4 tunnels) to an active-active Azure gateway.
    HighAvailability,
}

impl UseCase {
    /// How many AWS VPN connections (and customer gateways) this shape has.
    pub fn aws_connections(self) -> usize {
        match self {
            UseCase::Development => 1,
            UseCase::HighAvailability => 2,
        }
    }

    /// How many Azure gateway instances (and public IPs) this shape has.
    pub fn azure_instances(self) -> usize {
        self.aws_connections()
    }

    /// How many tunnels in all: every AWS VPN connection has two.
    pub fn tunnel_count(self) -> usize {
        self.aws_connections() * 2
    }

    /// The name used in config files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            UseCase::Development => "development",
            UseCase::HighAvailability => "high_availability",
        }
    }
}

/// One tunnel: which AWS connection and tunnel it is, which Azure instance ends it, and the
/// inside /30 that carries its BGP session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TunnelPairing {
    /// Index of the AWS VPN connection (0-based); also the customer gateway's index.
    pub aws_connection: usize,
    /// Tunnel of that connection, 0 or 1.
    pub aws_tunnel: usize,
    /// Azure gateway instance (ipConfiguration) that terminates the tunnel.
    pub azure_instance: usize,
    /// The tunnel inside CIDR, a /30 valid for both clouds.
    pub inside_cidr: Ipv4Net,
    /// AWS side of the BGP session: first host of the /30.
    pub aws_inside_ip: Ipv4Addr,
    /// Azure side (custom APIPA address): second host of the /30.
    pub azure_inside_ip: Ipv4Addr,
}

impl TunnelPairing {
    /// A short stable name, `c1t2` for connection 1 tunnel 2 (1-based, as the consoles show).
    pub fn key(&self) -> String {
        format!("c{}t{}", self.aws_connection + 1, self.aws_tunnel + 1)
    }
}

/// Pairs every AWS tunnel of `use_case` with an Azure instance and an inside /30.
///
/// `chosen` holds the user's inside CIDRs in tunnel order (connection 0 tunnel 0 first); when it
/// is empty, CIDRs are allocated. AWS connection `i` always lands on Azure instance `i`: both
/// tunnels of a connection come from the customer gateway of that instance's public IP.
pub fn pair_tunnels(
    use_case: UseCase,
    chosen: &[Ipv4Net],
) -> Result<Vec<TunnelPairing>, InsideCidrsExhausted> {
    let cidrs = if chosen.is_empty() {
        allocate_tunnel_inside_cidrs(use_case.aws_connections(), &[])?
    } else {
        chosen.to_vec()
    };
    Ok(cidrs
        .into_iter()
        .take(use_case.tunnel_count())
        .enumerate()
        .map(|(index, inside_cidr)| TunnelPairing {
            aws_connection: index / 2,
            aws_tunnel: index % 2,
            azure_instance: index / 2,
            inside_cidr,
            aws_inside_ip: aws_inside_ip(inside_cidr),
            azure_inside_ip: azure_inside_ip(inside_cidr),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_puts_both_tunnels_on_instance_zero() {
        let tunnels = pair_tunnels(UseCase::Development, &[]).unwrap();
        let shown: Vec<_> = tunnels
            .iter()
            .map(|t| (t.key(), t.azure_instance, t.inside_cidr.to_string()))
            .collect();
        assert_eq!(
            shown,
            [
                ("c1t1".to_string(), 0, "169.254.21.0/30".to_string()),
                ("c1t2".to_string(), 0, "169.254.22.0/30".to_string())
            ]
        );
    }

    #[test]
    fn high_availability_matches_the_tutorial_table() {
        let tunnels = pair_tunnels(UseCase::HighAvailability, &[]).unwrap();
        let shown: Vec<_> = tunnels
            .iter()
            .map(|t| {
                format!(
                    "{} {} {} {} {}",
                    t.key(),
                    t.azure_instance,
                    t.inside_cidr,
                    t.aws_inside_ip,
                    t.azure_inside_ip
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                "c1t1 0 169.254.21.0/30 169.254.21.1 169.254.21.2",
                "c1t2 0 169.254.22.0/30 169.254.22.1 169.254.22.2",
                "c2t1 1 169.254.21.4/30 169.254.21.5 169.254.21.6",
                "c2t2 1 169.254.22.4/30 169.254.22.5 169.254.22.6",
            ]
        );
    }

    #[test]
    fn chosen_cidrs_are_used_in_tunnel_order() {
        let chosen: Vec<Ipv4Net> = ["169.254.21.100/30", "169.254.22.100/30"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let tunnels = pair_tunnels(UseCase::Development, &chosen).unwrap();
        assert_eq!(tunnels[1].aws_inside_ip.to_string(), "169.254.22.101");
        assert_eq!(tunnels[1].azure_inside_ip.to_string(), "169.254.22.102");
    }
}
