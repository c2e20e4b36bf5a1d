//! The Route 53 Resolver subset dxvpn uses (API 2018-04-01, awsJson1_1): endpoints with their
//! IP addresses, FORWARD rules and rule associations, with AWS's statuses and error types
//! (cloud-apis.md section 2). Like EC2, states follow from timestamps when read.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use dxvpn_cidr::Ipv4Net;
use serde_json::{Value, json};

use dxvpn_twin_kit::seed::seeded_order;
use dxvpn_twin_kit::views::DnsRules;

mod endpoints;
mod rules;

use rules::association_json;

/// Real durations (field notes: an endpoint takes minutes), scaled by the time factor.
const ENDPOINT_CREATE: Duration = Duration::from_secs(180);
const ENDPOINT_DELETE: Duration = Duration::from_secs(60);
const ASSOCIATION_CREATE: Duration = Duration::from_secs(30);
const ASSOCIATION_DELETE: Duration = Duration::from_secs(20);

/// A Route 53 Resolver error: every modelled one is an HTTP 400 with a `__type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolverError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

fn err(code: &'static str, message: impl Into<String>) -> ResolverError {
    ResolverError {
        code,
        message: message.into(),
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ResolverError {
    err(
        "InvalidParameterException",
        format!("[{field}] {}", message.into()),
    )
}

/// What the resolver needs to know of EC2: subnets and security groups.
pub(crate) trait Network {
    /// The VPC and CIDR of a subnet.
    fn subnet(&self, id: &str) -> Option<(String, Ipv4Net)>;
    /// Whether a security group exists.
    fn security_group_exists(&self, id: &str) -> bool;
    /// Whether a VPC exists.
    fn vpc_exists(&self, id: &str) -> bool;
}

#[derive(Debug, Clone, Copy)]
struct Life {
    created: Instant,
    ready_after: Duration,
    deleted: Option<(Instant, Duration)>,
}

impl Life {
    fn new(ready_after: Duration) -> Self {
        Life {
            created: Instant::now(),
            ready_after,
            deleted: None,
        }
    }

    fn gone(&self) -> bool {
        self.deleted
            .is_some_and(|(at, after)| at.elapsed() >= after)
    }

    fn deleting(&self) -> bool {
        self.deleted.is_some() && !self.gone()
    }

    fn ready(&self) -> bool {
        self.deleted.is_none() && self.created.elapsed() >= self.ready_after
    }

    /// DELETING, `ready` once created, else CREATING.
    fn status(&self, ready: &'static str) -> &'static str {
        if self.deleting() {
            "DELETING"
        } else if self.ready() {
            ready
        } else {
            "CREATING"
        }
    }
}

#[derive(Debug, Clone)]
struct EndpointIp {
    id: String,
    subnet_id: String,
    ip: Ipv4Addr,
}

#[derive(Debug, Clone)]
struct Endpoint {
    id: String,
    creator_request_id: String,
    name: String,
    direction: String,
    security_group_ids: Vec<String>,
    vpc_id: String,
    ips: Vec<EndpointIp>,
    life: Life,
    created_at: String,
}

impl Endpoint {
    fn status(&self) -> &'static str {
        self.life.status("OPERATIONAL")
    }
}

#[derive(Debug, Clone)]
struct Rule {
    id: String,
    creator_request_id: String,
    name: String,
    domain_name: String,
    target_ips: Vec<(Ipv4Addr, u16)>,
    endpoint_id: String,
    deleted: bool,
    created_at: String,
}

#[derive(Debug, Clone)]
struct Association {
    id: String,
    rule_id: String,
    vpc_id: String,
    name: String,
    life: Life,
}

impl Association {
    fn status(&self) -> &'static str {
        self.life.status("COMPLETE")
    }
}

/// The twin's Route 53 Resolver inventory.
#[derive(Debug)]
pub(crate) struct Resolver {
    time_factor: f64,
    /// Route 53 Resolver documents no order for its List results: they come in this seed's.
    seed: u64,
    region: String,
    next_id: u64,
    endpoints: Vec<Endpoint>,
    rules: Vec<Rule>,
    associations: Vec<Association>,
}

/// Actions that change the inventory.
pub(crate) fn is_mutating(action: &str) -> bool {
    !(action.starts_with("Get") || action.starts_with("List"))
}

fn now_iso() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn text<'a>(body: &'a Value, field: &str) -> Result<&'a str, ResolverError> {
    body.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(field, format!("{field} is required")))
}

/// The items every filter of the request keeps.
fn listed<'a, T>(
    body: &Value,
    items: &'a [T],
    field: impl Fn(&T, &str) -> Option<String>,
) -> Result<Vec<&'a T>, ResolverError> {
    let mut kept = Vec::new();
    for item in items {
        if filtered(body, |name| field(item, name))? {
            kept.push(item);
        }
    }
    Ok(kept)
}

