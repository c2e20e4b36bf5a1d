//! Each cloud's DNS in the lab: one resolver per side, dxvpn's own forwarder running inside the
//! host namespace, applying exactly what the twin's DNS resources say.
//!
//! The AWS side answers on the VPC resolver (VPC base + 2), the Azure side on 168.63.129.16;
//! both also answer on their host's own address (a service of that host, for `validate`'s TCP
//! targets; the development path's forwarder hosts are VMs of their own that `up` creates,
//! `dataplane/instances.rs`). Each provisioned
//! inbound endpoint's address is added to the host's loopback and routed to it by the side's
//! router, so queries from the other cloud reach it over the tunnels; an endpoint that does not
//! exist does not answer. A zone is forwarded only while its rule is applied (Route 53: a
//! COMPLETE association with the VPC; Azure: a ruleset linked to the VNet). Queries leave from
//! the host's address, so they follow the host's routes: with route propagation off, nothing
//! crosses, as in AWS.
//!
//! The forwarder runs on its own thread that has entered the namespace (setns), so its sockets,
//! listening and forwarding, live there.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};

use dxvpn_dns::{ForwardZone, Forwarder, ForwarderConfig, LocalZone};
use tokio::sync::mpsc;

use crate::NetlabError;
use crate::run::run;

/// The private zone seeded on the AWS side: `vm1.aws.internal` is the VPC host.
pub const LAB_AWS_ZONE: &str = "aws.internal";
/// The private zone seeded on the Azure side: `vm1.azure.internal` is the VNet host.
pub const LAB_AZURE_ZONE: &str = "azure.internal";
/// Azure's resolver address, the same in every VNet.
pub const AZURE_RESOLVER_IP: Ipv4Addr = Ipv4Addr::new(168, 63, 129, 16);

/// What a side's resolver applies (in the lab, what its twin's DNS resources say): inbound
/// addresses and forwarded zones with their targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolverRules {
    /// Inbound endpoint addresses answering queries from the other cloud.
    pub inbound_ips: Vec<Ipv4Addr>,
    /// (zone, targets).
    pub forwards: Vec<(String, Vec<Ipv4Addr>)>,
}

enum Command {
    /// Serve `config` on exactly these addresses (port 53).
    Serve(Box<ForwarderConfig>, BTreeSet<Ipv4Addr>),
    Stop,
}

/// One side's resolver.
#[derive(Debug)]
pub struct CloudResolver {
    host_ns: String,
    router_ns: String,
    host_ip: Ipv4Addr,
    resolver_ip: Ipv4Addr,
    zone: LocalZone,
    on_loopback: BTreeSet<Ipv4Addr>,
    applied: Option<ResolverRules>,
    commands: mpsc::UnboundedSender<Command>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Serve(..) => "Serve",
            Command::Stop => "Stop",
        })
    }
}

fn config(zone: &LocalZone, rules: &ResolverRules) -> ForwarderConfig {
    ForwarderConfig {
        // Replaced per address: a wildcard socket would answer from another source address.
        listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 53)),
        upstream: Vec::new(),
        // A silent target (a tunnel down) answers SERVFAIL after a second, as a cloud does.
        timeout_ms: 1_000,
        forward: rules
            .forwards
            .iter()
            .filter(|(_, targets)| !targets.is_empty())
            .map(|(zone, targets)| ForwardZone {
                zone: zone.clone(),
                targets: targets.iter().map(ToString::to_string).collect(),
            })
            .collect(),
        local: vec![zone.clone()],
        // The lab's networks are private ranges; Azure's resolver forwards from its own address
        // here (in Azure, from the outbound endpoint's address in the VNet).
        allow: dxvpn_dns::PRIVATE_RANGES
            .iter()
            .map(|r| (*r).to_owned())
            .chain([format!("{AZURE_RESOLVER_IP}/32")])
            .collect(),
    }
}

