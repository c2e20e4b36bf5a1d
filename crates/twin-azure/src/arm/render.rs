//! What a GET answers: the stored body with the members ARM computes (ids, states, addresses,
//! resource GUIDs) filled in, and the read-only members a PUT may not set dropped.

use super::*;

/// Drops members ARM computes itself, so a GET echoes the server's values, not the client's.
pub(super) fn strip_read_only(kind: Kind, body: &mut Map<String, Value>) {
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
            Kind::NetworkInterface => {
                p.remove("virtualMachine");
            }
            Kind::VirtualMachine => {
                p.remove("vmId");
                p.remove("instanceView");
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
    pub(super) fn render(&self, key: &str) -> Result<Value, ArmError> {
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
            Kind::VirtualMachine => compute::render_vm(r, &mut props),
            Kind::NetworkInterface => compute::render_nic(r, self.vm_of_nic(&r.id), &mut props),
            Kind::Connection => {
                // ARM answers a connection's gateways as references with their id only,
                // whatever the PUT sent, though the spec marks their `properties` required
                // (azure-rest-api-specs #755 and #850; the az CLI works around it, azure-cli
                // #1663). A client whose model requires them cannot read a connection.
                for k in ["virtualNetworkGateway1", "localNetworkGateway2"] {
                    if let Some(id) = ref_id(props.get(k)).map(str::to_owned) {
                        props.insert(k.into(), json!({ "id": id }));
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
                // Read-only counters of the connection (TunnelConnectionHealth and the
                // connection's own `ingressBytesTransferred`), from the data plane.
                let (ingress, egress) = self
                    .telemetry
                    .connection_bytes
                    .get(&r.name().to_ascii_lowercase())
                    .copied()
                    .unwrap_or_default();
                props.insert("ingressBytesTransferred".into(), json!(ingress));
                props.insert("egressBytesTransferred".into(), json!(egress));
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
}
