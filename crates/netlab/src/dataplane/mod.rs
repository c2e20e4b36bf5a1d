//! Builds a [`Topology`] in network namespaces and reports its real state.
//!
//! Layout (lab-notes.md): an `inet` namespace routes between public addresses; every tunnel end
//! is its own namespace with its own charon acting as a wire (policy routing sends whatever comes
//! from the router into `ipsec0` and whatever comes out of `ipsec0` to the router), because one
//! libipsec daemon picks SAs by policy and would ignore BGP. Routers run BIRD over the inside
//! addresses: `aws-vgw` for the AWS gateway, `az-gw<i>` per Azure instance, and `az-vnet`, the
//! VNet's fabric, which learns from the instances over iBGP so that a dead instance is withdrawn.
//! An Azure instance has one public IP for all its tunnels: its endpoint namespaces have private
//! addresses and `inet` maps the public IP to them (DNAT per AWS source, SNAT back).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use dxvpn_cidr::inside::{aws_inside_ip, azure_inside_ip};
use dxvpn_cidr::{Ipv4Net, nth_host};
use dxvpn_tunnel::policy::IpsecPolicy;
use dxvpn_tunnel::render::{
    BgpRouter, BgpSession, IpsecConnection, bird_conf, swanctl_connections,
};
use serde::Serialize;
use tokio::io::AsyncBufReadExt;

mod build;
mod cuts;
mod instances;
mod status;
mod traffic;
mod update;

use build::{add_bgp_address, first_host, inet_link, ip, remove_bgp_address, router_link};

use crate::NetlabError;
use crate::daemons::{BgpSessionState, Bird, Charon, SaState};
use crate::run::{LabRun, run, run_with_input};
use crate::topology::{LabTunnel, Topology, TopologyRecord};
pub use instances::InstanceProgram;
pub use status::{DataPlaneStatus, RouteStatus, TunnelStatus};
pub use traffic::{PingStream, longest_outage};

/// AWS's BGP timers (hold 30 s, keepalive 10 s); failover time follows the hold time.
const AWS_HOLD_TIME: u16 = 30;
const AWS_KEEPALIVE: u16 = 10;

/// Which cloud's host or router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The VPC.
    Aws,
    /// The VNet.
    Azure,
}

/// A built data plane. Dropping it tears everything down.
#[derive(Debug)]
pub struct DataPlane {
    run: LabRun,
    topology: Topology,
    charons: BTreeMap<String, Charon>,
    birds: BTreeMap<String, Bird>,
    children: Vec<Child>,
    /// Each tunnel's wiring slot, fixed at build (a tunnel that leaves keeps its slot).
    slots: BTreeMap<String, usize>,
    /// The tunnels as built, whose ends stay wired while the topology leaves them out.
    built: Vec<LabTunnel>,
    aws_router_id: Ipv4Addr,
    /// Instances in the networks (`instances.rs`), by name.
    instances: BTreeMap<String, instances::LabInstance>,
    next_instance_slot: usize,
}

impl DataPlane {
    /// Builds the data plane of `topology` under a fresh run prefix. On error everything built
    /// so far is removed.
    pub async fn build(topology: Topology) -> Result<Self, NetlabError> {
        let run = LabRun::create().await?;
        let record = serde_json::to_string_pretty(&TopologyRecord::of(&topology))
            .map_err(|e| NetlabError::Topology(e.to_string()))?;
        let path = run.dir().join("topology.json");
        crate::private_dir::write_private(&path, record)?;
        let mut plane = DataPlane {
            run,
            built: topology.tunnels.clone(),
            topology,
            charons: BTreeMap::new(),
            birds: BTreeMap::new(),
            children: Vec::new(),
            slots: BTreeMap::new(),
            aws_router_id: Ipv4Addr::UNSPECIFIED,
            instances: BTreeMap::new(),
            next_instance_slot: 0,
        };
        plane.build_all().await?;
        Ok(plane)
    }

