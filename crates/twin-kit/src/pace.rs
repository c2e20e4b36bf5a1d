//! How fast a twin answers: every call takes a time drawn for its kind (the latency model), and
//! token buckets refuse calls that come faster than the cloud allows (throttling). Both are off
//! until set (`POST /_dxvpn/pace`, `dxvpn lab up --realistic`), so the tests that do not ask for
//! them run at loopback speed.
//!
//! Neither cloud publishes how long an API call takes. The ranges the twins draw from are this
//! project's assumption for a client in the same region (a read 100-400 ms, a write longer),
//! stated where each twin names its ranges; the buckets are the clouds' documented ones.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One token bucket's size: `capacity` calls at once, then `refill_per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BucketSize {
    /// Tokens when full: the burst.
    pub capacity: f64,
    /// Tokens added each second.
    pub refill_per_second: f64,
}

/// The range one kind of call's time is drawn from, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// The fastest answer.
    pub low_ms: u64,
    /// The slowest answer.
    pub high_ms: u64,
}

/// What `POST /_dxvpn/pace` sets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct PaceSetting {
    /// Multiplies the modelled latencies: 1 = as slow as the clouds, 0 = instant.
    #[serde(default)]
    pub latency: f64,
    /// Throttle with the cloud's documented buckets.
    #[serde(default)]
    pub throttle: bool,
    /// With `throttle`: this size for every bucket instead (a test's tight bucket).
    #[serde(default)]
    pub bucket: Option<BucketSize>,
    /// Seed of the drawn latencies.
    #[serde(default)]
    pub seed: u64,
}

impl PaceSetting {
    /// The clouds' pace: real latencies and the documented buckets.
    pub fn realistic() -> Self {
        PaceSetting {
            latency: 1.0,
            throttle: true,
            bucket: None,
            seed: 1,
        }
    }

    /// Whether the setting can be applied: a latency factor from 0 to 100 and, if given, a
    /// bucket that holds at least one call and refills.
    pub fn check(&self) -> Result<(), String> {
        if !crate::time_factor_ok(self.latency) {
            return Err("latency: must be between 0 and 100".into());
        }
        if let Some(b) = self.bucket
            && !(b.capacity >= 1.0
                && b.capacity.is_finite()
                && b.refill_per_second > 0.0
                && b.refill_per_second.is_finite())
        {
            return Err("bucket: capacity must be at least 1 and refill_per_second above 0".into());
        }
        Ok(())
    }
}

/// What a call is admitted with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    /// Answer after this long.
    After(Duration),
    /// Refused: the bucket is empty; a token is back after `retry_after`.
    Throttled {
        /// Until the bucket holds a token again.
        retry_after: Duration,
    },
}

