//! The Azure twin's inventory: ARM resources as JSON, Azure's documented rules, and states that
//! follow from scaled timestamps (no background task), as in the AWS twin.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dxvpn_cidr::Ipv4Net;
use dxvpn_cidr::inside::{AZURE_APIPA_FIRST, AZURE_APIPA_LAST};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::kind::Kind;

mod compute;
mod connection;
mod delete;
mod dns_resolver;
mod gateway;
mod host_filter;
mod lab_view;
mod local_gateway;
mod network;
mod public_ip;
mod render;
mod scenario;
mod serial;

use render::strip_read_only;
pub use scenario::{AzureScenario, AzureSeeded, SeedGateway, SeedSubnet};

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

/// What the data plane reports (set by the lab; until then an honest "not connected").
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    /// Connection name (lower case) -> `Connected` / `Connecting` / `NotConnected`.
    pub connection_status: BTreeMap<String, String>,
    /// BGP neighbor -> (state, routes received).
    pub bgp_peers: BTreeMap<Ipv4Addr, (String, u32)>,
    /// Routes the gateway learned: (prefix, next hop, origin).
    pub learned_routes: Vec<(Ipv4Net, Ipv4Addr, String)>,
    /// Connection name (lower case) -> bytes the gateway's end received and sent through it
    /// so far (charon's `bytes-in`/`bytes-out`; a fall is a reset).
    pub connection_bytes: BTreeMap<String, (u64, u64)>,
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
    /// The PUT that made it changed one that existed.
    updated: bool,
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

    /// Whether the data plane may use it: provisioned, or a running one being updated. ARM
    /// answers `Updating` while it applies a PUT to a gateway that already runs its
    /// connections. Microsoft documents the outages a gateway change causes ("Reset a VPN
    /// gateway or a connection": a reset drops connections briefly; "About gateway SKUs":
    /// moving to another generation means a new gateway) and none for a change of its BGP
    /// settings, so the lab takes none; an undocumented outage would be the twin inventing one.
    fn serving(&self) -> bool {
        match self.phase() {
            Phase::Succeeded => true,
            Phase::Provisioning => self.updated && self.failure.is_none(),
            _ => false,
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
    keys: SharedKeys,
    operations: BTreeMap<String, Operation>,
    next_serial: u64,
    pub(crate) telemetry: Telemetry,
    /// Injected: the next operation started fails with this error.
    pub(crate) fail_next: Option<ArmError>,
}

/// Connection id -> shared key. Debug shows how many, never a key (the state derives Debug).
#[derive(Default)]
pub(crate) struct SharedKeys(BTreeMap<String, String>);

impl std::fmt::Debug for SharedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedKeys({} redacted)", self.0.len())
    }
}

impl std::ops::Deref for SharedKeys {
    type Target = BTreeMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for SharedKeys {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
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

impl Arm {
    fn scaled(&self, real: Duration) -> Duration {
        dxvpn_twin_kit::scale(real, self.time_factor)
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

    /// The gateway `id` (live, not being deleted) and the names of the connections whose
    /// `virtualNetworkGateway1` it is: what Azure Monitor splits its tunnel metrics by.
    pub(crate) fn gateway_connections(&self, id: &str) -> Option<(String, Vec<String>)> {
        let gateway = self
            .live(id)
            .filter(|r| r.kind == Kind::Gateway && r.deleting.is_none())?;
        let location = gateway
            .body
            .get("location")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let names = self
            .all_live(Kind::Connection)
            .filter(|c| {
                ref_id(c.props().get("virtualNetworkGateway1"))
                    .is_some_and(|g| g.eq_ignore_ascii_case(&gateway.id))
            })
            .map(|c| c.name().to_owned())
            .collect();
        Some((location, names))
    }

    fn all_live(&self, kind: Kind) -> impl Iterator<Item = &Record> + '_ {
        self.records
            .values()
            .filter(move |r| r.kind == kind && r.phase() != Phase::Gone)
    }

    /// Creates or updates the resource `id` of `kind` with `body`: checked against the type's
    /// rules, stored, and its operation started.
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
            Kind::SecurityGroup => Self::check_security_group(&body)?,
            Kind::NetworkInterface => self.check_nic(id, &body)?,
            Kind::VirtualMachine => self.check_vm(id, &mut body)?,
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
            updated: existing.is_some(),
        };
        let key = key_of(id);
        if let Some(k) = shared_key {
            // A PUT sets the key of a new connection only: on an existing one ARM keeps the
            // key it holds and answers success, and only the `sharedkey` endpoint changes it
            // (terraform-provider-azurerm #11673, fixed in PR #11742 by calling SetSharedKey;
            // azure-sdk-for-java #18083).
            self.keys.entry(key.clone()).or_insert(k);
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

    // GET and list.

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
        let mut keys: Vec<String> = self
            .children_of(parent, kind)
            .map(|r| key_of(&r.id))
            .collect();
        // ARM documents no order for a list (the REST reference's `value` arrays are unordered
        // and paged); the twin's is seeded, so that no client comes to rely on name order.
        dxvpn_twin_kit::seed::seeded_order(self.seeded.seed, &mut keys, Clone::clone);
        let value: Vec<Value> = keys
            .iter()
            .map(|k| self.render(k))
            .collect::<Result<_, _>>()?;
        Ok(json!({ "value": value }))
    }

    // Operations, and what the twin shows of itself.

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The state derives Debug for diagnostics; the keys it holds must not come out that way.
    #[test]
    fn debug_of_the_state_shows_no_shared_key() {
        let mut keys = SharedKeys::default();
        keys.insert("connections/c1t1".into(), "Secret.Key_1234".into());
        let shown = format!("{keys:?}");
        assert!(!shown.contains("Secret.Key_1234"), "{shown}");
        assert!(shown.contains("1 redacted"), "{shown}");
    }
}
