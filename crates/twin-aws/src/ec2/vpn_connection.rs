//! VPN connections: create with tunnel options (inside CIDRs, keys, IKE/IPsec proposals), describe
//! with telemetry and the device configuration, delete.

use super::*;

/// A connection's tunnels in the order DescribeVpnConnections gives them. AWS documents
/// `VpnConnectionOptions.TunnelOptions` and `VgwTelemetry` as lists with no order, and does not
/// keep the order of the request's `TunnelOptions`: clients that paired by position got one
/// tunnel's key or address on the other (terraform-provider-aws #396, #5809, #16928, #19079;
/// fixed by pairing on the inside CIDR in PR #19077). Each list is in its own seeded order.
fn answer_order<'a>(v: &'a Vpn, seed: u64, list: &str) -> Vec<&'a TunnelOption> {
    let mut tunnels: Vec<&TunnelOption> = v.tunnels.iter().collect();
    seeded_order(seed, &mut tunnels, |t| (&v.id, list, t.inside_cidr));
    tunnels
}

pub(super) fn write_vpn(
    x: &mut Xml,
    v: &Vpn,
    (cgw_ip, cgw_asn, vgw_asn): (Ipv4Addr, u32, u32),
    seed: u64,
) {
    let state = v.shown_state();
    x.field("vpnConnectionId", &v.id).field("state", state);
    // AWS includes the device configuration while the connection is pending, available or
    // modifying (the AWS CLI reference's modify-vpn-connection example answers `modifying`
    // with its CustomerGatewayConfiguration).
    if matches!(state, "pending" | "available" | "modifying") {
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
        x.set(
            "tunnelOptionSet",
            answer_order(v, seed, "options"),
            |x, t| {
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
            },
        );
    });
    x.set("routes", std::iter::empty::<()>(), |_, ()| {});
    x.tags(&v.tags);
    if state != "deleted" {
        let changed = now_iso();
        x.set(
            "vgwTelemetry",
            answer_order(v, seed, "telemetry"),
            |x, t| {
                // With BGP, AWS reports a tunnel UP only once its session is established.
                // A tunnel whose endpoint a modification is replacing is down meanwhile.
                let mut tel = t.telemetry;
                if v.modifying_tunnel() == Some(t.outside_ip) {
                    tel = TunnelTelemetry::default();
                }
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
            },
        );
    }
}

