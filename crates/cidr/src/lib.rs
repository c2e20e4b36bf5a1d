//! IPv4 address arithmetic for dxvpn.
//!
//! This crate owns every address rule that does not depend on a cloud call: parsing a network
//! strictly (no host bits), overlap and containment, the search for free subnets inside a VNet
//! (what `dx_available_subnet_cidr` does in the original Terraform module), host numbering, and
//! the allocation of tunnel inside /30 networks that both AWS and Azure accept.
//! It does no I/O and knows nothing about plans or clouds beyond those address rules.
//!
//! ```
//! use dxvpn_cidr::{free_subnets, inside, parse_network};
//!
//! let vnet = parse_network("10.51.0.0/16").unwrap();
//! let used = [parse_network("10.51.0.0/24").unwrap()];
//! let resolver_subnets = free_subnets(vnet, &used, 28, 2).unwrap();
//! assert_eq!(resolver_subnets[0].to_string(), "10.51.1.0/28");
//!
//! // Connection 0 gets 169.254.21.0/30 and 169.254.22.0/30, as in Microsoft's AWS tutorial.
//! let cidrs = inside::allocate_tunnel_inside_cidrs(1, &[]).unwrap();
//! assert_eq!(cidrs[1].to_string(), "169.254.22.0/30");
//! ```

pub mod inside;

use std::net::Ipv4Addr;

pub use ipnet::Ipv4Net;

/// Why a string is not an acceptable IPv4 network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Not of the form `a.b.c.d/len`.
    #[error("`{input}` is not an IPv4 network in CIDR notation (a.b.c.d/len)")]
    Malformed {
        /// The text that was given.
        input: String,
    },
    /// The address has bits set below the prefix, so the network is ambiguous.
    #[error("`{input}` has host bits set; the network is `{network}`")]
    HostBitsSet {
        /// The text that was given.
        input: String,
        /// The network the user most likely meant.
        network: Ipv4Net,
    },
}

/// Parses `a.b.c.d/len` and rejects host bits, because clouds do too (or silently truncate).
pub fn parse_network(input: &str) -> Result<Ipv4Net, CidrError> {
    let net: Ipv4Net = input.trim().parse().map_err(|_| CidrError::Malformed {
        input: input.to_owned(),
    })?;
    if net.trunc() != net {
        return Err(CidrError::HostBitsSet {
            input: input.to_owned(),
            network: net.trunc(),
        });
    }
    Ok(net)
}

/// True when the two networks share at least one address.
pub fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// True when every address of `inner` is inside `outer`.
pub fn contains(outer: Ipv4Net, inner: Ipv4Net) -> bool {
    outer.contains(&inner)
}

/// The `n`-th address of `net` counted from its network address (`n = 1` is the first host).
///
/// Returns `None` for the network address itself, the broadcast address, and anything beyond,
/// so the result is always a usable host of a /30 or larger network.
pub fn nth_host(net: Ipv4Net, n: u32) -> Option<Ipv4Addr> {
    if n == 0 || net.prefix_len() > 30 {
        return None;
    }
    let size = 1u64 << (32 - net.prefix_len());
    if u64::from(n) >= size - 1 {
        return None;
    }
    Some(Ipv4Addr::from(u32::from(net.network()) + n))
}

/// Not enough free subnets of the requested size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("only {found} free /{prefix_len} subnet(s) in {within}, {wanted} needed")]
pub struct NoFreeSubnet {
    /// The network that was searched.
    pub within: Ipv4Net,
    /// The prefix length asked for.
    pub prefix_len: u8,
    /// How many were asked for.
    pub wanted: usize,
    /// How many were found.
    pub found: usize,
}

/// The first `count` subnets of size `/prefix_len` inside `within` that overlap none of `used`,
/// lowest addresses first.
///
/// This is deterministic on purpose: planning the same VNet twice must give the same subnets,
/// or a re-run of `up` would try to create new ones.
pub fn free_subnets(
    within: Ipv4Net,
    used: &[Ipv4Net],
    prefix_len: u8,
    count: usize,
) -> Result<Vec<Ipv4Net>, NoFreeSubnet> {
    let not_found = |found| NoFreeSubnet {
        within,
        prefix_len,
        wanted: count,
        found,
    };
    let Ok(candidates) = within.subnets(prefix_len) else {
        return Err(not_found(0));
    };
    let mut found = Vec::with_capacity(count);
    let mut candidates = candidates.peekable();
    while found.len() < count {
        let Some(candidate) = candidates.next() else {
            return Err(not_found(found.len()));
        };
        match used.iter().find(|u| overlaps(**u, candidate)) {
            None => found.push(candidate),
            // Jump past a large used block instead of testing each small subnet inside it.
            Some(blocker) if blocker.prefix_len() < prefix_len => {
                let after = u32::from(blocker.broadcast());
                while candidates
                    .peek()
                    .is_some_and(|c| u32::from(c.network()) <= after)
                {
                    candidates.next();
                }
            }
            Some(_) => {}
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        parse_network(s).unwrap()
    }

    #[test]
    fn parse_rejects_host_bits_and_names_the_network() {
        assert_eq!(
            parse_network("10.1.2.3/16"),
            Err(CidrError::HostBitsSet {
                input: "10.1.2.3/16".into(),
                network: net("10.1.0.0/16")
            })
        );
        assert!(matches!(
            parse_network("10.1.0.0/33"),
            Err(CidrError::Malformed { .. })
        ));
        assert!(matches!(
            parse_network("10.1.0.0"),
            Err(CidrError::Malformed { .. })
        ));
    }

    #[test]
    fn overlap_is_symmetric_and_exact_at_the_edges() {
        assert!(overlaps(net("10.0.0.0/16"), net("10.0.255.0/24")));
        assert!(overlaps(net("10.0.255.0/24"), net("10.0.0.0/16")));
        assert!(!overlaps(net("10.0.0.0/16"), net("10.1.0.0/16")));
        assert!(!overlaps(net("10.0.0.0/31"), net("10.0.0.2/31")));
    }

    #[test]
    fn nth_host_stays_inside_usable_hosts() {
        let slash30 = net("169.254.21.4/30");
        assert_eq!(nth_host(slash30, 1), Some("169.254.21.5".parse().unwrap()));
        assert_eq!(nth_host(slash30, 2), Some("169.254.21.6".parse().unwrap()));
        assert_eq!(nth_host(slash30, 3), None, "broadcast is not a host");
        assert_eq!(nth_host(slash30, 0), None, "network is not a host");
        assert_eq!(nth_host(net("10.0.0.0/31"), 1), None);
    }

    #[test]
    fn free_subnets_skips_used_blocks_in_order() {
        let vnet = net("10.51.0.0/16");
        let used = [
            net("10.51.0.0/24"),
            net("10.51.1.0/28"),
            net("10.51.255.0/27"),
        ];
        let free = free_subnets(vnet, &used, 28, 2).unwrap();
        assert_eq!(free, vec![net("10.51.1.16/28"), net("10.51.1.32/28")]);
    }

    #[test]
    fn free_subnets_reports_how_many_it_found() {
        let vnet = net("10.0.0.0/27");
        let used = [net("10.0.0.0/28")];
        assert_eq!(
            free_subnets(vnet, &used, 28, 2),
            Err(NoFreeSubnet {
                within: vnet,
                prefix_len: 28,
                wanted: 2,
                found: 1
            })
        );
        // Asking for subnets larger than the network finds none.
        assert_eq!(free_subnets(vnet, &[], 24, 1).unwrap_err().found, 0);
    }
}
