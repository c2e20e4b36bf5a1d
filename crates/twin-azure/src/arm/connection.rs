//! Connections: IPsec between the gateway and a local network gateway, with BGP, custom BGP
//! addresses, IPsec policies and the shared key (kept apart from the body; the `sharedkey`
//! endpoint reads and sets it).

use super::*;

pub(super) const IPSEC_POLICY_MEMBERS: [(&str, &[&str]); 6] = [
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

pub(super) fn check_ipsec_policies(policies: Option<&Value>) -> Result<(), ArmError> {
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

impl Arm {
    /// Checks a connection and takes its shared key out of the body (kept apart).
    pub(super) fn check_connection(
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
}

impl Arm {
    /// The shared key of a connection.
    pub(crate) fn shared_key(&mut self, id: &str) -> Result<Value, ArmError> {
        self.get(id, Kind::Connection)?;
        Ok(json!({ "value": self.keys.get(&key_of(id)).cloned().unwrap_or_default() }))
    }

    /// `SetSharedKey`: a long-running operation (the spec marks it
    /// `x-ms-long-running-operation`), during which the connection is `Updating` and its
    /// tunnel renegotiates.
    pub(crate) fn set_shared_key(&mut self, id: &str, body: &Value) -> Result<Accepted, ArmError> {
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
        let record_key = key_of(id);
        self.keys.insert(record_key.clone(), key.to_owned());
        let ready_after = self.scaled(Kind::Connection.update_time());
        if let Some(r) = self.records.get_mut(&record_key) {
            r.changed = Instant::now();
            r.ready_after = ready_after;
        }
        let operation = self.start_operation(&record_key, false, false);
        Ok(Accepted {
            status: 201,
            body: Some(json!({ "id": format!("{id}/sharedkey"), "value": key })),
            operation: Some(operation),
        })
    }
}
