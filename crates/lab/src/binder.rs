//! The whole lab: both API twins, and a binder that keeps the data plane equal to what the twins
//! hold and reports the daemons' real state back as the twins' telemetry.
//!
//! The binder polls the twins (every 250 ms; reading them costs microseconds). When the tunnels
//! both clouds describe change and have stayed put for one more poll, it changes the data plane
//! in place where only tunnels' presence or BGP addresses differ (`DataPlane::update`: AWS
//! modifying one tunnel leaves the others up), and otherwise rebuilds it from them (a changed
//! key or outside address means new daemons, as a cloud renegotiates); route propagation
//! changes in place. Then it reads the daemons and writes AWS `vgwTelemetry`,
//! Azure `connectionStatus`, `getBgpPeerStatus` and `getLearnedRoutes`. A tunnel configured on
//! one side only, or on none, stays DOWN. With the data plane come both clouds' resolvers
//! (`dxvpn_netlab::resolvers`), which apply the DNS endpoints and rules the twins hold at each poll,
//! and each host's packet filters as its twin describes them (security groups and network ACL,
//! NSGs: `host_filter`), loaded as nftables in the host's namespace whenever they change.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use dxvpn_netlab::resolvers::{
    AZURE_RESOLVER_IP, CloudResolver, LAB_AWS_ZONE, LAB_AZURE_ZONE, ResolverRules,
};
use dxvpn_netlab::{DataPlane, DataPlaneStatus, Side};
use dxvpn_twin_aws::{AwsTwin, TunnelTelemetry};
use dxvpn_twin_azure::{AzureTwin, Telemetry};
use dxvpn_twin_kit::views::{DnsRules, VmView};

use crate::cloud_init;
use crate::config::lab_config;
use crate::pairing::{Bound, topology};
use crate::{LabError, LabScenario};

const POLL: Duration = Duration::from_millis(250);

/// What the binder last saw, for status displays and tests.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BinderState {
    /// The data plane's run prefix while one is built.
    pub prefix: Option<String>,
    /// Tunnels built.
    pub tunnels: usize,
    /// Tunnels carrying traffic (IPsec, BGP and routes both ways).
    pub tunnels_up: usize,
    /// Data plane builds so far.
    pub builds: u32,
    /// Changes applied in place so far (a tunnel left out or back, new BGP addresses).
    pub changed_in_place: u32,
    /// The last build error, if the last build failed.
    pub error: Option<String>,
}

/// Both twins and the binder. Stop it with [`Lab::stop`]; dropping it stops the binder's task
/// and (through the data plane's own drop) removes what it built.
#[derive(Debug)]
pub struct Lab {
    /// The AWS twin.
    pub aws: Arc<AwsTwin>,
    /// The Azure twin.
    pub azure: Arc<AzureTwin>,
    scenario: LabScenario,
    state: Arc<Mutex<BinderState>>,
    stop: watch::Sender<bool>,
    binder: Option<JoinHandle<()>>,
}

