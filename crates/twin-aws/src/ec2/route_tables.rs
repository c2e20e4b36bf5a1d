//! The seeded network: route tables and VGW route propagation, VPCs, subnets.

use super::*;

impl Ec2 {
    pub(super) fn set_propagation(&mut self, p: &Params, on: bool) -> Result<Xml, Ec2Error> {
        let gateway_id = p.get("GatewayId").unwrap_or_default().to_owned();
        let rtb_id = p.get("RouteTableId").unwrap_or_default().to_owned();
        let rtb_index = self
            .route_tables
            .iter()
            .position(|r| r.id == rtb_id)
            .ok_or_else(|| {
                err(
                    "InvalidRouteTableID.NotFound",
                    format!("The routeTable ID '{rtb_id}' does not exist"),
                )
            })?;
        let vpc_id = self.route_tables[rtb_index].vpc_id.clone();
        let vgw = self.vgw_mut(Some(&gateway_id))?;
        if on
            && !vgw
                .attachments
                .iter()
                .any(|a| a.vpc_id == vpc_id && a.state() == "attached")
        {
            return Err(err(
                "Gateway.NotAttached",
                format!("Gateway {gateway_id} is not attached to {vpc_id}"),
            ));
        }
        let rtb = &mut self.route_tables[rtb_index];
        rtb.propagating_vgws.retain(|g| *g != gateway_id);
        if on {
            rtb.propagating_vgws.push(gateway_id);
        }
        Ok(ok_return())
    }

    pub(super) fn describe_route_tables(&self, p: &Params) -> Result<Xml, Ec2Error> {
        let matched = select(
            self.seed,
            p,
            "RouteTableId",
            &self.route_tables,
            |r| &r.id,
            ("InvalidRouteTableID.NotFound", "routeTable"),
            |r, name| {
                Some(match name {
                    "route-table-id" => vec![r.id.clone()],
                    "vpc-id" => vec![r.vpc_id.clone()],
                    "association.subnet-id" => vec![r.subnet_id.clone()],
                    _ => return tag_field(&r.tags, name),
                })
            },
        )?;
        let mut x = Xml::new();
        x.set("routeTableSet", matched, |x, r| {
            let vpc_cidr = self
                .vpcs
                .iter()
                .find(|v| v.id == r.vpc_id)
                .map(|v| v.cidr.to_string())
                .unwrap_or_default();
            x.field("routeTableId", &r.id)
                .field("vpcId", &r.vpc_id)
                .field("ownerId", "123456789012");
            x.set("routeSet", [&vpc_cidr], |x, cidr| {
                x.field("destinationCidrBlock", cidr)
                    .field("gatewayId", "local")
                    .field("state", "active")
                    .field("origin", "CreateRouteTable");
            });
            x.set("associationSet", [r], |x, r| {
                x.field(
                    "routeTableAssociationId",
                    format!("rtbassoc-{}", &r.id[4..]),
                )
                .field("routeTableId", &r.id)
                .field("subnetId", &r.subnet_id)
                .field("main", "false");
            });
            x.set("propagatingVgwSet", &r.propagating_vgws, |x, g| {
                x.field("gatewayId", g);
            });
            x.tags(&r.tags);
        });
        Ok(x)
    }

    pub(super) fn describe_vpcs(&self, p: &Params) -> Result<Xml, Ec2Error> {
        let matched = select(
            self.seed,
            p,
            "VpcId",
            &self.vpcs,
            |v| &v.id,
            ("InvalidVpcID.NotFound", "vpc"),
            |v, name| {
                Some(match name {
                    "vpc-id" => vec![v.id.clone()],
                    "cidr" | "cidr-block-association.cidr-block" => vec![v.cidr.to_string()],
                    "state" => vec!["available".into()],
                    _ => return tag_field(&v.tags, name),
                })
            },
        )?;
        let mut x = Xml::new();
        x.set("vpcSet", matched, |x, v| {
            x.field("vpcId", &v.id)
                .field("state", "available")
                .field("cidrBlock", v.cidr)
                .field("ownerId", "123456789012")
                .field("isDefault", "false");
            x.tags(&v.tags);
        });
        Ok(x)
    }

    pub(super) fn describe_subnets(&self, p: &Params) -> Result<Xml, Ec2Error> {
        let matched = select(
            self.seed,
            p,
            "SubnetId",
            &self.subnets,
            |s| &s.id,
            ("InvalidSubnetID.NotFound", "subnet"),
            |s, name| {
                Some(match name {
                    "subnet-id" => vec![s.id.clone()],
                    "vpc-id" => vec![s.vpc_id.clone()],
                    "cidr-block" => vec![s.cidr.to_string()],
                    "state" => vec!["available".into()],
                    _ => return tag_field(&s.tags, name),
                })
            },
        )?;
        let mut x = Xml::new();
        let region = self.region.clone();
        x.set("subnetSet", matched, |x, s| {
            x.field("subnetId", &s.id)
                .field("state", "available")
                .field("vpcId", &s.vpc_id)
                .field("cidrBlock", s.cidr)
                .field("availabilityZone", format!("{region}a"))
                .field("ownerId", "123456789012");
            x.tags(&s.tags);
        });
        Ok(x)
    }
}
