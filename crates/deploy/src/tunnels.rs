//! A VPN connection's tunnels changed in place one at a time, with Azure following each.
//!
//! A new inside CIDR moves the tunnel's BGP addresses: AWS's end changes with
//! `ModifyVpnTunnelOptions`, and the tunnel carries no routes again until Azure's local network
//! gateway and connection name the new addresses. Changing the second tunnel before then would
//! leave none carrying traffic. So for each changed tunnel: modify it, let the Azure resources
//! of that tunnel (its local network gateway, then its connection) catch up, wait until it
//! is `UP` with routes, and only then go on to the next. The last one needs no wait: nothing else is about to go down.

use std::collections::BTreeSet;

use dxvpn_plan::model::Resource;
use dxvpn_plan::{Cloud, Outputs, Plan};

use crate::Deployer;

impl Deployer {
    /// Changes the tunnels of the VPN connection `resource` that differ from the plan.
    pub(crate) async fn update_tunnels(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<(), String> {
        let role = resource.role.as_str();
        // A converged connection costs one read; only a changing one reads Azure's side too.
        if self.pending(plan, role, outputs).await?.is_empty() {
            return Ok(());
        }
        // Which AWS tunnel each planned one is, when no inside CIDR matches: the one Azure's
        // side points at (`pair` in the AWS crate).
        for tunnel in plan.tunnels_of(role) {
            let lng = format!("azure.local_network_gateway.{}", tunnel.key);
            if let Some(r) = plan.resource(&lng) {
                self.observe(plan, r, outputs).await?;
            }
        }
        let pending = self.pending(plan, role, outputs).await?;
        for (n, &index) in pending.iter().enumerate() {
            self.aws
                .update_tunnel(plan, role, index, outputs)
                .await
                .map_err(|e| e.to_string())?;
            self.follow(plan, role, index, outputs).await?;
            if n + 1 < pending.len() {
                tracing::info!(%role, tunnel = index + 1, "waiting for the modified tunnel to carry routes");
                self.aws
                    .wait_tunnel_up(plan, role, index)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    async fn pending(
        &self,
        plan: &Plan,
        role: &str,
        outputs: &Outputs,
    ) -> Result<Vec<usize>, String> {
        (self.aws.tunnels_to_update(plan, role, outputs).await).map_err(|e| e.to_string())
    }

    /// Ensures tunnel `index`'s Azure resources: its local network gateway (the peer's BGP
    /// address) then its connection, reading first what else they need that this task has not
    /// seen. The other tunnels' stay as they are: their AWS ends have not changed yet.
    async fn follow(
        &self,
        plan: &Plan,
        role: &str,
        index: usize,
        outputs: &mut Outputs,
    ) -> Result<(), String> {
        let Some(tunnel) = plan.tunnel_of(role, index) else {
            return Ok(());
        };
        let followers = [
            format!("azure.local_network_gateway.{}", tunnel.key),
            format!("azure.connection.{}", tunnel.key),
        ];
        let mut read: BTreeSet<&str> = BTreeSet::from([role]);
        read.extend(followers.iter().map(String::as_str));
        for follower in followers.iter().filter_map(|f| plan.resource(f)) {
            for dep in &follower.depends_on {
                if !read.insert(dep.as_str()) {
                    continue;
                }
                if let Some(r) = plan.resource(dep) {
                    self.observe(plan, r, outputs).await?;
                }
            }
            self.azure
                .ensure(plan, follower, outputs)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn observe(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<(), String> {
        let found = match resource.cloud {
            Cloud::Aws => self
                .aws
                .observe(plan, resource, outputs)
                .await
                .map_err(|e| e.to_string()),
            Cloud::Azure => {
                (self.azure.observe(plan, resource, outputs).await).map_err(|e| e.to_string())
            }
        };
        found.map(drop)
    }
}
