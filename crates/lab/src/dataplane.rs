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

use crate::LabError;
use crate::daemons::{BgpSessionState, Bird, Charon, SaState};
use crate::run::{LabRun, run, run_with_input};
use crate::topology::{Topology, TopologyRecord};

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
}

/// The /30 number `n` of a transit range: (first host, second host).
fn transit(base: [u8; 2], n: usize) -> (Ipv4Addr, Ipv4Addr) {
    let net = u32::from(Ipv4Addr::new(base[0], base[1], 0, 0)) + 4 * n as u32;
    (Ipv4Addr::from(net + 1), Ipv4Addr::from(net + 2))
}

/// Links from `inet` to tunnel ends.
fn inet_link(n: usize) -> (Ipv4Addr, Ipv4Addr) {
    transit([100, 100], n)
}
/// Links from routers to tunnel ends.
fn router_link(n: usize) -> (Ipv4Addr, Ipv4Addr) {
    transit([100, 127], n)
}
/// Links from Azure instances to the VNet fabric.
fn fabric_link(i: usize) -> (Ipv4Addr, Ipv4Addr) {
    transit([100, 126], i)
}

async fn ip(ns: &str, args: &[&str]) -> Result<String, LabError> {
    let mut full = vec!["ip", "-n", ns];
    full.extend_from_slice(args);
    run(&full).await
}

/// A veth between two namespaces with an address on each end: (namespace, interface, address,
/// prefix length).
async fn wire(
    lab: &LabRun,
    a: (&str, &str, Ipv4Addr, u8),
    b: (&str, &str, Ipv4Addr, u8),
) -> Result<(), LabError> {
    lab.link(a.0, a.1, b.0, b.1).await?;
    for (ns, interface, addr, len) in [a, b] {
        ip(
            ns,
            &["addr", "add", &format!("{addr}/{len}"), "dev", interface],
        )
        .await?;
    }
    Ok(())
}

/// A router namespace and a host namespace on `subnet` behind it (router on the first host).
async fn router_and_host(
    lab: &LabRun,
    router: &str,
    host: &str,
    subnet: Ipv4Net,
    host_ip: Ipv4Addr,
) -> Result<(String, String), LabError> {
    let router_ns = lab.add_namespace(router).await?;
    let host_ns = lab.add_namespace(host).await?;
    let len = subnet.prefix_len();
    wire(
        lab,
        (&router_ns, "host", first_host(subnet), len),
        (&host_ns, "eth0", host_ip, len),
    )
    .await?;
    Ok((router_ns, host_ns))
}

fn first_host(subnet: Ipv4Net) -> Ipv4Addr {
    nth_host(subnet, 1).unwrap_or(subnet.network())
}

/// An iBGP session between an Azure instance and the VNet fabric (directly connected).
fn ibgp(name: &str, local_ip: Ipv4Addr, peer_ip: Ipv4Addr, asn: u32) -> BgpSession {
    BgpSession {
        name: name.to_owned(),
        local_ip,
        peer_ip,
        peer_asn: asn,
        via: None,
        passive: false,
    }
}

/// The namespaces and addresses of one tunnel's two ends.
struct TunnelEnds {
    tunnel: crate::topology::LabTunnel,
    aws_ns: String,
    /// The AWS gateway's side of its link to the AWS end.
    vgw_ip: Ipv4Addr,
    /// The AWS end's side of that link.
    aws_ep_ip: Ipv4Addr,
    az_ns: String,
    /// The Azure instance's side of its link to the Azure end.
    gw_ip: Ipv4Addr,
    /// The Azure end's side of that link.
    az_ep_ip: Ipv4Addr,
    /// The Azure end's outside address, behind the instance's public IP.
    az_private: Ipv4Addr,
    pip: Ipv4Addr,
}

impl DataPlane {
    /// Builds the data plane of `topology` under a fresh run prefix. On error everything built
    /// so far is removed.
    pub async fn build(topology: Topology) -> Result<Self, LabError> {
        let run = LabRun::create().await?;
        let record = serde_json::to_string_pretty(&TopologyRecord::of(&topology))
            .map_err(|e| LabError::Topology(e.to_string()))?;
        let path = run.dir().join("topology.json");
        std::fs::write(&path, record).map_err(|e| LabError::io(&path, e))?;
        let mut plane = DataPlane {
            run,
            topology,
            charons: BTreeMap::new(),
            birds: BTreeMap::new(),
            children: Vec::new(),
        };
        plane.build_all().await?;
        Ok(plane)
    }