/// The native device configuration AWS embeds (escaped) in `customerGatewayConfiguration`.
pub(super) fn device_configuration(
    v: &Vpn,
    cgw_ip: Ipv4Addr,
    cgw_asn: u32,
    vgw_asn: u32,
) -> String {
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

/// A tunnel inside CIDR as AWS accepts it: a /30 of 169.254.0.0/16, not one of the reserved ones
/// (VpnTunnelOptionsSpecification, TunnelInsideCidr).
pub(super) fn parse_inside_cidr(text: &str) -> Result<Ipv4Net, Ec2Error> {
    let cidr: Ipv4Net = text.parse().map_err(|_| {
        err(
            "InvalidParameterValue",
            format!("Invalid TunnelInsideCidr: {text}"),
        )
    })?;
    if cidr.prefix_len() != 30 || !AWS_INSIDE_SUPERNET.contains(&cidr) || cidr.trunc() != cidr {
        return Err(err(
            "InvalidParameterValue",
            format!("The tunnel inside CIDR {text} must be a /30 in 169.254.0.0/16"),
        ));
    }
    if AWS_RESERVED_INSIDE_CIDRS.contains(&cidr) {
        return Err(err(
            "InvalidParameterValue",
            format!("The tunnel inside CIDR {text} is reserved"),
        ));
    }
    Ok(cidr)
}

/// A pre-shared key as AWS accepts it; the message never repeats the key.
pub(super) fn parse_key(text: &str, tunnel: usize) -> Result<PresharedKey, Ec2Error> {
    PresharedKey::parse(text).map_err(|e| {
        err(
            "InvalidParameterValue",
            format!("Invalid pre-shared key for tunnel {}: {e}", tunnel + 1),
        )
    })
}

/// The proposals, DPD timeout and startup action of a tunnel options structure (the same members
/// in CreateVpnConnection's VpnTunnelOptionsSpecification and ModifyVpnTunnelOptions'
/// ModifyVpnTunnelOptionsSpecification); a member the request leaves out keeps its value.
pub(super) fn apply_options(t: &mut TunnelOption, o: &Params) {
    for (name, field) in [
        ("IKEVersion", &mut t.ike_versions),
        ("Phase1EncryptionAlgorithm", &mut t.phase1_encryption),
        ("Phase2EncryptionAlgorithm", &mut t.phase2_encryption),
        ("Phase1IntegrityAlgorithm", &mut t.phase1_integrity),
        ("Phase2IntegrityAlgorithm", &mut t.phase2_integrity),
        ("Phase1DHGroupNumber", &mut t.phase1_dh),
        ("Phase2DHGroupNumber", &mut t.phase2_dh),
    ] {
        let given = o.values(name);
        if !given.is_empty() {
            *field = given;
        }
    }
    if let Some(dpd) = o.get("DPDTimeoutSeconds") {
        t.dpd_timeout = Some(dpd.to_owned());
    }
    if let Some(action) = o.get("StartupAction") {
        action.clone_into(&mut t.startup_action);
    }
}

impl Ec2 {
    pub(super) fn create_vpn_connection(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        if p.get("Type") != Some("ipsec.1") {
            return Err(err("InvalidParameterValue", "Type must be ipsec.1"));
        }
        let cgw_id = p.get("CustomerGatewayId").unwrap_or_default().to_owned();
        let cgw = self
            .cgws
            .iter()
            .find(|c| c.id == cgw_id && c.life.propagated() && c.life.state() != "deleted")
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
                Some(text) => parse_inside_cidr(text)?,
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
                Some(text) => parse_key(text, i)?,
                None => PresharedKey::generate(),
            };
            let mut tunnel = TunnelOption {
                outside_ip: Ipv4Addr::UNSPECIFIED,
                inside_cidr,
                psk,
                ike_versions: Vec::new(),
                phase1_encryption: Vec::new(),
                phase2_encryption: Vec::new(),
                phase1_integrity: Vec::new(),
                phase2_integrity: Vec::new(),
                phase1_dh: Vec::new(),
                phase2_dh: Vec::new(),
                dpd_timeout: None,
                startup_action: "add".to_owned(),
                telemetry: TunnelTelemetry::default(),
            };
            if let Some(o) = o {
                apply_options(&mut tunnel, o);
            }
            tunnels.push(tunnel);
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
            life: self.lifecycle(VPN_CONNECTION_CREATE),
            tags: p.tags(),
            modifying: None,
        };
        let mut x = Xml::new();
        let (cgw_ip, vgw_asn) = (cgw.ip, vgw.asn);
        x.element("vpnConnection", |x| {
            write_vpn(x, &vpn, (cgw_ip, cgw.asn, vgw_asn), self.seed)
        });
        self.vpns.push(vpn);
        Ok(x)
    }

    pub(super) fn describe_vpn_connections(&self, p: &Params) -> Result<Xml, Ec2Error> {
        let matched = select(
            self.seed,
            p,
            "VpnConnectionId",
            self.vpns.iter().filter(|v| v.life.seen_state().is_some()),
            |v| &v.id,
            ("InvalidVpnConnectionID.NotFound", "vpnConnection"),
            |v, name| {
                Some(match name {
                    "vpn-connection-id" => vec![v.id.clone()],
                    "state" => vec![v.shown_state().into()],
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
            let cgw = (
                cgw.map_or(Ipv4Addr::UNSPECIFIED, |c| c.ip),
                cgw.map_or(0, |c| c.asn),
                vgw_asn,
            );
            write_vpn(x, v, cgw, self.seed);
        });
        Ok(x)
    }

    pub(super) fn delete_vpn_connection(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let id = p.get("VpnConnectionId").unwrap_or_default().to_owned();
        let vpn = self
            .vpns
            .iter_mut()
            .find(|v| v.id == id && v.life.propagated() && v.life.state() != "deleted")
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
}
