//! What Azure reports about a deployment's connections and BGP peers (`dxvpn status`).

use dxvpn_plan::Plan;
use dxvpn_plan::model::Spec;
use serde::Serialize;
use serde_json::Value;

use crate::{Azure, AzureError, Kind, api};

/// One connection as Azure reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionState {
    /// Tunnel key, e.g. `c1t1`.
    pub tunnel: String,
    /// The connection's name.
    pub name: String,
    /// `connectionStatus`: `Connected`, `Connecting`, `NotConnected`, `Unknown`; `Missing` when
    /// the connection does not exist.
    pub status: String,
}

/// One BGP peer of the gateway (`getBgpPeerStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BgpPeerState {
    /// The peer's address (AWS's inside address of a tunnel).
    pub neighbor: String,
    /// `Connected`, `Connecting`, `Idle`, ...
    pub state: String,
    /// Routes received from it.
    pub routes_received: i64,
}

impl Azure {
    /// Every planned connection's status, in tunnel order.
    pub async fn connection_states(&self, plan: &Plan) -> Result<Vec<ConnectionState>, AzureError> {
        // One list of the resource group's connections answers for all of them.
        let listed = self.list(Kind::Connection, "").await?;
        let mut states = Vec::new();
        for r in &plan.resources {
            let Spec::GatewayConnection { tunnel, .. } = &r.spec else {
                continue;
            };
            let (_, name) = self.locate_top(Kind::Connection, r);
            let found = listed.iter().find(|c| {
                c.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(&name))
            });
            let status = found
                .and_then(|v| v.pointer("/properties/connectionStatus"))
                .and_then(Value::as_str)
                .unwrap_or(if found.is_some() {
                    "Unknown"
                } else {
                    "Missing"
                })
                .to_owned();
            states.push(ConnectionState {
                tunnel: tunnel.clone(),
                name,
                status,
            });
        }
        Ok(states)
    }

    /// The gateway's BGP peers; empty when the gateway does not exist.
    pub async fn bgp_peer_states(&self, plan: &Plan) -> Result<Vec<BgpPeerState>, AzureError> {
        let Some(gateway) = plan.resource("azure.vpn_gateway") else {
            return Ok(Vec::new());
        };
        let (rg, name) = self.locate_top(Kind::Gateway, gateway);
        // Asked at once: a gateway that does not exist answers 404, which is no peers.
        let peers = match self
            .network
            .virtual_network_gateways_client()
            .get_bgp_peer_status(&rg, &name, &self.subscription)
            .await
        {
            Ok(peers) => peers,
            Err(e) if crate::error::is_not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(api(&gateway.role, "POST getBgpPeerStatus")(e)),
        };
        Ok(peers
            .value
            .iter()
            .map(|p| BgpPeerState {
                neighbor: p.neighbor.clone().unwrap_or_default(),
                state: p
                    .state
                    .as_ref()
                    .and_then(|s| serde_json::to_value(s).ok())
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                routes_received: p.routes_received.unwrap_or(0),
            })
            .collect())
    }
}
