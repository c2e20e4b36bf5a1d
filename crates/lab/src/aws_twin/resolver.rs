//! The Route 53 Resolver subset dxvpn uses (API 2018-04-01, awsJson1_1): endpoints with their
//! IP addresses, FORWARD rules and rule associations, with AWS's statuses and error types
//! (cloud-apis.md section 2). Like EC2, states follow from timestamps when read.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use dxvpn_cidr::Ipv4Net;
use serde_json::{Value, json};

use crate::resolvers::DnsRules;

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
    pub(crate) fn new(region: &str, time_factor: f64) -> Self {
        Resolver {
            time_factor,
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
                let items: Vec<Value> = items.into_iter().map(|e| self.endpoint_json(e)).collect();
                Ok(json!({ "ResolverEndpoints": items, "MaxResults": 100 }))
            }
            "ListResolverEndpointIpAddresses" => {
                let e = self.endpoint(text(body, "ResolverEndpointId")?)?;
                let status = if e.life.ready() {
                    "ATTACHED"
                } else {
                    "CREATING"
                };
                let ips: Vec<Value> = e
                    .ips
                    .iter()
                    .map(|i| {
                        json!({"IpId": i.id, "SubnetId": i.subnet_id, "Ip": i.ip.to_string(),
                               "Status": status, "StatusMessage": "This IP address is operational.",
                               "CreationTime": e.created_at, "ModificationTime": e.created_at})
                    })
                    .collect();
                Ok(json!({ "IpAddresses": ips, "MaxResults": 100 }))
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
                let items: Vec<Value> = items
                    .into_iter()
                    .filter(|r| !r.deleted)
                    .map(|r| self.rule_json(r))
                    .collect();
                Ok(json!({ "ResolverRules": items, "MaxResults": 100 }))
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
                let items: Vec<Value> = items.into_iter().map(association_json).collect();
                Ok(json!({ "ResolverRuleAssociations": items, "MaxResults": 100 }))
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

    fn endpoint_json(&self, e: &Endpoint) -> Value {
        let status = e.status();
        let message = match status {
            "OPERATIONAL" => "This Resolver Endpoint is operational.",
            "DELETING" => "[Trace id: dxvpn-twin] Deleting the Resolver Endpoint",
            _ => "[Trace id: dxvpn-twin] Creating the Resolver Endpoint",
        };
        json!({
            "Id": e.id, "Arn": self.arn("resolver-endpoint", &e.id),
            "CreatorRequestId": e.creator_request_id, "Name": e.name,
            "SecurityGroupIds": e.security_group_ids, "Direction": e.direction,
            "IpAddressCount": e.ips.len(), "HostVPCId": e.vpc_id,
            "Status": status, "StatusMessage": message,
            "CreationTime": e.created_at, "ModificationTime": e.created_at,
            "ResolverEndpointType": "IPV4", "Protocols": ["Do53"],
        })
    }

    fn rule_json(&self, r: &Rule) -> Value {
        json!({
            "Id": r.id, "Arn": self.arn("resolver-rule", &r.id),
            "CreatorRequestId": r.creator_request_id, "DomainName": r.domain_name,
            "Status": "COMPLETE", "StatusMessage": "[Trace id: dxvpn-twin] Successfully created Resolver Rule.",
            "RuleType": "FORWARD", "Name": r.name,
            "TargetIps": r.target_ips.iter().map(|(ip, port)| json!({"Ip": ip.to_string(), "Port": port})).collect::<Vec<_>>(),
            "ResolverEndpointId": r.endpoint_id, "OwnerId": "123456789012",
            "ShareStatus": "NOT_SHARED", "CreationTime": r.created_at, "ModificationTime": r.created_at,
        })
    }

    fn create_endpoint(&mut self, body: &Value, net: &dyn Network) -> Result<Value, ResolverError> {
        let creator = text(body, "CreatorRequestId")?.to_owned();
        let direction = text(body, "Direction")?.to_owned();
        if direction != "INBOUND" && direction != "OUTBOUND" {
            return Err(invalid(
                "Direction",
                format!("{direction} is not INBOUND or OUTBOUND"),
            ));
        }
        if let Some(e) = self
            .endpoints
            .iter()
            .find(|e| e.creator_request_id == creator)
        {
            return Err(err(
                "ResourceExistsException",
                format!(
                    "[RSLVR-00302] An endpoint with CreatorRequestId {creator} already exists: {}",
                    e.id
                ),
            ));
        }
        let groups: Vec<String> = body
            .get("SecurityGroupIds")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        if groups.is_empty() {
            return Err(invalid(
                "SecurityGroupIds",
                "at least one security group is required",
            ));
        }
        if let Some(g) = groups.iter().find(|g| !net.security_group_exists(g)) {
            return Err(invalid(
                "SecurityGroupIds",
                format!("security group {g} does not exist"),
            ));
        }
        let requested = body
            .get("IpAddresses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !(2..=20).contains(&requested.len()) {
            return Err(invalid(
                "IpAddresses",
                "Route 53 requires at least two and at most 20 IP addresses",
            ));
        }
        let mut vpc = None::<String>;
        let mut taken: BTreeSet<Ipv4Addr> = self
            .endpoints
            .iter()
            .flat_map(|e| e.ips.iter().map(|i| i.ip))
            .collect();
        let mut ips = Vec::new();
        for r in &requested {
            let subnet_id = text(r, "SubnetId")?;
            let (subnet_vpc, cidr) = net.subnet(subnet_id).ok_or_else(|| {
                invalid(
                    "IpAddresses.SubnetId",
                    format!("subnet {subnet_id} does not exist"),
                )
            })?;
            if vpc.as_ref().is_some_and(|v| *v != subnet_vpc) {
                return Err(invalid(
                    "IpAddresses",
                    "all subnets of an endpoint must be in one VPC",
                ));
            }
            vpc = Some(subnet_vpc);
            let ip = match r.get("Ip").and_then(Value::as_str) {
                Some(text) => {
                    let ip: Ipv4Addr = text
                        .parse()
                        .map_err(|_| invalid("IpAddresses.Ip", format!("{text} is not IPv4")))?;
                    if !cidr.contains(&ip) || taken.contains(&ip) {
                        return Err(invalid(
                            "IpAddresses.Ip",
                            format!("{ip} is not free in subnet {subnet_id} ({cidr})"),
                        ));
                    }
                    ip
                }
                // AWS picks free addresses; the first four of a subnet are reserved.
                None => cidr
                    .hosts()
                    .skip(4)
                    .find(|ip| !taken.contains(ip) && u32::from(*ip) % 256 >= 100)
                    .ok_or_else(|| {
                        err(
                            "ResourceUnavailableException",
                            format!("subnet {subnet_id} has no free address"),
                        )
                    })?,
            };
            taken.insert(ip);
            let ip_id = self.new_id("rni");
            ips.push(EndpointIp {
                id: ip_id,
                subnet_id: subnet_id.to_owned(),
                ip,
            });
        }
        let prefix = if direction == "INBOUND" {
            "rslvr-in"
        } else {
            "rslvr-out"
        };
        let id = self.new_id(prefix);
        let endpoint = Endpoint {
            id,
            creator_request_id: creator,
            name: body
                .get("Name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            direction,
            security_group_ids: groups,
            vpc_id: vpc.unwrap_or_default(),
            ips,
            life: Life::new(ENDPOINT_CREATE.mul_f64(self.time_factor)),
            created_at: now_iso(),
        };
        let out = json!({ "ResolverEndpoint": self.endpoint_json(&endpoint) });
        self.endpoints.push(endpoint);
        Ok(out)
    }

    fn delete_endpoint(&mut self, body: &Value) -> Result<Value, ResolverError> {
        let id = text(body, "ResolverEndpointId")?.to_owned();
        self.endpoint(&id)?;
        if let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.endpoint_id == id && !r.deleted)
        {
            return Err(err(
                "InvalidRequestException",
                format!(
                    "[RSLVR-00705] Cannot delete the Resolver Endpoint {id}: rule {} uses it. Delete the rule first.",
                    rule.id
                ),
            ));
        }
        let after = ENDPOINT_DELETE.mul_f64(self.time_factor);
        let e = self
            .endpoints
            .iter_mut()
            .find(|e| e.id == id)
            .ok_or_else(|| not_found("resolver endpoint", &id))?;
        if e.life.deleted.is_none() {
            e.life.deleted = Some((Instant::now(), after));
        }
        let e = e.clone();
        Ok(json!({ "ResolverEndpoint": self.endpoint_json(&e) }))
    }

    fn create_rule(&mut self, body: &Value) -> Result<Value, ResolverError> {
        let creator = text(body, "CreatorRequestId")?.to_owned();
        let rule_type = text(body, "RuleType")?;
        if rule_type != "FORWARD" {
            return Err(invalid(
                "RuleType",
                format!("the twin serves FORWARD rules, not {rule_type}"),
            ));
        }
        if let Some(r) = self
            .rules
            .iter()
            .find(|r| r.creator_request_id == creator && !r.deleted)
        {
            return Err(err(
                "ResourceExistsException",
                format!(
                    "A rule with CreatorRequestId {creator} already exists: {}",
                    r.id
                ),
            ));
        }
        let domain = text(body, "DomainName")?
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let endpoint_id = text(body, "ResolverEndpointId")?.to_owned();
        let endpoint = self.endpoint(&endpoint_id)?;
        if endpoint.direction != "OUTBOUND" {
            return Err(invalid(
                "ResolverEndpointId",
                format!("{endpoint_id} is not an OUTBOUND endpoint"),
            ));
        }
        let mut targets = Vec::new();
        for t in body
            .get("TargetIps")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ip = text(t, "Ip")?;
            let ip: Ipv4Addr = ip
                .parse()
                .map_err(|_| invalid("TargetIps.Ip", format!("{ip} is not an IPv4 address")))?;
            let port = t
                .get("Port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(53);
            targets.push((ip, port));
        }
        if targets.is_empty() {
            return Err(invalid(
                "TargetIps",
                "a FORWARD rule needs at least one target IP",
            ));
        }
        if self
            .rules
            .iter()
            .any(|r| !r.deleted && r.domain_name == domain && r.endpoint_id == endpoint_id)
        {
            return Err(err(
                "ResourceExistsException",
                format!("a rule for {domain} on {endpoint_id} already exists"),
            ));
        }
        let id = self.new_id("rslvr-rr");
        let rule = Rule {
            id,
            creator_request_id: creator,
            name: body
                .get("Name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            domain_name: domain,
            target_ips: targets,
            endpoint_id,
            deleted: false,
            created_at: now_iso(),
        };
        let out = json!({ "ResolverRule": self.rule_json(&rule) });
        self.rules.push(rule);
        Ok(out)
    }

    fn delete_rule(&mut self, body: &Value) -> Result<Value, ResolverError> {
        let id = text(body, "ResolverRuleId")?.to_owned();
        let rule = self.rule(&id)?.clone();
        if let Some(a) = self.associations.iter().find(|a| a.rule_id == id) {
            return Err(err(
                "ResourceInUseException",
                format!(
                    "[RSLVR-00901] Cannot delete resolver rule {id}: it is associated with {} ({}). Disassociate it from all VPCs first.",
                    a.vpc_id,
                    a.status()
                ),
            ));
        }
        if let Some(r) = self.rules.iter_mut().find(|r| r.id == id) {
            r.deleted = true;
        }
        let mut out = self.rule_json(&rule);
        out["Status"] = json!("DELETING");
        Ok(json!({ "ResolverRule": out }))
    }

    fn associate(&mut self, body: &Value, net: &dyn Network) -> Result<Value, ResolverError> {
        let rule_id = text(body, "ResolverRuleId")?.to_owned();
        let vpc_id = text(body, "VPCId")?.to_owned();
        let rule = self.rule(&rule_id)?.clone();
        if !net.vpc_exists(&vpc_id) {
            return Err(invalid("VPCId", format!("VPC {vpc_id} does not exist")));
        }
        if self
            .associations
            .iter()
            .any(|a| a.rule_id == rule_id && a.vpc_id == vpc_id)
        {
            return Err(err(
                "ResourceExistsException",
                format!("rule {rule_id} is already associated with {vpc_id}"),
            ));
        }
        if let Some(other) = self.associations.iter().find(|a| {
            a.vpc_id == vpc_id
                && self
                    .rules
                    .iter()
                    .any(|r| r.id == a.rule_id && r.domain_name == rule.domain_name)
        }) {
            return Err(err(
                "InvalidRequestException",
                format!(
                    "[RSLVR-00400] {vpc_id} already has a rule for {} ({})",
                    rule.domain_name, other.rule_id
                ),
            ));
        }
        let association = Association {
            id: self.new_id("rslvr-rrassoc"),
            rule_id,
            vpc_id,
            name: body
                .get("Name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            life: Life::new(ASSOCIATION_CREATE.mul_f64(self.time_factor)),
        };
        let out = json!({ "ResolverRuleAssociation": association_json(&association) });
        self.associations.push(association);
        Ok(out)
    }

    fn disassociate(&mut self, body: &Value) -> Result<Value, ResolverError> {
        let rule_id = text(body, "ResolverRuleId")?.to_owned();
        let vpc_id = text(body, "VPCId")?.to_owned();
        let after = ASSOCIATION_DELETE.mul_f64(self.time_factor);
        let a = self
            .associations
            .iter_mut()
            .find(|a| a.rule_id == rule_id && a.vpc_id == vpc_id)
            .ok_or_else(|| not_found("rule association", &format!("{rule_id} with {vpc_id}")))?;
        if a.life.deleted.is_none() {
            a.life.deleted = Some((Instant::now(), after));
        }
        Ok(json!({ "ResolverRuleAssociation": association_json(a) }))
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

fn association_json(a: &Association) -> Value {
    json!({
        "Id": a.id, "ResolverRuleId": a.rule_id, "Name": a.name, "VPCId": a.vpc_id,
        "Status": a.status(), "StatusMessage": "",
    })
}

fn not_found(what: &str, id: &str) -> ResolverError {
    err(
        "ResourceNotFoundException",
        format!("[RSLVR-00100] Can't find {what} with ID '{id}'"),
    )
}