impl CloudResolver {
    /// Starts the resolver of one side in `host_ns` (whose router namespace is `router_ns`),
    /// answering `zone_name` with `records`.
    pub async fn start(
        host_ns: &str,
        router_ns: &str,
        host_ip: Ipv4Addr,
        resolver_ip: Ipv4Addr,
        zone_name: &str,
        records: BTreeMap<String, Ipv4Addr>,
    ) -> Result<Self, NetlabError> {
        let zone = LocalZone {
            zone: zone_name.to_owned(),
            records,
        };
        let (commands, mut inbox) = mpsc::unbounded_channel::<Command>();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
        let host_ns_owned = host_ns.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("dns-{host_ns}"))
            .spawn(move || {
                let entered = crate::run::enter_namespace(&host_ns_owned);
                let runtime = entered.and_then(|()| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())
                });
                let runtime = match runtime {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return;
                    }
                };
                let _ = started_tx.send(Ok(()));
                runtime.block_on(serve(&mut inbox));
            })
            .map_err(|e| NetlabError::Topology(format!("DNS thread: {e}")))?;
        let started = started_rx
            .await
            .unwrap_or_else(|_| Err("ended before starting".into()));
        if let Err(e) = started {
            let _ = thread.join();
            return Err(NetlabError::Topology(format!(
                "DNS resolver in {host_ns}: {e}"
            )));
        }
        let mut resolver = CloudResolver {
            host_ns: host_ns.to_owned(),
            router_ns: router_ns.to_owned(),
            host_ip,
            resolver_ip,
            zone,
            on_loopback: BTreeSet::new(),
            applied: None,
            commands,
            thread: Some(thread),
        };
        resolver.apply(&ResolverRules::default()).await?;
        Ok(resolver)
    }

    /// Makes the resolver apply `rules`: addresses on the loopback, routes, forwarded zones.
    pub async fn apply(&mut self, rules: &ResolverRules) -> Result<(), NetlabError> {
        if self.applied.as_ref() == Some(rules) {
            return Ok(());
        }
        let wanted: BTreeSet<Ipv4Addr> = std::iter::once(self.resolver_ip)
            .chain(rules.inbound_ips.iter().copied())
            .collect();
        let via = self.host_ip.to_string();
        for ip in wanted.difference(&self.on_loopback.clone()) {
            let cidr = format!("{ip}/32");
            run(&[
                "ip",
                "-n",
                &self.host_ns,
                "addr",
                "replace",
                &cidr,
                "dev",
                "lo",
            ])
            .await?;
            run(&[
                "ip",
                "-n",
                &self.router_ns,
                "route",
                "replace",
                &cidr,
                "via",
                &via,
            ])
            .await?;
            self.on_loopback.insert(*ip);
        }
        for ip in self.on_loopback.clone().difference(&wanted) {
            let cidr = format!("{ip}/32");
            let _ = run(&["ip", "-n", &self.host_ns, "addr", "del", &cidr, "dev", "lo"]).await;
            let _ = run(&["ip", "-n", &self.router_ns, "route", "del", &cidr]).await;
            self.on_loopback.remove(ip);
        }
        let listen: BTreeSet<Ipv4Addr> = wanted
            .iter()
            .copied()
            .chain(std::iter::once(self.host_ip))
            .collect();
        let _ = self
            .commands
            .send(Command::Serve(Box::new(config(&self.zone, rules)), listen));
        tracing::info!(ns = %self.host_ns, inbound = ?rules.inbound_ips, forwards = ?rules.forwards, "lab resolver applies the twin's DNS");
        self.applied = Some(rules.clone());
        Ok(())
    }

    /// Stops the forwarder thread.
    pub fn stop(mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The thread's loop: one forwarder per address, all serving the same zones.
async fn serve(inbox: &mut mpsc::UnboundedReceiver<Command>) {
    let mut running: BTreeMap<Ipv4Addr, Forwarder> = BTreeMap::new();
    while let Some(command) = inbox.recv().await {
        let Command::Serve(config, addrs) = command else {
            break;
        };
        for ip in running.keys().copied().collect::<Vec<_>>() {
            if !addrs.contains(&ip)
                && let Some(f) = running.remove(&ip)
            {
                f.stop().await;
            }
        }
        for ip in addrs {
            match running.get(&ip) {
                Some(f) => {
                    if let Err(e) = f.reload(&config) {
                        tracing::warn!(error = %e, "lab resolver config refused");
                    }
                }
                None => {
                    let mut one = (*config).clone();
                    one.listen = SocketAddr::from((ip, 53));
                    match Forwarder::start(&one).await {
                        Ok(f) => {
                            running.insert(ip, f);
                        }
                        Err(e) => tracing::warn!(%ip, error = %e, "lab resolver not listening"),
                    }
                }
            }
        }
    }
    for (_, f) in running {
        f.stop().await;
    }
}

impl Drop for CloudResolver {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
    }
}