    /// Reattaches to a running lab (started by `dxvpn lab up`) to read its state or stop it.
    pub fn attach(prefix: &str) -> Result<Self, LabError> {
        let run = LabRun::open(prefix)?;
        let path = run.dir().join("topology.json");
        let text = std::fs::read_to_string(&path).map_err(|e| LabError::io(&path, e))?;
        let record: TopologyRecord = serde_json::from_str(&text)
            .map_err(|e| LabError::Topology(format!("{}: {e}", path.display())))?;
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
        Ok(DataPlane {
            run,
            topology,
            charons,
            birds,
            children: Vec::new(),
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
    pub fn detach(mut self) -> Result<String, LabError> {
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

    async fn build_all(&mut self) -> Result<(), LabError> {
        let t = self.topology.clone();
        let lab = &self.run;
        let inet = lab.add_namespace("inet").await?;
        run_with_input(
            &["ip", "netns", "exec", &inet, "nft", "-f", "-"],
            Some("table ip dxlab {\n  chain cut { type filter hook prerouting priority -300; policy accept; }\n  chain to_instances { type nat hook prerouting priority -100; policy accept; }\n  chain from_instances { type nat hook postrouting priority 100; policy accept; }\n}\n"),
        )
        .await?;

        // Gateways' routers and the hosts behind them.
        let (vgw, _) =
            router_and_host(lab, "aws-vgw", "aws-host", t.aws.host_subnet, t.aws.host_ip).await?;
        let (fabric, az_host) = router_and_host(
            lab,
            "az-vnet",
            "az-host",
            t.azure.host_subnet,
            t.azure.host_ip,
        )
        .await?;
        let az_gw_ip = first_host(t.azure.host_subnet);
        // Azure injects learned routes into the VNet itself: the host always points at the fabric.
        ip(
            &az_host,
            &["route", "add", "default", "via", &az_gw_ip.to_string()],
        )
        .await?;

        let mut instance_ns = Vec::new();
        for i in 0..t.azure_instances() {
            let gw = lab.add_namespace(&format!("az-gw{i}")).await?;
            let (gw_ip, fabric_ip) = fabric_link(i);
            wire(
                lab,
                (&gw, "fab", gw_ip, 30),
                (&fabric, &format!("gw{i}"), fabric_ip, 30),
            )
            .await?;
            ip(
                &gw,
                &[
                    "route",
                    "add",
                    &t.azure.vnet_cidr.to_string(),
                    "via",
                    &fabric_ip.to_string(),
                ],
            )
            .await?;
            instance_ns.push(gw);
        }

        // Tunnel ends: wiring, NAT, addresses.
        let mut ends = Vec::new();
        for (j, tunnel) in t.tunnels.iter().enumerate() {
            let pip = t
                .azure
                .public_ips
                .get(tunnel.azure_instance)
                .copied()
                .ok_or_else(|| {
                    LabError::Topology(format!(
                        "{}: no Azure instance {}",
                        tunnel.key, tunnel.azure_instance
                    ))
                })?;
            let inet_if = |side: &str| format!("{side}-{}", tunnel.key);
            let router_if = format!("t-{}", tunnel.key);

            // AWS end: holds its public address itself.
            let aws_ns = lab.add_namespace(&format!("aws-{}", tunnel.key)).await?;
            let (inet_ip, ep_ip) = inet_link(2 * j);
            wire(
                lab,
                (&inet, &inet_if("a"), inet_ip, 30),
                (&aws_ns, "out", ep_ip, 30),
            )
            .await?;
            let public = tunnel.aws.outside_ip.to_string();
            ip(
                &inet,
                &[
                    "route",
                    "add",
                    &format!("{public}/32"),
                    "via",
                    &ep_ip.to_string(),
                ],
            )
            .await?;
            ip(
                &aws_ns,
                &["addr", "add", &format!("{public}/32"), "dev", "out"],
            )
            .await?;
            ip(
                &aws_ns,
                &[
                    "route",
                    "add",
                    "default",
                    "via",
                    &inet_ip.to_string(),
                    "src",
                    &public,
                ],
            )
            .await?;
            let (vgw_ip, aws_ep_ip) = router_link(2 * j);
            wire(
                lab,
                (&vgw, &router_if, vgw_ip, 30),
                (&aws_ns, "rtr", aws_ep_ip, 30),
            )
            .await?;
            // AWS takes the first host of its inside CIDR and expects the peer on the second.
            let (aws_local, aws_peer) = (
                aws_inside_ip(tunnel.aws.inside_cidr),
                azure_inside_ip(tunnel.aws.inside_cidr),
            );
            ip(
                &vgw,
                &["addr", "replace", &format!("{aws_local}/32"), "dev", "lo"],
            )
            .await?;
            ip(
                &vgw,
                &[
                    "route",
                    "replace",
                    &format!("{aws_peer}/32"),
                    "via",
                    &aws_ep_ip.to_string(),
                ],
            )
            .await?;

            // Azure end: a private address behind the instance's public IP.
            let az_ns = lab.add_namespace(&format!("az-{}", tunnel.key)).await?;
            let (inet_ip, az_private) = inet_link(2 * j + 1);
            wire(
                lab,
                (&inet, &inet_if("z"), inet_ip, 30),
                (&az_ns, "out", az_private, 30),
            )
            .await?;
            ip(
                &az_ns,
                &["route", "add", "default", "via", &inet_ip.to_string()],
            )
            .await?;
            let nft = |chain: &'static str, rule: Vec<String>| {
                let mut args: Vec<String> = [
                    "ip", "netns", "exec", &inet, "nft", "add", "rule", "ip", "dxlab", chain,
                ]
                .map(String::from)
                .to_vec();
                args.extend(rule);
                async move { run(&args.iter().map(String::as_str).collect::<Vec<_>>()).await }
            };
            let words = |text: String| {
                text.split_whitespace()
                    .map(String::from)
                    .collect::<Vec<_>>()
            };
            nft(
                "to_instances",
                words(format!(
                    "ip saddr {public} ip daddr {pip} dnat to {az_private}"
                )),
            )
            .await?;
            nft(
                "from_instances",
                words(format!("ip saddr {az_private} snat to {pip}")),
            )
            .await?;
            let gw = &instance_ns[tunnel.azure_instance];
            let (gw_ip, az_ep_ip) = router_link(2 * j + 1);
            wire(
                lab,
                (gw, &router_if, gw_ip, 30),
                (&az_ns, "rtr", az_ep_ip, 30),
            )
            .await?;
            ip(
                gw,
                &[
                    "addr",
                    "replace",
                    &format!("{}/32", tunnel.azure.custom_bgp_ip),
                    "dev",
                    "lo",
                ],
            )
            .await?;
            ip(
                gw,
                &[
                    "route",
                    "replace",
                    &format!("{}/32", tunnel.azure.peer_bgp_ip),
                    "via",
                    &az_ep_ip.to_string(),
                ],
            )
            .await?;

            ends.push(TunnelEnds {
                tunnel: tunnel.clone(),
                aws_ns,
                vgw_ip,
                aws_ep_ip,
                az_ns,
                gw_ip,
                az_ep_ip,
                az_private,
                pip,
            });
        }
        self.set_route_propagation(t.aws.route_propagation).await?;

        // Daemons: every charon, then their keys and connections (responders first), then BIRD.
        for end in &ends {
            for (ns, router_ip) in [(&end.aws_ns, end.vgw_ip), (&end.az_ns, end.gw_ip)] {
                let dir = self.role_dir(ns)?;
                let charon = Charon::start(&self.run, ns, &dir, &mut self.children).await?;
                wire_endpoint(ns, router_ip).await?;
                self.charons.insert(ns.clone(), charon);
            }
        }
        let policy = IpsecPolicy::default();
        for end in &ends {
            let tunnel = &end.tunnel;
            let azure_end = IpsecConnection {
                name: tunnel.key.clone(),
                local_addr: end.az_private.to_string(),
                local_id: end.pip.to_string(),
                remote_addr: tunnel.azure.peer_outside_ip.to_string(),
                remote_id: tunnel.azure.peer_outside_ip.to_string(),
                initiate: false,
            };
            let aws_end = IpsecConnection {
                name: tunnel.key.clone(),
                local_addr: tunnel.aws.outside_ip.to_string(),
                local_id: tunnel.aws.outside_ip.to_string(),
                remote_addr: tunnel.aws.customer_gateway_ip.to_string(),
                remote_id: tunnel.aws.customer_gateway_ip.to_string(),
                initiate: true,
            };
            for (ns, connection, psk) in [
                (&end.az_ns, &azure_end, &tunnel.azure.psk),
                (&end.aws_ns, &aws_end, &tunnel.aws.psk),
            ] {
                let charon = &self.charons[ns.as_str()];
                charon
                    .load_psk(
                        &connection.name,
                        [&connection.local_id, &connection.remote_id],
                        psk,
                    )
                    .await?;
                let conf = charon.vici.with_file_name("swanctl.conf");
                let text = swanctl_connections(std::slice::from_ref(connection), &policy);
                std::fs::write(&conf, text).map_err(|e| LabError::io(&conf, e))?;
                charon.load_connections(&conf).await?;
            }
        }

        // BIRD: the AWS gateway, each Azure instance, the VNet fabric.
        let aws_router = BgpRouter {
            router_id: ends.first().map_or(Ipv4Addr::new(169, 254, 21, 1), |e| {
                aws_inside_ip(e.tunnel.aws.inside_cidr)
            }),
            asn: t.aws.asn,
            announce: vec![t.aws.vpc_cidr],
            tunnels: ends
                .iter()
                .map(|e| BgpSession {
                    name: e.tunnel.key.clone(),
                    local_ip: aws_inside_ip(e.tunnel.aws.inside_cidr),
                    peer_ip: azure_inside_ip(e.tunnel.aws.inside_cidr),
                    peer_asn: e.tunnel.aws.customer_gateway_asn,
                    via: Some(e.aws_ep_ip),
                    passive: false,
                })
                .collect(),
            internal: vec![],
            hold_time: AWS_HOLD_TIME,
            keepalive_time: AWS_KEEPALIVE,
            install_routes: true,
        };
        self.start_bird(&vgw, &aws_router).await?;
        for (i, gw) in instance_ns.iter().enumerate() {
            let (gw_ip, fabric_ip) = fabric_link(i);
            let router = BgpRouter {
                router_id: gw_ip,
                asn: t.azure.asn,
                announce: vec![t.azure.vnet_cidr],
                tunnels: ends
                    .iter()
                    .filter(|e| e.tunnel.azure_instance == i)
                    .map(|e| BgpSession {
                        name: e.tunnel.key.clone(),
                        local_ip: e.tunnel.azure.custom_bgp_ip,
                        peer_ip: e.tunnel.azure.peer_bgp_ip,
                        peer_asn: e.tunnel.azure.peer_asn,
                        via: Some(e.az_ep_ip),
                        // Azure does not initiate BGP towards APIPA peers: AWS must.
                        passive: true,
                    })
                    .collect(),
                internal: vec![ibgp("fabric", gw_ip, fabric_ip, t.azure.asn)],
                hold_time: AWS_HOLD_TIME,
                keepalive_time: AWS_KEEPALIVE,
                install_routes: true,
            };
            self.start_bird(gw, &router).await?;
        }
        let fabric_router = BgpRouter {
            router_id: fabric_link(0).1,
            asn: t.azure.asn,
            announce: vec![],
            tunnels: vec![],
            internal: (0..t.azure_instances())
                .map(|i| {
                    ibgp(
                        &format!("gw{i}"),
                        fabric_link(i).1,
                        fabric_link(i).0,
                        t.azure.asn,
                    )
                })
                .collect(),
            hold_time: AWS_HOLD_TIME,
            keepalive_time: AWS_KEEPALIVE,
            install_routes: true,
        };
        self.start_bird(&fabric, &fabric_router).await
    }

    /// The run-directory folder of namespace `ns` (its role), created if needed.
    fn role_dir(&self, ns: &str) -> Result<std::path::PathBuf, LabError> {
        let dir = self
            .run
            .dir()
            .join(ns.trim_start_matches(&format!("{}-", self.run.prefix())));
        std::fs::create_dir_all(&dir).map_err(|e| LabError::io(&dir, e))?;
        Ok(dir)
    }

    async fn start_bird(&mut self, ns: &str, router: &BgpRouter) -> Result<(), LabError> {
        let dir = self.role_dir(ns)?;
        let bird = Bird::start(&self.run, ns, &dir, &bird_conf(router), &mut self.children).await?;
        self.birds.insert(ns.to_owned(), bird);
        Ok(())
    }

    /// Turns AWS route propagation on or off for the VPC host's route table: with it, the host
    /// routes the VNet to the gateway; without it, the host has no route to the VNet.
    pub async fn set_route_propagation(&mut self, on: bool) -> Result<(), LabError> {
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

    /// Everything the daemons and kernels report now.
    pub async fn status(&self) -> DataPlaneStatus {
        let mut tunnels = Vec::new();
        for tunnel in &self.topology.tunnels {
            let aws_ns = self.run.ns(&format!("aws-{}", tunnel.key));
            let az_ns = self.run.ns(&format!("az-{}", tunnel.key));
            let gw_ns = self.run.ns(&format!("az-gw{}", tunnel.azure_instance));
            let sa = |ns: &str| self.charons.get(ns).map(|c| c.sa_state());
            let bgp = |ns: &str| self.birds.get(ns).map(|b| b.session(&tunnel.key));
            tunnels.push(TunnelStatus {
                key: tunnel.key.clone(),
                aws_ipsec: match sa(&aws_ns) {
                    Some(f) => f.await,
                    None => SaState::default(),
                },
                azure_ipsec: match sa(&az_ns) {
                    Some(f) => f.await,
                    None => SaState::default(),
                },
                aws_bgp: match bgp(&self.run.ns("aws-vgw")) {
                    Some(f) => f.await,
                    None => BgpSessionState::default(),
                },
                azure_bgp: match bgp(&gw_ns) {
                    Some(f) => f.await,
                    None => BgpSessionState::default(),
                },
            });
        }
        let mut routes = vec![
            RouteStatus::read(
                &self.run.ns("aws-vgw"),
                "aws-vgw",
                self.topology.azure.vnet_cidr,
            )
            .await,
        ];
        for i in 0..self.topology.azure_instances() {
            routes.push(
                RouteStatus::read(
                    &self.run.ns(&format!("az-gw{i}")),
                    &format!("az-gw{i}"),
                    self.topology.aws.vpc_cidr,
                )
                .await,
            );
        }
        routes.push(
            RouteStatus::read(
                &self.run.ns("az-vnet"),
                "az-vnet",
                self.topology.aws.vpc_cidr,
            )
            .await,
        );
        routes.push(
            RouteStatus::read(
                &self.run.ns("aws-host"),
                "aws-host",
                self.topology.azure.vnet_cidr,
            )
            .await,
        );
        DataPlaneStatus {
            prefix: self.run.prefix().to_owned(),
            tunnels,
            routes,
        }
    }

    /// Polls [`Self::status`] until `done` holds or `timeout` passes; returns the last status.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&DataPlaneStatus) -> bool,
    ) -> Result<DataPlaneStatus, DataPlaneStatus> {
        let start = Instant::now();
        loop {
            let status = self.status().await;
            if done(&status) {
                return Ok(status);
            }
            if start.elapsed() > timeout {
                return Err(status);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Pings `to` from the host on `from`'s side: (sent, received).
    pub async fn ping(&self, from: Side, to: Ipv4Addr, count: u32) -> (u32, u32) {
        let ns = self.run.ns(host_role(from));
        let out = tokio::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "ping",
                "-n",
                "-q",
                "-c",
                &count.to_string(),
                "-i",
                "0.2",
                "-W",
                "1",
                &to.to_string(),
            ])
            .stdin(Stdio::null())
            .output()
            .await;
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        parse_ping_summary(&text).unwrap_or((count, 0))
    }

    /// Pings continuously (every 100 ms) from `from`'s host until [`PingStream::stop`].
    pub fn ping_stream(&self, from: Side, to: Ipv4Addr) -> Result<PingStream, LabError> {
        let ns = self.run.ns(host_role(from));
        let mut child = tokio::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "ping",
                "-n",
                "-D",
                "-i",
                "0.1",
                "-W",
                "1",
                &to.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| LabError::Command {
                command: "ping".into(),
                stderr: e.to_string(),
            })?;
        let stdout = child.stdout.take().ok_or_else(|| LabError::Command {
            command: "ping".into(),
            stderr: "no stdout".into(),
        })?;
        let reader = tokio::spawn(async move {
            let mut replies = Vec::new();
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                // "[1700000000.123456] 64 bytes from 10.51.1.10: icmp_seq=1 ttl=60 time=0.5 ms"
                if line.contains("bytes from")
                    && let Some(ts) = line
                        .strip_prefix('[')
                        .and_then(|l| l.split(']').next())
                        .and_then(|s| s.parse::<f64>().ok())
                {
                    replies.push(ts);
                }
            }
            replies
        });
        Ok(PingStream { child, reader })
    }

    /// Packets sent into tunnel `key` by its AWS end so far (the `ipsec0` TX counter): which
    /// tunnel ECMP chose for a flow shows in how this grows.
    pub async fn tunnel_tx_packets(&self, key: &str) -> u64 {
        let ns = self.run.ns(&format!("aws-{key}"));
        let text = ip(&ns, &["-s", "link", "show", "ipsec0"])
            .await
            .unwrap_or_default();
        // "    TX:  bytes packets errors ..." followed by the numbers line.
        let mut lines = text
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("TX:"));
        lines
            .nth(1)
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    }

    /// Drops every packet to and from an AWS tunnel's outside address in `inet`: the tunnel is cut.
    pub async fn cut_tunnel(&self, key: &str) -> Result<(), LabError> {
        let tunnel = self
            .topology
            .tunnels
            .iter()
            .find(|t| t.key == key)
            .ok_or_else(|| LabError::Topology(format!("no tunnel {key}")))?;
        let addr = tunnel.aws.outside_ip.to_string();
        self.nft_cut(&["ip", "saddr", &addr]).await?;
        self.nft_cut(&["ip", "daddr", &addr]).await
    }

    /// Cuts a whole Azure instance off the internet: its public IP and every tunnel end behind it.
    pub async fn cut_instance(&self, instance: usize) -> Result<(), LabError> {
        let pip = self
            .topology
            .azure
            .public_ips
            .get(instance)
            .ok_or_else(|| LabError::Topology(format!("no Azure instance {instance}")))?;
        self.nft_cut(&["ip", "daddr", &pip.to_string()]).await?;
        for (j, tunnel) in self.topology.tunnels.iter().enumerate() {
            if tunnel.azure_instance == instance {
                self.nft_cut(&["ip", "saddr", &inet_link(2 * j + 1).1.to_string()])
                    .await?;
            }
        }
        Ok(())
    }

    /// Removes every cut.
    pub async fn restore(&self) -> Result<(), LabError> {
        run(&[
            "ip",
            "netns",
            "exec",
            &self.run.ns("inet"),
            "nft",
            "flush",
            "chain",
            "ip",
            "dxlab",
            "cut",
        ])
        .await
        .map(drop)
    }

    async fn nft_cut(&self, matcher: &[&str]) -> Result<(), LabError> {
        let inet = self.run.ns("inet");
        let mut args = vec![
            "ip", "netns", "exec", &inet, "nft", "add", "rule", "ip", "dxlab", "cut",
        ];
        args.extend_from_slice(matcher);
        args.push("drop");
        run(&args).await.map(drop)
    }
}

fn host_role(side: Side) -> &'static str {
    match side {
        Side::Aws => "aws-host",
        Side::Azure => "az-host",
    }
}

