//! Customer gateways: create (one per IP and ASN, as AWS returns the existing one), describe, delete.

use super::*;

pub(super) fn write_cgw(x: &mut Xml, c: &Cgw) {
    x.field("customerGatewayId", &c.id)
        .field("state", c.life.shown_state())
        .field("type", "ipsec.1")
        .field("ipAddress", c.ip)
        .field("bgpAsn", c.asn);
    x.maybe("deviceName", c.device_name.as_ref());
    x.tags(&c.tags);
}

impl Ec2 {
    pub(super) fn create_customer_gateway(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        if p.get("Type") != Some("ipsec.1") {
            return Err(err("InvalidParameterValue", "Type must be ipsec.1"));
        }
        let ip: Ipv4Addr = p
            .get("IpAddress")
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| err("InvalidParameterValue", "IpAddress must be an IPv4 address"))?;
        let asn_text = p
            .get("BgpAsnExtended")
            .or(p.get("BgpAsn"))
            .unwrap_or("65000");
        let asn: u32 = asn_text
            .parse()
            .ok()
            .filter(|a| *a >= 1 && *a <= 4_294_967_294)
            .ok_or_else(|| {
                err(
                    "InvalidParameterValue",
                    format!("Invalid BgpAsn: {asn_text}"),
                )
            })?;
        if [7224, 9059, 10124, 17943].contains(&asn) {
            return Err(err(
                "InvalidParameterValue",
                format!("The ASN {asn} is reserved by AWS"),
            ));
        }
        // Content-based idempotency: the same gateway asked again is the same gateway.
        if let Some(existing) = self
            .cgws
            .iter()
            .find(|c| c.ip == ip && c.asn == asn && c.life.live())
        {
            let mut x = Xml::new();
            x.element("customerGateway", |x| write_cgw(x, existing));
            return Ok(x);
        }
        let id = self.new_id("cgw");
        let cgw = Cgw {
            id,
            ip,
            asn,
            device_name: p.get("DeviceName").map(str::to_owned),
            life: self.lifecycle(CUSTOMER_GATEWAY_CREATE),
            tags: p.tags(),
        };
        let mut x = Xml::new();
        x.element("customerGateway", |x| write_cgw(x, &cgw));
        self.cgws.push(cgw);
        Ok(x)
    }

    pub(super) fn describe_customer_gateways(&self, p: &Params) -> Result<Xml, Ec2Error> {
        let matched = select(
            self.seed,
            p,
            "CustomerGatewayId",
            self.cgws.iter().filter(|c| c.life.seen_state().is_some()),
            |c| &c.id,
            ("InvalidCustomerGatewayID.NotFound", "customerGateway"),
            |c, name| {
                Some(match name {
                    "customer-gateway-id" => vec![c.id.clone()],
                    "state" => vec![c.life.shown_state().into()],
                    "ip-address" => vec![c.ip.to_string()],
                    "bgp-asn" => vec![c.asn.to_string()],
                    "type" => vec!["ipsec.1".into()],
                    _ => return tag_field(&c.tags, name),
                })
            },
        )?;
        let mut x = Xml::new();
        x.set("customerGatewaySet", matched, write_cgw);
        Ok(x)
    }

    pub(super) fn delete_customer_gateway(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let id = p.get("CustomerGatewayId").unwrap_or_default().to_owned();
        if !id.starts_with("cgw-") {
            return Err(err(
                "InvalidCustomerGatewayId.Malformed",
                format!("Invalid id: \"{id}\" (expecting \"cgw-...\")"),
            ));
        }
        if self
            .vpns
            .iter()
            .any(|v| v.cgw_id == id && v.life.state() != "deleted")
        {
            return Err(err(
                "IncorrectState",
                format!("The customer gateway '{id}' is in use by a VPN connection"),
            ));
        }
        let cgw = self
            .cgws
            .iter_mut()
            .find(|c| c.id == id && c.life.propagated() && c.life.state() != "deleted")
            .ok_or_else(|| {
                err(
                    "InvalidCustomerGatewayID.NotFound",
                    format!("The customerGateway ID '{id}' does not exist"),
                )
            })?;
        if cgw.life.live() {
            cgw.life.deleted = Some(Instant::now());
        }
        Ok(ok_return())
    }
}
