//! The clouds' VPN data plane on one Linux machine, in network namespaces.
//!
//! This crate owns the emulation of AWS and Azure VPN gateways: real IKEv2 with strongSwan
//! (kernel-libipsec, one daemon per tunnel end), real BGP with BIRD, NAT of an Azure instance's
//! public IP, hosts on both sides, route propagation, failures (cut a tunnel, an instance), the
//! state the daemons report ([`DataPlane`]), and each cloud's DNS resolver ([`resolvers`]). It is
//! built from a [`Topology`] that holds each cloud's own view of every tunnel (key, inside
//! addresses, peer ASN): when the two disagree, the tunnel or its BGP session stays down, as in
//! the clouds. Everything it creates carries a per-run prefix and is removed on every exit path
//! ([`run`]). It knows no cloud API: the lab (`dxvpn-lab`) turns what the twins hold into a
//! topology.
//!
//! The data plane needs root, and the Debian packages `strongswan-charon strongswan-swanctl
//! libcharon-extra-plugins bird2 nftables iproute2 iputils-ping`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dxvpn_netlab::NetlabError> {
//! use dxvpn_netlab::{DataPlane, Side, Topology};
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

mod daemons;
mod dataplane;
pub mod private_dir;
pub mod resolvers;
pub mod run;
mod topology;

use std::path::Path;

pub use daemons::{BgpSessionState, SaState, check_swanctl_conf};
pub use dataplane::{
    DataPlane, DataPlaneStatus, InstanceProgram, PingStream, RouteStatus, Side, TunnelStatus,
    host_namespace, longest_outage,
};
pub use topology::{
    AwsGateway, AwsTunnelView, AzureGateway, AzureTunnelView, LAB_INTERNET, LabTunnel, Topology,
};

/// What can go wrong in the data plane.
#[derive(Debug, thiserror::Error)]
pub enum NetlabError {
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
    /// A lab folder that another user could have prepared.
    #[error(
        "the lab folder {path} is not safe to use: {why}\n  fix: remove it (rm -rf {path}) and run again; the lab makes it anew, root's alone (0700)"
    )]
    UnsafeDir {
        /// The folder.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// No lab run with that prefix.
    #[error("no lab run `{0}` on this machine (see `dxvpn lab status`)")]
    NoSuchRun(String),
}

impl NetlabError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        NetlabError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
