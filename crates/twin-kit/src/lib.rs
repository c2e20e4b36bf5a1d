//! What both of dxvpn's cloud twins share: serving HTTP on loopback ([`Server`]), faults and
//! chaos ([`faults`]), latencies and throttling ([`pace`]), byte counters kept as per-period increments ([`counters`]), the `/_dxvpn` admin routes with their client ([`admin`]), the seed of
//! the choices a cloud does not document ([`seed`]), and the views each twin publishes of its
//! state for the lab ([`views`]).
//!
//! A twin is an HTTP server that speaks one cloud's API to that cloud's real SDK. This crate
//! knows no cloud: the AWS twin (`dxvpn-twin-aws`) and the Azure twin (`dxvpn-twin-azure`) build
//! on it, and the lab's binder reads the views.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use dxvpn_twin_kit::admin::AdminClient;
//! use dxvpn_twin_kit::faults::ChaosSetting;
//!
//! // One call in five to the twin at this endpoint now fails transiently, replayably.
//! let twin = AdminClient::new("http://127.0.0.1:4566");
//! let injected_before = twin.set_chaos(ChaosSetting { rate: 0.2, seed: 7 }).await?;
//! let inventory = twin.inventory().await?;
//! println!("{injected_before} faults so far; calls: {}", inventory["calls"]);
//! # Ok(()) }
//! ```

use std::time::Duration;

pub mod admin;
pub mod counters;
pub mod faults;
pub mod pace;
pub mod seed;
mod serve;
pub mod views;

pub use serve::Server;

/// The largest time factor a twin takes: 100 times slower than the cloud is already more than
/// any test wants, and a factor past it only overflows durations.
pub const TIME_FACTOR_MAX: f64 = 100.0;

/// Whether `factor` is one a twin takes: finite, 0 to [`TIME_FACTOR_MAX`].
pub fn time_factor_ok(factor: f64) -> bool {
    (0.0..=TIME_FACTOR_MAX).contains(&factor)
}

/// The longest scaled duration: a century, so that `Instant::now() + scaled` cannot overflow.
const SCALED_MAX: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `real` times `factor`, saturating at [`SCALED_MAX`] (or zero) instead of panicking where
/// `Duration::mul_f64` would (a negative, infinite, NaN or huge factor).
pub fn scale(real: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(real.as_secs_f64() * factor).map_or(
        if factor > 0.0 {
            SCALED_MAX
        } else {
            Duration::ZERO
        },
        |d| d.min(SCALED_MAX),
    )
}

/// What can go wrong starting a twin.
#[derive(Debug, thiserror::Error)]
pub enum TwinError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The twin's scenario cannot be seeded.
    #[error("scenario: {message}")]
    Scenario {
        /// What is wrong with it.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_saturates_where_mul_f64_panics() {
        let minute = Duration::from_secs(60);
        assert_eq!(scale(minute, 0.5), Duration::from_secs(30));
        assert_eq!(scale(minute, 1e300), SCALED_MAX);
        assert!(
            std::time::Instant::now()
                .checked_add(scale(minute, 1e300))
                .is_some()
        );
        assert_eq!(scale(minute, f64::NAN), Duration::ZERO);
        assert_eq!(scale(minute, -1.0), Duration::ZERO);
        assert!(time_factor_ok(0.001) && time_factor_ok(0.0) && time_factor_ok(1.0));
        assert!(!time_factor_ok(1e300) && !time_factor_ok(f64::NAN) && !time_factor_ok(-0.1));
    }
}
