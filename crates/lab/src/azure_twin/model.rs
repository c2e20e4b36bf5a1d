//! The Azure twin's inventory: ARM resources as JSON, Azure's documented rules, and states that
//! follow from scaled timestamps (no background task), as in the AWS twin.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dxvpn_cidr::Ipv4Net;
use dxvpn_cidr::inside::{AZURE_APIPA_FIRST, AZURE_APIPA_LAST};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::kind::Kind;

/// An ARM error: HTTP status, code and message, sent as `{"error":{"code","message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ArmError {
    #[serde(skip)]
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
}

mod dns_view;

pub(crate) fn bad(code: &str, message: impl Into<String>) -> ArmError {
    ArmError {
        status: 400,
        code: code.to_owned(),
        message: message.into(),
    }
}

fn not_found(id: &str, kind: Kind, rg: &str) -> ArmError {
    let (code, message) = if kind.tracked() {
        (
            "ResourceNotFound",
            format!(
                "The Resource '{}/{}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
                kind.type_name(),
                id.rsplit('/').next().unwrap_or(id)
            ),
        )
    } else {
        ("NotFound", format!("Resource {id} not found."))
    };
    ArmError {
        status: 404,
        code: code.to_owned(),
        message,
    }
}

fn reference_error(referenced: &str, by: &str) -> ArmError {
    bad(
        "InvalidResourceReference",
        format!(
            "Resource {referenced} referenced by resource {by} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region."
        ),
    )
}

/// What a scenario seeds: a resource group with a VNet, its subnets, and optionally a VPN gateway
/// that dxvpn should reuse rather than create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AzureScenario {
    /// Subscription id.
    pub subscription_id: String,
    /// Resource group.
    pub resource_group: String,
    /// Region.
    pub location: String,
    /// The VNet's name.
    pub vnet_name: String,
    /// Its address space.
    pub vnet_cidr: Ipv4Net,
    /// Its subnets, `GatewaySubnet` included.
    pub subnets: Vec<SeedSubnet>,
    /// A VPN gateway that exists already.
    #[serde(default)]
    pub existing_gateway: Option<SeedGateway>,
}

/// A seeded subnet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedSubnet {
    /// Name (`GatewaySubnet` for the gateway's).
    pub name: String,
    /// Prefix.
    pub cidr: Ipv4Net,
}

/// A seeded VPN gateway (in `GatewaySubnet`, with its own Standard public IPs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedGateway {
    /// Gateway name.
    pub name: String,
    /// Two instances or one.
    pub active_active: bool,
    /// BGP ASN.
    pub asn: u32,
}

impl Default for AzureScenario {
    fn default() -> Self {
        AzureScenario {
            subscription_id: "5eed0000-0000-4000-8000-00000000a2e1".into(),
            resource_group: "dxvpn-lab-rg".into(),
            location: "italynorth".into(),
            vnet_name: "dxvpn-lab-vnet".into(),
            vnet_cidr: Ipv4Net::new_assert(Ipv4Addr::new(10, 1, 0, 0), 16),
            subnets: vec![
                SeedSubnet {
                    name: "GatewaySubnet".into(),
                    cidr: Ipv4Net::new_assert(Ipv4Addr::new(10, 1, 255, 0), 27),
                },
                SeedSubnet {
                    name: "workload".into(),
                    cidr: Ipv4Net::new_assert(Ipv4Addr::new(10, 1, 1, 0), 24),
                },
            ],
            existing_gateway: None,
        }
    }
}

/// Ids the scenario was seeded with.
#[derive(Debug, Clone, Serialize)]
pub struct AzureSeeded {
    /// Subscription.
    pub subscription_id: String,
    /// Resource group.
    pub resource_group: String,
    /// Region.
    pub location: String,
    /// The VNet's ARM id.
    pub vnet_id: String,
    /// The existing gateway's ARM id, when the scenario has one.
    pub existing_gateway_id: Option<String>,
    /// Its public IPs.
    pub existing_gateway_ips: Vec<Ipv4Addr>,
}

/// What the data plane reports (set by the lab; until then an honest "not connected").
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    /// Connection name (lower case) -> `Connected` / `Connecting` / `NotConnected`.
    pub connection_status: BTreeMap<String, String>,
    /// BGP neighbor -> (state, routes received).
    pub bgp_peers: BTreeMap<Ipv4Addr, (String, u32)>,
    /// Routes the gateway learned: (prefix, next hop, origin).
    pub learned_routes: Vec<(Ipv4Net, Ipv4Addr, String)>,
}

#[derive(Debug, Clone)]
struct Record {
    id: String,
    kind: Kind,
    /// Location, tags, sku, zones and properties as last PUT (read-only members dropped).
    body: Map<String, Value>,
    guid: String,
    etag: String,
    changed: Instant,
    ready_after: Duration,
    deleting: Option<(Instant, Duration)>,
    failure: Option<ArmError>,
    /// For public IPs: the address.
    ip: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Provisioning,
    Succeeded,
    Failed,
    Deleting,
    Gone,
}

impl Record {
    fn phase(&self) -> Phase {
        match self.deleting {
            Some((at, after)) if at.elapsed() >= after => Phase::Gone,
            Some(_) => Phase::Deleting,
            None if self.changed.elapsed() < self.ready_after => Phase::Provisioning,
            None if self.failure.is_some() => Phase::Failed,
            None => Phase::Succeeded,
        }
    }

    fn provisioning_state(&self, created: bool) -> &'static str {
        match self.phase() {
            Phase::Provisioning if self.kind.is_dns() && created => "Creating",
            Phase::Provisioning => "Updating",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Deleting | Phase::Gone => "Deleting",
        }
    }

    fn name(&self) -> &str {
        self.id.rsplit('/').next().unwrap_or(&self.id)
    }

    fn props(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.body
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }

    fn prop_str(&self, key: &str) -> Option<&str> {
        self.props().get(key).and_then(Value::as_str)
    }
}

/// A long-running operation: what it acts on and how it ends.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub(crate) resource: String,
    pub(crate) delete: bool,
    pub(crate) dns: bool,
}

/// The status of an operation, as the poll URL reports it.
pub(crate) enum OpStatus {
    InProgress,
    Succeeded,
    Failed(ArmError),
}

/// What a successful PUT or DELETE answers.
pub(crate) struct Accepted {
    pub(crate) status: u16,
    pub(crate) body: Option<Value>,
    /// The operation to poll, when the work goes on after the answer.
    pub(crate) operation: Option<String>,
}

/// The twin's whole state.
#[derive(Debug)]
pub(crate) struct Arm {
    pub(crate) seeded: AzureSeeded,
    seed_ids: BTreeSet<String>,
    time_factor: f64,
    records: BTreeMap<String, Record>,
    /// Connection shared keys, apart from the bodies so that no dump can show them.
    keys: BTreeMap<String, String>,
    operations: BTreeMap<String, Operation>,
    next_serial: u64,
    pub(crate) telemetry: Telemetry,
    /// Injected: the next operation started fails with this error.
    pub(crate) fail_next: Option<ArmError>,
}

/// JSON pointers on an object, as `Value::pointer` offers on values.
trait MapPointer {
    fn pointer(&self, pointer: &str) -> Option<&Value>;
}

impl MapPointer for Map<String, Value> {
    fn pointer(&self, pointer: &str) -> Option<&Value> {
        let path = pointer.strip_prefix('/')?;
        let (first, rest) = path.split_once('/').unwrap_or((path, ""));
        let value = self.get(first)?;
        if rest.is_empty() {
            Some(value)
        } else {
            value.pointer(&format!("/{rest}"))
        }
    }
}

fn key_of(id: &str) -> String {
    id.to_ascii_lowercase()
}

fn ref_id(value: Option<&Value>) -> Option<&str> {
    value?.get("id")?.as_str()
}

fn parse_ip(value: &str, field: &str) -> Result<Ipv4Addr, ArmError> {
    value.parse().map_err(|_| {
        bad(
            "InvalidRequestFormat",
            format!("Value '{value}' of {field} is not a valid IPv4 address."),
        )
    })
}

fn parse_prefix(value: &str, field: &str) -> Result<Ipv4Net, ArmError> {
    dxvpn_cidr::parse_network(value).map_err(|e| {
        bad(
            "InvalidAddressPrefixFormat",
            format!("Address prefix '{value}' of {field} is not valid: {e}."),
        )
    })
}

/// The non-empty list at `pointer`, or the error that names it.
fn required_list<'a>(
    body: &'a Map<String, Value>,
    pointer: &str,
    problem: &str,
) -> Result<&'a Vec<Value>, ArmError> {
    body.pointer(pointer)
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| bad("InvalidRequestFormat", problem))
}

fn in_apipa_range(ip: Ipv4Addr) -> bool {
    (AZURE_APIPA_FIRST..=AZURE_APIPA_LAST).contains(&ip)
}

fn check_asn(asn: u64, field: &str, gateway: bool) -> Result<(), ArmError> {
    let reserved = u32::try_from(asn).map_or(true, |a| {
        a == 0
            || a == u32::MAX
            || dxvpn_tunnel::asn::is_azure_reserved(a)
            || (!gateway && a == 65515)
    });
    if reserved {
        return Err(bad(
            "BgpAsnIsReserved",
            format!(
                "ASN {asn} in {field} is reserved by Azure or IANA (8074, 8075, 12076, 23456, 64496-64511, 65515 for peers, 65517-65520, 65535-65551). Use a private ASN such as 65000."
            ),
        ));
    }
    Ok(())
}

/// Subnet prefixes a request gives: `addressPrefix` or `addressPrefixes[0]`.
fn subnet_prefix(props: &Map<String, Value>, field: &str) -> Result<Ipv4Net, ArmError> {
    let raw = props
        .get("addressPrefix")
        .and_then(Value::as_str)
        .or_else(|| {
            props
                .get("addressPrefixes")
                .and_then(|v| v.get(0))
                .and_then(Value::as_str)
        })
        .ok_or_else(|| {
            bad(
                "InvalidRequestFormat",
                format!("{field}.properties.addressPrefix is required."),
            )
        })?;
    parse_prefix(raw, &format!("{field}.properties.addressPrefix"))
}

const DNS_DELEGATION: &str = "Microsoft.Network/dnsResolvers";