impl Lab {
    /// Both twins on free loopback ports with the default scenario: what tests and examples want.
    pub async fn start_on_loopback(time_factor: f64) -> Result<Self, LabError> {
        let any_port = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0));
        Self::start(any_port, any_port, &LabScenario::default(), time_factor).await
    }

    /// Starts both twins (port 0 picks free ports) with `scenario`, and the binder.
    pub async fn start(
        aws_addr: SocketAddr,
        azure_addr: SocketAddr,
        scenario: &LabScenario,
        time_factor: f64,
    ) -> Result<Self, LabError> {
        // One seed for both twins' undocumented choices: one number replays the lab.
        let seed = dxvpn_twin_kit::seed::twin_seed();
        let aws = AwsTwin::start_seeded(
            aws_addr,
            &scenario.aws.clone().unwrap_or_default(),
            time_factor,
            seed,
        )
        .await?;
        let azure = match AzureTwin::start_seeded(
            azure_addr,
            &scenario.azure.clone().unwrap_or_default(),
            time_factor,
            seed,
        )
        .await
        {
            Ok(azure) => azure,
            Err(e) => {
                aws.stop().await;
                return Err(e.into());
            }
        };
        let (aws, azure) = (Arc::new(aws), Arc::new(azure));
        let state = Arc::new(Mutex::new(BinderState::default()));
        let (stop, stopped) = watch::channel(false);
        let binder = tokio::spawn(bind(aws.clone(), azure.clone(), state.clone(), stopped));
        Ok(Lab {
            aws,
            azure,
            scenario: scenario.clone(),
            state,
            stop,
            binder: Some(binder),
        })
    }

    /// A dxvpn config file for a deployment named `name` of `use_case` (`development`,
    /// `high_availability`) on this lab: the seeded VPC and VNet, pointed at the twins.
    pub fn config(&self, name: &str, use_case: &str) -> String {
        lab_config(name, use_case, &self.scenario, &self.aws, &self.azure)
    }

    /// What the binder last saw.
    pub fn state(&self) -> BinderState {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Waits until the binder's state satisfies `done`, or `timeout` passes.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&BinderState) -> bool,
    ) -> Result<BinderState, BinderState> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let state = self.state();
            if done(&state) {
                return Ok(state);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(state);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops the binder (tearing the data plane down) and both twins.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(binder) = self.binder.take() {
            let _ = binder.await;
        }
        let (aws, azure) = (self.aws.clone(), self.azure.clone());
        drop(self);
        if let Ok(aws) = Arc::try_unwrap(aws) {
            aws.stop().await;
        }
        if let Ok(azure) = Arc::try_unwrap(azure) {
            azure.stop().await;
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// What a twin's DNS resources say, as its side's resolver applies it.
fn resolver_rules(view: DnsRules) -> ResolverRules {
    ResolverRules {
        inbound_ips: view.inbound_ips,
        forwards: view.forwards,
    }
}

async fn bind(
    aws: Arc<AwsTwin>,
    azure: Arc<AzureTwin>,
    state: Arc<Mutex<BinderState>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut plane: Option<(DataPlane, Bound)> = None;
    let mut dns: Option<(CloudResolver, CloudResolver)> = None;
    // A change is built once it has been seen twice in a row: deploys write tunnels one by one.
    // The change seen on the last poll: Some(None) is "no tunnels at all".
    let mut pending: Option<Option<u64>> = None;
    // Instances whose user data the lab cannot run, or whose start failed: told once.
    let mut refused: BTreeSet<String> = BTreeSet::new();
    // The host filters loaded in the current data plane (AWS, Azure).
    let mut filters: [Option<dxvpn_twin_kit::views::HostFilter>; 2] = [None, None];
    loop {
        let aws_view = aws.lab_view();
        let azure_view = azure.lab_view();
        let wanted = topology(&aws_view, &azure_view);
        let current = plane.as_ref().map(|(_, b)| b.fingerprint);
        let wanted_print = wanted.as_ref().map(|b| b.fingerprint);
        if current != wanted_print {
            if pending == Some(wanted_print) {
                pending = None;
                // One tunnel leaving (AWS modifying it) or its BGP addresses changing is
                // applied in place, as a cloud does it: the other tunnels carry on.
                let in_place = match (plane.as_mut(), wanted.as_ref()) {
                    (Some((p, bound)), Some(w)) if p.can_update_to(&w.topology) => {
                        match p.update(&w.topology).await {
                            Ok(()) => {
                                *bound = w.clone();
                                state
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .changed_in_place += 1;
                                tracing::info!(
                                    tunnels = w.topology.tunnels.len(),
                                    "data plane changed in place"
                                );
                                true
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "in-place change failed; rebuilding");
                                false
                            }
                        }
                    }
                    _ => false,
                };
                if !in_place {
                    if let Some((a, z)) = dns.take() {
                        a.stop();
                        z.stop();
                    }
                    if let Some((old, _)) = plane.take() {
                        old.teardown().await;
                    }
                    report(&aws, &azure, None);
                    filters = [None, None];
                    plane = rebuild(wanted, &state).await;
                    if let Some((p, _)) = &plane {
                        dns = match start_dns(p).await {
                            Ok(d) => Some(d),
                            Err(e) => {
                                tracing::warn!(error = %e, "lab resolvers not started");
                                None
                            }
                        };
                    }
                }
            } else {
                pending = Some(wanted_print);
            }
        } else if let (Some((p, _)), Some(w)) = (plane.as_mut(), wanted.as_ref()) {
            pending = None;
            let on = w.topology.aws.route_propagation;
            if p.topology().aws.route_propagation != on
                && let Err(e) = p.set_route_propagation(on).await
            {
                tracing::warn!(error = %e, "route propagation not applied");
            }
        }
        if let Some((a, z)) = dns.as_mut() {
            let applied = a
                .apply(&resolver_rules(aws.dns_view()))
                .await
                .and(z.apply(&resolver_rules(azure.dns_view())).await);
            if let Err(e) = applied {
                tracing::warn!(error = %e, "lab DNS not applied");
            }
        }
        if let Some((p, _)) = plane.as_mut() {
            let machines = [
                (Side::Aws, aws_view.instances.as_slice()),
                (Side::Azure, azure_view.vms.as_slice()),
            ];
            run_instances(p, &machines, &mut refused).await;
        }
        let status = match &plane {
            Some((p, bound)) => Some((p.status().await, bound)),
            None => None,
        };
        report(&aws, &azure, status.as_ref().map(|(s, b)| (s, *b)));
        // After the report, in the same poll: Azure's `VirtualNetwork` holds the routes its
        // gateway has just learned, so a path that now crosses is not dropped for a poll.
        if let Some((p, _)) = plane.as_ref() {
            let wanted_filters = [
                (Side::Aws, aws.lab_view().host_filter),
                (Side::Azure, azure.lab_view().host_filter),
            ];
            for (n, (side, filter)) in wanted_filters.into_iter().enumerate() {
                if filter != filters[n] {
                    let script = filter.as_ref().map(crate::host_filter::nft_ruleset);
                    let table = crate::host_filter::TABLE;
                    match p.set_host_firewall(side, table, script.as_deref()).await {
                        Ok(()) => filters[n] = filter,
                        Err(e) => tracing::warn!(error = %e, ?side, "host filter not applied"),
                    }
                }
            }
        }
        {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            s.prefix = plane.as_ref().map(|(p, _)| p.run().prefix().to_owned());
            s.tunnels = plane.as_ref().map_or(0, |(_, b)| b.topology.tunnels.len());
            s.tunnels_up = status
                .as_ref()
                .map_or(0, |(st, _)| st.tunnels.iter().filter(|t| t.up()).count());
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stopped.changed() => break,
        }
    }
    if let Some((a, z)) = dns.take() {
        a.stop();
        z.stop();
    }
    if let Some((p, _)) = plane.take() {
        p.teardown().await;
    }
    state.lock().unwrap_or_else(|p| p.into_inner()).prefix = None;
}

/// Runs what each running EC2 instance's and Azure VM's cloud-init starts, in its own
/// namespace at its address in its side's network, and stops the ones no longer running.
async fn run_instances(
    plane: &mut DataPlane,
    machines: &[(Side, &[VmView])],
    refused: &mut BTreeSet<String>,
) {
    for name in plane.instance_names() {
        if !machines
            .iter()
            .any(|(_, list)| list.iter().any(|i| i.id == name))
        {
            plane.stop_instance(&name).await;
        }
    }
    let mut all: Vec<(Side, &VmView)> = Vec::new();
    for (side, list) in machines {
        all.extend(list.iter().map(|i| (*side, i)));
    }
    for (side, i) in all {
        if refused.contains(&i.id) {
            continue;
        }
        let started = match cloud_init::programs(&i.user_data) {
            Ok(programs) => match programs.first() {
                Some(program) => plane
                    .start_instance(side, &i.id, i.private_ip, program)
                    .await
                    .map_err(|e| e.to_string()),
                None => Err("its user data starts no program".to_owned()),
            },
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = started {
            tracing::warn!(instance = %i.id, error = %e, "lab instance runs nothing");
            refused.insert(i.id.clone());
        }
    }
}

/// Both clouds' resolvers in the host namespaces, each answering its seeded private zone.
async fn start_dns(plane: &DataPlane) -> Result<(CloudResolver, CloudResolver), LabError> {
    let t = plane.topology();
    let run = plane.run();
    let vpc_resolver = Ipv4Addr::from(u32::from(t.aws.vpc_cidr.network()) + 2);
    let aws = CloudResolver::start(
        &run.ns("aws-host"),
        &run.ns("aws-vgw"),
        t.aws.host_ip,
        vpc_resolver,
        LAB_AWS_ZONE,
        BTreeMap::from([("vm1".to_owned(), t.aws.host_ip)]),
    )
    .await?;
    let azure = CloudResolver::start(
        &run.ns("az-host"),
        &run.ns("az-vnet"),
        t.azure.host_ip,
        AZURE_RESOLVER_IP,
        LAB_AZURE_ZONE,
        BTreeMap::from([("vm1".to_owned(), t.azure.host_ip)]),
    )
    .await?;
    Ok((aws, azure))
}

async fn rebuild(wanted: Option<Bound>, state: &Mutex<BinderState>) -> Option<(DataPlane, Bound)> {
    let bound = wanted?;
    tracing::info!(
        tunnels = bound.topology.tunnels.len(),
        "building the data plane the twins describe"
    );
    let built = DataPlane::build(bound.topology.clone()).await;
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    s.builds += 1;
    match built {
        Ok(plane) => {
            s.error = None;
            Some((plane, bound))
        }
        Err(e) => {
            tracing::warn!(error = %e, "data plane build failed; retrying on the next change");
            s.error = Some(e.to_string());
            None
        }
    }
}

/// Writes the daemons' state into both twins (None: everything DOWN).
fn report(aws: &AwsTwin, azure: &AzureTwin, seen: Option<(&DataPlaneStatus, &Bound)>) {
    let mut aws_reports: BTreeMap<Ipv4Addr, TunnelTelemetry> = BTreeMap::new();
    let mut telemetry = Telemetry::default();
    if let Some((status, bound)) = seen {
        for t in &bound.topology.tunnels {
            let Some(s) = status.tunnel(&t.key) else {
                continue;
            };
            aws_reports.insert(
                t.aws.outside_ip,
                TunnelTelemetry {
                    ipsec_up: s.aws_ipsec.ike_established && s.aws_ipsec.child_installed,
                    bgp_up: s.aws_bgp.established(),
                    accepted_routes: s.aws_bgp.routes_received,
                    bytes_in: s.aws_ipsec.bytes_in,
                    bytes_out: s.aws_ipsec.bytes_out,
                },
            );
            let azure_ipsec = s.azure_ipsec.ike_established && s.azure_ipsec.child_installed;
            if let Some((_, name)) = bound.connections.iter().find(|(k, _)| *k == t.key) {
                telemetry.connection_bytes.insert(
                    name.to_ascii_lowercase(),
                    (s.azure_ipsec.bytes_in, s.azure_ipsec.bytes_out),
                );
                telemetry.connection_status.insert(
                    name.to_ascii_lowercase(),
                    if azure_ipsec {
                        "Connected"
                    } else {
                        "Connecting"
                    }
                    .to_owned(),
                );
            }
            let bgp = if s.azure_bgp.established() {
                "Connected"
            } else {
                "Connecting"
            };
            telemetry.bgp_peers.insert(
                t.azure.peer_bgp_ip,
                (bgp.to_owned(), s.azure_bgp.routes_received),
            );
            if s.azure_bgp.established() && s.azure_bgp.routes_received > 0 {
                telemetry.learned_routes.push((
                    bound.topology.aws.vpc_cidr,
                    t.azure.peer_bgp_ip,
                    "EBgp".to_owned(),
                ));
            }
        }
    }
    aws.set_telemetry(&aws_reports);
    azure.set_telemetry(telemetry);
}
