//! What both of dxvpn's cloud twins share: serving HTTP on loopback ([`Server`]), faults and
//! chaos ([`faults`]), the `/_dxvpn` admin routes with their client ([`admin`]), the seed of
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

pub mod admin;
pub mod faults;
pub mod seed;
mod serve;
pub mod views;

pub use serve::Server;

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