const GATEWAY_SKUS: &[&str] = &[
    "Basic",
    "HighPerformance",
    "Standard",
    "UltraPerformance",
    "VpnGw1",
    "VpnGw2",
    "VpnGw3",
    "VpnGw4",
    "VpnGw5",
    "VpnGw1AZ",
    "VpnGw2AZ",
    "VpnGw3AZ",
    "VpnGw4AZ",
    "VpnGw5AZ",
];

impl Arm {
    /// A twin seeded from `scenario`.
    pub(crate) fn new(scenario: &AzureScenario, time_factor: f64) -> Result<Self, ArmError> {
        let base = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network",
            scenario.subscription_id, scenario.resource_group
        );
        let vnet_id = format!("{base}/virtualNetworks/{}", scenario.vnet_name);
        let mut arm = Arm {
            seeded: AzureSeeded {
                subscription_id: scenario.subscription_id.clone(),
                resource_group: scenario.resource_group.clone(),
                location: scenario.location.clone(),
                vnet_id: vnet_id.clone(),
                existing_gateway_id: None,
                existing_gateway_ips: Vec::new(),
            },
            seed_ids: BTreeSet::new(),
            // Seeding is instant whatever the time factor.
            time_factor: 0.0,
            records: BTreeMap::new(),
            keys: BTreeMap::new(),
            operations: BTreeMap::new(),
            next_serial: 0,
            telemetry: Telemetry::default(),
            fail_next: None,
        };
        let subnets: Vec<Value> = scenario
            .subnets
            .iter()
            .map(|s| json!({"name": s.name, "properties": {"addressPrefix": s.cidr.to_string()}}))
            .collect();
        arm.put(
            &vnet_id,
            Kind::VirtualNetwork,
            json!({
                "location": scenario.location,
                "properties": {
                    "addressSpace": {"addressPrefixes": [scenario.vnet_cidr.to_string()]},
                    "subnets": subnets,
                }
            }),
        )?;
        if let Some(gw) = &scenario.existing_gateway {
            let instances = if gw.active_active { 2 } else { 1 };
            let mut ip_configurations = Vec::new();
            for i in 0..instances {
                let pip_id = format!("{base}/publicIPAddresses/{}-pip-{}", gw.name, i + 1);
                arm.put(
                    &pip_id,
                    Kind::PublicIp,
                    json!({
                        "location": scenario.location,
                        "sku": {"name": "Standard", "tier": "Regional"},
                        "properties": {"publicIPAllocationMethod": "Static"},
                    }),
                )?;
                if let Some(ip) = arm.records.get(&key_of(&pip_id)).and_then(|r| r.ip) {
                    arm.seeded.existing_gateway_ips.push(ip);
                }
                ip_configurations.push(json!({
                    "name": format!("ipconfig{}", i + 1),
                    "properties": {
                        "privateIPAllocationMethod": "Dynamic",
                        "subnet": {"id": format!("{vnet_id}/subnets/GatewaySubnet")},
                        "publicIPAddress": {"id": pip_id},
                    }
                }));
            }
            let gw_id = format!("{base}/virtualNetworkGateways/{}", gw.name);
            arm.put(
                &gw_id,
                Kind::Gateway,
                json!({
                    "location": scenario.location,
                    "properties": {
                        "gatewayType": "Vpn",
                        "vpnType": "RouteBased",
                        "sku": {"name": "VpnGw2AZ", "tier": "VpnGw2AZ"},
                        "vpnGatewayGeneration": "Generation2",
                        "activeActive": gw.active_active,
                        "enableBgp": true,
                        "bgpSettings": {"asn": gw.asn},
                        "ipConfigurations": ip_configurations,
                    }
                }),
            )?;
            arm.seeded.existing_gateway_id = Some(gw_id);
        }
        arm.seed_ids = arm.records.keys().cloned().collect();
        arm.operations.clear();
        arm.time_factor = time_factor;
        Ok(arm)
    }

    fn scaled(&self, real: Duration) -> Duration {
        real.mul_f64(self.time_factor)
    }

    fn serial(&mut self) -> u64 {
        self.next_serial += 1;
        self.next_serial
    }

    fn guid(&mut self) -> String {
        let n = self.serial();
        format!(
            "5eed{n:04x}-0000-4000-8000-{:012x}",
            rand::random::<u64>() >> 16
        )
    }

    /// Drops resources whose deletion has finished, and frees what they held.
    pub(crate) fn sweep(&mut self) {
        let gone: Vec<String> = self
            .records
            .iter()
            .filter(|(_, r)| r.phase() == Phase::Gone)
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            self.records.remove(&key);
            self.keys.remove(&key);
        }
    }

    fn live(&self, id: &str) -> Option<&Record> {
        self.records
            .get(&key_of(id))
            .filter(|r| !matches!(r.phase(), Phase::Gone))
    }

    /// A referenced resource of kind `kind` that exists and is not being deleted.
    fn referenced(
        &self,
        id: Option<&str>,
        kind: Kind,
        by: &str,
        field: &str,
    ) -> Result<&Record, ArmError> {
        let id =
            id.ok_or_else(|| bad("InvalidRequestFormat", format!("{field}.id is required.")))?;
        self.live(id)
            .filter(|r| r.kind == kind && r.deleting.is_none())
            .ok_or_else(|| reference_error(id, by))
    }

    fn children_of<'a>(
        &'a self,
        parent: &'a str,
        kind: Kind,
    ) -> impl Iterator<Item = &'a Record> + 'a {
        let prefix = format!("{}/", key_of(parent));
        self.records
            .iter()
            .filter(move |(k, r)| {
                r.kind == kind && k.starts_with(&prefix) && r.phase() != Phase::Gone
            })
            .map(|(_, r)| r)
    }

    fn all_live(&self, kind: Kind) -> impl Iterator<Item = &Record> + '_ {
        self.records
            .values()
            .filter(move |r| r.kind == kind && r.phase() != Phase::Gone)
    }

    /// Subnet ids referenced by live gateways and DNS endpoints: (subnet key, user id).
    fn subnet_users(&self) -> Vec<(String, String)> {
        let mut users = Vec::new();
        for r in self.records.values().filter(|r| r.phase() != Phase::Gone) {
            match r.kind {
                Kind::Gateway => {
                    for c in r
                        .props()
                        .get("ipConfigurations")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(s) = c.pointer("/properties/subnet/id").and_then(Value::as_str)
                        {
                            let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
                            users.push((key_of(s), format!("{}/ipConfigurations/{name}", r.id)));
                        }
                    }
                }
                Kind::InboundEndpoint => {
                    for c in r
                        .props()
                        .get("ipConfigurations")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(s) = c.pointer("/subnet/id").and_then(Value::as_str) {
                            users.push((key_of(s), r.id.clone()));
                        }
                    }
                }
                Kind::OutboundEndpoint => {
                    if let Some(s) = r
                        .props()
                        .get("subnet")
                        .and_then(|v| v.get("id"))
                        .and_then(Value::as_str)
                    {
                        users.push((key_of(s), r.id.clone()));
                    }
                }
                _ => {}
            }
        }
        users
    }

    // ---------------------------------------------------------------- PUT

    /// Creates or updates the resource `id` of `kind` with `body`.
    pub(crate) fn put(&mut self, id: &str, kind: Kind, body: Value) -> Result<Accepted, ArmError> {
        self.sweep();
        let Value::Object(mut body) = body else {
            return Err(bad(
                "InvalidRequestContent",
                "The request content must be a JSON object.",
            ));
        };
        let existing = self.live(id).cloned();
        if let Some(r) = &existing
            && r.deleting.is_some()
        {
            return Err(ArmError {
                status: 409,
                code: "AnotherOperationInProgress".into(),
                message: format!("Resource {} is being deleted.", r.id),
            });
        }
        if kind.tracked() && body.get("location").and_then(Value::as_str).is_none() {
            return Err(bad(
                "LocationRequired",
                "The location property is required for this definition.",
            ));
        }
        if !body.get("properties").is_some_and(Value::is_object) {
            body.insert("properties".into(), json!({}));
        }
        // Parent must exist for children.
        if let Some((parent, _)) = id.rsplit_once('/').and_then(|(p, _)| p.rsplit_once('/'))
            && matches!(
                kind,
                Kind::Subnet
                    | Kind::InboundEndpoint
                    | Kind::OutboundEndpoint
                    | Kind::ForwardingRule
                    | Kind::VnetLink
            )
            && self.live(parent).is_none()
        {
            let parent_kind = match kind {
                Kind::Subnet => Kind::VirtualNetwork,
                Kind::InboundEndpoint | Kind::OutboundEndpoint => Kind::DnsResolver,
                _ => Kind::Ruleset,
            };
            return Err(not_found(parent, parent_kind, &self.seeded.resource_group));
        }
        let mut shared_key = None;
        match kind {
            Kind::PublicIp => self.check_public_ip(&body)?,
            Kind::VirtualNetwork => self.check_vnet(id, &body)?,
            Kind::Subnet => self.check_subnet(id, &body)?,
            Kind::Gateway => self.check_gateway(id, &body)?,
            Kind::LocalGateway => Self::check_local_gateway(&body)?,
            Kind::Connection => shared_key = Some(self.check_connection(id, &mut body)?),
            Kind::DnsResolver => self.check_resolver(id, &body)?,
            Kind::InboundEndpoint | Kind::OutboundEndpoint => {
                self.check_endpoint(id, kind, &body)?
            }
            Kind::Ruleset => self.check_ruleset(id, &body)?,
            Kind::ForwardingRule => Self::check_rule(&body)?,
            Kind::VnetLink => self.check_link(id, &body)?,
        }
        strip_read_only(kind, &mut body);
        let created = existing.is_none();
        let duration = if created {
            kind.create_time()
        } else {
            kind.update_time()
        };
        let failure = self.fail_next.take();
        let guid = match &existing {
            Some(r) => r.guid.clone(),
            None => self.guid(),
        };
        let etag_guid = self.guid();
        let ip = match (&existing, kind) {
            (Some(r), _) => r.ip,
            (None, Kind::PublicIp) => Some(self.allocate_public_ip()?),
            _ => None,
        };
        let record = Record {
            id: existing
                .as_ref()
                .map_or_else(|| id.to_owned(), |r| r.id.clone()),
            kind,
            body,
            guid,
            etag: if kind.is_dns() {
                etag_guid
            } else {
                format!("W/\"{etag_guid}\"")
            },
            changed: Instant::now(),
            ready_after: self.scaled(duration),
            deleting: None,
            failure,
            ip,
        };
        let key = key_of(id);
        if let Some(k) = shared_key {
            self.keys.insert(key.clone(), k);
        }
        // A VNet PUT carries its subnets inline: they become child resources.
        let inline_subnets = (kind == Kind::VirtualNetwork)
            .then(|| record.props().get("subnets").cloned())
            .flatten();
        self.records.insert(key.clone(), record);
        if let Some(Value::Array(subnets)) = inline_subnets {
            self.sync_inline_subnets(id, &subnets)?;
            if let Some(r) = self.records.get_mut(&key)
                && let Some(p) = r.body.get_mut("properties").and_then(Value::as_object_mut)
            {
                p.remove("subnets");
            }
        }
        let operation =
            (!kind.synchronous()).then(|| self.start_operation(&key, false, kind.is_dns()));
        Ok(Accepted {
            status: if created { 201 } else { 200 },
            body: Some(self.render(&key)?),
            operation,
        })
    }

    fn sync_inline_subnets(&mut self, vnet_id: &str, subnets: &[Value]) -> Result<(), ArmError> {
        let mut wanted = BTreeSet::new();
        for s in subnets {
            let name = s.get("name").and_then(Value::as_str).ok_or_else(|| {
                bad(
                    "InvalidRequestFormat",
                    "properties.subnets[].name is required.",
                )
            })?;
            let sub_id = format!("{vnet_id}/subnets/{name}");
            wanted.insert(key_of(&sub_id));
            let body =
                json!({"properties": s.get("properties").cloned().unwrap_or_else(|| json!({}))});
            self.put(&sub_id, Kind::Subnet, body)?;
        }
        let stale: Vec<String> = self
            .children_of(vnet_id, Kind::Subnet)
            .map(|r| r.id.clone())
            .filter(|id| !wanted.contains(&key_of(id)))
            .collect();
        for id in stale {
            self.check_subnet_free(&id)?;
            self.records.remove(&key_of(&id));
        }
        Ok(())
    }

    fn allocate_public_ip(&self) -> Result<Ipv4Addr, ArmError> {
        let used: BTreeSet<Ipv4Addr> = self.records.values().filter_map(|r| r.ip).collect();
        (1..=254u8)
            .map(|n| Ipv4Addr::new(198, 18, 2, n))
            .find(|ip| !used.contains(ip))
            .ok_or_else(|| {
                bad(
                    "PublicIPCountLimitReached",
                    "The lab's internet has no free public IP address left.",
                )
            })
    }

    fn start_operation(&mut self, key: &str, delete: bool, dns: bool) -> String {
        let n = self.serial();
        let id = format!(
            "5eed0000-{n:04x}-4000-8000-{:012x}",
            rand::random::<u64>() >> 16
        );
        self.operations.insert(
            id.clone(),
            Operation {
                resource: key.to_owned(),
                delete,
                dns,
            },
        );
        id
    }

    fn check_public_ip(&self, body: &Map<String, Value>) -> Result<(), ArmError> {
        let sku = body
            .get("sku")
            .and_then(|s| s.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("Basic");
        if !["Basic", "Standard"].contains(&sku) {
            return Err(bad(
                "InvalidRequestFormat",
                format!("sku.name '{sku}' is not one of Basic, Standard."),
            ));
        }
        let props = body.get("properties").and_then(Value::as_object);
        let allocation = props
            .and_then(|p| p.get("publicIPAllocationMethod"))
            .and_then(Value::as_str)
            .unwrap_or(if sku == "Standard" {
                "Static"
            } else {
                "Dynamic"
            });
        if !["Static", "Dynamic"].contains(&allocation) {
            return Err(bad(
                "InvalidRequestFormat",
                format!("publicIPAllocationMethod '{allocation}' is not one of Static, Dynamic."),
            ));
        }
        if sku == "Standard" && allocation == "Dynamic" {
            return Err(bad(
                "StandardSkuPublicIPAddressesCannotBeDynamic",
                "Standard sku publicIp addresses must have publicIPAllocationMethod set to Static.",
            ));
        }
        Ok(())
    }

    fn check_vnet(&self, id: &str, body: &Map<String, Value>) -> Result<(), ArmError> {
        let prefixes = required_list(
            body,
            "/properties/addressSpace/addressPrefixes",
            "properties.addressSpace.addressPrefixes needs at least one prefix.",
        )?;
        let space: Vec<Ipv4Net> = prefixes
            .iter()
            .map(|p| {
                parse_prefix(
                    p.as_str().unwrap_or_default(),
                    "properties.addressSpace.addressPrefixes",
                )
            })
            .collect::<Result<_, _>>()?;
        let mut seen: Vec<Ipv4Net> = Vec::new();
        for s in body
            .pointer("/properties/subnets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
            let props = s
                .get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let prefix = subnet_prefix(&props, &format!("properties.subnets['{name}']"))?;
            if !space.iter().any(|v| dxvpn_cidr::contains(*v, prefix)) {
                return Err(bad(
                    "NetcfgSubnetRangeOutsideVnet",
                    format!(
                        "Subnet '{name}' is not valid because its IP address range is outside the IP address range of virtual network '{}'.",
                        id.rsplit('/').next().unwrap_or(id)
                    ),
                ));
            }
            if let Some(other) = seen.iter().find(|o| dxvpn_cidr::overlaps(**o, prefix)) {
                return Err(bad(
                    "NetcfgSubnetRangesOverlap",
                    format!(
                        "Subnet '{name}' ({prefix}) overlaps another subnet ({other}) of the virtual network."
                    ),
                ));
            }
            seen.push(prefix);
        }
        Ok(())
    }

    fn check_subnet(&self, id: &str, body: &Map<String, Value>) -> Result<(), ArmError> {
        let (vnet_id, _) = id.rsplit_once("/subnets/").unwrap_or((id, ""));
        let name = id.rsplit('/').next().unwrap_or(id);
        let props = body
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let prefix = subnet_prefix(&props, "properties")?;
        let vnet = self
            .live(vnet_id)
            .ok_or_else(|| not_found(vnet_id, Kind::VirtualNetwork, &self.seeded.resource_group))?;
        let space: Vec<Ipv4Net> = vnet
            .props()
            .get("addressSpace")
            .and_then(|a| a.get("addressPrefixes"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().and_then(|p| dxvpn_cidr::parse_network(p).ok()))
            .collect();
        if !space.iter().any(|v| dxvpn_cidr::contains(*v, prefix)) {
            return Err(bad(
                "NetcfgSubnetRangeOutsideVnet",
                format!(
                    "Subnet '{name}' is not valid because its IP address range ({prefix}) is outside the IP address range of virtual network '{}'.",
                    vnet.name()
                ),
            ));
        }
        for sibling in self.children_of(vnet_id, Kind::Subnet) {
            if key_of(&sibling.id) == key_of(id) {
                continue;
            }
            if let Ok(other) = subnet_prefix(sibling.props(), "subnet")
                && dxvpn_cidr::overlaps(other, prefix)
            {
                return Err(bad(
                    "NetcfgSubnetRangesOverlap",
                    format!(
                        "Subnet '{name}' ({prefix}) overlaps subnet '{}' ({other}). Pick a free range of the virtual network.",
                        sibling.name()
                    ),
                ));
            }
        }
        let delegations = props
            .get("delegations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if name.eq_ignore_ascii_case("GatewaySubnet") && !delegations.is_empty() {
            return Err(bad(
                "GatewaySubnet",
                "Subnet with name 'GatewaySubnet' can be used only for the Gateway resource; it cannot be delegated.",
            ));
        }
        for d in &delegations {
            if d.pointer("/properties/serviceName").and_then(Value::as_str) == Some(DNS_DELEGATION)
                && !(24..=28).contains(&prefix.prefix_len())
            {
                return Err(bad(
                    "InvalidSubnetSizeForDnsResolver",
                    format!(
                        "Subnet '{name}' ({prefix}) delegated to {DNS_DELEGATION} must be between /28 and /24."
                    ),
                ));
            }
        }
        // A subnet in use keeps its range.
        if let Some(current) = self.live(id)
            && subnet_prefix(current.props(), "subnet").ok() != Some(prefix)
            && let Some((_, user)) = self
                .subnet_users()
                .into_iter()
                .find(|(s, _)| *s == key_of(id))
        {
            return Err(bad(
                "InUseSubnetCannotBeUpdated",
                format!("Subnet {name} is in use by {user}; its address prefix cannot change."),
            ));
        }
        Ok(())
    }

    fn check_subnet_free(&self, id: &str) -> Result<(), ArmError> {
        if let Some((_, user)) = self
            .subnet_users()
            .into_iter()
            .find(|(s, _)| *s == key_of(id))
        {
            let name = id.rsplit('/').next().unwrap_or(id);
            return Err(bad(
                "InUseSubnetCannotBeDeleted",
                format!(
                    "Subnet {name} is in use by {user} and cannot be deleted. In order to delete the subnet, delete all the resources within the subnet. See aka.ms/deletesubnet."
                ),
            ));
        }
        Ok(())
    }

    fn check_gateway(&self, id: &str, body: &Map<String, Value>) -> Result<(), ArmError> {
        let props = body
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let s = |k: &str| props.get(k).and_then(Value::as_str);
        let b = |k: &str| props.get(k).and_then(Value::as_bool).unwrap_or(false);
        let gateway_type = s("gatewayType").unwrap_or("Vpn");
        if gateway_type != "Vpn" {
            return Err(bad(
                "UnsupportedGatewayType",
                format!("gatewayType '{gateway_type}' is not served by the twin; use Vpn."),
            ));
        }
        let vpn_type = s("vpnType").unwrap_or("RouteBased");
        if !["RouteBased", "PolicyBased"].contains(&vpn_type) {
            return Err(bad(
                "InvalidRequestFormat",
                format!("vpnType '{vpn_type}' is not one of RouteBased, PolicyBased."),
            ));
        }
        let sku = props
            .get("sku")
            .and_then(|v| v.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("Basic");
        if !GATEWAY_SKUS.contains(&sku) {
            return Err(bad(
                "InvalidGatewaySku",
                format!("sku.name '{sku}' is not a VPN gateway SKU (VpnGw1-5, VpnGw1AZ-5AZ, ...)."),
            ));
        }
        let active_active = b("activeActive");
        let enable_bgp = b("enableBgp");
        if vpn_type == "PolicyBased" && (active_active || enable_bgp) {
            return Err(bad(
                "PolicyBasedGatewayNotSupported",
                "BGP and active-active need vpnType RouteBased.",
            ));
        }
        if sku == "Basic" && (active_active || enable_bgp) {
            return Err(bad(
                "BasicSkuNotSupported",
                "The Basic SKU supports neither BGP nor active-active; use VpnGw1 or larger.",
            ));
        }
        let configs = props
            .get("ipConfigurations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let wanted = if active_active { 2 } else { 1 };
        if configs.len() != wanted {
            return Err(bad(
                if active_active {
                    "ActiveActiveRequiresTwoIpConfigurations"
                } else {
                    "TooManyIpConfigurations"
                },
                format!(
                    "An {} gateway needs {wanted} ipConfigurations, {} given.{}",
                    if active_active {
                        "active-active"
                    } else {
                        "active-standby"
                    },
                    configs.len(),
                    if active_active {
                        " Give each instance its own Standard static public IP."
                    } else {
                        " Set activeActive to use two."
                    }
                ),
            ));
        }
        let mut subnet_seen: Option<String> = None;
        let mut pips = BTreeSet::new();
        let mut names = BTreeSet::new();
        for (i, c) in configs.iter().enumerate() {
            let field = format!("properties.ipConfigurations[{i}]");
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("InvalidRequestFormat", format!("{field}.name is required.")))?;
            names.insert(name.to_ascii_lowercase());
            let subnet_id = c.pointer("/properties/subnet/id").and_then(Value::as_str);
            let subnet = self.referenced(
                subnet_id,
                Kind::Subnet,
                id,
                &format!("{field}.properties.subnet"),
            )?;
            if !subnet.name().eq_ignore_ascii_case("GatewaySubnet") {
                return Err(bad(
                    "InvalidGatewaySubnet",
                    format!(
                        "{field} references subnet '{}'; a VPN gateway must be in the subnet named exactly 'GatewaySubnet'.",
                        subnet.name()
                    ),
                ));
            }
            let prefix = subnet_prefix(subnet.props(), "GatewaySubnet")?;
            if prefix.prefix_len() > 27 {
                return Err(bad(
                    "GatewaySubnetTooSmall",
                    format!(
                        "GatewaySubnet {prefix} is smaller than /27, the size Microsoft requires for new VPN gateways. Enlarge it to /27 or more."
                    ),
                ));
            }
            if let Some(prev) = &subnet_seen
                && *prev != key_of(&subnet.id)
            {
                return Err(bad(
                    "InvalidGatewaySubnet",
                    "All ipConfigurations of a gateway must use the same GatewaySubnet.",
                ));
            }
            subnet_seen = Some(key_of(&subnet.id));
            let pip_id = c
                .pointer("/properties/publicIPAddress/id")
                .and_then(Value::as_str);
            let pip = self.referenced(
                pip_id,
                Kind::PublicIp,
                id,
                &format!("{field}.properties.publicIPAddress"),
            )?;
            let pip_sku = pip
                .body
                .get("sku")
                .and_then(|v| v.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("Basic");
            let pip_alloc = pip
                .prop_str("publicIPAllocationMethod")
                .unwrap_or("Dynamic");
            if sku != "Basic" && (pip_sku != "Standard" || pip_alloc != "Static") {
                return Err(bad(
                    "VpnGatewayRequiresStandardStaticPublicIp",
                    format!(
                        "Public IP {} is {pip_sku}/{pip_alloc}; a {sku} gateway needs Standard SKU public IPs with Static allocation.",
                        pip.name()
                    ),
                ));
            }
            if !pips.insert(key_of(&pip.id)) {
                return Err(bad(
                    "PublicIPAddressInUse",
                    format!("Public IP {} is used by two ipConfigurations.", pip.name()),
                ));
            }
            if let Some(user) = self
                .public_ip_user(&pip.id)
                .filter(|u| !key_of(u).starts_with(&format!("{}/", key_of(id))))
            {
                return Err(bad(
                    "PublicIPAddressInUse",
                    format!("Public IP {} is already used by {user}.", pip.name()),
                ));
            }
        }
        // One VPN gateway per GatewaySubnet.
        if let Some(subnet) = &subnet_seen {
            for other in self
                .all_live(Kind::Gateway)
                .filter(|g| key_of(&g.id) != key_of(id))
            {
                let uses = other
                    .props()
                    .get("ipConfigurations")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|c| {
                        c.pointer("/properties/subnet/id")
                            .and_then(Value::as_str)
                            .map(key_of)
                            .as_deref()
                            == Some(subnet.as_str())
                    });
                if uses {
                    return Err(bad(
                        "GatewaySubnetAlreadyInUse",
                        format!(
                            "The GatewaySubnet already holds VPN gateway {}.",
                            other.name()
                        ),
                    ));
                }
            }
        }
        if let Some(bgp) = props.get("bgpSettings") {
            if let Some(asn) = bgp.get("asn").and_then(Value::as_u64) {
                check_asn(asn, "properties.bgpSettings.asn", true)?;
            }
            let mut custom_seen = BTreeSet::new();
            for (i, p) in bgp
                .get("bgpPeeringAddresses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let field = format!("properties.bgpSettings.bgpPeeringAddresses[{i}]");
                let cfg = p
                    .get("ipconfigurationId")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let cfg_name = cfg
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if !key_of(cfg).starts_with(&format!("{}/ipconfigurations/", key_of(id)))
                    || !names.contains(&cfg_name)
                {
                    return Err(bad(
                        "InvalidIpConfigurationId",
                        format!(
                            "{field}.ipconfigurationId '{cfg}' is not an ipConfiguration of this gateway."
                        ),
                    ));
                }
                for a in p
                    .get("customBgpIpAddresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let ip = parse_ip(
                        a.as_str().unwrap_or_default(),
                        &format!("{field}.customBgpIpAddresses"),
                    )?;
                    if !in_apipa_range(ip) {
                        return Err(bad(
                            "InvalidCustomBgpIpAddress",
                            format!(
                                "{field}.customBgpIpAddresses: {ip} is outside the Azure APIPA range 169.254.21.0 - 169.254.22.255."
                            ),
                        ));
                    }
                    if !custom_seen.insert(ip) {
                        return Err(bad(
                            "DuplicateCustomBgpIpAddress",
                            format!("{field}.customBgpIpAddresses: {ip} is given twice."),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The gateway ipConfiguration using public IP `pip_id`, if any.
    fn public_ip_user(&self, pip_id: &str) -> Option<String> {
        self.all_live(Kind::Gateway).find_map(|g| {
            g.props()
                .get("ipConfigurations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find_map(|c| {
                    (c.pointer("/properties/publicIPAddress/id")
                        .and_then(Value::as_str)
                        .map(key_of)
                        == Some(key_of(pip_id)))
                    .then(|| {
                        format!(
                            "{}/ipConfigurations/{}",
                            g.id,
                            c.get("name").and_then(Value::as_str).unwrap_or_default()
                        )
                    })
                })
        })
    }

    fn check_local_gateway(body: &Map<String, Value>) -> Result<(), ArmError> {
        let props = body
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        match (
            props.get("gatewayIpAddress").and_then(Value::as_str),
            props.get("fqdn").and_then(Value::as_str),
        ) {
            (Some(ip), _) => {
                parse_ip(ip, "properties.gatewayIpAddress")?;
            }
            (None, Some(_)) => {}
            (None, None) => {
                return Err(bad(
                    "LocalNetworkGatewayAddressRequired",
                    "properties.gatewayIpAddress (the peer's public IP) or properties.fqdn is required.",
                ));
            }
        }
        for p in props
            .pointer("/localNetworkAddressSpace/addressPrefixes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            parse_prefix(
                p.as_str().unwrap_or_default(),
                "properties.localNetworkAddressSpace.addressPrefixes",
            )?;
        }
        if let Some(bgp) = props.get("bgpSettings") {
            let asn = bgp.get("asn").and_then(Value::as_u64).ok_or_else(|| {
                bad(
                    "InvalidRequestFormat",
                    "properties.bgpSettings.asn is required with bgpSettings.",
                )
            })?;
            check_asn(asn, "properties.bgpSettings.asn", false)?;
            let peer = bgp
                .get("bgpPeeringAddress")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    bad(
                        "InvalidRequestFormat",
                        "properties.bgpSettings.bgpPeeringAddress is required with bgpSettings.",
                    )
                })?;
            parse_ip(peer, "properties.bgpSettings.bgpPeeringAddress")?;
        }
        Ok(())
    }

    /// Checks a connection and takes its shared key out of the body (kept apart).
    fn check_connection(
        &self,
        id: &str,
        body: &mut Map<String, Value>,
    ) -> Result<String, ArmError> {
        let props = body
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let connection_type = props
            .get("connectionType")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                bad(
                    "InvalidRequestFormat",
                    "properties.connectionType is required.",
                )
            })?;
        if connection_type != "IPsec" {
            return Err(bad(
                "UnsupportedConnectionType",
                format!("connectionType '{connection_type}' is not served by the twin; use IPsec."),
            ));
        }
        let gateway = self.referenced(
            ref_id(props.get("virtualNetworkGateway1")),
            Kind::Gateway,
            id,
            "properties.virtualNetworkGateway1",
        )?;
        let local = self.referenced(
            ref_id(props.get("localNetworkGateway2")),
            Kind::LocalGateway,
            id,
            "properties.localNetworkGateway2",
        )?;
        for dependency in [gateway, local] {
            if dependency.phase() != Phase::Succeeded {
                return Err(ArmError {
                    status: 409,
                    code: "AnotherOperationInProgress".into(),
                    message: format!(
                        "Another operation on this or dependent resource is in progress: {} is {}. Retry when it has Succeeded.",
                        dependency.id,
                        dependency.provisioning_state(false)
                    ),
                });
            }
        }
        if let Some(protocol) = props.get("connectionProtocol").and_then(Value::as_str)
            && !["IKEv2", "IKEv1"].contains(&protocol)
        {
            return Err(bad(
                "InvalidRequestFormat",
                format!("connectionProtocol '{protocol}' is not one of IKEv2, IKEv1."),
            ));
        }
        if let Some(dpd) = props.get("dpdTimeoutSeconds").and_then(Value::as_u64)
            && !(9..=3600).contains(&dpd)
        {
            return Err(bad(
                "InvalidDpdTimeout",
                format!("dpdTimeoutSeconds {dpd} is outside 9-3600."),
            ));
        }
        let key = match props.get("sharedKey") {
            Some(Value::String(k)) => {
                if k.is_empty()
                    || k.len() > 128
                    || !k.bytes().all(|c| c.is_ascii_graphic() || c == b' ')
                {
                    // Never echo the key itself.
                    return Err(bad(
                        "InvalidSharedKey",
                        "properties.sharedKey must be 1 to 128 printable ASCII characters.",
                    ));
                }
                k.clone()
            }
            _ => format!("{:032x}", rand::random::<u128>()),
        };
        if props
            .get("enableBgp")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            if !gateway
                .props()
                .get("enableBgp")
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                return Err(bad(
                    "BgpNotEnabledOnGateway",
                    format!(
                        "Connection has enableBgp but gateway {} does not; enable BGP on the gateway.",
                        gateway.name()
                    ),
                ));
            }
            let peer_asn = local.props().pointer("/bgpSettings/asn").and_then(Value::as_u64).ok_or_else(|| {
                bad("LocalNetworkGatewayBgpSettingsMissing", format!("Connection has enableBgp but local network gateway {} has no bgpSettings.", local.name()))
            })?;
            let own_asn = gateway
                .props()
                .pointer("/bgpSettings/asn")
                .and_then(Value::as_u64)
                .unwrap_or(65515);
            if peer_asn == own_asn {
                return Err(bad(
                    "BgpAsnConflict",
                    format!(
                        "Local network gateway {} has ASN {peer_asn}, the gateway's own; eBGP needs two ASNs.",
                        local.name()
                    ),
                ));
            }
        }
        let customs = props
            .get("gatewayCustomBgpIpAddresses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let configs = gateway_custom_addresses(gateway);
        if !customs.is_empty() && customs.len() != configs.len() {
            return Err(bad(
                "InvalidGatewayCustomBgpIpAddress",
                format!(
                    "gatewayCustomBgpIpAddresses has {} entries; gateway {} has {} ipConfigurations and needs one entry for each.",
                    customs.len(),
                    gateway.name(),
                    configs.len()
                ),
            ));
        }
        for (i, c) in customs.iter().enumerate() {
            let field = format!("properties.gatewayCustomBgpIpAddresses[{i}]");
            let cfg = c
                .get("ipConfigurationId")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    bad(
                        "InvalidRequestFormat",
                        format!("{field}.ipConfigurationId is required."),
                    )
                })?;
            let ip_raw = c
                .get("customBgpIpAddress")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    bad(
                        "InvalidRequestFormat",
                        format!("{field}.customBgpIpAddress is required."),
                    )
                })?;
            let ip = parse_ip(ip_raw, &format!("{field}.customBgpIpAddress"))?;
            let Some((_, allowed)) = configs.iter().find(|(id, _)| key_of(id) == key_of(cfg))
            else {
                return Err(bad(
                    "InvalidGatewayCustomBgpIpAddress",
                    format!(
                        "{field}.ipConfigurationId '{cfg}' is not an ipConfiguration of gateway {}.",
                        gateway.name()
                    ),
                ));
            };
            if !allowed.contains(&ip) {
                return Err(bad(
                    "InvalidGatewayCustomBgpIpAddress",
                    format!(
                        "{field}.customBgpIpAddress {ip} is not one of the custom BGP addresses of ipConfiguration '{}'. Add it to the gateway's bgpSettings.bgpPeeringAddresses first.",
                        cfg.rsplit('/').next().unwrap_or(cfg)
                    ),
                ));
            }
        }
        check_ipsec_policies(props.get("ipsecPolicies"))?;
        if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
            p.remove("sharedKey");
        }
        Ok(key)
    }

    fn check_resolver(&self, id: &str, body: &Map<String, Value>) -> Result<(), ArmError> {
        let vnet = self.referenced(
            body.pointer("/properties/virtualNetwork/id")
                .and_then(Value::as_str),
            Kind::VirtualNetwork,
            id,
            "properties.virtualNetwork",
        )?;
        let vnet_key = key_of(&vnet.id);
        if let Some(other) = self.all_live(Kind::DnsResolver).find(|r| {
            key_of(&r.id) != key_of(id)
                && r.props()
                    .pointer("/virtualNetwork/id")
                    .and_then(Value::as_str)
                    .map(key_of)
                    .as_deref()
                    == Some(vnet_key.as_str())
        }) {
            return Err(ArmError {
                status: 409,
                code: "Conflict".into(),
                message: format!(
                    "Virtual network {} already has DNS resolver {}; only one is allowed per virtual network.",
                    vnet.name(),
                    other.name()
                ),
            });
        }
        Ok(())
    }

    fn check_endpoint(
        &self,
        id: &str,
        kind: Kind,
        body: &Map<String, Value>,
    ) -> Result<(), ArmError> {
        let resolver_id = id
            .rsplit_once('/')
            .and_then(|(p, _)| p.rsplit_once('/'))
            .map_or(id, |(p, _)| p);
        let resolver = self.live(resolver_id).ok_or_else(|| {
            not_found(resolver_id, Kind::DnsResolver, &self.seeded.resource_group)
        })?;
        let vnet_key = resolver
            .props()
            .pointer("/virtualNetwork/id")
            .and_then(Value::as_str)
            .map(key_of)
            .unwrap_or_default();
        let subnet_refs: Vec<(String, Option<&Value>)> = if kind == Kind::InboundEndpoint {
            let configs = required_list(
                body,
                "/properties/ipConfigurations",
                "properties.ipConfigurations needs at least one entry.",
            )?;
            configs
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("properties.ipConfigurations[{i}].subnet"), Some(c)))
                .collect()
        } else {
            vec![("properties.subnet".into(), body.get("properties"))]
        };
        for (field, holder) in subnet_refs {
            let subnet = self.referenced(
                holder
                    .and_then(|h| h.get("subnet"))
                    .and_then(|s| s.get("id"))
                    .and_then(Value::as_str),
                Kind::Subnet,
                id,
                &field,
            )?;
            if !key_of(&subnet.id).starts_with(&format!("{vnet_key}/subnets/")) {
                return Err(bad(
                    "SubnetNotInResolverVirtualNetwork",
                    format!(
                        "{field}: subnet {} is not in the resolver's virtual network.",
                        subnet.name()
                    ),
                ));
            }
            let delegated = subnet
                .props()
                .get("delegations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|d| {
                    d.pointer("/properties/serviceName").and_then(Value::as_str)
                        == Some(DNS_DELEGATION)
                });
            if !delegated {
                return Err(bad(
                    "SubnetNotDelegated",
                    format!(
                        "{field}: subnet {} must be delegated to {DNS_DELEGATION}.",
                        subnet.name()
                    ),
                ));
            }
            if let Some((_, user)) = self
                .subnet_users()
                .into_iter()
                .find(|(s, user)| *s == key_of(&subnet.id) && key_of(user) != key_of(id))
            {
                return Err(bad(
                    "SubnetInUse",
                    format!(
                        "{field}: subnet {} is already used by {user}; each endpoint needs its own subnet.",
                        subnet.name()
                    ),
                ));
            }
            if let (Some(h), Ok(prefix)) = (holder, subnet_prefix(subnet.props(), "subnet"))
                && h.get("privateIpAllocationMethod").and_then(Value::as_str) == Some("Static")
            {
                let ip = parse_ip(
                    h.get("privateIpAddress")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                    &format!("{field}.privateIpAddress"),
                )?;
                if !prefix.contains(&ip) {
                    return Err(bad(
                        "InvalidPrivateIpAddress",
                        format!("{field}: {ip} is not in subnet {prefix}."),
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_ruleset(&self, id: &str, body: &Map<String, Value>) -> Result<(), ArmError> {
        let outs = required_list(
            body,
            "/properties/dnsResolverOutboundEndpoints",
            "properties.dnsResolverOutboundEndpoints needs at least one outbound endpoint.",
        )?;
        for (i, o) in outs.iter().enumerate() {
            self.referenced(
                o.get("id").and_then(Value::as_str),
                Kind::OutboundEndpoint,
                id,
                &format!("properties.dnsResolverOutboundEndpoints[{i}]"),
            )?;
        }
        Ok(())
    }

    fn check_rule(body: &Map<String, Value>) -> Result<(), ArmError> {
        let domain = body
            .pointer("/properties/domainName")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("InvalidRequestFormat", "properties.domainName is required."))?;
        if !domain.ends_with('.') || domain.len() < 2 {
            return Err(bad(
                "InvalidDomainName",
                format!(
                    "properties.domainName '{domain}' must be a fully qualified name ending with a dot, e.g. 'contoso.com.'."
                ),
            ));
        }
        let targets = body
            .pointer("/properties/targetDnsServers")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty() && a.len() <= 6)
            .ok_or_else(|| {
                bad(
                    "InvalidRequestFormat",
                    "properties.targetDnsServers needs 1 to 6 servers.",
                )
            })?;
        for (i, t) in targets.iter().enumerate() {
            let ip = parse_ip(
                t.get("ipAddress")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                &format!("properties.targetDnsServers[{i}].ipAddress"),
            )?;
            if ip == Ipv4Addr::new(168, 63, 129, 16) {
                return Err(bad(
                    "InvalidTargetDnsServer",
                    "168.63.129.16 (Azure's own resolver) cannot be a forwarding target.",
                ));
            }
        }
        Ok(())
    }

    fn check_link(&self, id: &str, body: &Map<String, Value>) -> Result<(), ArmError> {
        self.referenced(
            body.pointer("/properties/virtualNetwork/id")
                .and_then(Value::as_str),
            Kind::VirtualNetwork,
            id,
            "properties.virtualNetwork",
        )?;
        Ok(())
    }

    // ---------------------------------------------------------------- GET

    /// The resource as ARM returns it.
    pub(crate) fn get(&mut self, id: &str, kind: Kind) -> Result<Value, ArmError> {
        self.sweep();
        match self.live(id) {
            Some(r) if r.kind == kind => self.render(&key_of(id)),
            _ => Err(not_found(id, kind, &self.seeded.resource_group)),
        }
    }

    /// Every resource of `kind` under `parent` (the resource group's provider path, or a parent
    /// resource).
    pub(crate) fn list(&mut self, parent: &str, kind: Kind) -> Result<Value, ArmError> {
        self.sweep();
        let keys: Vec<String> = self
            .children_of(parent, kind)
            .map(|r| key_of(&r.id))
            .collect();
        let value: Vec<Value> = keys
            .iter()
            .map(|k| self.render(k))
            .collect::<Result<_, _>>()?;
        Ok(json!({ "value": value }))
    }

    fn render(&self, key: &str) -> Result<Value, ArmError> {
        let r = self
            .records
            .get(key)
            .ok_or_else(|| bad("NotFound", "gone"))?;
        let mut out = r.body.clone();
        out.insert("id".into(), json!(r.id));
        out.insert("name".into(), json!(r.name()));
        out.insert("type".into(), json!(r.kind.type_name()));
        out.insert("etag".into(), json!(r.etag));
        let mut props = r.props().clone();
        let created = r.changed.elapsed() < r.ready_after
            && !self.seed_ids.contains(key)
            && r.failure.is_none();
        props.insert(
            "provisioningState".into(),
            json!(r.provisioning_state(created)),
        );
        if r.kind != Kind::ForwardingRule {
            props.insert("resourceGuid".into(), json!(r.guid));
        }
        match r.kind {
            Kind::PublicIp => {
                if let Some(ip) = r.ip {
                    props.insert("ipAddress".into(), json!(ip.to_string()));
                }
                props
                    .entry("publicIPAddressVersion")
                    .or_insert(json!("IPv4"));
                props.entry("idleTimeoutInMinutes").or_insert(json!(4));
                props
                    .entry("publicIPAllocationMethod")
                    .or_insert(json!("Static"));
                if let Some(user) = self.public_ip_user(&r.id) {
                    props.insert("ipConfiguration".into(), json!({ "id": user }));
                }
            }
            Kind::VirtualNetwork => {
                let subnets: Vec<Value> = self
                    .children_of(&r.id, Kind::Subnet)
                    .map(|s| self.render(&key_of(&s.id)))
                    .collect::<Result<_, _>>()?;
                props.insert("subnets".into(), json!(subnets));
                props.entry("virtualNetworkPeerings").or_insert(json!([]));
            }
            Kind::Subnet => {
                let users: Vec<Value> = self
                    .subnet_users()
                    .into_iter()
                    .filter(|(s, _)| *s == key)
                    .map(|(_, u)| json!({ "id": u }))
                    .collect();
                if !users.is_empty() {
                    props.insert("ipConfigurations".into(), json!(users));
                }
                if let Some(Value::Array(ds)) = props.get_mut("delegations") {
                    for d in ds.iter_mut() {
                        let name = d
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        let service = d
                            .pointer("/properties/serviceName")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        let actions = if service == DNS_DELEGATION {
                            json!(["Microsoft.Network/virtualNetworks/subnets/join/action"])
                        } else {
                            json!([])
                        };
                        *d = json!({
                            "name": name,
                            "id": format!("{}/delegations/{name}", r.id),
                            "type": "Microsoft.Network/virtualNetworks/subnets/delegations",
                            "etag": r.etag,
                            "properties": {"serviceName": service, "actions": actions, "provisioningState": "Succeeded"},
                        });
                    }
                }
            }
            Kind::Gateway => self.render_gateway(r, &mut props),
            Kind::Connection => {
                for k in ["virtualNetworkGateway1", "localNetworkGateway2"] {
                    if let Some(id) = ref_id(props.get(k)).map(str::to_owned) {
                        // The Rust models need `properties` in these references.
                        props.insert(k.into(), json!({ "id": id, "properties": {} }));
                    }
                }
                if let Some(key) = self.keys.get(key) {
                    props.insert("sharedKey".into(), json!(key));
                }
                let status = match r.phase() {
                    Phase::Succeeded => self
                        .telemetry
                        .connection_status
                        .get(&r.name().to_ascii_lowercase())
                        .cloned()
                        .unwrap_or_else(|| "NotConnected".into()),
                    _ => "Unknown".into(),
                };
                props.insert("connectionStatus".into(), json!(status));
                props.entry("connectionProtocol").or_insert(json!("IKEv2"));
                props.entry("connectionMode").or_insert(json!("Default"));
                props.entry("dpdTimeoutSeconds").or_insert(json!(45));
                props.entry("routingWeight").or_insert(json!(0));
                props.entry("enableBgp").or_insert(json!(false));
                props.entry("ingressBytesTransferred").or_insert(json!(0));
                props.entry("egressBytesTransferred").or_insert(json!(0));
            }
            Kind::LocalGateway => {
                // Clients omit an empty list; Azure still reports the (empty) address space.
                let space = props
                    .entry("localNetworkAddressSpace")
                    .or_insert_with(|| json!({}));
                if let Some(space) = space.as_object_mut() {
                    space.entry("addressPrefixes").or_insert_with(|| json!([]));
                }
            }
            Kind::DnsResolver => {
                props.insert("dnsResolverState".into(), json!("Connected"));
            }
            Kind::InboundEndpoint => {
                if let Some(Value::Array(configs)) = props.get_mut("ipConfigurations") {
                    for c in configs.iter_mut() {
                        let method = c
                            .get("privateIpAllocationMethod")
                            .and_then(Value::as_str)
                            .unwrap_or("Dynamic")
                            .to_owned();
                        if method == "Dynamic" {
                            let subnet = c
                                .pointer("/subnet/id")
                                .and_then(Value::as_str)
                                .and_then(|s| self.live(s));
                            if let Some(ip) = subnet
                                .and_then(|s| subnet_prefix(s.props(), "subnet").ok())
                                .and_then(|p| dxvpn_cidr::nth_host(p, 4))
                            {
                                c["privateIpAddress"] = json!(ip.to_string());
                            }
                        }
                        c["privateIpAllocationMethod"] = json!(method);
                    }
                }
            }
            Kind::ForwardingRule => {
                props
                    .entry("forwardingRuleState")
                    .or_insert(json!("Enabled"));
                if let Some(Value::Array(targets)) = props.get_mut("targetDnsServers") {
                    for t in targets.iter_mut() {
                        if t.get("port").is_none() {
                            t["port"] = json!(53);
                        }
                    }
                }
            }
            _ => {}
        }
        out.insert("properties".into(), Value::Object(props));
        Ok(Value::Object(out))
    }

    fn render_gateway(&self, r: &Record, props: &mut Map<String, Value>) {
        let state = r.provisioning_state(false);
        let mut defaults = Vec::new();
        let mut tunnel_ips = BTreeMap::new();
        if let Some(Value::Array(configs)) = props.get_mut("ipConfigurations") {
            for (i, c) in configs.iter_mut().enumerate() {
                let name = c
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let cfg_id = format!("{}/ipConfigurations/{name}", r.id);
                let subnet = c
                    .pointer("/properties/subnet/id")
                    .and_then(Value::as_str)
                    .and_then(|s| self.live(s));
                let private = subnet
                    .and_then(|s| subnet_prefix(s.props(), "subnet").ok())
                    .and_then(|p| dxvpn_cidr::nth_host(p, 4 + u32::try_from(i).unwrap_or(0)));
                let pip_ip = c
                    .pointer("/properties/publicIPAddress/id")
                    .and_then(Value::as_str)
                    .and_then(|p| self.live(p))
                    .and_then(|p| p.ip);
                c["id"] = json!(cfg_id);
                c["etag"] = json!(r.etag);
                if let Some(p) = c.get_mut("properties").and_then(Value::as_object_mut) {
                    p.insert("provisioningState".into(), json!(state));
                    if let Some(ip) = private {
                        p.insert("privateIPAddress".into(), json!(ip.to_string()));
                    }
                }
                defaults.push((key_of(&cfg_id), cfg_id, private));
                if let Some(ip) = pip_ip {
                    tunnel_ips.insert(i, ip);
                }
            }
        }
        let given: BTreeMap<String, Value> = props
            .pointer("/bgpSettings/bgpPeeringAddresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    key_of(p.get("ipconfigurationId")?.as_str()?),
                    p.get("customBgpIpAddresses").cloned().unwrap_or(json!([])),
                ))
            })
            .collect();
        let peering: Vec<Value> = defaults
            .iter()
            .enumerate()
            .map(|(i, (key, id, private))| {
                json!({
                    "ipconfigurationId": id,
                    "defaultBgpIpAddresses": private.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "customBgpIpAddresses": given.get(key).cloned().unwrap_or(json!([])),
                    "tunnelIpAddresses": tunnel_ips.get(&i).iter().map(ToString::to_string).collect::<Vec<_>>(),
                })
            })
            .collect();
        let peering_address = defaults
            .iter()
            .filter_map(|(_, _, p)| p.map(|ip| ip.to_string()))
            .collect::<Vec<_>>()
            .join(",");
        let bgp = props.entry("bgpSettings").or_insert(json!({}));
        if let Some(bgp) = bgp.as_object_mut() {
            bgp.entry("asn").or_insert(json!(65515));
            bgp.entry("peerWeight").or_insert(json!(0));
            bgp.insert("bgpPeeringAddress".into(), json!(peering_address));
            bgp.insert("bgpPeeringAddresses".into(), json!(peering));
        }
        if let Some(sku) = props.get_mut("sku").and_then(Value::as_object_mut) {
            sku.insert("capacity".into(), json!(2));
        }
        props.entry("vpnGatewayGeneration").or_insert(json!("None"));
        props.entry("enableBgp").or_insert(json!(false));
        props.entry("activeActive").or_insert(json!(false));
        props.entry("vpnType").or_insert(json!("RouteBased"));
        props.entry("gatewayType").or_insert(json!("Vpn"));
    }

    // ---------------------------------------------------------------- DELETE

    /// Starts deleting `id`; 204 when it does not exist.
    pub(crate) fn delete(&mut self, id: &str, kind: Kind) -> Result<Accepted, ArmError> {
        self.sweep();
        let key = key_of(id);
        let Some(record) = self.live(id).filter(|r| r.kind == kind).cloned() else {
            return Ok(Accepted {
                status: 204,
                body: None,
                operation: None,
            });
        };
        if record.deleting.is_some() {
            let operation = Some(self.start_operation(&key, true, kind.is_dns()));
            return Ok(Accepted {
                status: 202,
                body: None,
                operation,
            });
        }
        self.check_deletable(&record)?;
        let failure = self.fail_next.take();
        let after = self.scaled(kind.delete_time());
        if let Some(r) = self.records.get_mut(&key) {
            if let Some(f) = failure {
                // The deletion fails: the resource stays, Failed.
                r.failure = Some(f);
                r.changed = Instant::now();
                r.ready_after = after;
            } else {
                r.deleting = Some((Instant::now(), after));
            }
        }
        // Children go with their parent.
        let children: Vec<String> = self
            .records
            .keys()
            .filter(|k| k.starts_with(&format!("{key}/")))
            .cloned()
            .collect();
        for c in children {
            if let Some(r) = self.records.get_mut(&c) {
                r.deleting.get_or_insert((Instant::now(), after));
            }
        }
        if kind.synchronous() {
            self.sweep();
            return Ok(Accepted {
                status: 200,
                body: None,
                operation: None,
            });
        }
        let operation = Some(self.start_operation(&key, true, kind.is_dns()));
        Ok(Accepted {
            status: 202,
            body: None,
            operation,
        })
    }

    fn check_deletable(&self, r: &Record) -> Result<(), ArmError> {
        let in_use = |what: &str, by: &str| {
            bad(
                what,
                format!(
                    "{} {} cannot be deleted because it is still used by {by}.",
                    r.kind.short(),
                    r.name()
                ),
            )
        };
        let referencing = |kind: Kind, pointer: &str| -> Option<String> {
            self.all_live(kind)
                .find(|o| {
                    o.deleting.is_none()
                        && o.props()
                            .pointer(pointer)
                            .and_then(Value::as_str)
                            .map(key_of)
                            == Some(key_of(&r.id))
                })
                .map(|o| o.id.clone())
        };
        match r.kind {
            Kind::PublicIp => {
                if let Some(user) = self.public_ip_user(&r.id) {
                    return Err(bad(
                        "PublicIPAddressCannotBeDeleted",
                        format!(
                            "Public IP address {} can not be deleted since it is still allocated to resource {user}.",
                            r.id
                        ),
                    ));
                }
            }
            Kind::Gateway => {
                if let Some(c) = referencing(Kind::Connection, "/virtualNetworkGateway1/id") {
                    return Err(in_use("InUseVirtualNetworkGatewayCannotBeDeleted", &c));
                }
            }
            Kind::LocalGateway => {
                if let Some(c) = referencing(Kind::Connection, "/localNetworkGateway2/id") {
                    return Err(in_use("InUseLocalNetworkGatewayCannotBeDeleted", &c));
                }
            }
            Kind::Subnet => self.check_subnet_free(&r.id)?,
            Kind::VirtualNetwork => {
                for s in self.children_of(&r.id, Kind::Subnet) {
                    self.check_subnet_free(&s.id)?;
                }
                if let Some(user) = referencing(Kind::DnsResolver, "/virtualNetwork/id")
                    .or_else(|| referencing(Kind::VnetLink, "/virtualNetwork/id"))
                {
                    return Err(in_use("InUseVirtualNetworkCannotBeDeleted", &user));
                }
            }
            Kind::DnsResolver => {
                if let Some(e) = self
                    .children_of(&r.id, Kind::InboundEndpoint)
                    .chain(self.children_of(&r.id, Kind::OutboundEndpoint))
                    .find(|e| e.deleting.is_none())
                {
                    return Err(in_use("DnsResolverHasEndpoints", &e.id));
                }
            }
            Kind::OutboundEndpoint => {
                let user = self.all_live(Kind::Ruleset).find(|s| {
                    s.deleting.is_none()
                        && s.props()
                            .get("dnsResolverOutboundEndpoints")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .any(|o| {
                                o.get("id").and_then(Value::as_str).map(key_of)
                                    == Some(key_of(&r.id))
                            })
                });
                if let Some(s) = user {
                    return Err(in_use("OutboundEndpointInUse", &s.id));
                }
            }
            Kind::Ruleset => {
                if let Some(l) = self
                    .children_of(&r.id, Kind::VnetLink)
                    .find(|l| l.deleting.is_none())
                {
                    return Err(in_use("RulesetHasVirtualNetworkLinks", &l.id));
                }
            }
            _ => {}
        }
        Ok(())
    }

    // ---------------------------------------------------------------- operations and actions

    /// How operation `id` stands; `None` when the twin never started it.
    pub(crate) fn operation(&mut self, id: &str) -> Option<(OpStatus, bool)> {
        let op = self.operations.get(id)?.clone();
        let status = match self.records.get(&op.resource) {
            None if op.delete => OpStatus::Succeeded,
            None => OpStatus::Failed(bad(
                "Canceled",
                "The resource was deleted before the operation finished.",
            )),
            Some(r) => match r.phase() {
                Phase::Gone if op.delete => OpStatus::Succeeded,
                Phase::Provisioning | Phase::Deleting => OpStatus::InProgress,
                Phase::Failed => OpStatus::Failed(
                    r.failure
                        .clone()
                        .unwrap_or_else(|| bad("InternalServerError", "The operation failed.")),
                ),
                Phase::Succeeded if !op.delete => OpStatus::Succeeded,
                _ => OpStatus::InProgress,
            },
        };
        self.sweep();
        Some((status, op.dns))
    }

    /// The shared key of a connection.
    pub(crate) fn shared_key(&mut self, id: &str) -> Result<Value, ArmError> {
        self.get(id, Kind::Connection)?;
        Ok(json!({ "value": self.keys.get(&key_of(id)).cloned().unwrap_or_default() }))
    }

    /// Sets the shared key of a connection.
    pub(crate) fn set_shared_key(&mut self, id: &str, body: &Value) -> Result<Value, ArmError> {
        self.get(id, Kind::Connection)?;
        let key = body
            .get("value")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty() && k.len() <= 128)
            .ok_or_else(|| {
                bad(
                    "InvalidSharedKey",
                    "value must be 1 to 128 printable ASCII characters.",
                )
            })?;
        self.keys.insert(key_of(id), key.to_owned());
        Ok(json!({ "id": format!("{id}/sharedkey"), "value": key }))
    }

    /// `getBgpPeerStatus`: one entry per BGP connection of the gateway.
    pub(crate) fn bgp_peer_status(
        &mut self,
        gateway_id: &str,
        peer: Option<&str>,
    ) -> Result<Value, ArmError> {
        self.get(gateway_id, Kind::Gateway)?;
        let gw = key_of(gateway_id);
        let mut value = Vec::new();
        for c in self.all_live(Kind::Connection) {
            let p = c.props();
            if p.pointer("/virtualNetworkGateway1/id")
                .and_then(Value::as_str)
                .map(key_of)
                != Some(gw.clone())
                || !p.get("enableBgp").and_then(Value::as_bool).unwrap_or(false)
            {
                continue;
            }
            let Some(lng) = p
                .pointer("/localNetworkGateway2/id")
                .and_then(Value::as_str)
                .and_then(|l| self.live(l))
            else {
                continue;
            };
            let neighbor = lng
                .props()
                .pointer("/bgpSettings/bgpPeeringAddress")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if peer.is_some_and(|want| want != neighbor) {
                continue;
            }
            let (state, routes) = neighbor
                .parse::<Ipv4Addr>()
                .ok()
                .and_then(|n| self.telemetry.bgp_peers.get(&n).cloned())
                .unwrap_or_else(|| ("Connecting".into(), 0));
            let local = p
                .get("gatewayCustomBgpIpAddresses")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|a| a.get("customBgpIpAddress"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            value.push(json!({
                "localAddress": local,
                "neighbor": neighbor,
                "asn": lng.props().pointer("/bgpSettings/asn").cloned().unwrap_or(json!(0)),
                "state": state,
                "connectedDuration": if state == "Connected" { "00:00:10" } else { "" },
                "routesReceived": routes,
                "messagesSent": 0,
                "messagesReceived": 0,
            }));
        }
        Ok(json!({ "value": value }))
    }

    /// `getLearnedRoutes`: the VNet's own prefixes and what the data plane reported.
    pub(crate) fn learned_routes(&mut self, gateway_id: &str) -> Result<Value, ArmError> {
        self.get(gateway_id, Kind::Gateway)?;
        let mut value = Vec::new();
        if let Some(vnet) = self.live(&self.seeded.vnet_id.clone()) {
            for p in vnet
                .props()
                .pointer("/addressSpace/addressPrefixes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                value.push(json!({"localAddress": "", "network": p, "nextHop": "", "sourcePeer": "", "origin": "Network", "asPath": "", "weight": 32768}));
            }
        }
        for (net, hop, origin) in &self.telemetry.learned_routes {
            value.push(json!({"localAddress": "", "network": net.to_string(), "nextHop": hop.to_string(), "sourcePeer": hop.to_string(), "origin": origin, "asPath": "", "weight": 32768}));
        }
        Ok(json!({ "value": value }))
    }

    /// Everything live now, keys left out.
    pub(crate) fn inventory(&self) -> Value {
        let resources: Vec<Value> = self
            .records
            .iter()
            .filter(|(_, r)| r.phase() != Phase::Gone)
            .map(|(k, r)| {
                json!({
                    "id": r.id,
                    "type": r.kind.type_name(),
                    "provisioningState": r.provisioning_state(false),
                    "seeded": self.seed_ids.contains(k),
                    "tags": r.body.get("tags").cloned().unwrap_or(json!({})),
                })
            })
            .collect();
        json!({ "seeded": self.seeded, "resources": resources })
    }

    /// Ids (lower case) of everything live now.
    pub(crate) fn live_ids(&self) -> BTreeSet<String> {
        self.records
            .iter()
            .filter(|(_, r)| r.phase() != Phase::Gone)
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub(crate) fn seed_ids(&self) -> &BTreeSet<String> {
        &self.seed_ids
    }
}

/// Per gateway ipConfiguration: its id and its custom APIPA addresses.
fn gateway_custom_addresses(gateway: &Record) -> Vec<(String, Vec<Ipv4Addr>)> {
    let given: BTreeMap<String, Vec<Ipv4Addr>> = gateway
        .props()
        .pointer("/bgpSettings/bgpPeeringAddresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let id = key_of(p.get("ipconfigurationId")?.as_str()?);
            let ips = p
                .get("customBgpIpAddresses")?
                .as_array()?
                .iter()
                .filter_map(|a| a.as_str()?.parse().ok())
                .collect();
            Some((id, ips))
        })
        .collect();
    gateway
        .props()
        .get("ipConfigurations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let id = format!(
                "{}/ipConfigurations/{}",
                gateway.id,
                c.get("name").and_then(Value::as_str).unwrap_or_default()
            );
            let ips = given.get(&key_of(&id)).cloned().unwrap_or_default();
            (id, ips)
        })
        .collect()
}

