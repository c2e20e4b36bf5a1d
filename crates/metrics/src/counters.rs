//! Byte counters from the clouds' per-period sums. CloudWatch and Azure Monitor answer "bytes
//! in each minute", and a minute still filling grows from reading to reading; Prometheus wants
//! a counter that only grows. Each period is counted once, at the largest sum it was read
//! with, and a period an hour older than the reading window is settled (it can no longer be
//! read, so it can no longer change). Pure: no I/O, no clock.

use std::collections::BTreeMap;

/// How far behind the window a period stays open: more than any time grain dxvpn asks for
/// (Azure may answer coarser grains than asked, up to an hour).
const SETTLE_AFTER_SECONDS: u64 = 3600;

/// One series' periods: those settled as one sum, the rest by start.
#[derive(Debug, Default, Clone)]
struct Periods {
    settled: f64,
    open: BTreeMap<u64, f64>,
}

/// Counters by series key (for the exporter: tunnel, cloud, direction and its labels).
#[derive(Debug, Default)]
pub struct ByteCounters<K: Ord> {
    series: BTreeMap<K, Periods>,
}

impl<K: Ord + Clone> ByteCounters<K> {
    /// An empty set of counters.
    pub fn new() -> Self {
        ByteCounters {
            series: BTreeMap::new(),
        }
    }

    /// Folds one reading of `key`'s period sums ((period start in epoch seconds, bytes)) into
    /// its counter, read over a window that began at `since` (epoch seconds), and answers the
    /// counter.
    pub fn fold(&mut self, key: &K, sums: &[(u64, f64)], since: u64) -> f64 {
        let periods = self.series.entry(key.clone()).or_default();
        for (start, sum) in sums {
            if !sum.is_finite() || *sum < 0.0 {
                continue;
            }
            let seen = periods.open.entry(*start).or_insert(0.0);
            *seen = seen.max(*sum);
        }
        let settle_before = since.saturating_sub(SETTLE_AFTER_SECONDS);
        let keep = periods.open.split_off(&settle_before);
        periods.settled += periods.open.values().sum::<f64>();
        periods.open = keep;
        periods.settled + periods.open.values().sum::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filling_period_counts_once_at_its_largest_and_the_counter_never_falls() {
        let mut c = ByteCounters::new();
        let k = "c1t1";
        let since = 10_000;
        assert_eq!(c.fold(&k, &[(10_020, 100.0)], since), 100.0);
        // The same minute read again, fuller: counted once, at its new sum.
        assert_eq!(c.fold(&k, &[(10_020, 250.0)], since), 250.0);
        // A later reading whose window no longer starts early enough to hold the minute
        // whole shows less of it: the counter keeps what it had.
        assert_eq!(
            c.fold(&k, &[(10_020, 50.0), (10_080, 10.0)], since + 30),
            260.0
        );
        // Hours later the old minutes are settled, not lost, and not counted again.
        let later = 10_020 + 2 * SETTLE_AFTER_SECONDS;
        assert_eq!(c.fold(&k, &[(later, 5.0)], later), 265.0);
        assert_eq!(c.fold(&k, &[(later, 5.0)], later + 60), 265.0);
        // Another series counts apart; nonsense sums count nothing.
        assert_eq!(
            c.fold(&"c1t2", &[(10_020, f64::NAN), (10_080, -3.0)], since),
            0.0
        );
    }
}
