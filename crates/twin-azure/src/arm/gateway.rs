//! Virtual network gateways: route-based VPN, the AZ SKUs, one or two ipConfigurations, BGP with
//! custom APIPA addresses, and the `getBgpPeerStatus` and `getLearnedRoutes` actions.

use super::*;

pub(super) fn in_apipa_range(ip: Ipv4Addr) -> bool {
    (AZURE_APIPA_FIRST..=AZURE_APIPA_LAST).contains(&ip)
}

pub(super) const GATEWAY_SKUS: &[&str] = &[
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
    pub(super) fn check_gateway(
        &self,
        id: &str,
        body: &Map<String, Value>,
    ) -> Result<(), ArmError> {
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
}

impl Arm {
    pub(super) fn render_gateway(&self, r: &Record, props: &mut Map<String, Value>) {
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
}

impl Arm {
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
}
