//! Writes ARM serialises: one at a time on a virtual network and its subnets, and none on a
//! connection while its gateway is updating. The one refused gets 409
//! `AnotherOperationInProgress`, "Another operation on this or dependent resource is in
//! progress." Sources: terraform-provider-azapi #503 ("RESPONSE 409: 409 Conflict ERROR CODE:
//! AnotherOperationInProgress" for parallel subnet PUTs) and terraform-provider-azurerm #3780,
//! after which azurerm locks the VNet around every subnet write; azure-rest-api-specs #14473
//! (a write on a connection while its SetSharedKey still runs) and Azure-Landing-Zones #4134
//! (connections written in parallel on one gateway) for gateways and their connections.

use super::*;

impl Arm {
    /// Refuses a client's write of `id` that ARM would serialise behind one still running.
    /// (A VNet PUT's inline subnets are part of its own write, so this is not in `put`.)
    pub(crate) fn check_serialised(
        &self,
        id: &str,
        kind: Kind,
        body: &Value,
    ) -> Result<(), ArmError> {
        self.check_vnet_idle(id, kind)?;
        match body.as_object() {
            Some(body) if kind == Kind::Connection => self.check_gateway_idle(body),
            _ => Ok(()),
        }
    }

    /// Refuses a write of `id` (a VNet or one of its subnets) while the VNet or any of its
    /// subnets is still being written or deleted.
    pub(super) fn check_vnet_idle(&self, id: &str, kind: Kind) -> Result<(), ArmError> {
        let vnet = match kind {
            Kind::VirtualNetwork => id,
            Kind::Subnet => id
                .rsplit_once('/')
                .and_then(|(p, _)| p.rsplit_once('/'))
                .map_or(id, |(vnet, _)| vnet),
            _ => return Ok(()),
        };
        let busy = self
            .live(vnet)
            .into_iter()
            .chain(self.children_of(vnet, Kind::Subnet))
            .find(|r| matches!(r.phase(), Phase::Provisioning | Phase::Deleting));
        match busy {
            Some(r) => Err(in_progress(&r.id)),
            None => Ok(()),
        }
    }

    /// Refuses a connection write while the gateway it names is updating.
    fn check_gateway_idle(&self, body: &Map<String, Value>) -> Result<(), ArmError> {
        let gateway = body
            .get("properties")
            .and_then(|p| ref_id(p.get("virtualNetworkGateway1")))
            .and_then(|id| self.live(id));
        match gateway {
            Some(g) if matches!(g.phase(), Phase::Provisioning | Phase::Deleting) => {
                Err(in_progress(&g.id))
            }
            _ => Ok(()),
        }
    }
}

/// ARM's answer. ARM's message goes on with the URL of the running operation; the twin
/// names the busy resource instead.
fn in_progress(busy: &str) -> ArmError {
    ArmError {
        status: 409,
        code: "AnotherOperationInProgress".into(),
        message: format!(
            "Another operation on this or dependent resource is in progress. Busy: {busy}."
        ),
    }
}
