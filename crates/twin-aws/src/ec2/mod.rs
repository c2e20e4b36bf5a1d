//! The AWS twin's inventory and the EC2 actions dxvpn uses, with AWS's rules and state machines.
//!
//! States are derived from timestamps when read (a customer gateway is `pending` until its scaled
//! creation time has passed), so the twin needs no background task and a time factor scales every
//! real duration at once.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use dxvpn_cidr::Ipv4Net;
use dxvpn_cidr::inside::{AWS_INSIDE_SUPERNET, AWS_RESERVED_INSIDE_CIDRS};
use dxvpn_tunnel::psk::PresharedKey;
use dxvpn_twin_kit::seed::seeded_order;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::query::Params;
use crate::xml::Xml;

mod customer_gateway;
mod instances;
mod lab_view;
mod network_acls;
mod network_interfaces;
mod profile_associations;
mod route_tables;
mod security_groups;
mod tags;
mod vpn_connection;
mod vpn_gateway;
mod vpn_tunnel_modify;

/// An EC2 error: HTTP status, code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ec2Error {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
}

fn err(code: &str, message: impl Into<String>) -> Ec2Error {
    Ec2Error {
        status: 400,
        code: code.to_owned(),
        message: message.into(),
    }
}

/// Real durations of the operations (field notes), scaled by the time factor.
const CUSTOMER_GATEWAY_CREATE: Duration = Duration::from_secs(10);
const VGW_ATTACH: Duration = Duration::from_secs(120);
const VGW_DETACH: Duration = Duration::from_secs(60);
const VPN_CONNECTION_CREATE: Duration = Duration::from_secs(300);
/// A tunnel's endpoint replacement after ModifyVpnTunnelOptions: "a few minutes" (AWS Site-to-Site
/// VPN user guide, "Modify Site-to-Site VPN tunnel options").
const VPN_TUNNEL_MODIFY: Duration = Duration::from_secs(240);
const DELETE: Duration = Duration::from_secs(60);

/// What a scenario seeds: a VPC with private subnets, each with its own route table.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct AwsScenario {
    /// Region the twin answers for.
    pub region: String,
    /// The VPC's CIDR.
    pub vpc_cidr: Ipv4Net,
    /// Private subnets (one route table each).
    pub subnet_cidrs: Vec<Ipv4Net>,
    /// More VPCs of the same account and region: where a same-named deployment may live.
    #[serde(default)]
    pub other_vpcs: Vec<OtherVpc>,
}

/// Another VPC of the account, with its private subnets (one route table each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct OtherVpc {
    /// The VPC's CIDR.
    pub vpc_cidr: Ipv4Net,
    /// Its private subnets.
    pub subnet_cidrs: Vec<Ipv4Net>,
}

/// The ids of a seeded VPC.
#[derive(Debug, Clone, Serialize)]
pub struct SeededVpc {
    /// The VPC.
    pub vpc_id: String,
    /// Its private subnets, in scenario order.
    pub subnet_ids: Vec<String>,
    /// Their route tables, in scenario order.
    pub route_table_ids: Vec<String>,
}

impl Default for AwsScenario {
    fn default() -> Self {
        AwsScenario {
            region: "eu-south-1".into(),
            vpc_cidr: Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 0, 0), 16),
            subnet_cidrs: vec![
                Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 1, 0), 24),
                Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 2, 0), 24),
            ],
            other_vpcs: Vec::new(),
        }
    }
}