impl Admission {
    /// Waits out an admitted call's time; a throttled call answers at once with its wait.
    pub async fn wait(self) -> Result<(), Duration> {
        match self {
            Admission::After(wait) => {
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                Ok(())
            }
            Admission::Throttled { retry_after } => Err(retry_after),
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The pace of one twin: its setting, its buckets, and the calls it throttled.
#[derive(Debug, Default)]
pub struct Pace {
    setting: PaceSetting,
    buckets: BTreeMap<String, Bucket>,
    state: u64,
    /// Calls refused, per bucket.
    pub throttled: BTreeMap<String, u32>,
}

impl Pace {
    /// Applies `setting` from now on, with full buckets.
    pub fn set(&mut self, setting: PaceSetting) {
        self.setting = setting;
        self.buckets.clear();
        // xorshift's state must not be zero.
        self.state = setting.seed | 1;
    }

    /// The setting in force.
    pub fn setting(&self) -> PaceSetting {
        self.setting
    }

    /// Admits one call of `bucket` (sized `size` unless the setting overrides it) that takes a
    /// time drawn from `latency`. Without throttling, every call is admitted.
    pub fn admit(
        &mut self,
        bucket: &str,
        size: BucketSize,
        latency: Latency,
        now: Instant,
    ) -> Admission {
        if self.setting.throttle {
            let size = self.setting.bucket.unwrap_or(size);
            let b = self.buckets.entry(bucket.to_owned()).or_insert(Bucket {
                tokens: size.capacity,
                at: now,
            });
            let grown = now.saturating_duration_since(b.at).as_secs_f64() * size.refill_per_second;
            b.tokens = (b.tokens + grown).min(size.capacity);
            b.at = now;
            if b.tokens < 1.0 {
                *self.throttled.entry(bucket.to_owned()).or_default() += 1;
                let wait = (1.0 - b.tokens) / size.refill_per_second;
                return Admission::Throttled {
                    retry_after: Duration::try_from_secs_f64(wait).unwrap_or(Duration::ZERO),
                };
            }
            b.tokens -= 1.0;
        }
        Admission::After(self.draw(latency))
    }

    /// How long a call of a service the twin does not throttle takes: a time from `latency`.
    pub fn delay(&mut self, latency: Latency) -> Duration {
        self.draw(latency)
    }

    /// A time from `latency`, scaled: the mean of two uniform draws, so that answers cluster
    /// in the middle of the range and the extremes are rare.
    fn draw(&mut self, latency: Latency) -> Duration {
        if self.setting.latency <= 0.0 {
            return Duration::ZERO;
        }
        let u = (self.next() + self.next()) / 2.0;
        let span = latency.high_ms.saturating_sub(latency.low_ms) as f64;
        let ms = latency.low_ms as f64 + span * u;
        crate::scale(Duration::from_secs_f64(ms / 1000.0), self.setting.latency)
    }

    /// xorshift64*: uniform in [0, 1).
    fn next(&mut self) -> f64 {
        if self.state == 0 {
            self.state = 1;
        }
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: BucketSize = BucketSize {
        capacity: 3.0,
        refill_per_second: 2.0,
    };
    const READ: Latency = Latency {
        low_ms: 100,
        high_ms: 400,
    };

    #[test]
    fn off_by_default_then_latencies_stay_in_range() {
        let mut pace = Pace::default();
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(
                pace.admit("DescribeVpnGateways", SIZE, READ, now),
                Admission::After(Duration::ZERO)
            );
        }
        pace.set(PaceSetting {
            latency: 1.0,
            ..PaceSetting::default()
        });
        let drawn: Vec<Duration> = (0..200)
            .map(|_| match pace.admit("x", SIZE, READ, now) {
                Admission::After(d) => d,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(drawn.iter().all(|d| (100..=400).contains(&d.as_millis())));
        let mean = drawn.iter().sum::<Duration>() / 200;
        assert!((200..300).contains(&mean.as_millis()), "{mean:?}");
    }

    #[test]
    fn an_empty_bucket_throttles_until_it_refills() {
        let mut pace = Pace::default();
        pace.set(PaceSetting {
            throttle: true,
            ..PaceSetting::default()
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(matches!(
                pace.admit("a", SIZE, READ, t0),
                Admission::After(_)
            ));
        }
        let Admission::Throttled { retry_after } = pace.admit("a", SIZE, READ, t0) else {
            panic!("a fourth call at once must be throttled");
        };
        assert_eq!(retry_after, Duration::from_millis(500));
        // Another bucket is not touched.
        assert!(matches!(
            pace.admit("b", SIZE, READ, t0),
            Admission::After(_)
        ));
        // Half a second later one token is back, and only one.
        let later = t0 + Duration::from_millis(500);
        assert!(matches!(
            pace.admit("a", SIZE, READ, later),
            Admission::After(_)
        ));
        assert!(matches!(
            pace.admit("a", SIZE, READ, later),
            Admission::Throttled { .. }
        ));
        assert_eq!(pace.throttled.get("a"), Some(&2));
    }

    #[test]
    fn a_bad_setting_is_refused() {
        let tight = |capacity, refill_per_second| PaceSetting {
            throttle: true,
            bucket: Some(BucketSize {
                capacity,
                refill_per_second,
            }),
            ..PaceSetting::default()
        };
        assert!(tight(1.0, 0.5).check().is_ok());
        assert!(tight(0.5, 1.0).check().is_err());
        assert!(tight(2.0, 0.0).check().is_err());
        assert!(tight(f64::NAN, 1.0).check().is_err());
        let slow = PaceSetting {
            latency: -1.0,
            ..PaceSetting::default()
        };
        assert!(slow.check().is_err());
        assert!(PaceSetting::realistic().check().is_ok());
    }
}