const IPSEC_POLICY_MEMBERS: [(&str, &[&str]); 6] = [
    (
        "ipsecEncryption",
        &[
            "None",
            "DES",
            "DES3",
            "AES128",
            "AES192",
            "AES256",
            "GCMAES128",
            "GCMAES192",
            "GCMAES256",
        ],
    ),
    (
        "ipsecIntegrity",
        &[
            "MD5",
            "SHA1",
            "SHA256",
            "GCMAES128",
            "GCMAES192",
            "GCMAES256",
        ],
    ),
    (
        "ikeEncryption",
        &[
            "DES",
            "DES3",
            "AES128",
            "AES192",
            "AES256",
            "GCMAES256",
            "GCMAES128",
        ],
    ),
    (
        "ikeIntegrity",
        &["MD5", "SHA1", "SHA256", "SHA384", "GCMAES256", "GCMAES128"],
    ),
    (
        "dhGroup",
        &[
            "None",
            "DHGroup1",
            "DHGroup2",
            "DHGroup14",
            "DHGroup2048",
            "ECP256",
            "ECP384",
            "DHGroup24",
        ],
    ),
    (
        "pfsGroup",
        &[
            "None", "PFS1", "PFS2", "PFS2048", "ECP256", "ECP384", "PFS24", "PFS14", "PFSMM",
        ],
    ),
];

