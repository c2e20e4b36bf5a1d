//! Property tests for the allocator invariants: whatever is already taken, allocated networks
//! are valid for both clouds, disjoint from each other and from what was taken, and minimal.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use dxvpn_cidr::inside::{APIPA_BLOCKS, allocate_tunnel_inside_cidrs, check_inside_cidr};
use dxvpn_cidr::{Ipv4Net, free_subnets, overlaps};
use proptest::prelude::*;
use std::net::Ipv4Addr;

fn any_net(min_prefix: u8, max_prefix: u8) -> impl Strategy<Value = Ipv4Net> {
    (any::<u32>(), min_prefix..=max_prefix)
        .prop_map(|(addr, len)| Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap().trunc())
}

/// Networks somewhere in or around the APIPA range, so that some of them collide.
fn apipa_net() -> impl Strategy<Value = Ipv4Net> {
    (20u8..=23, any::<u8>(), 24u8..=32).prop_map(|(third, fourth, len)| {
        Ipv4Net::new(Ipv4Addr::new(169, 254, third, fourth), len)
            .unwrap()
            .trunc()
    })
}

proptest! {
    #[test]
    fn inside_cidrs_are_valid_disjoint_and_avoid_taken(
        connections in 1usize..=4,
        taken in proptest::collection::vec(apipa_net(), 0..12),
    ) {
        let Ok(cidrs) = allocate_tunnel_inside_cidrs(connections, &taken) else {
            // Exhaustion is allowed only when a block really has no free /30 left.
            let blocked = APIPA_BLOCKS.iter().any(|b| {
                b.subnets(30).unwrap().filter(|c| !taken.iter().any(|t| overlaps(*t, *c))).count() < connections
            });
            prop_assert!(blocked);
            return Ok(());
        };
        prop_assert_eq!(cidrs.len(), connections * 2);
        for (i, cidr) in cidrs.iter().enumerate() {
            prop_assert!(check_inside_cidr(*cidr).is_ok());
            prop_assert!(APIPA_BLOCKS[i % 2].contains(cidr), "tunnel t of each connection uses block t");
            prop_assert!(!taken.iter().any(|t| overlaps(*t, *cidr)));
            for other in &cidrs[i + 1..] {
                prop_assert!(!overlaps(*cidr, *other));
            }
        }
    }

    #[test]
    fn free_subnets_are_inside_aligned_disjoint_and_first(
        within in any_net(8, 24),
        used in proptest::collection::vec(any_net(8, 30), 0..8),
        prefix_len in 24u8..=29,
        count in 1usize..=3,
    ) {
        prop_assume!(prefix_len >= within.prefix_len());
        // Place the used networks inside `within` so that they matter.
        let used: Vec<Ipv4Net> = used
            .into_iter()
            .filter_map(|u| {
                let len = u.prefix_len().max(within.prefix_len());
                let offset = u32::from(u.network()) & !u32::from(within.netmask());
                Ipv4Net::new(Ipv4Addr::from(u32::from(within.network()) | offset), len).ok().map(|n| n.trunc())
            })
            .collect();
        match free_subnets(within, &used, prefix_len, count) {
            Ok(found) => {
                prop_assert_eq!(found.len(), count);
                for (i, subnet) in found.iter().enumerate() {
                    prop_assert_eq!(subnet.prefix_len(), prefix_len);
                    prop_assert!(within.contains(subnet));
                    prop_assert!(!used.iter().any(|u| overlaps(*u, *subnet)));
                    for other in &found[i + 1..] {
                        prop_assert!(!overlaps(*subnet, *other));
                    }
                }
                // Minimal: every candidate below the first result is blocked by a used network.
                let first = found[0];
                for candidate in within.subnets(prefix_len).unwrap().take_while(|c| *c != first).take(4096) {
                    prop_assert!(used.iter().any(|u| overlaps(*u, candidate)));
                }
            }
            Err(e) => {
                let free = within
                    .subnets(prefix_len)
                    .unwrap()
                    .filter(|c| !used.iter().any(|u| overlaps(*u, *c)))
                    .take(count)
                    .count();
                prop_assert_eq!(e.found, free);
                prop_assert!(free < count);
            }
        }
    }
}
