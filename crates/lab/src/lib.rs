//! dxvpn's lab: the clouds' VPN data plane on one Linux machine.
//!
//! This crate owns the emulation of AWS and Azure VPN gateways in network namespaces: real IKEv2
//! with strongSwan (kernel-libipsec, one daemon per tunnel end), real BGP with BIRD, NAT of an
//! Azure instance's public IP, hosts on both sides, route propagation, failures (cut a tunnel, an
//! instance), and the state the daemons report. When the parameters the two clouds hold for a
//! tunnel disagree (key, inside addresses, ASNs), the tunnel or its BGP session stays down, as in
//! the clouds. Everything it creates carries a per-run prefix and is removed on every exit path.
//! It also owns the twins of the clouds' APIs, [`aws_twin`] (EC2 and Route 53 Resolver) and
//! [`azure_twin`] (Resource Manager, network and DNS private resolver), which the real SDK
//! clients talk to over HTTP on loopback, each cloud's DNS ([`resolvers`]: the resolver that
//! applies the endpoints and forwarding rules the twin holds), and [`Lab`], both twins with a
//! binder that keeps the data plane and the resolvers equal to what they hold and reports the
//! real state back to them.
//!
//! The data plane needs root, and the Debian packages `strongswan-charon strongswan-swanctl
//! libcharon-extra-plugins bird2 nftables iproute2 iputils-ping`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dxvpn_lab::LabError> {
//! use dxvpn_lab::{DataPlane, Side, Topology};
//! use dxvpn_tunnel::UseCase;
//!
//! let topology = Topology::for_use_case(UseCase::Development);
//! let vnet_host = topology.azure.host_ip;
//! let plane = DataPlane::build(topology).await?;
//! let status = plane.wait_for(std::time::Duration::from_secs(60), |s| s.all_up()).await;
//! assert!(status.is_ok());
//! assert_eq!(plane.ping(Side::Aws, vnet_host, 3).await, (3, 3));
//! plane.teardown().await;
//! # Ok(()) }
//! ```

pub mod aws_twin;
pub mod azure_twin;
pub mod binding;
mod daemons;
mod dataplane;
mod faults;
pub mod resolvers;
pub mod run;
mod scenario;
mod serve;
mod topology;

use std::path::Path;

pub use binding::{BinderState, Lab};
pub use daemons::{BgpSessionState, SaState, check_swanctl_conf};
pub use dataplane::{
    DataPlane, DataPlaneStatus, PingStream, RouteStatus, Side, TunnelStatus, longest_outage,
};
pub use faults::{ChaosSetting, Fault, FaultKind, Tamper};
pub use scenario::LabScenario;
pub use topology::{
    AwsGateway, AwsTunnelView, AzureGateway, AzureTunnelView, LAB_INTERNET, LabTunnel, Topology,
};

/// What can go wrong in the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A command failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// charon's VICI interface refused a request.
    #[error("strongSwan VICI: {0}")]
    Vici(String),
    /// Something did not happen in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The topology is not usable.
    #[error("topology: {0}")]
    Topology(String),
    /// A twin's scenario cannot be seeded.
    #[error("scenario: {message}")]
    Scenario {
        /// What is wrong with it.
        message: String,
    },
    /// No lab run with that prefix.
    #[error("no lab run `{0}` on this machine (see `dxvpn lab status`)")]
    NoSuchRun(String),
}

impl LabError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        LabError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
