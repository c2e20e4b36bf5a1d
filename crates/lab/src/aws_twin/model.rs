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
use serde::Serialize;

use super::query::Params;
use super::xml::Xml;

mod groups;

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

/// Creation and deletion times, from which states follow.
#[derive(Debug, Clone, Copy)]
struct Lifecycle {
    created: Instant,
    ready_after: Duration,
    deleted: Option<Instant>,
    delete_after: Duration,
}

impl Lifecycle {
    fn new(ready_after: Duration, delete_after: Duration) -> Self {
        Lifecycle {
            created: Instant::now(),
            ready_after,
            deleted: None,
            delete_after,
        }
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
    security_groups: Vec<groups::SecurityGroup>,
    outside_ips: BTreeSet<Ipv4Addr>,
    pub(crate) seeded: SeededIds,
}

/// Actions that change the inventory (for "a converged re-run makes no mutating call").
pub(crate) fn is_mutating(action: &str) -> bool {
    !(action.starts_with("Describe") || action.starts_with("Get") || action.starts_with("List"))
}

impl Ec2 {
    pub(crate) fn new(scenario: &AwsScenario, time_factor: f64) -> Self {
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
            outside_ips: BTreeSet::new(),
            seeded: SeededIds {
                vpc_id: String::new(),
                subnet_ids: Vec::new(),
                route_table_ids: Vec::new(),
            },
        };
        let vpc_id = ec2.new_id("vpc");
        ec2.vpcs.push(Vpc {
            id: vpc_id.clone(),
            cidr: scenario.vpc_cidr,
            tags: BTreeMap::new(),
        });
        ec2.seeded.vpc_id = vpc_id.clone();
        for cidr in &scenario.subnet_cidrs {
            let subnet_id = ec2.new_id("subnet");
            let rtb_id = ec2.new_id("rtb");
            ec2.subnets.push(Subnet {
                id: subnet_id.clone(),
                vpc_id: vpc_id.clone(),
                cidr: *cidr,
                tags: BTreeMap::new(),
            });
            ec2.route_tables.push(RouteTable {
                id: rtb_id.clone(),
                vpc_id: vpc_id.clone(),
                subnet_id: subnet_id.clone(),
                propagating_vgws: Vec::new(),
                tags: BTreeMap::new(),
            });
            ec2.seeded.subnet_ids.push(subnet_id);
            ec2.seeded.route_table_ids.push(rtb_id);
        }
        ec2
    }

    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:017x}", self.next_id)
    }

    fn scaled(&self, real: Duration) -> Duration {
        real.mul_f64(self.time_factor)
    }

    /// The next free tunnel outside address in the lab's internet (198.18.1.0/24).
    fn allocate_outside_ip(&mut self) -> Result<Ipv4Addr, Ec2Error> {
        let ip = (1..=254u8)
            .map(|n| Ipv4Addr::new(198, 18, 1, n))
            .find(|ip| !self.outside_ips.contains(ip))
            .ok_or_else(|| {
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
            "EnableVgwRoutePropagation" => self.set_propagation(p, true),
            "DisableVgwRoutePropagation" => self.set_propagation(p, false),
            "DescribeRouteTables" => self.describe_route_tables(p),
            "DescribeVpcs" => self.describe_vpcs(p),
            "DescribeSubnets" => self.describe_subnets(p),
            "CreateSecurityGroup" => self.create_security_group(p),
            "DescribeSecurityGroups" => self.describe_security_groups(p),
            "AuthorizeSecurityGroupIngress" => self.authorize_ingress(p),
            "DeleteSecurityGroup" => self.delete_security_group(p),
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

    // ---- Virtual private gateways ----

    fn create_vpn_gateway(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        if p.get("Type") != Some("ipsec.1") {
            return Err(err("InvalidParameterValue", "Type must be ipsec.1"));
        }
        let asn = match p.get("AmazonSideAsn") {
            None => 64512,
            Some(text) => {
                let asn: u64 = text.parse().map_err(|_| {
                    err(
                        "InvalidParameterValue",
                        format!("Invalid AmazonSideAsn: {text}"),
                    )
                })?;
                let ok = (64512..=65534).contains(&asn)
                    || (4_200_000_000..=4_294_967_294).contains(&asn);
                if !ok {
                    return Err(err(
                        "InvalidParameterValue",
                        format!(
                            "The ASN {asn} is not a private ASN (64512-65534 or 4200000000-4294967294)."
                        ),
                    ));
                }
                asn as u32
            }
        };
        let id = self.new_id("vgw");
        // Official samples show a new VGW already `available`.
        let vgw = Vgw {
            id,
            asn,
            life: Lifecycle::new(Duration::ZERO, self.scaled(DELETE)),
            attachments: Vec::new(),
            tags: p.tags(),
        };
        let mut x = Xml::new();
        x.element("vpnGateway", |x| write_vgw(x, &vgw));
        self.vgws.push(vgw);
        Ok(x)
    }

    fn describe_vpn_gateways(&self, p: &Params) -> Result<Xml, Ec2Error> {
        let matched = select(
            p,
            "VpnGatewayId",
            &self.vgws,
            |v| &v.id,
            ("InvalidVpnGatewayID.NotFound", "vpnGateway"),
            |v, name| {
                Some(match name {
                    "vpn-gateway-id" => vec![v.id.clone()],
                    "state" => vec![v.life.state().into()],
                    "type" => vec!["ipsec.1".into()],
                    "amazon-side-asn" => vec![v.asn.to_string()],
                    "attachment.vpc-id" => v.attachments.iter().map(|a| a.vpc_id.clone()).collect(),
                    "attachment.state" => {
                        v.attachments.iter().map(|a| a.state().to_owned()).collect()
                    }
                    _ => return tag_field(&v.tags, name),
                })
            },
        )?;
        let mut x = Xml::new();
        x.set("vpnGatewaySet", matched, write_vgw);
        Ok(x)
    }

    fn vgw_mut(&mut self, id: Option<&str>) -> Result<&mut Vgw, Ec2Error> {
        let id = id.ok_or_else(|| {
            err(
                "MissingParameter",
                "The request must contain the parameter VpnGatewayId",
            )
        })?;
        self.vgws
            .iter_mut()
            .find(|v| v.id == id && v.life.state() != "deleted")
            .ok_or_else(|| {
                err(
                    "InvalidVpnGatewayID.NotFound",
                    format!("The vpnGateway ID '{id}' does not exist"),
                )
            })
    }

    fn attach_vpn_gateway(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let vpc_id = p
            .get("VpcId")
            .ok_or_else(|| {
                err(
                    "MissingParameter",
                    "The request must contain the parameter VpcId",
                )
            })?
            .to_owned();
        if !self.vpcs.iter().any(|v| v.id == vpc_id) {
            return Err(err(
                "InvalidVpcID.NotFound",
                format!("The vpc ID '{vpc_id}' does not exist"),
            ));
        }
        let busy = |a: &Attachment| a.state() != "detached";
        let vgw_id = p.get("VpnGatewayId").unwrap_or_default().to_owned();
        if self
            .vgws
            .iter()
            .any(|v| v.id != vgw_id && v.attachments.iter().any(|a| a.vpc_id == vpc_id && busy(a)))
        {
            return Err(err(
                "InvalidVpcState",
                format!("The vpc '{vpc_id}' already has a virtual private gateway attached"),
            ));
        }
        let attach_after = self.scaled(VGW_ATTACH);
        let vgw = self.vgw_mut(p.get("VpnGatewayId"))?;
        if vgw.life.state() != "available" {
            return Err(err(
                "InvalidVpnGatewayState",
                format!("The vpnGateway '{}' is not available", vgw.id),
            ));
        }
        if let Some(a) = vgw.attachments.iter().find(|a| busy(a)) {
            // Attaching again to the same VPC is how EC2 answers a retry: the same attachment.
            if a.vpc_id != vpc_id {
                return Err(err(
                    "VpnGatewayAttachmentLimitExceeded",
                    format!(
                        "The vpnGateway '{}' is already attached to {}",
                        vgw.id, a.vpc_id
                    ),
                ));
            }
        } else {
            vgw.attachments.retain(|a| a.vpc_id != vpc_id);
            vgw.attachments.push(Attachment {
                vpc_id: vpc_id.clone(),
                attached: Instant::now(),
                attach_after,
                detached: None,
            });
        }
        let state = vgw
            .attachments
            .iter()
            .find(|a| a.vpc_id == vpc_id)
            .map_or("attaching", Attachment::state);
        let mut x = Xml::new();
        x.element("attachment", |x| {
            x.field("vpcId", &vpc_id).field("state", state);
        });
        Ok(x)
    }

    fn detach_vpn_gateway(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let vpc_id = p.get("VpcId").unwrap_or_default().to_owned();
        let detach_after = self.scaled(VGW_DETACH);
        let vgw = self.vgw_mut(p.get("VpnGatewayId"))?;
        let vgw_id = vgw.id.clone();
        let attachment = vgw
            .attachments
            .iter_mut()
            .find(|a| a.vpc_id == vpc_id && a.detached.is_none())
            .ok_or_else(|| err("InvalidVpnGatewayAttachment.NotFound", format!("The attachment with vpn gateway ID '{vgw_id}' and vpc ID '{vpc_id}' does not exist")))?;
        attachment.detached = Some((Instant::now(), detach_after));
        for rtb in self.route_tables.iter_mut().filter(|r| r.vpc_id == vpc_id) {
            rtb.propagating_vgws.retain(|g| *g != vgw_id);
        }
        Ok(ok_return())
    }

    fn delete_vpn_gateway(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let id = p.get("VpnGatewayId").unwrap_or_default().to_owned();
        if self
            .vpns
            .iter()
            .any(|v| v.vgw_id == id && v.life.state() != "deleted")
        {
            return Err(err(
                "IncorrectState",
                format!("The vpnGateway '{id}' has VPN connections that are not deleted"),
            ));
        }
        let vgw = self.vgw_mut(Some(&id))?;
        if vgw.attachments.iter().any(|a| a.state() != "detached") {
            return Err(err(
                "IncorrectState",
                format!(
                    "The vpnGateway '{id}' is attached to a VPC; ensure that it's detached before deleting it"
                ),
            ));
        }
        if vgw.life.live() {
            vgw.life.deleted = Some(Instant::now());
        }
        Ok(ok_return())
    }

    // ---- Customer gateways ----

    fn create_customer_gateway(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        if p.get("Type") != Some("ipsec.1") {
            return Err(err("InvalidParameterValue", "Type must be ipsec.1"));
        }
        let ip: Ipv4Addr = p
            .get("IpAddress")
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| err("InvalidParameterValue", "IpAddress must be an IPv4 address"))?;
        let asn_text = p
            .get("BgpAsnExtended")
            .or(p.get("BgpAsn"))
            .unwrap_or("65000");
        let asn: u32 = asn_text
            .parse()
            .ok()
            .filter(|a| *a >= 1 && *a <= 4_294_967_294)
            .ok_or_else(|| {
                err(
                    "InvalidParameterValue",
                    format!("Invalid BgpAsn: {asn_text}"),
                )
            })?;
        if [7224, 9059, 10124, 17943].contains(&asn) {
            return Err(err(
                "InvalidParameterValue",
                format!("The ASN {asn} is reserved by AWS"),
            ));
        }
        // Content-based idempotency: the same gateway asked again is the same gateway.
        if let Some(existing) = self
            .cgws
            .iter()
            .find(|c| c.ip == ip && c.asn == asn && c.life.live())
        {
            let mut x = Xml::new();
            x.element("customerGateway", |x| write_cgw(x, existing));
            return Ok(x);
        }
        let id = self.new_id("cgw");
        let cgw = Cgw {
            id,
            ip,
            asn,
            device_name: p.get("DeviceName").map(str::to_owned),
            life: Lifecycle::new(self.scaled(CUSTOMER_GATEWAY_CREATE), self.scaled(DELETE)),
            tags: p.tags(),
        };
        let mut x = Xml::new();
        x.element("customerGateway", |x| write_cgw(x, &cgw));
        self.cgws.push(cgw);
        Ok(x)
    }

    fn describe_customer_gateways(&self, p: &Params) -> Result<Xml, Ec2Error> {
        let matched = select(
            p,
            "CustomerGatewayId",
            &self.cgws,
            |c| &c.id,
            ("InvalidCustomerGatewayID.NotFound", "customerGateway"),
            |c, name| {
                Some(match name {
                    "customer-gateway-id" => vec![c.id.clone()],
                    "state" => vec![c.life.state().into()],
                    "ip-address" => vec![c.ip.to_string()],
                    "bgp-asn" => vec![c.asn.to_string()],
                    "type" => vec!["ipsec.1".into()],
                    _ => return tag_field(&c.tags, name),
                })
            },
        )?;
        let mut x = Xml::new();
        x.set("customerGatewaySet", matched, write_cgw);
        Ok(x)
    }

    fn delete_customer_gateway(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let id = p.get("CustomerGatewayId").unwrap_or_default().to_owned();
        if !id.starts_with("cgw-") {
            return Err(err(
                "InvalidCustomerGatewayId.Malformed",
                format!("Invalid id: \"{id}\" (expecting \"cgw-...\")"),
            ));
        }
        if self
            .vpns
            .iter()
            .any(|v| v.cgw_id == id && v.life.state() != "deleted")
        {
            return Err(err(
                "IncorrectState",
                format!("The customer gateway '{id}' is in use by a VPN connection"),
            ));
        }
        let cgw = self
            .cgws
            .iter_mut()
            .find(|c| c.id == id && c.life.state() != "deleted")
            .ok_or_else(|| {
                err(
                    "InvalidCustomerGatewayID.NotFound",
                    format!("The customerGateway ID '{id}' does not exist"),
                )
            })?;
        if cgw.life.live() {
            cgw.life.deleted = Some(Instant::now());
        }
        Ok(ok_return())
    }

    // ---- VPN connections ----

    fn create_vpn_connection(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        if p.get("Type") != Some("ipsec.1") {
            return Err(err("InvalidParameterValue", "Type must be ipsec.1"));
        }
        let cgw_id = p.get("CustomerGatewayId").unwrap_or_default().to_owned();
        let cgw = self
            .cgws
            .iter()
            .find(|c| c.id == cgw_id && c.life.state() != "deleted")
            .ok_or_else(|| {
                err(
                    "InvalidCustomerGatewayID.NotFound",
                    format!("The customerGateway ID '{cgw_id}' does not exist"),
                )
            })?
            .clone();
        if cgw.life.state() != "available" {
            return Err(err(
                "InvalidCustomerGatewayState",
                format!("The customer gateway '{cgw_id}' is not in the available state"),
            ));
        }
        let vgw_id = p.get("VpnGatewayId").unwrap_or_default().to_owned();
        let vgw = self.vgw_mut(Some(&vgw_id))?.clone();
        if vgw.life.state() != "available" {
            return Err(err(
                "InvalidVpnGatewayState",
                format!("The vpnGateway '{vgw_id}' is not available"),
            ));
        }
        if vgw.asn == cgw.asn {
            return Err(err(
                "AsnConflict",
                format!(
                    "The customer gateway ASN {} is the same as the virtual private gateway ASN",
                    cgw.asn
                ),
            ));
        }
        let live_vpns: Vec<&Vpn> = self
            .vpns
            .iter()
            .filter(|v| v.life.state() != "deleted")
            .collect();
        if let Some(other) = live_vpns.iter().find(|v| {
            v.cgw_id != cgw_id && self.cgws.iter().any(|c| c.id == v.cgw_id && c.ip == cgw.ip)
        }) {
            return Err(err(
                "InvalidCustomerGateway.DuplicateIpAddress",
                format!(
                    "Conflict among chosen gateway IP addresses: {} is used by {}",
                    cgw.ip, other.id
                ),
            ));
        }
        let static_routes_only = p.get("Options.StaticRoutesOnly") == Some("true");
        let given = p.entries("Options.TunnelOptions");
        if given.len() > 2 {
            return Err(err(
                "InvalidParameterValue",
                "A VPN connection has 2 tunnels",
            ));
        }
        let used_cidrs: Vec<Ipv4Net> = live_vpns
            .iter()
            .filter(|v| v.vgw_id == vgw_id)
            .flat_map(|v| v.tunnels.iter().map(|t| t.inside_cidr))
            .collect();
        let mut tunnels = Vec::new();
        for i in 0..2 {
            let o = given.get(i);
            let inside_cidr = match o.and_then(|o| o.get("TunnelInsideCidr")) {
                Some(text) => {
                    let cidr: Ipv4Net = text.parse().map_err(|_| {
                        err(
                            "InvalidParameterValue",
                            format!("Invalid TunnelInsideCidr: {text}"),
                        )
                    })?;
                    if cidr.prefix_len() != 30
                        || !AWS_INSIDE_SUPERNET.contains(&cidr)
                        || cidr.trunc() != cidr
                    {
                        return Err(err(
                            "InvalidParameterValue",
                            format!(
                                "The tunnel inside CIDR {text} must be a /30 in 169.254.0.0/16"
                            ),
                        ));
                    }
                    if AWS_RESERVED_INSIDE_CIDRS.contains(&cidr) {
                        return Err(err(
                            "InvalidParameterValue",
                            format!("The tunnel inside CIDR {text} is reserved"),
                        ));
                    }
                    cidr
                }
                None => (0..)
                    .map(|n: u32| {
                        Ipv4Net::new_assert(
                            Ipv4Addr::from(u32::from(Ipv4Addr::new(169, 254, 100, 0)) + 4 * n),
                            30,
                        )
                    })
                    .find(|c| {
                        !used_cidrs.contains(c)
                            && !tunnels.iter().any(|t: &TunnelOption| t.inside_cidr == *c)
                    })
                    .unwrap_or(Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 200, 0), 30)),
            };
            if used_cidrs.contains(&inside_cidr)
                || tunnels.iter().any(|t| t.inside_cidr == inside_cidr)
            {
                return Err(err(
                    "InvalidCidr.InUse",
                    format!(
                        "The tunnel inside CIDR {inside_cidr} is already in use on the virtual private gateway {vgw_id}"
                    ),
                ));
            }
            let psk = match o.and_then(|o| o.get("PreSharedKey")) {
                // The message never repeats the key.
                Some(text) => PresharedKey::parse(text).map_err(|e| {
                    err(
                        "InvalidParameterValue",
                        format!("Invalid pre-shared key for tunnel {}: {e}", i + 1),
                    )
                })?,
                None => PresharedKey::generate(),
            };
            let list = |name: &str| o.map(|o| o.values(name)).unwrap_or_default();
            tunnels.push(TunnelOption {
                outside_ip: Ipv4Addr::UNSPECIFIED,
                inside_cidr,
                psk,
                ike_versions: list("IKEVersion"),
                phase1_encryption: list("Phase1EncryptionAlgorithm"),
                phase2_encryption: list("Phase2EncryptionAlgorithm"),
                phase1_integrity: list("Phase1IntegrityAlgorithm"),
                phase2_integrity: list("Phase2IntegrityAlgorithm"),
                phase1_dh: list("Phase1DHGroupNumber"),
                phase2_dh: list("Phase2DHGroupNumber"),
                dpd_timeout: o.and_then(|o| o.get("DPDTimeoutSeconds").map(str::to_owned)),
                startup_action: o
                    .and_then(|o| o.get("StartupAction"))
                    .unwrap_or("add")
                    .to_owned(),
                telemetry: TunnelTelemetry::default(),
            });
        }
        let outside: Vec<Ipv4Addr> = (0..2)
            .map(|_| self.allocate_outside_ip())
            .collect::<Result<_, _>>()?;
        for (t, ip) in tunnels.iter_mut().zip(outside) {
            t.outside_ip = ip;
        }
        let id = self.new_id("vpn");
        let vpn = Vpn {
            id,
            cgw_id,
            vgw_id,
            static_routes_only,
            tunnels,
            life: Lifecycle::new(self.scaled(VPN_CONNECTION_CREATE), self.scaled(DELETE)),
            tags: p.tags(),
        };
        let mut x = Xml::new();
        let (cgw_ip, vgw_asn) = (cgw.ip, vgw.asn);
        x.element("vpnConnection", |x| {
            write_vpn(x, &vpn, cgw_ip, cgw.asn, vgw_asn)
        });
        self.vpns.push(vpn);
        Ok(x)
    }

    fn describe_vpn_connections(&self, p: &Params) -> Result<Xml, Ec2Error> {
        let matched = select(
            p,
            "VpnConnectionId",
            &self.vpns,
            |v| &v.id,
            ("InvalidVpnConnectionID.NotFound", "vpnConnection"),
            |v, name| {
                Some(match name {
                    "vpn-connection-id" => vec![v.id.clone()],
                    "state" => vec![v.life.state().into()],
                    "customer-gateway-id" => vec![v.cgw_id.clone()],
                    "vpn-gateway-id" => vec![v.vgw_id.clone()],
                    "type" => vec!["ipsec.1".into()],
                    "option.static-routes-only" => vec![v.static_routes_only.to_string()],
                    _ => return tag_field(&v.tags, name),
                })
            },
        )?;
        let mut x = Xml::new();
        x.set("vpnConnectionSet", matched, |x, v| {
            let cgw = self.cgws.iter().find(|c| c.id == v.cgw_id);
            let vgw_asn = self
                .vgws
                .iter()
                .find(|g| g.id == v.vgw_id)
                .map_or(0, |g| g.asn);
            write_vpn(
                x,
                v,
                cgw.map_or(Ipv4Addr::UNSPECIFIED, |c| c.ip),
                cgw.map_or(0, |c| c.asn),
                vgw_asn,
            );
        });
        Ok(x)
    }

    fn delete_vpn_connection(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let id = p.get("VpnConnectionId").unwrap_or_default().to_owned();
        let vpn = self
            .vpns
            .iter_mut()
            .find(|v| v.id == id && v.life.state() != "deleted")
            .ok_or_else(|| {
                err(
                    "InvalidVpnConnectionID.NotFound",
                    format!("The vpnConnection ID '{id}' does not exist"),
                )
            })?;
        if vpn.life.live() {
            vpn.life.deleted = Some(Instant::now());
            let freed: Vec<Ipv4Addr> = vpn.tunnels.iter().map(|t| t.outside_ip).collect();
            for ip in freed {
                self.outside_ips.remove(&ip);
            }
        }
        Ok(ok_return())
    }

    // ---- Route tables, VPCs, subnets, tags ----

    fn set_propagation(&mut self, p: &Params, on: bool) -> Result<Xml, Ec2Error> {
        let gateway_id = p.get("GatewayId").unwrap_or_default().to_owned();
        let rtb_id = p.get("RouteTableId").unwrap_or_default().to_owned();
        let rtb_index = self
            .route_tables
            .iter()
            .position(|r| r.id == rtb_id)
            .ok_or_else(|| {
                err(
                    "InvalidRouteTableID.NotFound",
                    format!("The routeTable ID '{rtb_id}' does not exist"),
                )
            })?;
        let vpc_id = self.route_tables[rtb_index].vpc_id.clone();
        let vgw = self.vgw_mut(Some(&gateway_id))?;
        if on
            && !vgw
                .attachments
                .iter()
                .any(|a| a.vpc_id == vpc_id && a.state() == "attached")
        {
            return Err(err(
                "Gateway.NotAttached",
                format!("Gateway {gateway_id} is not attached to {vpc_id}"),
            ));
        }
        let rtb = &mut self.route_tables[rtb_index];
        rtb.propagating_vgws.retain(|g| *g != gateway_id);
        if on {
            rtb.propagating_vgws.push(gateway_id);
        }
        Ok(ok_return())
    }

    fn describe_route_tables(&self, p: &Params) -> Result<Xml, Ec2Error> {
        let matched = select(
            p,
            "RouteTableId",
            &self.route_tables,
            |r| &r.id,
            ("InvalidRouteTableID.NotFound", "routeTable"),
            |r, name| {
                Some(match name {
                    "route-table-id" => vec![r.id.clone()],
                    "vpc-id" => vec![r.vpc_id.clone()],
                    "association.subnet-id" => vec![r.subnet_id.clone()],
                    _ => return tag_field(&r.tags, name),
                })
            },
        )?;
        let mut x = Xml::new();
        x.set("routeTableSet", matched, |x, r| {
            let vpc_cidr = self
                .vpcs
                .iter()
                .find(|v| v.id == r.vpc_id)
                .map(|v| v.cidr.to_string())
                .unwrap_or_default();
            x.field("routeTableId", &r.id)
                .field("vpcId", &r.vpc_id)
                .field("ownerId", "123456789012");
            x.set("routeSet", [&vpc_cidr], |x, cidr| {
                x.field("destinationCidrBlock", cidr)
                    .field("gatewayId", "local")
                    .field("state", "active")
                    .field("origin", "CreateRouteTable");
            });
            x.set("associationSet", [r], |x, r| {
                x.field(
                    "routeTableAssociationId",
                    format!("rtbassoc-{}", &r.id[4..]),
                )
                .field("routeTableId", &r.id)
                .field("subnetId", &r.subnet_id)
                .field("main", "false");
            });
            x.set("propagatingVgwSet", &r.propagating_vgws, |x, g| {
                x.field("gatewayId", g);
            });
            x.tags(&r.tags);
        });
        Ok(x)
    }

    fn describe_vpcs(&self, p: &Params) -> Result<Xml, Ec2Error> {
        let matched = select(
            p,
            "VpcId",
            &self.vpcs,
            |v| &v.id,
            ("InvalidVpcID.NotFound", "vpc"),
            |v, name| {
                Some(match name {
                    "vpc-id" => vec![v.id.clone()],
                    "cidr" | "cidr-block-association.cidr-block" => vec![v.cidr.to_string()],
                    "state" => vec!["available".into()],
                    _ => return tag_field(&v.tags, name),
                })
            },
        )?;
        let mut x = Xml::new();
        x.set("vpcSet", matched, |x, v| {
            x.field("vpcId", &v.id)
                .field("state", "available")
                .field("cidrBlock", v.cidr)
                .field("ownerId", "123456789012")
                .field("isDefault", "false");
            x.tags(&v.tags);
        });
        Ok(x)
    }

    fn describe_subnets(&self, p: &Params) -> Result<Xml, Ec2Error> {
        let matched = select(
            p,
            "SubnetId",
            &self.subnets,
            |s| &s.id,
            ("InvalidSubnetID.NotFound", "subnet"),
            |s, name| {
                Some(match name {
                    "subnet-id" => vec![s.id.clone()],
                    "vpc-id" => vec![s.vpc_id.clone()],
                    "cidr-block" => vec![s.cidr.to_string()],
                    "state" => vec!["available".into()],
                    _ => return tag_field(&s.tags, name),
                })
            },
        )?;
        let mut x = Xml::new();
        let region = self.region.clone();
        x.set("subnetSet", matched, |x, s| {
            x.field("subnetId", &s.id)
                .field("state", "available")
                .field("vpcId", &s.vpc_id)
                .field("cidrBlock", s.cidr)
                .field("availabilityZone", format!("{region}a"))
                .field("ownerId", "123456789012");
            x.tags(&s.tags);
        });
        Ok(x)
    }

    fn create_tags(&mut self, p: &Params, create: bool) -> Result<Xml, Ec2Error> {
        let ids = p.list("ResourceId");
        if ids.is_empty() {
            return Err(err(
                "MissingParameter",
                "The request must contain the parameter ResourceId",
            ));
        }
        let tags = p.tags();
        for (key, value) in &tags {
            if key.is_empty()
                || key.chars().count() > 127
                || key.to_lowercase().starts_with("aws:")
                || value.chars().count() > 256
            {
                return Err(err(
                    "InvalidParameterValue",
                    format!("Invalid tag key or value: {key}"),
                ));
            }
        }
        for id in &ids {
            let target = self
                .tags_of(id)
                .ok_or_else(|| err("InvalidID", format!("The ID '{id}' is not valid")))?;
            if create {
                target.extend(tags.clone());
                if target.len() > 50 {
                    return Err(err(
                        "TagLimitExceeded",
                        format!("The maximum number of tags for {id} is 50"),
                    ));
                }
            } else if tags.is_empty() {
                target.clear();
            } else {
                target.retain(|k, _| !tags.contains_key(k));
            }
        }
        Ok(ok_return())
    }

    fn tags_of(&mut self, id: &str) -> Option<&mut BTreeMap<String, String>> {
        if let Some(v) = self.vgws.iter_mut().find(|v| v.id == id) {
            return Some(&mut v.tags);
        }
        if let Some(c) = self.cgws.iter_mut().find(|c| c.id == id) {
            return Some(&mut c.tags);
        }
        if let Some(v) = self.vpns.iter_mut().find(|v| v.id == id) {
            return Some(&mut v.tags);
        }
        if let Some(g) = self.security_groups.iter_mut().find(|g| g.id == id) {
            return Some(&mut g.tags);
        }
        if let Some(r) = self.route_tables.iter_mut().find(|r| r.id == id) {
            return Some(&mut r.tags);
        }
        if let Some(v) = self.vpcs.iter_mut().find(|v| v.id == id) {
            return Some(&mut v.tags);
        }
        self.subnets
            .iter_mut()
            .find(|s| s.id == id)
            .map(|s| &mut s.tags)
    }

    /// What a test or the operator sees of the inventory: every resource with its state, never a key.
    pub(crate) fn inventory(&self) -> serde_json::Value {
        let live = |state: &str| state != "deleted";
        serde_json::json!({
            "vpcs": self.vpcs,
            "subnets": self.subnets,
            "route_tables": self.route_tables,
            "security_groups": self.security_groups,
            "vpn_gateways": self.vgws.iter().filter(|v| live(v.life.state())).map(|v| serde_json::json!({
                "id": v.id, "state": v.life.state(), "asn": v.asn, "tags": v.tags,
                "attachments": v.attachments.iter().filter(|a| a.state() != "detached").map(|a| serde_json::json!({"vpc_id": a.vpc_id, "state": a.state()})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "customer_gateways": self.cgws.iter().filter(|c| live(c.life.state())).map(|c| serde_json::json!({
                "id": c.id, "state": c.life.state(), "ip_address": c.ip, "asn": c.asn, "tags": c.tags,
            })).collect::<Vec<_>>(),
            "vpn_connections": self.vpns.iter().filter(|v| live(v.life.state())).map(|v| serde_json::json!({
                "id": v.id, "state": v.life.state(), "customer_gateway_id": v.cgw_id, "vpn_gateway_id": v.vgw_id, "tags": v.tags,
                "tunnels": v.tunnels.iter().map(|t| serde_json::json!({"outside_ip": t.outside_ip, "inside_cidr": t.inside_cidr})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

impl super::resolver::Network for Ec2 {
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

/// `<return>true</return>` for actions without output.
fn ok_return() -> Xml {
    let mut x = Xml::new();
    x.field("return", "true");
    x
}

/// The items a Describe call asks for: those named by `id_param.N` (an unknown explicit id is
/// an error, not an empty set, as in EC2), kept when every filter matches `field`.
fn select<'a, T>(
    p: &Params,
    id_param: &str,
    items: &'a [T],
    id: impl Fn(&T) -> &String,
    (code, what): (&str, &str),
    field: impl Fn(&T, &str) -> Option<Vec<String>>,
) -> Result<Vec<&'a T>, Ec2Error> {
    let ids = p.list(id_param);
    not_found(&ids, items.iter().map(&id), code, what)?;
    let filters = p.filters();
    let mut matched = Vec::new();
    for item in items
        .iter()
        .filter(|item| ids.is_empty() || ids.contains(id(item)))
    {
        if matches(&filters, |name| field(item, name))? {
            matched.push(item);
        }
    }
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

/// EC2 filter values accept `*` (any run) and `?` (one character).
fn glob(pattern: &str, text: &str) -> bool {
    match (pattern.chars().next(), text.chars().next()) {
        (None, None) => true,
        (Some('*'), _) => {
            glob(&pattern[1..], text)
                || (!text.is_empty()
                    && glob(
                        pattern,
                        &text[text.chars().next().map_or(0, char::len_utf8)..],
                    ))
        }
        (Some('?'), Some(c)) => glob(&pattern[1..], &text[c.len_utf8()..]),
        (Some(p), Some(c)) if p == c => glob(&pattern[p.len_utf8()..], &text[c.len_utf8()..]),
        _ => false,
    }
}

fn write_vgw(x: &mut Xml, v: &Vgw) {
    x.field("vpnGatewayId", &v.id)
        .field("state", v.life.state())
        .field("type", "ipsec.1");
    x.set("attachments", &v.attachments, |x, a| {
        x.field("vpcId", &a.vpc_id).field("state", a.state());
    });
    x.field("amazonSideAsn", v.asn);
    x.tags(&v.tags);
}

fn write_cgw(x: &mut Xml, c: &Cgw) {
    x.field("customerGatewayId", &c.id)
        .field("state", c.life.state())
        .field("type", "ipsec.1")
        .field("ipAddress", c.ip)
        .field("bgpAsn", c.asn);
    x.maybe("deviceName", c.device_name.as_ref());
    x.tags(&c.tags);
}

fn now_iso() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn write_vpn(x: &mut Xml, v: &Vpn, cgw_ip: Ipv4Addr, cgw_asn: u32, vgw_asn: u32) {
    let state = v.life.state();
    x.field("vpnConnectionId", &v.id).field("state", state);
    // AWS includes the device configuration while the connection is pending or available.
    if matches!(state, "pending" | "available") {
        x.field(
            "customerGatewayConfiguration",
            device_configuration(v, cgw_ip, cgw_asn, vgw_asn),
        );
    }
    x.field("customerGatewayId", &v.cgw_id)
        .field("vpnGatewayId", &v.vgw_id)
        .field("type", "ipsec.1")
        .field("category", "VPN");
    x.element("options", |x| {
        x.field("enableAcceleration", "false")
            .field("staticRoutesOnly", v.static_routes_only)
            .field("localIpv4NetworkCidr", "0.0.0.0/0")
            .field("remoteIpv4NetworkCidr", "0.0.0.0/0")
            .field("tunnelInsideIpVersion", "ipv4");
        x.set("tunnelOptionSet", &v.tunnels, |x, t| {
            x.field("outsideIpAddress", t.outside_ip)
                .field("tunnelInsideCidr", t.inside_cidr)
                .field("preSharedKey", t.psk.expose());
            x.maybe("dpdTimeoutSeconds", t.dpd_timeout.as_ref());
            for (set, values) in [
                ("phase1EncryptionAlgorithmSet", &t.phase1_encryption),
                ("phase2EncryptionAlgorithmSet", &t.phase2_encryption),
                ("phase1IntegrityAlgorithmSet", &t.phase1_integrity),
                ("phase2IntegrityAlgorithmSet", &t.phase2_integrity),
                ("phase1DHGroupNumberSet", &t.phase1_dh),
                ("phase2DHGroupNumberSet", &t.phase2_dh),
                ("ikeVersionSet", &t.ike_versions),
            ] {
                x.set(set, values, |x, v| {
                    x.field("value", v);
                });
            }
            x.field("startupAction", &t.startup_action);
        });
    });
    x.set("routes", std::iter::empty::<()>(), |_, ()| {});
    x.tags(&v.tags);
    if state != "deleted" {
        let changed = now_iso();
        x.set("vgwTelemetry", &v.tunnels, |x, t| {
            // With BGP, AWS reports a tunnel UP only once its session is established.
            let tel = t.telemetry;
            let up = tel.ipsec_up && tel.bgp_up;
            let message = match (tel.ipsec_up, tel.bgp_up) {
                (true, true) => format!("{} BGP ROUTES", tel.accepted_routes),
                (true, false) => "IPSEC IS UP".to_owned(),
                _ => "IPSEC IS DOWN".to_owned(),
            };
            x.field("outsideIpAddress", t.outside_ip)
                .field("status", if up { "UP" } else { "DOWN" })
                .field("lastStatusChange", &changed)
                .field("statusMessage", &message)
                .field(
                    "acceptedRouteCount",
                    if up { tel.accepted_routes } else { 0 },
                );
        });
    }
}

/// The native device configuration AWS embeds (escaped) in `customerGatewayConfiguration`.
fn device_configuration(v: &Vpn, cgw_ip: Ipv4Addr, cgw_asn: u32, vgw_asn: u32) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<vpn_connection id=\"{}\"><customer_gateway_id>{}</customer_gateway_id><vpn_gateway_id>{}</vpn_gateway_id><vpn_connection_type>ipsec.1</vpn_connection_type>",
        v.id, v.cgw_id, v.vgw_id
    );
    for t in &v.tunnels {
        let aws_inside = dxvpn_cidr::inside::aws_inside_ip(t.inside_cidr);
        let cgw_inside = dxvpn_cidr::inside::azure_inside_ip(t.inside_cidr);
        out.push_str(&format!(
            "<ipsec_tunnel><customer_gateway><tunnel_outside_address><ip_address>{cgw_ip}</ip_address></tunnel_outside_address><tunnel_inside_address><ip_address>{cgw_inside}</ip_address><network_mask>255.255.255.252</network_mask><network_cidr>30</network_cidr></tunnel_inside_address><bgp><asn>{cgw_asn}</asn><hold_time>30</hold_time></bgp></customer_gateway><vpn_gateway><tunnel_outside_address><ip_address>{}</ip_address></tunnel_outside_address><tunnel_inside_address><ip_address>{aws_inside}</ip_address><network_mask>255.255.255.252</network_mask><network_cidr>30</network_cidr></tunnel_inside_address><bgp><asn>{vgw_asn}</asn><hold_time>30</hold_time></bgp></vpn_gateway><ike><authentication_protocol>sha1</authentication_protocol><encryption_protocol>aes-128-cbc</encryption_protocol><lifetime>28800</lifetime><perfect_forward_secrecy>group2</perfect_forward_secrecy><mode>main</mode><pre_shared_key>{}</pre_shared_key></ike><ipsec><protocol>esp</protocol><mode>tunnel</mode></ipsec></ipsec_tunnel>",
            t.outside_ip,
            t.psk.expose()
        ));
    }
    out.push_str("</vpn_connection>");
    out
}

impl Ec2 {
    /// The tunnels as AWS holds them, keys included, for the lab's data plane (in memory only).
    pub(crate) fn lab_view(&self) -> crate::binding::AwsView {
        use crate::binding::{AwsTunnelParams, AwsView, AwsVpnView};
        let Some(vpc) = self.vpcs.first() else {
            return AwsView::default();
        };
        let attached: Vec<&Vgw> = self
            .vgws
            .iter()
            .filter(|g| {
                g.life.live()
                    && g.attachments
                        .iter()
                        .any(|a| a.vpc_id == vpc.id && a.state() == "attached")
            })
            .collect();
        let vpns = self
            .vpns
            .iter()
            .filter(|v| v.life.state() == "available")
            .filter_map(|v| {
                let vgw = attached.iter().find(|g| g.id == v.vgw_id)?;
                let cgw = self.cgws.iter().find(|c| c.id == v.cgw_id)?;
                Some(AwsVpnView {
                    id: v.id.clone(),
                    index: v
                        .tags
                        .get("dxvpn:role")
                        .and_then(|r| r.strip_prefix("aws.vpn_connection."))
                        .and_then(|n| n.parse().ok()),
                    vgw_asn: vgw.asn,
                    customer_gateway: (cgw.ip, cgw.asn),
                    tunnels: v
                        .tunnels
                        .iter()
                        .map(|t| AwsTunnelParams {
                            outside_ip: t.outside_ip,
                            inside_cidr: t.inside_cidr,
                            psk: t.psk.clone(),
                        })
                        .collect(),
                })
            })
            .collect();
        let host_rtb = self.route_tables.first();
        AwsView {
            vpc_cidr: Some(vpc.cidr),
            host_subnet: self.subnets.first().map(|s| s.cidr),
            host_route_propagation: host_rtb.is_some_and(|r| {
                r.propagating_vgws
                    .iter()
                    .any(|g| attached.iter().any(|a| a.id == *g))
            }),
            vpns,
        }
    }

    /// Replaces every tunnel's telemetry; tunnels not named read DOWN.
    pub(crate) fn set_telemetry(&mut self, reports: &BTreeMap<Ipv4Addr, TunnelTelemetry>) {
        for t in self.vpns.iter_mut().flat_map(|v| v.tunnels.iter_mut()) {
            t.telemetry = reports.get(&t.outside_ip).copied().unwrap_or_default();
        }
    }

    /// Test hook: AWS now holds another key for this tunnel (or another customer gateway ASN
    /// for its connection), as if someone changed it behind dxvpn's back. False when no live
    /// tunnel has that outside address.
    pub(crate) fn tamper(&mut self, tamper: &crate::faults::Tamper) -> bool {
        use crate::faults::Tamper;
        let ip = tamper.outside_ip();
        let Some(vpn) = self
            .vpns
            .iter_mut()
            .find(|v| v.life.live() && v.tunnels.iter().any(|t| t.outside_ip == ip))
        else {
            return false;
        };
        match tamper {
            Tamper::Psk { .. } => {
                for t in vpn.tunnels.iter_mut().filter(|t| t.outside_ip == ip) {
                    t.psk = PresharedKey::generate();
                }
            }
            Tamper::PeerAsn { asn, .. } => {
                let cgw_id = vpn.cgw_id.clone();
                for c in self.cgws.iter_mut().filter(|c| c.id == cgw_id) {
                    c.asn = *asn;
                }
            }
        }
        true
    }
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
    }

    #[test]
    fn lifecycle_moves_from_pending_to_deleted() {
        let mut life = Lifecycle::new(Duration::ZERO, Duration::from_secs(3600));
        assert_eq!(life.state(), "available");
        life.deleted = Some(Instant::now());
        assert_eq!(life.state(), "deleting");
        life.delete_after = Duration::ZERO;
        assert_eq!(life.state(), "deleted");
    }
}