/// A tunnel end's namespace forwards between the router and `ipsec0`. When there is no SA (or
/// no charon, hence no `ipsec0`), the blackhole keeps traffic for the other cloud from leaving in
/// clear through the default route to the internet. Rules sit before table 220.
async fn wire_endpoint(ns: &str, router_ip: Ipv4Addr) -> Result<(), LabError> {
    ip(
        ns,
        &[
            "rule", "add", "iif", "rtr", "lookup", "100", "priority", "100",
        ],
    )
    .await?;
    ip(
        ns,
        &["route", "add", "default", "dev", "ipsec0", "table", "100"],
    )
    .await?;
    ip(
        ns,
        &[
            "route",
            "add",
            "blackhole",
            "default",
            "metric",
            "4000",
            "table",
            "100",
        ],
    )
    .await?;
    ip(
        ns,
        &[
            "rule", "add", "iif", "ipsec0", "lookup", "101", "priority", "101",
        ],
    )
    .await?;
    ip(
        ns,
        &[
            "route",
            "add",
            "default",
            "via",
            &router_ip.to_string(),
            "table",
            "101",
        ],
    )
    .await?;
    Ok(())
}

/// "3 packets transmitted, 3 received, ..." -> (3, 3).
fn parse_ping_summary(text: &str) -> Option<(u32, u32)> {
    let line = text.lines().find(|l| l.contains("packets transmitted"))?;
    let mut numbers = line
        .split(',')
        .map(|part| part.split_whitespace().next().and_then(|n| n.parse().ok()));
    Some((numbers.next()??, numbers.next()??))
}

