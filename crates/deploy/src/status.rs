//! One view of a deployment's health from both clouds' own reports (`dxvpn status`).

use dxvpn_aws::{ForwarderHostState, PropagationState};
use dxvpn_azure::ForwarderVmState;
use serde::Serialize;

use crate::{CloudError, Deployer, Traffic};
use dxvpn_plan::model::Spec;
use dxvpn_plan::{Cloud, Plan};

/// The deployment as both clouds report it.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Every planned tunnel.
    pub tunnels: Vec<TunnelHealth>,
    /// Per route table of the plan: does it learn the VGW's routes.
    pub route_propagation: Vec<PropagationState>,
    /// The AWS forwarder host `up` created (development DNS), when the plan has one; its
    /// `instance` is `None` when it is missing. Whether it answers DNS is `dxvpn validate`'s to
    /// say: only a host inside the networks can ask it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarder_host: Option<ForwarderHostHealth>,
    /// The Azure forwarder VM `up` created, when the plan has one, likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure_forwarder_host: Option<AzureForwarderHealth>,
}

/// The Azure forwarder VM, as Azure reports it.
#[derive(Debug, Clone, Serialize)]
pub struct AzureForwarderHealth {
    /// Its planned address.
    pub ip: String,
    /// The VM's provisioning and power state, if it exists.
    pub vm: Option<ForwarderVmState>,
}

/// The forwarder host, as EC2 describes it.
#[derive(Debug, Clone, Serialize)]
pub struct ForwarderHostHealth {
    /// Its planned address.
    pub ip: String,
    /// EC2's instance, if it exists.
    pub instance: Option<ForwarderHostState>,
}

impl ForwarderHostHealth {
    /// The instance exists and runs.
    pub fn running(&self) -> bool {
        self.instance.as_ref().is_some_and(|i| i.state == "running")
    }
}

impl Status {
    /// Every tunnel up and every route table propagating.
    pub fn healthy(&self) -> bool {
        self.tunnels.iter().all(|t| t.up)
            && self.route_propagation.iter().all(|p| p.propagates)
            && self
                .forwarder_host
                .as_ref()
                .is_none_or(ForwarderHostHealth::running)
            && self
                .azure_forwarder_host
                .as_ref()
                .is_none_or(|h| h.vm.as_ref().is_some_and(ForwarderVmState::running))
    }
}

/// One tunnel, seen from both ends.
#[derive(Debug, Clone, Serialize)]
pub struct TunnelHealth {
    /// `c1t1`, ...
    pub key: String,
    /// AWS's outside address of the tunnel (empty before the VPN connection exists).
    pub outside_ip: String,
    /// The AWS VPN connection that holds it, `vpn-...` (empty before it exists).
    pub aws_connection: String,
    /// AWS `vgwTelemetry` status: `UP`, `DOWN`, or `MISSING`.
    pub aws_status: String,
    /// AWS's message, e.g. `IPSEC IS DOWN`.
    pub aws_message: String,
    /// Routes the VGW accepted over it.
    pub aws_accepted_routes: i32,
    /// The Azure connection's name.
    pub azure_connection: String,
    /// Its `connectionStatus`.
    pub azure_status: String,
    /// The BGP peer (AWS's inside address) as the Azure gateway sees it.
    pub bgp_neighbor: String,
    /// `Connected`, `Connecting`, ... or `Missing`.
    pub bgp_state: String,
    /// Routes Azure received from that peer.
    pub bgp_routes_received: i64,
    /// AWS says UP, Azure says Connected, the BGP session is Connected, and each side has
    /// received routes from the other.
    pub up: bool,
}

impl Deployer {
    /// Reads both clouds' reports for every planned tunnel.
    pub async fn status(&self, plan: &Plan) -> Result<Status, CloudError> {
        let (aws, connections, peers, propagation, host, vm) = tokio::join!(
            self.aws.tunnel_states(plan),
            self.azure.connection_states(plan),
            self.azure.bgp_peer_states(plan),
            self.aws.propagation_states(plan),
            self.aws.forwarder_host(plan),
            self.azure.forwarder_vm(plan),
        );
        assemble(plan, aws, connections, peers, propagation, (host, vm))
    }