/// The ids a scenario was seeded with.
#[derive(Debug, Clone, Serialize)]
pub struct SeededIds {
    /// The VPC.
    pub vpc_id: String,
    /// Its private subnets, in scenario order.
    pub subnet_ids: Vec<String>,
    /// Their route tables, in scenario order.
    pub route_table_ids: Vec<String>,
    /// The seed of the twin's undocumented choices (`DXVPN_TWIN_SEED` replays them).
    pub seed: u64,
    /// The scenario's other VPCs, in scenario order.
    pub other_vpcs: Vec<SeededVpc>,
    /// The lab host's workload security group (on its interface in the first subnet).
    pub host_security_group_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Vpc {
    id: String,
    cidr: Ipv4Net,
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
struct Subnet {
    id: String,
    vpc_id: String,
    cidr: Ipv4Net,
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
struct RouteTable {
    id: String,
    vpc_id: String,
    subnet_id: String,
    propagating_vgws: Vec<String>,
    tags: BTreeMap<String, String>,
}

/// The longest a read lags behind a create or delete. EC2 documents the lag but not its length
/// ("Eventual consistency in the Amazon EC2 API", EC2 developer guide: a just-created id may
/// answer `*.NotFound` to describe and modify calls, and clients should retry with backoff);
/// each resource draws its own window from the seed, up to this.
pub const READ_LAG_MAX: Duration = Duration::from_millis(1000);

/// Creation and deletion times, from which states follow.
#[derive(Debug, Clone, Copy)]
struct Lifecycle {
    created: Instant,
    ready_after: Duration,
    deleted: Option<Instant>,
    delete_after: Duration,
    /// How long reads lag behind this resource's create and its delete.
    lag: Duration,
}

impl Lifecycle {
    fn new(ready_after: Duration, delete_after: Duration, lag: Duration) -> Self {
        Lifecycle {
            created: Instant::now(),
            ready_after,
            deleted: None,
            delete_after,
            lag,
        }
    }

    /// Whether the create has propagated: until then the id is unknown to every call.
    fn propagated(&self) -> bool {
        self.created.elapsed() >= self.lag
    }

    /// The state a Describe answers: none before the create propagated, and the state from
    /// before the delete until the delete has.
    fn seen_state(&self) -> Option<&'static str> {
        if !self.propagated() {
            return None;
        }
        match self.deleted {
            Some(at) if at.elapsed() < self.lag => Some(
                Lifecycle {
                    deleted: None,
                    ..*self
                }
                .state(),
            ),
            _ => Some(self.state()),
        }
    }

    /// [`Lifecycle::seen_state`], or the true state where the caller is the create's own answer.
    fn shown_state(&self) -> &'static str {
        self.seen_state().unwrap_or_else(|| self.state())
    }

    fn state(&self) -> &'static str {
        match self.deleted {
            Some(at) if at.elapsed() >= self.delete_after => "deleted",
            Some(_) => "deleting",
            None if self.created.elapsed() >= self.ready_after => "available",
            None => "pending",
        }
    }

    fn live(&self) -> bool {
        self.deleted.is_none()
    }
}

#[derive(Debug, Clone)]
struct Attachment {
    vpc_id: String,
    attached: Instant,
    attach_after: Duration,
    detached: Option<(Instant, Duration)>,
}

impl Attachment {
    fn state(&self) -> &'static str {
        match self.detached {
            Some((at, after)) if at.elapsed() >= after => "detached",
            Some(_) => "detaching",
            None if self.attached.elapsed() >= self.attach_after => "attached",
            None => "attaching",
        }
    }
}