fn check_ipsec_policies(policies: Option<&Value>) -> Result<(), ArmError> {
    let list = policies
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if list.len() > 1 {
        return Err(bad(
            "InvalidIpsecPolicy",
            "ipsecPolicies takes at most one policy.",
        ));
    }
    for p in &list {
        for (member, allowed) in IPSEC_POLICY_MEMBERS {
            let v = p.get(member).and_then(Value::as_str).ok_or_else(|| {
                bad(
                    "InvalidIpsecPolicy",
                    format!("ipsecPolicies[0].{member} is required."),
                )
            })?;
            if !allowed.contains(&v) {
                return Err(bad(
                    "InvalidIpsecPolicy",
                    format!(
                        "ipsecPolicies[0].{member} '{v}' is not one of {}.",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        let lifetime = p
            .get("saLifeTimeSeconds")
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                bad(
                    "InvalidIpsecPolicy",
                    "ipsecPolicies[0].saLifeTimeSeconds is required.",
                )
            })?;
        if lifetime < 300 {
            return Err(bad(
                "InvalidIpsecPolicy",
                format!("ipsecPolicies[0].saLifeTimeSeconds {lifetime} is below 300."),
            ));
        }
        let size = p
            .get("saDataSizeKilobytes")
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                bad(
                    "InvalidIpsecPolicy",
                    "ipsecPolicies[0].saDataSizeKilobytes is required.",
                )
            })?;
        if size != 0 && size < 1024 {
            return Err(bad(
                "InvalidIpsecPolicy",
                format!("ipsecPolicies[0].saDataSizeKilobytes {size} is below 1024."),
            ));
        }
    }
    Ok(())
}

/// Drops members ARM computes itself, so a GET echoes the server's values, not the client's.
fn strip_read_only(kind: Kind, body: &mut Map<String, Value>) {
    for k in ["id", "name", "type", "etag", "systemData"] {
        body.remove(k);
    }
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        for k in ["provisioningState", "resourceGuid"] {
            p.remove(k);
        }
        match kind {
            Kind::PublicIp => {
                p.remove("ipAddress");
                p.remove("ipConfiguration");
            }
            Kind::Connection => {
                for k in [
                    "connectionStatus",
                    "tunnelConnectionStatus",
                    "ingressBytesTransferred",
                    "egressBytesTransferred",
                ] {
                    p.remove(k);
                }
                for k in ["virtualNetworkGateway1", "localNetworkGateway2"] {
                    if let Some(id) = ref_id(p.get(k)).map(str::to_owned) {
                        p.insert(k.into(), json!({ "id": id }));
                    }
                }
            }
            Kind::Subnet => {
                p.remove("ipConfigurations");
            }
            Kind::DnsResolver => {
                p.remove("dnsResolverState");
            }
            Kind::Gateway => {
                if let Some(Value::Array(configs)) = p.get_mut("ipConfigurations") {
                    for c in configs.iter_mut() {
                        if let Some(o) = c.as_object_mut() {
                            o.remove("id");
                            o.remove("etag");
                        }
                        if let Some(cp) = c.get_mut("properties").and_then(Value::as_object_mut) {
                            cp.remove("provisioningState");
                            cp.remove("privateIPAddress");
                        }
                    }
                }
                if let Some(vpn) = p
                    .get_mut("vpnClientConfiguration")
                    .and_then(Value::as_object_mut)
                {
                    vpn.remove("radiusServerSecret");
                    if let Some(Value::Array(servers)) = vpn.get_mut("radiusServers") {
                        for s in servers.iter_mut().filter_map(Value::as_object_mut) {
                            s.remove("radiusServerSecret");
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

impl Arm {
    /// The gateway and its connections as Azure holds them, keys included, for the lab's data
    /// plane (in memory only). Only provisioned resources count: a gateway still `Updating` has
    /// no tunnels yet.
    pub(crate) fn lab_view(&mut self) -> crate::binding::AzureView {
        use crate::binding::{AzureConnectionView, AzureGatewayView, AzureInstanceView, AzureView};
        self.sweep();
        fn ipv4<T: std::str::FromStr>(v: Option<&Value>) -> Option<T> {
            v.and_then(Value::as_str).and_then(|s| s.parse().ok())
        }
        let mut view = AzureView::default();
        let vnet_id = self.seeded.vnet_id.clone();
        if let Some(vnet) = self.live(&vnet_id) {
            view.vnet_cidr = ipv4(vnet.props().pointer("/addressSpace/addressPrefixes/0"));
            // The host lives in a seeded workload subnet, not one a deployment adds (DNS).
            view.host_subnet = self
                .children_of(&vnet_id, Kind::Subnet)
                .filter(|s| !s.name().eq_ignore_ascii_case("GatewaySubnet"))
                .filter(|s| self.seed_ids.contains(&key_of(&s.id)))
                .find_map(|s| ipv4(s.props().get("addressPrefix")));
        }
        let Some(gateway) = self
            .all_live(Kind::Gateway)
            .find(|g| g.phase() == Phase::Succeeded)
        else {
            return view;
        };
        let instances = gateway_custom_addresses(gateway)
            .into_iter()
            .zip(
                gateway
                    .props()
                    .get("ipConfigurations")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            )
            .filter_map(|((id, apipa), config)| {
                let pip = self.live(ref_id(config.pointer("/properties/publicIPAddress"))?)?;
                Some(AzureInstanceView {
                    ip_configuration_id: key_of(&id),
                    public_ip: pip.ip?,
                    apipa,
                })
            })
            .collect();
        view.gateway = Some(AzureGatewayView {
            asn: gateway
                .props()
                .pointer("/bgpSettings/asn")
                .and_then(Value::as_u64)
                .and_then(|a| u32::try_from(a).ok())
                .unwrap_or(0),
            instances,
        });
        let gateway_key = key_of(&gateway.id);
        view.connections = self
            .all_live(Kind::Connection)
            .filter(|c| c.phase() == Phase::Succeeded)
            .filter(|c| {
                ref_id(c.props().get("virtualNetworkGateway1")).map(key_of)
                    == Some(gateway_key.clone())
            })
            .filter_map(|c| {
                let lng = self.live(ref_id(c.props().get("localNetworkGateway2"))?)?;
                let lp = lng.props();
                Some(AzureConnectionView {
                    name: c.name().to_owned(),
                    peer_outside_ip: ipv4(lp.get("gatewayIpAddress"))?,
                    peer_bgp_ip: ipv4(lp.pointer("/bgpSettings/bgpPeeringAddress")),
                    peer_asn: lp
                        .pointer("/bgpSettings/asn")
                        .and_then(Value::as_u64)
                        .and_then(|a| u32::try_from(a).ok())
                        .unwrap_or(0),
                    psk: self
                        .keys
                        .get(&key_of(&c.id))
                        .and_then(|k| dxvpn_tunnel::psk::PresharedKey::parse(k).ok()),
                    custom_bgp: c
                        .props()
                        .get("gatewayCustomBgpIpAddresses")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|a| {
                            Some((
                                key_of(a.get("ipConfigurationId")?.as_str()?),
                                ipv4(a.get("customBgpIpAddress"))?,
                            ))
                        })
                        .collect(),
                })
            })
            .collect();
        view
    }

    /// Test hook: Azure now holds another key for the connection to this AWS tunnel, or expects
    /// another ASN from its peer. False when no live connection points at that address.
    pub(crate) fn tamper(&mut self, tamper: &crate::faults::Tamper) -> bool {
        use crate::faults::Tamper;
        let ip = tamper.outside_ip().to_string();
        let found = self.all_live(Kind::Connection).find_map(|c| {
            let lng = self.live(ref_id(c.props().get("localNetworkGateway2"))?)?;
            (lng.prop_str("gatewayIpAddress") == Some(ip.as_str()))
                .then(|| (key_of(&c.id), key_of(&lng.id)))
        });
        let Some((connection, lng)) = found else {
            return false;
        };
        match tamper {
            Tamper::Psk { .. } => {
                let key = dxvpn_tunnel::psk::PresharedKey::generate();
                self.keys.insert(connection, key.expose().to_owned());
            }
            Tamper::PeerAsn { asn, .. } => {
                if let Some(settings) = self
                    .records
                    .get_mut(&lng)
                    .and_then(|r| r.body.get_mut("properties"))
                    .and_then(|p| p.get_mut("bgpSettings"))
                    .and_then(Value::as_object_mut)
                {
                    settings.insert("asn".into(), json!(asn));
                }
            }
        }
        true
    }
}