/// One page of a list: `MaxResults` items (1 to 100, 100 when not given) from the one that
/// `NextToken` points at, and the token of the next page while there is one (the List*
/// references of Route 53 Resolver). The token is the offset: opaque to clients, and stable
/// because the twin's order is seeded.
fn paged(body: &Value, key: &str, items: Vec<Value>) -> Result<Value, ResolverError> {
    let max = match body.get("MaxResults") {
        None | Some(Value::Null) => 100,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| invalid("MaxResults", "must be between 1 and 100"))?,
    };
    let start = match body.get("NextToken").and_then(Value::as_str) {
        None => 0,
        Some(token) => token
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= items.len())
            .ok_or_else(|| err("InvalidNextTokenException", "The NextToken is not valid."))?,
    };
    let end = items.len().min(start + max as usize);
    let mut page = json!({ key: items[start..end].to_vec(), "MaxResults": max });
    if end < items.len() {
        page["NextToken"] = json!(end.to_string());
    }
    Ok(page)
}

/// `Filters: [{Name, Values}]`: every filter must match one of its values.
fn filtered(body: &Value, field: impl Fn(&str) -> Option<String>) -> Result<bool, ResolverError> {
    for f in body
        .get("Filters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = f.get("Name").and_then(Value::as_str).unwrap_or_default();
        let Some(actual) = field(name) else {
            return Err(invalid("Filters", format!("unknown filter name {name}")));
        };
        let values: Vec<&str> = f
            .get("Values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !values.is_empty() && !values.contains(&actual.as_str()) {
            return Ok(false);
        }
    }
    Ok(true)
}

