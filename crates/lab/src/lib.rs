//! dxvpn's lab: both clouds' API twins bound to a data plane of real daemons, on one machine.
//!
//! This crate owns the binder ([`Lab`]): it starts the AWS twin (`dxvpn-twin-aws`) and the Azure
//! twin (`dxvpn-twin-azure`), polls the views they publish, builds the data plane
//! (`dxvpn-netlab`) that both clouds' tunnels describe ([`pairing`]), keeps each cloud's
//! resolver applying the DNS resources its twin holds, and writes the daemons' real state back
//! as the twins' telemetry. It also owns what the twins are seeded with ([`LabScenario`]), the
//! dxvpn config that points a deployment at the lab ([`config`]), and the lab as a background
//! service with the records by which it is found again ([`service`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), dxvpn_lab::LabError> {
//! use dxvpn_lab::Lab;
//!
//! // Both twins on free loopback ports, durations as in the clouds / 100.
//! let lab = Lab::start_on_loopback(0.01).await?;
//! std::fs::write("lab.toml", lab.config("demo", "development")).ok();
//! // `dxvpn up -c lab.toml` now builds real tunnels; the binder follows the twins.
//! lab.stop().await;
//! # Ok(()) }
//! ```

mod binder;
pub mod cloud_init;
pub mod config;
pub mod host_filter;
pub mod pairing;
mod scenario;
pub mod service;

pub use binder::{BinderState, Lab};
pub use scenario::LabScenario;

/// What can go wrong in the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A twin did not start.
    #[error(transparent)]
    Twin(#[from] dxvpn_twin_kit::TwinError),
    /// The data plane failed.
    #[error(transparent)]
    Netlab(#[from] dxvpn_netlab::NetlabError),
    /// The background service failed.
    #[error(transparent)]
    Service(#[from] service::ServiceError),
}