/// A running ping, for measuring outages.
#[derive(Debug)]
pub struct PingStream {
    child: tokio::process::Child,
    reader: tokio::task::JoinHandle<Vec<f64>>,
}

impl PingStream {
    /// Stops the ping and returns the arrival times (UNIX seconds) of every reply.
    pub async fn stop(mut self) -> Vec<f64> {
        let _ = self.child.kill().await;
        self.reader.await.unwrap_or_default()
    }
}

/// The longest stretch without a reply, in seconds, minus the ping interval: the outage.
pub fn longest_outage(replies: &[f64], interval: f64) -> f64 {
    replies
        .windows(2)
        .map(|w| w[1] - w[0] - interval)
        .fold(0.0, f64::max)
}

/// One tunnel as the daemons of both ends report it.
#[derive(Debug, Clone, Serialize)]
pub struct TunnelStatus {
    /// `c1t1`, ...
    pub key: String,
    /// AWS end: IKE and CHILD SA.
    pub aws_ipsec: SaState,
    /// Azure end: IKE and CHILD SA.
    pub azure_ipsec: SaState,
    /// The AWS gateway's BGP session over this tunnel.
    pub aws_bgp: BgpSessionState,
    /// The Azure instance's BGP session over this tunnel.
    pub azure_bgp: BgpSessionState,
}