impl Resolver {
    pub(crate) fn new(region: &str, time_factor: f64, seed: u64) -> Self {
        Resolver {
            time_factor,
            seed,
            region: region.to_owned(),
            next_id: u64::from(rand::random::<u32>()) << 20,
            endpoints: Vec::new(),
            rules: Vec::new(),
            associations: Vec::new(),
        }
    }

    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:017x}", self.next_id)
    }

    fn arn(&self, kind: &str, id: &str) -> String {
        format!(
            "arn:aws:route53resolver:{}:123456789012:{kind}/{id}",
            self.region
        )
    }

    /// Runs one action (`X-Amz-Target: Route53Resolver.<action>`).
    pub(crate) fn handle(
        &mut self,
        action: &str,
        body: &Value,
        net: &dyn Network,
    ) -> Result<Value, ResolverError> {
        self.forget_gone();
        match action {
            "CreateResolverEndpoint" => self.create_endpoint(body, net),
            "GetResolverEndpoint" => {
                let e = self.endpoint(text(body, "ResolverEndpointId")?)?;
                Ok(json!({ "ResolverEndpoint": self.endpoint_json(e) }))
            }
            "ListResolverEndpoints" => {
                let items = listed(body, &self.endpoints, |e, name| {
                    Some(match name {
                        "CreatorRequestId" => e.creator_request_id.clone(),
                        "Name" => e.name.clone(),
                        "Direction" => e.direction.clone(),
                        "HostVPCId" => e.vpc_id.clone(),
                        "Status" => e.status().to_owned(),
                        _ => return None,
                    })
                })?;
                let mut items: Vec<Value> =
                    items.into_iter().map(|e| self.endpoint_json(e)).collect();
                seeded_order(self.seed, &mut items, |e| e["Id"].to_string());
                paged(body, "ResolverEndpoints", items)
            }
            "ListResolverEndpointIpAddresses" => {
                let e = self.endpoint(text(body, "ResolverEndpointId")?)?;
                let status = if e.life.ready() {
                    "ATTACHED"
                } else {
                    "CREATING"
                };
                let mut ips: Vec<Value> = e
                    .ips
                    .iter()
                    .map(|i| {
                        json!({"IpId": i.id, "SubnetId": i.subnet_id, "Ip": i.ip.to_string(),
                               "Status": status, "StatusMessage": "This IP address is operational.",
                               "CreationTime": e.created_at, "ModificationTime": e.created_at})
                    })
                    .collect();
                seeded_order(self.seed, &mut ips, |i| i["IpId"].to_string());
                paged(body, "IpAddresses", ips)
            }
            "DeleteResolverEndpoint" => self.delete_endpoint(body),
            "CreateResolverRule" => self.create_rule(body),
            "GetResolverRule" => {
                let r = self.rule(text(body, "ResolverRuleId")?)?;
                Ok(json!({ "ResolverRule": self.rule_json(r) }))
            }
            "ListResolverRules" => {
                let items = listed(body, &self.rules, |r, name| {
                    Some(match name {
                        "CreatorRequestId" => r.creator_request_id.clone(),
                        "DomainName" => r.domain_name.clone(),
                        "Name" => r.name.clone(),
                        "ResolverEndpointId" => r.endpoint_id.clone(),
                        "Status" => "COMPLETE".into(),
                        "Type" => "FORWARD".into(),
                        _ => return None,
                    })
                })?;
                let mut items: Vec<Value> = items
                    .into_iter()
                    .filter(|r| !r.deleted)
                    .map(|r| self.rule_json(r))
                    .collect();
                seeded_order(self.seed, &mut items, |r| r["Id"].to_string());
                paged(body, "ResolverRules", items)
            }
            "DeleteResolverRule" => self.delete_rule(body),
            "AssociateResolverRule" => self.associate(body, net),
            "GetResolverRuleAssociation" => {
                let id = text(body, "ResolverRuleAssociationId")?;
                let a = self
                    .associations
                    .iter()
                    .find(|a| a.id == id)
                    .ok_or_else(|| not_found("rule association", id))?;
                Ok(json!({ "ResolverRuleAssociation": association_json(a) }))
            }
            "ListResolverRuleAssociations" => {
                let items = listed(body, &self.associations, |a, name| {
                    Some(match name {
                        "ResolverRuleId" => a.rule_id.clone(),
                        "VPCId" => a.vpc_id.clone(),
                        "Name" => a.name.clone(),
                        "Status" => a.status().to_owned(),
                        _ => return None,
                    })
                })?;
                let mut items: Vec<Value> = items.into_iter().map(association_json).collect();
                seeded_order(self.seed, &mut items, |a| a["Id"].to_string());
                paged(body, "ResolverRuleAssociations", items)
            }
            "DisassociateResolverRule" => self.disassociate(body),
            other => Err(err(
                "UnknownOperationException",
                format!(
                    "Route53Resolver.{other} is not served by the dxvpn twin (it serves endpoints, rules and associations)"
                ),
            )),
        }
    }

    /// Deleted resources disappear once their deletion time has passed.
    fn forget_gone(&mut self) {
        self.endpoints.retain(|e| !e.life.gone());
        self.associations.retain(|a| !a.life.gone());
        self.rules.retain(|r| !r.deleted);
    }

    fn endpoint(&self, id: &str) -> Result<&Endpoint, ResolverError> {
        self.endpoints
            .iter()
            .find(|e| e.id == id)
            .ok_or_else(|| not_found("resolver endpoint", id))
    }

    fn rule(&self, id: &str) -> Result<&Rule, ResolverError> {
        self.rules
            .iter()
            .find(|r| r.id == id && !r.deleted)
            .ok_or_else(|| not_found("resolver rule", id))
    }

    /// Whether an endpoint (live or deleting) still uses the security group.
    pub(crate) fn uses_security_group(&self, id: &str) -> Option<String> {
        self.endpoints
            .iter()
            .filter(|e| !e.life.gone())
            .find(|e| e.security_group_ids.iter().any(|g| g == id))
            .map(|e| e.id.clone())
    }

    /// What the lab's resolver for `vpc_id` applies now.
    pub(crate) fn lab_view(&self, vpc_id: &str) -> DnsRules {
        let operational = |id: &str| {
            self.endpoints
                .iter()
                .any(|e| e.id == id && e.vpc_id == vpc_id && e.status() == "OPERATIONAL")
        };
        let inbound_ips = self
            .endpoints
            .iter()
            .filter(|e| {
                e.vpc_id == vpc_id && e.direction == "INBOUND" && e.status() == "OPERATIONAL"
            })
            .flat_map(|e| e.ips.iter().map(|i| i.ip))
            .collect();
        let forwards = self
            .associations
            .iter()
            .filter(|a| a.vpc_id == vpc_id && a.status() == "COMPLETE")
            .filter_map(|a| self.rules.iter().find(|r| r.id == a.rule_id && !r.deleted))
            .filter(|r| operational(&r.endpoint_id))
            .map(|r| {
                (
                    r.domain_name.clone(),
                    r.target_ips.iter().map(|(ip, _)| *ip).collect(),
                )
            })
            .collect();
        DnsRules {
            inbound_ips,
            forwards,
        }
    }

    /// Everything that exists, for `/_dxvpn/inventory`.
    pub(crate) fn inventory(&self) -> Value {
        json!({
            "resolver_endpoints": self.endpoints.iter().filter(|e| !e.life.gone()).map(|e| json!({
                "id": e.id, "direction": e.direction, "status": e.status(), "vpc_id": e.vpc_id,
                "ips": e.ips.iter().map(|i| i.ip.to_string()).collect::<Vec<_>>(),
                "security_group_ids": e.security_group_ids,
            })).collect::<Vec<_>>(),
            "resolver_rules": self.rules.iter().filter(|r| !r.deleted).map(|r| json!({
                "id": r.id, "domain_name": r.domain_name, "endpoint_id": r.endpoint_id,
                "target_ips": r.target_ips.iter().map(|(ip, _)| ip.to_string()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "resolver_rule_associations": self.associations.iter().filter(|a| !a.life.gone()).map(|a| json!({
                "id": a.id, "rule_id": a.rule_id, "vpc_id": a.vpc_id, "status": a.status(),
            })).collect::<Vec<_>>(),
        })
    }
}

fn not_found(what: &str, id: &str) -> ResolverError {
    err(
        "ResourceNotFoundException",
        format!("[RSLVR-00100] Can't find {what} with ID '{id}'"),
    )
}