#[derive(Debug, Clone)]
struct Vgw {
    id: String,
    asn: u32,
    life: Lifecycle,
    attachments: Vec<Attachment>,
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct Cgw {
    id: String,
    ip: Ipv4Addr,
    asn: u32,
    device_name: Option<String>,
    life: Lifecycle,
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct TunnelOption {
    outside_ip: Ipv4Addr,
    inside_cidr: Ipv4Net,
    psk: PresharedKey,
    ike_versions: Vec<String>,
    phase1_encryption: Vec<String>,
    phase2_encryption: Vec<String>,
    phase1_integrity: Vec<String>,
    phase2_integrity: Vec<String>,
    phase1_dh: Vec<String>,
    phase2_dh: Vec<String>,
    dpd_timeout: Option<String>,
    startup_action: String,
    telemetry: TunnelTelemetry,
}

/// What the data plane reports for one AWS tunnel end (until then an honest DOWN).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelTelemetry {
    /// IKE and CHILD SA up at AWS's end.
    pub ipsec_up: bool,
    /// The VGW's BGP session over the tunnel is established.
    pub bgp_up: bool,
    /// Routes the VGW accepted over it.
    pub accepted_routes: u32,
    /// Bytes AWS's end received through the tunnel so far (charon's `bytes-in`); a value
    /// lower than the last one is a reset (a rekeyed CHILD SA counts from 0).
    pub bytes_in: u64,
    /// Bytes AWS's end sent through the tunnel so far (charon's `bytes-out`).
    pub bytes_out: u64,
}

#[derive(Debug, Clone)]
struct Vpn {
    id: String,
    cgw_id: String,
    vgw_id: String,
    static_routes_only: bool,
    tunnels: Vec<TunnelOption>,
    life: Lifecycle,
    tags: BTreeMap<String, String>,
    /// The tunnel a ModifyVpnTunnelOptions is replacing, and until when.
    modifying: Option<Modifying>,
}

/// A tunnel being modified: its endpoint is replaced, so it is down meanwhile, while the
/// connection answers `modifying` (terraform-provider-aws `waitVPNConnectionUpdated`: pending
/// `modifying`, target `available`).
#[derive(Debug, Clone, Copy)]
struct Modifying {
    outside_ip: Ipv4Addr,
    until: Instant,
}

impl Vpn {
    /// The tunnel whose modification is still running.
    fn modifying_tunnel(&self) -> Option<Ipv4Addr> {
        self.modifying
            .filter(|m| Instant::now() < m.until && self.life.live())
            .map(|m| m.outside_ip)
    }

    /// The state Describe answers: `modifying` while a tunnel modification runs.
    fn shown_state(&self) -> &'static str {
        match self.life.shown_state() {
            "available" if self.modifying_tunnel().is_some() => "modifying",
            state => state,
        }
    }
}

/// The twin's whole EC2 inventory.
#[derive(Debug)]
pub(crate) struct Ec2 {
    time_factor: f64,
    region: String,
    next_id: u64,
    vpcs: Vec<Vpc>,
    subnets: Vec<Subnet>,
    route_tables: Vec<RouteTable>,
    vgws: Vec<Vgw>,
    cgws: Vec<Cgw>,
    vpns: Vec<Vpn>,
    security_groups: Vec<security_groups::SecurityGroup>,
    network_acls: Vec<network_acls::NetworkAcl>,
    network_interfaces: Vec<network_interfaces::NetworkInterface>,
    instances: Vec<instances::Instance>,
    /// The instance profile of the RunInstances being answered, as IAM gave it to EC2
    /// (`crate::iam`); taken by the launch.
    pub(crate) launch_profile: Option<crate::iam::ProfileRef>,
    /// Public SSM parameter name -> the AMI id it names (`crate::ssm`).
    pub(crate) images: BTreeMap<String, String>,
    outside_ips: BTreeSet<Ipv4Addr>,
    /// Undocumented orders and choices follow from it (`dxvpn_twin_kit::seed`).
    seed: u64,
    rng: StdRng,
    pub(crate) seeded: SeededIds,
}

/// Actions that change the inventory (for "a converged re-run makes no mutating call").
pub(crate) fn is_mutating(action: &str) -> bool {
    !(action.starts_with("Describe") || action.starts_with("Get") || action.starts_with("List"))
}

