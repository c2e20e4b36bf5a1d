//! Resolver endpoints: create (addresses in the named subnets, behind security groups that must
//! exist), delete (refused while a rule uses the endpoint).

use super::*;

impl Resolver {
    pub(super) fn endpoint_json(&self, e: &Endpoint) -> Value {
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
}

impl Resolver {
    pub(super) fn create_endpoint(
        &mut self,
        body: &Value,
        net: &dyn Network,
    ) -> Result<Value, ResolverError> {
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
            life: Life::new(dxvpn_twin_kit::scale(ENDPOINT_CREATE, self.time_factor)),
            created_at: now_iso(),
        };
        let out = json!({ "ResolverEndpoint": self.endpoint_json(&endpoint) });
        self.endpoints.push(endpoint);
        Ok(out)
    }

    pub(super) fn delete_endpoint(&mut self, body: &Value) -> Result<Value, ResolverError> {
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
        let after = dxvpn_twin_kit::scale(ENDPOINT_DELETE, self.time_factor);
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
}
