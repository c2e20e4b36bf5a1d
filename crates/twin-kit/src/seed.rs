//! The seed of a twin's unkind choices: what a cloud does not document is chosen at random, and
//! the seed makes a run replayable.
//!
//! Where a cloud does not promise an order (a VPN connection's tunnels, Describe and List
//! results) or a value (which outside address a tunnel gets), a twin chooses one from its seed,
//! so that a client which relies on the kind choice fails in the lab as it would in the cloud.
//! `DXVPN_TWIN_SEED=N` replays a run; otherwise every twin draws its own seed and logs it.

use std::hash::{DefaultHasher, Hash, Hasher};

/// The variable that fixes every twin's seed.
pub const SEED_VARIABLE: &str = "DXVPN_TWIN_SEED";

/// `DXVPN_TWIN_SEED` when it holds a number, else a fresh random seed.
pub fn twin_seed() -> u64 {
    std::env::var(SEED_VARIABLE)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(rand::random)
}

/// A pseudo-random rank of `key` under `seed`, the same for the same pair within one build:
/// sorting by it gives a seeded random order that does not change between two reads.
pub fn rank(seed: u64, key: impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    (seed, key).hash(&mut hasher);
    hasher.finish()
}

/// Puts `items` in the seeded random order of their keys.
pub fn seeded_order<T, K: Hash>(seed: u64, items: &mut [T], key: impl Fn(&T) -> K) {
    items.sort_by_cached_key(|item| rank(seed, key(item)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_is_stable_for_a_seed_and_differs_between_seeds() {
        let ordered = |seed| {
            let mut items: Vec<u32> = (0..16).collect();
            seeded_order(seed, &mut items, |i| *i);
            items
        };
        assert_eq!(ordered(7), ordered(7));
        assert_ne!(ordered(7), ordered(8));
        let mut sorted = ordered(7);
        sorted.sort_unstable();
        assert_eq!(sorted, (0..16).collect::<Vec<_>>());
    }
}
