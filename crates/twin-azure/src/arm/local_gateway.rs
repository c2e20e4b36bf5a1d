//! Local network gateways: the peer's outside address and its BGP settings.

use super::*;

impl Arm {
    pub(super) fn check_local_gateway(body: &Map<String, Value>) -> Result<(), ArmError> {
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
}