    /// [`Deployer::status`] and [`Deployer::traffic`] over `window` together: AWS's counters are
    /// asked as soon as its tunnels are known, and Azure's at once, while the rest of the
    /// status is read.
    pub async fn status_with_traffic(
        &self,
        plan: &Plan,
        window: std::time::Duration,
    ) -> (Result<Status, CloudError>, Traffic) {
        let aws_then_traffic = async {
            let aws = self.aws.tunnel_states(plan).await;
            let tunnels: Vec<(String, String)> = aws.as_ref().map_or(Vec::new(), |states| {
                states
                    .iter()
                    .map(|t| (t.connection_id.clone(), t.outside_ip.clone()))
                    .collect()
            });
            let traffic = self.aws.tunnel_traffic(&tunnels, window).await;
            (aws, traffic)
        };
        let ((aws, aws_traffic), connections, peers, propagation, host, vm, azure_traffic) = tokio::join!(
            aws_then_traffic,
            self.azure.connection_states(plan),
            self.azure.bgp_peer_states(plan),
            self.aws.propagation_states(plan),
            self.aws.forwarder_host(plan),
            self.azure.forwarder_vm(plan),
            self.azure.connection_traffic(plan, window),
        );
        let status = assemble(plan, aws, connections, peers, propagation, (host, vm));
        let traffic = match &status {
            Ok(status) => crate::traffic::assemble(status, aws_traffic, azure_traffic),
            Err(_) => Traffic::default(),
        };
        (status, traffic)
    }
}

/// One status from each read's answer.
fn assemble(
    plan: &Plan,
    aws: Result<Vec<dxvpn_aws::AwsTunnelState>, dxvpn_aws::AwsError>,
    connections: Result<Vec<dxvpn_azure::ConnectionState>, dxvpn_azure::AzureError>,
    peers: Result<Vec<dxvpn_azure::BgpPeerState>, dxvpn_azure::AzureError>,
    propagation: Result<Vec<PropagationState>, dxvpn_aws::AwsError>,
    (host, vm): (
        Result<Option<ForwarderHostState>, dxvpn_aws::AwsError>,
        Result<Option<ForwarderVmState>, dxvpn_azure::AzureError>,
    ),
) -> Result<Status, CloudError> {
    let planned_ip = |cloud| {
        plan.forwarder_instance(cloud).and_then(|r| match &r.spec {
            Spec::ForwarderInstance { ip, .. } => Some(ip.to_string()),
            _ => None,
        })
    };
    let (host, vm) = (host?, vm?);
    let forwarder_host =
        planned_ip(Cloud::Aws).map(|ip| ForwarderHostHealth { ip, instance: host });
    let azure_forwarder_host = planned_ip(Cloud::Azure).map(|ip| AzureForwarderHealth { ip, vm });
    let aws = aws?;
    let connections = connections?;
    let peers = peers?;
    let route_propagation = propagation?;
    let tunnels = plan
        .tunnels
        .iter()
        .map(|t| {
            let role = format!("aws.vpn_connection.{}", t.pairing.aws_connection);
            let a = aws
                .iter()
                .find(|a| a.connection_role == role && a.tunnel == t.pairing.aws_tunnel);
            let z = connections.iter().find(|c| c.tunnel == t.key);
            let neighbor = t.pairing.aws_inside_ip.to_string();
            let peer = peers.iter().find(|p| p.neighbor == neighbor);
            let aws_status = a.map_or("MISSING", |a| a.status.as_str()).to_owned();
            let azure_status = z.map_or("Missing", |z| z.status.as_str()).to_owned();
            let bgp_state = peer.map_or("Missing", |p| p.state.as_str()).to_owned();
            // Carrying traffic: both ends up and routes learned both ways (BGP can be
            // established before the first UPDATE arrives).
            let routes = (
                a.map_or(0, |a| a.accepted_routes),
                peer.map_or(0, |p| p.routes_received),
            );
            TunnelHealth {
                key: t.key.clone(),
                outside_ip: a.map(|a| a.outside_ip.clone()).unwrap_or_default(),
                aws_connection: a.map(|a| a.connection_id.clone()).unwrap_or_default(),
                up: aws_status == "UP"
                    && azure_status == "Connected"
                    && bgp_state == "Connected"
                    && routes.0 > 0
                    && routes.1 > 0,
                aws_status,
                aws_message: a.map(|a| a.message.clone()).unwrap_or_default(),
                aws_accepted_routes: a.map_or(0, |a| a.accepted_routes),
                azure_connection: z.map(|z| z.name.clone()).unwrap_or_default(),
                azure_status,
                bgp_neighbor: neighbor,
                bgp_state,
                bgp_routes_received: peer.map_or(0, |p| p.routes_received),
            }
        })
        .collect();
    Ok(Status {
        tunnels,
        route_propagation,
        forwarder_host,
        azure_forwarder_host,
    })
}