    /// Reattaches to a running lab (started by `dxvpn lab up`) to read its state or stop it.
    pub fn attach(prefix: &str) -> Result<Self, NetlabError> {
        let run = LabRun::open(prefix)?;
        let path = run.dir().join("topology.json");
        let text = std::fs::read_to_string(&path).map_err(|e| NetlabError::io(&path, e))?;
        let record: TopologyRecord = serde_json::from_str(&text)
            .map_err(|e| NetlabError::Topology(format!("{}: {e}", path.display())))?;
        let topology = record.into_topology();
        let mut charons = BTreeMap::new();
        for t in &topology.tunnels {
            for side in ["aws", "az"] {
                let role = format!("{side}-{}", t.key);
                charons.insert(
                    run.ns(&role),
                    Charon {
                        vici: run.dir().join(&role).join("charon.vici"),
                    },
                );
            }
        }
        let mut birds = BTreeMap::new();
        let routers = ["aws-vgw".to_owned(), "az-vnet".to_owned()]
            .into_iter()
            .chain((0..topology.azure_instances()).map(|i| format!("az-gw{i}")));
        for role in routers {
            birds.insert(
                run.ns(&role),
                Bird {
                    socket: run.dir().join(&role).join("bird.ctl"),
                },
            );
        }
        let slots = topology
            .tunnels
            .iter()
            .enumerate()
            .map(|(j, t)| (t.key.clone(), j))
            .collect();
        Ok(DataPlane {
            run,
            built: topology.tunnels.clone(),
            topology,
            charons,
            birds,
            children: Vec::new(),
            slots,
            aws_router_id: Ipv4Addr::UNSPECIFIED,
            instances: BTreeMap::new(),
            next_instance_slot: 0,
        })
    }

    /// The run (prefix, directory).
    pub fn run(&self) -> &LabRun {
        &self.run
    }

    /// The topology that was built.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Keeps the data plane running after this handle is dropped.
    pub fn detach(mut self) -> Result<String, NetlabError> {
        self.run.detach()?;
        Ok(self.run.prefix().to_owned())
    }

    /// Stops every daemon and removes every namespace of the run.
    pub async fn teardown(self) {
        let DataPlane {
            run, mut children, ..
        } = self;
        run.teardown().await;
        for child in &mut children {
            let _ = child.try_wait();
        }
    }

    /// Turns AWS route propagation on or off for the VPC host's route table: with it, the host
    /// routes the VNet to the gateway; without it, the host has no route to the VNet.
    pub async fn set_route_propagation(&mut self, on: bool) -> Result<(), NetlabError> {
        let host = self.run.ns("aws-host");
        let via = first_host(self.topology.aws.host_subnet).to_string();
        let prefix = self.topology.azure.vnet_cidr.to_string();
        if on {
            ip(&host, &["route", "replace", &prefix, "via", &via]).await?;
        } else {
            let _ = ip(&host, &["route", "del", &prefix]).await;
        }
        self.topology.aws.route_propagation = on;
        Ok(())
    }

    /// Loads `script` (an nftables script defining the table `ip {table}`) in `side`'s host
    /// namespace in place of that table, or only removes the table: how a cloud's packet
    /// filters on the host's interface are enforced. The swap is one transaction.
    pub async fn set_host_firewall(
        &self,
        side: Side,
        table: &str,
        script: Option<&str>,
    ) -> Result<(), NetlabError> {
        let host = self.run.ns(host_role(side));
        // Declaring the table first makes the delete succeed when it does not exist yet.
        let text = format!(
            "table ip {table} {{}}\ndelete table ip {table}\n{}",
            script.unwrap_or_default()
        );
        run_with_input(
            &["ip", "netns", "exec", &host, "nft", "-f", "-"],
            Some(&text),
        )
        .await
        .map(drop)
    }
}

fn host_role(side: Side) -> &'static str {
    match side {
        Side::Aws => "aws-host",
        Side::Azure => "az-host",
    }
}

/// The namespace of `side`'s host in the run `prefix`, where probes run "from that cloud".
pub fn host_namespace(prefix: &str, side: Side) -> String {
    format!("{prefix}-{}", host_role(side))
}

#[cfg(test)]
mod tests {
    use super::traffic::parse_ping_summary;
    use super::*;

    #[test]
    fn ping_summary_and_outage() {
        assert_eq!(
            parse_ping_summary(
                "\n--- 10.51.1.10 ping statistics ---\n5 packets transmitted, 4 received, 20% packet loss, time 801ms\n"
            ),
            Some((5, 4))
        );
        assert_eq!(parse_ping_summary("nothing"), None);
        let replies = [0.0, 0.1, 0.2, 7.5, 7.6];
        assert!((longest_outage(&replies, 0.1) - 7.2).abs() < 1e-9);
    }

    #[test]
    fn transit_links_do_not_overlap() {
        assert_eq!(
            inet_link(0),
            (Ipv4Addr::new(100, 100, 0, 1), Ipv4Addr::new(100, 100, 0, 2))
        );
        assert_eq!(
            inet_link(1),
            (Ipv4Addr::new(100, 100, 0, 5), Ipv4Addr::new(100, 100, 0, 6))
        );
    }
}