impl Ec2 {
    pub(crate) fn new(scenario: &AwsScenario, time_factor: f64, seed: u64) -> Self {
        let mut ec2 = Ec2 {
            time_factor,
            region: scenario.region.clone(),
            // Ids look like AWS's (prefix + 17 hex digits) and differ between twins.
            next_id: u64::from(rand::random::<u32>()) << 20,
            vpcs: Vec::new(),
            subnets: Vec::new(),
            route_tables: Vec::new(),
            vgws: Vec::new(),
            cgws: Vec::new(),
            vpns: Vec::new(),
            security_groups: Vec::new(),
            network_acls: Vec::new(),
            network_interfaces: Vec::new(),
            instances: Vec::new(),
            launch_profile: None,
            images: BTreeMap::new(),
            outside_ips: BTreeSet::new(),
            seed,
            rng: StdRng::seed_from_u64(seed),
            seeded: SeededIds {
                vpc_id: String::new(),
                subnet_ids: Vec::new(),
                route_table_ids: Vec::new(),
                seed,
                other_vpcs: Vec::new(),
                host_security_group_id: None,
            },
        };
        let main = ec2.seed_vpc(scenario.vpc_cidr, &scenario.subnet_cidrs);
        ec2.seeded.vpc_id = main.vpc_id;
        ec2.seeded.subnet_ids = main.subnet_ids;
        ec2.seeded.route_table_ids = main.route_table_ids;
        if let (Some(subnet_id), Some(cidr)) = (
            ec2.seeded.subnet_ids.first().cloned(),
            scenario.subnet_cidrs.first(),
        ) {
            let vpc_id = ec2.seeded.vpc_id.clone();
            ec2.seed_host_interface(&vpc_id, &subnet_id, *cidr);
        }
        for other in &scenario.other_vpcs {
            let seeded = ec2.seed_vpc(other.vpc_cidr, &other.subnet_cidrs);
            ec2.seeded.other_vpcs.push(seeded);
        }
        for name in crate::ssm::PUBLIC_IMAGE_PARAMETERS {
            let ami = ec2.new_id("ami");
            ec2.images.insert((*name).to_owned(), ami);
        }
        ec2
    }