impl TunnelStatus {
    /// IPsec up on both ends.
    pub fn ipsec_up(&self) -> bool {
        self.aws_ipsec.ike_established
            && self.aws_ipsec.child_installed
            && self.azure_ipsec.ike_established
            && self.azure_ipsec.child_installed
    }

    /// BGP established on both ends.
    pub fn bgp_up(&self) -> bool {
        self.aws_bgp.established() && self.azure_bgp.established()
    }

    /// Carrying traffic: IPsec up, BGP up, and each side has the other's routes.
    pub fn up(&self) -> bool {
        self.ipsec_up()
            && self.bgp_up()
            && self.aws_bgp.routes_received > 0
            && self.azure_bgp.routes_received > 0
    }
}

/// How a router reaches the other cloud's prefix.
#[derive(Debug, Clone, Serialize)]
pub struct RouteStatus {
    /// Router (or host) role, e.g. `aws-vgw`.
    pub router: String,
    /// The other cloud's prefix.
    pub prefix: Ipv4Net,
    /// Next hops installed in the kernel (2 = ECMP over two tunnels or instances).
    pub next_hops: usize,
}

impl RouteStatus {
    async fn read(ns: &str, router: &str, prefix: Ipv4Net) -> Self {
        let text = ip(ns, &["route", "show", "exact", &prefix.to_string()])
            .await
            .unwrap_or_default();
        let multipath = text
            .lines()
            .filter(|l| l.trim_start().starts_with("nexthop"))
            .count();
        let next_hops = if multipath > 0 {
            multipath
        } else {
            text.lines().filter(|l| l.contains(" via ")).count()
        };
        RouteStatus {
            router: router.to_owned(),
            prefix,
            next_hops,
        }
    }
}

