//! Tunnel inside networks: the /30s that carry BGP between an AWS tunnel and an Azure instance.
//!
//! Both clouds must accept the same /30. AWS takes any /30 in 169.254.0.0/16 except its reserved
//! blocks; Azure takes custom BGP (APIPA) addresses only in 169.254.21.0 - 169.254.22.255. So the
//! usable space is the two /24s of the Azure range, and dxvpn gives the first tunnel of every
//! connection a /30 from 169.254.21.0/24 and the second one from 169.254.22.0/24, the layout of
//! Microsoft's AWS tutorial. AWS takes the first host of the /30, Azure the second.

use std::net::Ipv4Addr;

use crate::{Ipv4Net, nth_host, overlaps};

/// First address Azure accepts as a custom BGP (APIPA) address.
pub const AZURE_APIPA_FIRST: Ipv4Addr = Ipv4Addr::new(169, 254, 21, 0);
/// Last address Azure accepts as a custom BGP (APIPA) address.
pub const AZURE_APIPA_LAST: Ipv4Addr = Ipv4Addr::new(169, 254, 22, 255);

/// The network AWS takes tunnel inside CIDRs from.
pub const AWS_INSIDE_SUPERNET: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 0, 0), 16);

/// The /30s AWS refuses as tunnel inside CIDRs.
pub const AWS_RESERVED_INSIDE_CIDRS: [Ipv4Net; 7] = [
    Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 0, 0), 30),
    Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 1, 0), 30),
    Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 2, 0), 30),
    Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 3, 0), 30),
    Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 4, 0), 30),
    Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 5, 0), 30),
    Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 169, 252), 30),
];

/// The two /24 blocks inside the Azure APIPA range; a connection's tunnel `t` uses block `t`.
pub const APIPA_BLOCKS: [Ipv4Net; 2] = [
    Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 21, 0), 24),
    Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 22, 0), 24),
];

/// Why a /30 cannot be a tunnel inside CIDR on both clouds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InsideCidrError {
    /// AWS and Azure both need exactly one /30 per tunnel.
    #[error("{0} is not a /30")]
    NotSlash30(Ipv4Net),
    /// Azure only accepts custom BGP addresses in its APIPA range.
    #[error("{0} is outside Azure's APIPA range 169.254.21.0 - 169.254.22.255")]
    OutsideAzureApipa(Ipv4Net),
    /// AWS reserves a few /30s for its own use.
    #[error("{0} is reserved by AWS")]
    AwsReserved(Ipv4Net),
}

/// Checks that both clouds accept `cidr` as a tunnel inside CIDR.
pub fn check_inside_cidr(cidr: Ipv4Net) -> Result<(), InsideCidrError> {
    if cidr.prefix_len() != 30 {
        return Err(InsideCidrError::NotSlash30(cidr));
    }
    if AWS_RESERVED_INSIDE_CIDRS.contains(&cidr) || !AWS_INSIDE_SUPERNET.contains(&cidr) {
        return Err(InsideCidrError::AwsReserved(cidr));
    }
    if cidr.network() < AZURE_APIPA_FIRST || cidr.broadcast() > AZURE_APIPA_LAST {
        return Err(InsideCidrError::OutsideAzureApipa(cidr));
    }
    Ok(())
}

/// The AWS end of a tunnel: the first host of its inside /30.
pub fn aws_inside_ip(cidr: Ipv4Net) -> Ipv4Addr {
    nth_host(cidr, 1).unwrap_or(cidr.network())
}

/// The Azure end of a tunnel: the second host of its inside /30.
pub fn azure_inside_ip(cidr: Ipv4Net) -> Ipv4Addr {
    nth_host(cidr, 2).unwrap_or(cidr.network())
}

/// The APIPA blocks ran out of /30s (each holds 64; only with that many tunnels already taken).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no free /30 left in {block} for tunnel inside CIDRs")]
pub struct InsideCidrsExhausted {
    /// The block that is full.
    pub block: Ipv4Net,
}

/// Allocates one inside /30 per tunnel for `connections` AWS VPN connections of two tunnels each,
/// skipping every network in `taken` (user-chosen CIDRs, or ones in use on the gateways).
///
/// The result is ordered connection 0 tunnel 0, connection 0 tunnel 1, connection 1 tunnel 0, ...
/// With nothing taken this is exactly Microsoft's table: 169.254.21.0/30, 169.254.22.0/30,
/// 169.254.21.4/30, 169.254.22.4/30.
pub fn allocate_tunnel_inside_cidrs(
    connections: usize,
    taken: &[Ipv4Net],
) -> Result<Vec<Ipv4Net>, InsideCidrsExhausted> {
    let mut free: Vec<_> = APIPA_BLOCKS
        .iter()
        .map(|block| {
            let slash30s = block.subnets(30).into_iter().flatten();
            slash30s.filter(|c| {
                check_inside_cidr(*c).is_ok() && !taken.iter().any(|t| overlaps(*t, *c))
            })
        })
        .collect();
    let mut allocated = Vec::with_capacity(connections * 2);
    for _ in 0..connections {
        for (block, candidates) in APIPA_BLOCKS.iter().zip(free.iter_mut()) {
            let cidr = candidates
                .next()
                .ok_or(InsideCidrsExhausted { block: *block })?;
            allocated.push(cidr);
        }
    }
    Ok(allocated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_network;

    fn net(s: &str) -> Ipv4Net {
        parse_network(s).unwrap()
    }

    #[test]
    fn default_allocation_is_the_microsoft_tutorial_table() {
        let cidrs = allocate_tunnel_inside_cidrs(2, &[]).unwrap();
        let shown: Vec<_> = cidrs.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "169.254.21.0/30",
                "169.254.22.0/30",
                "169.254.21.4/30",
                "169.254.22.4/30"
            ]
        );
        assert_eq!(aws_inside_ip(cidrs[2]).to_string(), "169.254.21.5");
        assert_eq!(azure_inside_ip(cidrs[2]).to_string(), "169.254.21.6");
    }

    #[test]
    fn allocation_skips_taken_networks() {
        let cidrs = allocate_tunnel_inside_cidrs(1, &[net("169.254.21.0/29")]).unwrap();
        assert_eq!(cidrs, vec![net("169.254.21.8/30"), net("169.254.22.0/30")]);
    }

    #[test]
    fn allocation_fails_when_a_block_is_full() {
        let taken = [net("169.254.22.0/24")];
        assert_eq!(
            allocate_tunnel_inside_cidrs(1, &taken),
            Err(InsideCidrsExhausted {
                block: APIPA_BLOCKS[1]
            })
        );
    }

    #[test]
    fn inside_cidr_rules_of_both_clouds() {
        assert_eq!(check_inside_cidr(net("169.254.21.0/30")), Ok(()));
        assert_eq!(check_inside_cidr(net("169.254.22.252/30")), Ok(()));
        assert_eq!(
            check_inside_cidr(net("169.254.21.0/29")),
            Err(InsideCidrError::NotSlash30(net("169.254.21.0/29")))
        );
        assert_eq!(
            check_inside_cidr(net("169.254.20.252/30")),
            Err(InsideCidrError::OutsideAzureApipa(net("169.254.20.252/30")))
        );
        assert_eq!(
            check_inside_cidr(net("169.254.5.0/30")),
            Err(InsideCidrError::AwsReserved(net("169.254.5.0/30")))
        );
        assert_eq!(
            check_inside_cidr(net("10.0.0.0/30")),
            Err(InsideCidrError::AwsReserved(net("10.0.0.0/30")))
        );
    }
}