    /// A VPC with its subnets, one route table each.
    fn seed_vpc(&mut self, vpc_cidr: Ipv4Net, subnet_cidrs: &[Ipv4Net]) -> SeededVpc {
        let vpc_id = self.new_id("vpc");
        self.vpcs.push(Vpc {
            id: vpc_id.clone(),
            cidr: vpc_cidr,
            tags: BTreeMap::new(),
        });
        let acl_id = self.new_id("acl");
        let mut acl = network_acls::NetworkAcl::default_for(acl_id, vpc_id.clone());
        let mut seeded = SeededVpc {
            vpc_id: vpc_id.clone(),
            subnet_ids: Vec::new(),
            route_table_ids: Vec::new(),
        };
        for cidr in subnet_cidrs {
            let subnet_id = self.new_id("subnet");
            let rtb_id = self.new_id("rtb");
            self.subnets.push(Subnet {
                id: subnet_id.clone(),
                vpc_id: vpc_id.clone(),
                cidr: *cidr,
                tags: BTreeMap::new(),
            });
            self.route_tables.push(RouteTable {
                id: rtb_id.clone(),
                vpc_id: vpc_id.clone(),
                subnet_id: subnet_id.clone(),
                propagating_vgws: Vec::new(),
                tags: BTreeMap::new(),
            });
            acl.associations
                .push((self.new_id("aclassoc"), subnet_id.clone()));
            seeded.subnet_ids.push(subnet_id);
            seeded.route_table_ids.push(rtb_id);
        }
        self.network_acls.push(acl);
        seeded
    }

    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:017x}", self.next_id)
    }

    fn scaled(&self, real: Duration) -> Duration {
        dxvpn_twin_kit::scale(real, self.time_factor)
    }

    /// A new resource's lifecycle, ready after `ready_after` (real time, scaled), with its own
    /// seeded read lag (not scaled: propagation is not an operation that the lab speeds up).
    fn lifecycle(&mut self, ready_after: Duration) -> Lifecycle {
        Lifecycle::new(
            self.scaled(ready_after),
            self.scaled(DELETE),
            self.read_lag(),
        )
    }

    pub(super) fn read_lag(&mut self) -> Duration {
        READ_LAG_MAX.mul_f64(self.rng.random::<f64>())
    }

    /// A free tunnel outside address in the lab's internet (198.18.1.0/24), drawn at random:
    /// AWS assigns tunnel addresses from its pool in no documented order, so the first
    /// tunnel's address is not the lower one.
    fn allocate_outside_ip(&mut self) -> Result<Ipv4Addr, Ec2Error> {
        let free: Vec<Ipv4Addr> = (1..=254u8)
            .map(|n| Ipv4Addr::new(198, 18, 1, n))
            .filter(|ip| !self.outside_ips.contains(ip))
            .collect();
        let ip = free.choose(&mut self.rng).copied().ok_or_else(|| {
            err(
                "VpnConnectionLimitExceeded",
                "the lab's internet has no free tunnel address left",
            )
        })?;
        self.outside_ips.insert(ip);
        Ok(ip)
    }

    /// Runs one action.
    pub(crate) fn handle(&mut self, action: &str, p: &Params) -> Result<Xml, Ec2Error> {
        if p.get("DryRun") == Some("true") {
            return Err(err(
                "DryRunOperation",
                "Request would have succeeded, but DryRun flag is set.",
            ));
        }
        match action {
            "CreateVpnGateway" => self.create_vpn_gateway(p),
            "DescribeVpnGateways" => self.describe_vpn_gateways(p),
            "AttachVpnGateway" => self.attach_vpn_gateway(p),
            "DetachVpnGateway" => self.detach_vpn_gateway(p),
            "DeleteVpnGateway" => self.delete_vpn_gateway(p),
            "CreateCustomerGateway" => self.create_customer_gateway(p),
            "DescribeCustomerGateways" => self.describe_customer_gateways(p),
            "DeleteCustomerGateway" => self.delete_customer_gateway(p),
            "CreateVpnConnection" => self.create_vpn_connection(p),
            "DescribeVpnConnections" => self.describe_vpn_connections(p),
            "DeleteVpnConnection" => self.delete_vpn_connection(p),
            "ModifyVpnTunnelOptions" => self.modify_vpn_tunnel_options(p),
            "EnableVgwRoutePropagation" => self.set_propagation(p, true),
            "DisableVgwRoutePropagation" => self.set_propagation(p, false),
            "DescribeRouteTables" => self.describe_route_tables(p),
            "DescribeVpcs" => self.describe_vpcs(p),
            "DescribeSubnets" => self.describe_subnets(p),
            "CreateSecurityGroup" => self.create_security_group(p),
            "DescribeSecurityGroups" => self.describe_security_groups(p),
            "AuthorizeSecurityGroupIngress" => self.authorize_ingress(p),
            "RevokeSecurityGroupIngress" => self.revoke_ingress(p),
            "DeleteSecurityGroup" => self.delete_security_group(p),
            "DescribeNetworkInterfaces" => self.describe_network_interfaces(p),
            "DescribeNetworkAcls" => self.describe_network_acls(p),
            "CreateNetworkAclEntry" => self.create_network_acl_entry(p),
            "DeleteNetworkAclEntry" => self.delete_network_acl_entry(p),
            "RunInstances" => self.run_instances(p),
            "DescribeInstances" => self.describe_instances(p),
            "TerminateInstances" => self.terminate_instances(p),
            "AssociateIamInstanceProfile" => self.associate_iam_instance_profile(p),
            "ReplaceIamInstanceProfileAssociation" => {
                self.replace_iam_instance_profile_association(p)
            }
            "DisassociateIamInstanceProfile" => self.disassociate_iam_instance_profile(p),
            "DescribeIamInstanceProfileAssociations" => {
                self.describe_iam_instance_profile_associations(p)
            }
            "CreateTags" => self.create_tags(p, true),
            "DeleteTags" => self.create_tags(p, false),
            other => Err(err(
                "InvalidAction",
                format!(
                    "The action {other} is not valid for this web service (the dxvpn AWS twin serves the VPN subset)."
                ),
            )),
        }
    }

    /// The region the twin answers for.
    pub(crate) fn region(&self) -> &str {
        &self.region
    }

    /// What a test or the operator sees of the inventory: every resource with its state, never a key.
    pub(crate) fn inventory(&self) -> serde_json::Value {
        let live = |state: &str| state != "deleted";
        serde_json::json!({
            "vpcs": self.vpcs,
            "subnets": self.subnets,
            "route_tables": self.route_tables,
            "security_groups": self.security_groups,
            "instances": self.instances.iter().filter(|i| i.state().1 != "terminated").map(|i| serde_json::json!({
                "id": i.id, "state": i.state().1, "private_ip": i.private_ip, "subnet_id": i.subnet_id, "tags": i.tags,
            })).collect::<Vec<_>>(),
            "vpn_gateways": self.vgws.iter().filter(|v| live(v.life.state())).map(|v| serde_json::json!({
                "id": v.id, "state": v.life.state(), "asn": v.asn, "tags": v.tags,
                "attachments": v.attachments.iter().filter(|a| a.state() != "detached").map(|a| serde_json::json!({"vpc_id": a.vpc_id, "state": a.state()})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "customer_gateways": self.cgws.iter().filter(|c| live(c.life.state())).map(|c| serde_json::json!({
                "id": c.id, "state": c.life.state(), "ip_address": c.ip, "asn": c.asn, "tags": c.tags,
            })).collect::<Vec<_>>(),
            "vpn_connections": self.vpns.iter().filter(|v| live(v.life.state())).map(|v| serde_json::json!({
                "id": v.id, "state": v.shown_state(), "customer_gateway_id": v.cgw_id, "vpn_gateway_id": v.vgw_id, "tags": v.tags,
                "tunnels": v.tunnels.iter().map(|t| serde_json::json!({"outside_ip": t.outside_ip, "inside_cidr": t.inside_cidr})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

impl crate::resolver::Network for Ec2 {
    fn subnet(&self, id: &str) -> Option<(String, Ipv4Net)> {
        self.subnets
            .iter()
            .find(|s| s.id == id)
            .map(|s| (s.vpc_id.clone(), s.cidr))
    }

    fn security_group_exists(&self, id: &str) -> bool {
        self.security_groups.iter().any(|g| g.id == id)
    }

    fn vpc_exists(&self, id: &str) -> bool {
        self.vpcs.iter().any(|v| v.id == id)
    }
}

/// A parameter the action cannot do without: `MissingParameter` otherwise.
fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str, Ec2Error> {
    p.get(name).ok_or_else(|| {
        err(
            "MissingParameter",
            format!("The request must contain the parameter {name}"),
        )
    })
}

/// `<return>true</return>` for actions without output.
fn ok_return() -> Xml {
    let mut x = Xml::new();
    x.field("return", "true");
    x
}

/// The items a Describe call asks for: those named by `id_param.N` (an unknown explicit id is
/// an error, not an empty set, as in EC2), kept when every filter matches `field`.
/// Describe results come back in a seeded random order: EC2 documents none.
/// `items` are those a read can see (see [`Lifecycle::seen_state`]).
fn select<'a, T: 'a>(
    seed: u64,
    p: &Params,
    id_param: &str,
    items: impl IntoIterator<Item = &'a T>,
    id: impl Fn(&T) -> &String,
    (code, what): (&str, &str),
    field: impl Fn(&T, &str) -> Option<Vec<String>>,
) -> Result<Vec<&'a T>, Ec2Error> {
    let items: Vec<&T> = items.into_iter().collect();
    let ids = p.list(id_param);
    not_found(&ids, items.iter().map(|item| id(item)), code, what)?;
    let filters = p.filters();
    let mut matched = Vec::new();
    for item in items
        .into_iter()
        .filter(|item| ids.is_empty() || ids.contains(id(item)))
    {
        if matches(&filters, |name| field(item, name))? {
            matched.push(item);
        }
    }
    seeded_order(seed, &mut matched, |item| id(item).clone());
    Ok(matched)
}

/// An explicit id that does not exist is an error, not an empty set (EC2's behaviour).
fn not_found<'a>(
    ids: &[String],
    known: impl Iterator<Item = &'a String>,
    code: &str,
    what: &str,
) -> Result<(), Ec2Error> {
    let known: BTreeSet<&String> = known.collect();
    match ids.iter().find(|id| !known.contains(id)) {
        Some(id) => Err(err(code, format!("The {what} ID '{id}' does not exist"))),
        None => Ok(()),
    }
}

fn tag_field(tags: &BTreeMap<String, String>, name: &str) -> Option<Vec<String>> {
    if let Some(key) = name.strip_prefix("tag:") {
        return Some(tags.get(key).cloned().into_iter().collect());
    }
    (name == "tag-key").then(|| tags.keys().cloned().collect())
}

/// Every filter must match (values of one filter are alternatives); an unknown filter name is an error.
fn matches(
    filters: &[(String, Vec<String>)],
    field: impl Fn(&str) -> Option<Vec<String>>,
) -> Result<bool, Ec2Error> {
    for (name, wanted) in filters {
        let have = field(name).ok_or_else(|| {
            err(
                "InvalidParameterValue",
                format!("The filter '{name}' is invalid"),
            )
        })?;
        if !wanted.iter().any(|w| have.iter().any(|h| glob(w, h))) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// EC2 filter values accept `*` (zero or more characters) and `?` (exactly one), as the EC2 API
/// reference's `Filter` type says (its backslash escape is not served). Iterative, with one
/// backtrack point (the last `*`): time grows with pattern times text, never exponentially, and
/// no pattern, however long, deepens the stack.
fn glob(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

fn now_iso() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_ec2_filters() {
        assert!(glob("dx-*", "dx-dev"));
        assert!(glob("vgw-?", "vgw-1"));
        assert!(!glob("dx-*", "other"));
        assert!(glob("exact", "exact"));
        assert!(glob("*", ""));
        assert!(!glob("?", ""));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(glob("*dev", "dx-dev"));
    }

    /// A filter value a client controls must neither overflow the stack nor take exponential
    /// time under the twin's lock (the recursive matcher did both).
    #[test]
    fn glob_is_bounded_on_hostile_patterns() {
        let stars = "*".repeat(200_000);
        assert!(glob(&stars, "dx-dev"));
        let alternating = format!("{}b", "*a".repeat(40));
        assert!(!glob(&alternating, &"a".repeat(200)));
    }

    #[test]
    fn lifecycle_moves_from_pending_to_deleted() {
        let mut life = Lifecycle::new(Duration::ZERO, Duration::from_secs(3600), Duration::ZERO);
        assert_eq!(life.state(), "available");
        life.deleted = Some(Instant::now());
        assert_eq!(life.state(), "deleting");
        life.delete_after = Duration::ZERO;
        assert_eq!(life.state(), "deleted");
    }

    #[test]
    fn reads_lag_behind_a_create_and_a_delete() {
        let mut life = Lifecycle::new(Duration::ZERO, Duration::ZERO, Duration::from_secs(3600));
        assert_eq!(life.seen_state(), None, "a new id is not seen yet");
        assert_eq!(
            life.shown_state(),
            "available",
            "the create's own answer is true"
        );
        life.created -= Duration::from_secs(7200);
        assert_eq!(life.seen_state(), Some("available"));
        life.deleted = Some(Instant::now());
        assert_eq!(life.state(), "deleted");
        assert_eq!(
            life.seen_state(),
            Some("available"),
            "the delete is not seen yet"
        );
        life.deleted = Some(Instant::now() - Duration::from_secs(7200));
        assert_eq!(life.seen_state(), Some("deleted"));
    }
}
