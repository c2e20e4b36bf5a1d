//! dxvpn's conditional DNS forwarder: the cheap cross-cloud DNS path of the development use case.
//!
//! This crate owns the forwarder's configuration ([`ForwarderConfig`]: zones forwarded to the
//! other cloud's resolvers, zones answered locally, a default upstream) and the forwarder itself
//! ([`Forwarder`]), built from hickory-server's catalog and forwarding zone handlers (so caching
//! per TTL, UDP and TCP, and malformed-packet handling are hickory's). `dxvpn dns-forwarder`
//! runs it; it reloads on SIGHUP there.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dxvpn_dns::ForwarderError> {
//! let config = dxvpn_dns::ForwarderConfig::from_toml(
//!     "listen = \"127.0.0.1:5353\"\n[[forward]]\nzone = \"azure.internal\"\ntargets = [\"10.1.0.4\"]\n",
//! )?;
//! let forwarder = dxvpn_dns::Forwarder::start(&config).await?;
//! println!("answering on {}", forwarder.addr);
//! forwarder.stop().await;
//! # Ok(()) }
//! ```

mod ask;
mod config;
mod forwarder;
mod tcp_front;

pub use ask::ask_a;

pub use config::{
    ConfigError, ForwardZone, ForwarderConfig, LocalZone, PRIVATE_RANGES, parse_target,
};
pub use forwarder::{Forwarder, ForwarderError, MAX_IN_FLIGHT, catalog};
/// Response codes, for [`ask_a`]'s answers.
pub use hickory_server::proto::op::ResponseCode;
pub use tcp_front::MAX_TCP;
