//! Virtual private gateways: create, describe, attach to the VPC, detach, delete.

use super::*;

pub(super) fn write_vgw(x: &mut Xml, v: &Vgw) {
    x.field("vpnGatewayId", &v.id)
        .field("state", v.life.shown_state())
        .field("type", "ipsec.1");
    x.set("attachments", &v.attachments, |x, a| {
        x.field("vpcId", &a.vpc_id).field("state", a.state());
    });
    x.field("amazonSideAsn", v.asn);
    x.tags(&v.tags);
}

impl Ec2 {
    pub(super) fn create_vpn_gateway(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        if p.get("Type") != Some("ipsec.1") {
            return Err(err("InvalidParameterValue", "Type must be ipsec.1"));
        }
        let asn = match p.get("AmazonSideAsn") {
            None => 64512,
            Some(text) => {
                let asn: u64 = text.parse().map_err(|_| {
                    err(
                        "InvalidParameterValue",
                        format!("Invalid AmazonSideAsn: {text}"),
                    )
                })?;
                let ok = (64512..=65534).contains(&asn)
                    || (4_200_000_000..=4_294_967_294).contains(&asn);
                if !ok {
                    return Err(err(
                        "InvalidParameterValue",
                        format!(
                            "The ASN {asn} is not a private ASN (64512-65534 or 4200000000-4294967294)."
                        ),
                    ));
                }
                asn as u32
            }
        };
        let id = self.new_id("vgw");
        // Official samples show a new VGW already `available`.
        let vgw = Vgw {
            id,
            asn,
            life: self.lifecycle(Duration::ZERO),
            attachments: Vec::new(),
            tags: p.tags(),
        };
        let mut x = Xml::new();
        x.element("vpnGateway", |x| write_vgw(x, &vgw));
        self.vgws.push(vgw);
        Ok(x)
    }

    pub(super) fn describe_vpn_gateways(&self, p: &Params) -> Result<Xml, Ec2Error> {
        let matched = select(
            self.seed,
            p,
            "VpnGatewayId",
            self.vgws.iter().filter(|v| v.life.seen_state().is_some()),
            |v| &v.id,
            ("InvalidVpnGatewayID.NotFound", "vpnGateway"),
            |v, name| {
                Some(match name {
                    "vpn-gateway-id" => vec![v.id.clone()],
                    "state" => vec![v.life.shown_state().into()],
                    "type" => vec!["ipsec.1".into()],
                    "amazon-side-asn" => vec![v.asn.to_string()],
                    "attachment.vpc-id" => v.attachments.iter().map(|a| a.vpc_id.clone()).collect(),
                    "attachment.state" => {
                        v.attachments.iter().map(|a| a.state().to_owned()).collect()
                    }
                    _ => return tag_field(&v.tags, name),
                })
            },
        )?;
        let mut x = Xml::new();
        x.set("vpnGatewaySet", matched, write_vgw);
        Ok(x)
    }

    pub(super) fn vgw_mut(&mut self, id: Option<&str>) -> Result<&mut Vgw, Ec2Error> {
        let id = id.ok_or_else(|| {
            err(
                "MissingParameter",
                "The request must contain the parameter VpnGatewayId",
            )
        })?;
        self.vgws
            .iter_mut()
            .find(|v| v.id == id && v.life.propagated() && v.life.state() != "deleted")
            .ok_or_else(|| {
                err(
                    "InvalidVpnGatewayID.NotFound",
                    format!("The vpnGateway ID '{id}' does not exist"),
                )
            })
    }

    pub(super) fn attach_vpn_gateway(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let vpc_id = p
            .get("VpcId")
            .ok_or_else(|| {
                err(
                    "MissingParameter",
                    "The request must contain the parameter VpcId",
                )
            })?
            .to_owned();
        if !self.vpcs.iter().any(|v| v.id == vpc_id) {
            return Err(err(
                "InvalidVpcID.NotFound",
                format!("The vpc ID '{vpc_id}' does not exist"),
            ));
        }
        let busy = |a: &Attachment| a.state() != "detached";
        let vgw_id = p.get("VpnGatewayId").unwrap_or_default().to_owned();
        if self
            .vgws
            .iter()
            .any(|v| v.id != vgw_id && v.attachments.iter().any(|a| a.vpc_id == vpc_id && busy(a)))
        {
            return Err(err(
                "InvalidVpcState",
                format!("The vpc '{vpc_id}' already has a virtual private gateway attached"),
            ));
        }
        let attach_after = self.scaled(VGW_ATTACH);
        let vgw = self.vgw_mut(p.get("VpnGatewayId"))?;
        if vgw.life.state() != "available" {
            return Err(err(
                "InvalidVpnGatewayState",
                format!("The vpnGateway '{}' is not available", vgw.id),
            ));
        }
        if let Some(a) = vgw.attachments.iter().find(|a| busy(a)) {
            // Attaching again to the same VPC is how EC2 answers a retry: the same attachment.
            if a.vpc_id != vpc_id {
                return Err(err(
                    "VpnGatewayAttachmentLimitExceeded",
                    format!(
                        "The vpnGateway '{}' is already attached to {}",
                        vgw.id, a.vpc_id
                    ),
                ));
            }
        } else {
            vgw.attachments.retain(|a| a.vpc_id != vpc_id);
            vgw.attachments.push(Attachment {
                vpc_id: vpc_id.clone(),
                attached: Instant::now(),
                attach_after,
                detached: None,
            });
        }
        let state = vgw
            .attachments
            .iter()
            .find(|a| a.vpc_id == vpc_id)
            .map_or("attaching", Attachment::state);
        let mut x = Xml::new();
        x.element("attachment", |x| {
            x.field("vpcId", &vpc_id).field("state", state);
        });
        Ok(x)
    }

    pub(super) fn detach_vpn_gateway(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let vpc_id = p.get("VpcId").unwrap_or_default().to_owned();
        let detach_after = self.scaled(VGW_DETACH);
        let vgw = self.vgw_mut(p.get("VpnGatewayId"))?;
        let vgw_id = vgw.id.clone();
        let attachment = vgw
            .attachments
            .iter_mut()
            .find(|a| a.vpc_id == vpc_id && a.detached.is_none())
            .ok_or_else(|| err("InvalidVpnGatewayAttachment.NotFound", format!("The attachment with vpn gateway ID '{vgw_id}' and vpc ID '{vpc_id}' does not exist")))?;
        attachment.detached = Some((Instant::now(), detach_after));
        for rtb in self.route_tables.iter_mut().filter(|r| r.vpc_id == vpc_id) {
            rtb.propagating_vgws.retain(|g| *g != vgw_id);
        }
        Ok(ok_return())
    }

    pub(super) fn delete_vpn_gateway(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let id = p.get("VpnGatewayId").unwrap_or_default().to_owned();
        if self
            .vpns
            .iter()
            .any(|v| v.vgw_id == id && v.life.state() != "deleted")
        {
            return Err(err(
                "IncorrectState",
                format!("The vpnGateway '{id}' has VPN connections that are not deleted"),
            ));
        }
        let vgw = self.vgw_mut(Some(&id))?;
        if vgw.attachments.iter().any(|a| a.state() != "detached") {
            return Err(err(
                "IncorrectState",
                format!(
                    "The vpnGateway '{id}' is attached to a VPC; ensure that it's detached before deleting it"
                ),
            ));
        }
        if vgw.life.live() {
            vgw.life.deleted = Some(Instant::now());
        }
        Ok(ok_return())
    }
}