/// The whole data plane's state.
#[derive(Debug, Clone, Serialize)]
pub struct DataPlaneStatus {
    /// Run prefix.
    pub prefix: String,
    /// Every tunnel.
    pub tunnels: Vec<TunnelStatus>,
    /// Routes to the other cloud, per router.
    pub routes: Vec<RouteStatus>,
}

impl DataPlaneStatus {
    /// The tunnel with key `key`.
    pub fn tunnel(&self, key: &str) -> Option<&TunnelStatus> {
        self.tunnels.iter().find(|t| t.key == key)
    }

    /// Next hops of router `router` towards the other cloud.
    pub fn next_hops(&self, router: &str) -> usize {
        self.routes
            .iter()
            .find(|r| r.router == router)
            .map_or(0, |r| r.next_hops)
    }

    /// Traffic can cross both ways: the VPC host and the VNet fabric each have a route to the
    /// other cloud (the fabric learns it a moment after the tunnels are up).
    pub fn routes_across(&self) -> bool {
        self.next_hops("az-vnet") >= 1 && self.next_hops("aws-host") >= 1
    }

    /// Every tunnel up.
    pub fn all_up(&self) -> bool {
        self.tunnels.iter().all(TunnelStatus::up)
    }
}

#[cfg(test)]
mod tests {
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
