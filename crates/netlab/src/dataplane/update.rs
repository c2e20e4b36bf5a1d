//! Changes in place: a tunnel that leaves the topology (AWS modifying it) and comes back, or
//! whose BGP addresses change (a new inside CIDR), without touching the other tunnels.
//!
//! A cloud changes one tunnel while the others carry traffic; a lab that rebuilt everything
//! on each change would show an outage no cloud has. What stays: every namespace, charon and
//! IPsec SA as built, since an inside-CIDR change leaves the outside addresses and keys alone.
//! What changes: the gateways' inside addresses and the BGP sessions, applied with
//! `birdc configure`. A tunnel left out loses its sessions on both ends at once: the lab takes
//! AWS's modification as an orderly teardown (AWS ends the session; the Azure side does not
//! wait out a hold time), so the other tunnel carries the traffic as soon as BGP has moved.

use super::*;

/// What a tunnel's IPsec needs: while it stays, the built ends serve the tunnel.
fn same_ipsec(a: &LabTunnel, b: &LabTunnel) -> bool {
    a.azure_instance == b.azure_instance
        && a.aws.outside_ip == b.aws.outside_ip
        && a.aws.customer_gateway_ip == b.aws.customer_gateway_ip
        && a.aws.psk.expose() == b.aws.psk.expose()
        && a.azure.peer_outside_ip == b.azure.peer_outside_ip
        && a.azure.psk.expose() == b.azure.psk.expose()
}

/// The sides as JSON, route propagation aside (it changes in place already).
fn sides(t: &Topology) -> (serde_json::Value, serde_json::Value) {
    let mut aws = serde_json::to_value(&t.aws).unwrap_or_default();
    if let Some(o) = aws.as_object_mut() {
        o.remove("route_propagation");
    }
    (aws, serde_json::to_value(&t.azure).unwrap_or_default())
}

impl DataPlane {
    /// Whether `wanted` can be reached in place: the same gateways, and only tunnels that
    /// were built, each with the IPsec it was built with.
    pub fn can_update_to(&self, wanted: &Topology) -> bool {
        sides(&self.topology) == sides(wanted)
            && wanted.tunnels.iter().all(|w| {
                self.built
                    .iter()
                    .any(|b| b.key == w.key && same_ipsec(b, w))
            })
    }

    /// Moves to `wanted` in place (see the module's doc); call only when
    /// [`DataPlane::can_update_to`] says so.
    pub async fn update(&mut self, wanted: &Topology) -> Result<(), NetlabError> {
        let vgw = self.run.ns("aws-vgw");
        let old = std::mem::replace(&mut self.topology, wanted.clone());
        // Addresses of tunnels that left or changed go; those of tunnels that came or changed
        // come. A gateway's inside address is on its loopback, with a route to the peer's.
        for before in &old.tunnels {
            let after = wanted.tunnels.iter().find(|t| t.key == before.key);
            if after.is_some_and(|a| same_bgp(a, before)) {
                continue;
            }
            let gw = self.run.ns(&format!("az-gw{}", before.azure_instance));
            let cidr = before.aws.inside_cidr;
            remove_bgp_address(&vgw, aws_inside_ip(cidr), azure_inside_ip(cidr)).await;
            let (custom, peer) = (before.azure.custom_bgp_ip, before.azure.peer_bgp_ip);
            remove_bgp_address(&gw, custom, peer).await;
        }
        for after in &wanted.tunnels {
            let before = old.tunnels.iter().find(|t| t.key == after.key);
            if before.is_some_and(|b| same_bgp(b, after)) {
                continue;
            }
            let j = self.slot(&after.key);
            let gw = self.run.ns(&format!("az-gw{}", after.azure_instance));
            let cidr = after.aws.inside_cidr;
            let (aws_local, aws_peer) = (aws_inside_ip(cidr), azure_inside_ip(cidr));
            add_bgp_address(&vgw, aws_local, aws_peer, router_link(2 * j).1).await?;
            let (custom, peer) = (after.azure.custom_bgp_ip, after.azure.peer_bgp_ip);
            add_bgp_address(&gw, custom, peer, router_link(2 * j + 1).1).await?;
        }
        if let Some(bird) = self.birds.get(&vgw) {
            bird.reconfigure(&bird_conf(&self.aws_router())).await?;
        }
        for i in 0..wanted.azure_instances() {
            let gw = self.run.ns(&format!("az-gw{i}"));
            if let Some(bird) = self.birds.get(&gw) {
                bird.reconfigure(&bird_conf(&self.instance_router(i)))
                    .await?;
            }
        }
        if old.aws.route_propagation != wanted.aws.route_propagation {
            self.set_route_propagation(wanted.aws.route_propagation)
                .await?;
        }
        Ok(())
    }
}

/// The same BGP addresses and ASNs on both sides.
fn same_bgp(a: &LabTunnel, b: &LabTunnel) -> bool {
    a.aws.inside_cidr == b.aws.inside_cidr
        && a.aws.customer_gateway_asn == b.aws.customer_gateway_asn
        && a.azure.custom_bgp_ip == b.azure.custom_bgp_ip
        && a.azure.peer_bgp_ip == b.azure.peer_bgp_ip
        && a.azure.peer_asn == b.azure.peer_asn
}
