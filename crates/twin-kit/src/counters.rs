//! A byte counter the data plane reports, kept the way both clouds publish traffic: as what it
//! grew by, summed per period (AWS/VPN `TunnelDataIn` with statistic `Sum`, Azure's
//! `TunnelIngressBytes` with aggregation `Total`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// What one counter grew by, reading after reading.
#[derive(Debug, Default, Clone)]
pub struct Increments {
    last: u64,
    /// (when, grown by), oldest first; readings less than a second apart share one point.
    points: Vec<(SystemTime, f64)>,
}

impl Increments {
    /// Records the counter's value `now`. A value lower than the last was a reset (a rekeyed
    /// CHILD SA counts from 0 again), so all of it is new.
    pub fn record(&mut self, now: SystemTime, value: u64) {
        let grown = if value >= self.last {
            value - self.last
        } else {
            value
        } as f64;
        self.last = value;
        match self.points.last_mut() {
            Some((at, sum))
                if now
                    .duration_since(*at)
                    .is_ok_and(|d| d < Duration::from_secs(1)) =>
            {
                *sum += grown;
            }
            _ => self.points.push((now, grown)),
        }
    }

    /// The increments published in [start, end), grouped by the period (`period` seconds,
    /// aligned to the epoch) they fall in: period start in epoch seconds -> increments. A period
    /// in which the counter was read has a value even when it did not grow.
    pub fn per_period(
        &self,
        start: SystemTime,
        end: SystemTime,
        period: u64,
    ) -> BTreeMap<u64, Vec<f64>> {
        let step = period.max(1);
        let mut periods: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
        for (at, grown) in self.points.iter().filter(|(t, _)| *t >= start && *t < end) {
            let second = at
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            periods
                .entry(second / step * step)
                .or_default()
                .push(*grown);
        }
        periods
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_and_resets_are_summed_per_period() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(600);
        let mut c = Increments::default();
        c.record(t0, 100);
        c.record(t0 + Duration::from_millis(500), 150); // the same point
        c.record(t0 + Duration::from_secs(61), 400);
        c.record(t0 + Duration::from_secs(62), 30); // reset
        let periods = c.per_period(t0, t0 + Duration::from_secs(120), 60);
        let sums: Vec<(u64, f64)> = periods.iter().map(|(p, v)| (*p, v.iter().sum())).collect();
        assert_eq!(sums, vec![(600, 150.0), (660, 280.0)]);
        assert!(
            c.per_period(
                t0 + Duration::from_secs(200),
                t0 + Duration::from_secs(300),
                60
            )
            .is_empty()
        );
    }
}
