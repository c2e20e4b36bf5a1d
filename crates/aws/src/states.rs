//! Reading a resource's state by its id, and waiting for a state: EC2's reads lag behind its
//! writes, so an id AWS does not know yet is not an error here.

use std::time::{Duration, Instant};

use crate::{Aws, AwsError, WAIT_LIMIT, api, is_gone};

impl Aws {
    /// The state of `id`; `None` when AWS does not know the id (yet, or any more: reads lag).
    pub(crate) async fn state_of(
        &self,
        role: &str,
        kind: &str,
        id: &str,
    ) -> Result<Option<String>, AwsError> {
        let answer = self.state_by_id(role, kind, id).await;
        match answer {
            Err(AwsError::Api { code, .. }) if is_gone(&code) => Ok(None),
            other => other,
        }
    }

    pub(crate) async fn state_by_id(
        &self,
        role: &str,
        kind: &str,
        id: &str,
    ) -> Result<Option<String>, AwsError> {
        Ok(match kind {
            "vpn_gateway" => {
                let out = self
                    .ec2
                    .describe_vpn_gateways()
                    .vpn_gateway_ids(id)
                    .send()
                    .await
                    .map_err(api(role, "DescribeVpnGateways"))?;
                out.vpn_gateways()
                    .first()
                    .and_then(|g| g.state())
                    .map(|s| s.as_str().to_owned())
            }
            "customer_gateway" => {
                let out = self
                    .ec2
                    .describe_customer_gateways()
                    .customer_gateway_ids(id)
                    .send()
                    .await
                    .map_err(api(role, "DescribeCustomerGateways"))?;
                out.customer_gateways()
                    .first()
                    .and_then(|c| c.state())
                    .map(str::to_owned)
            }
            "vpn_connection" => {
                let out = self
                    .ec2
                    .describe_vpn_connections()
                    .vpn_connection_ids(id)
                    .send()
                    .await
                    .map_err(api(role, "DescribeVpnConnections"))?;
                out.vpn_connections()
                    .first()
                    .and_then(|v| v.state())
                    .map(|s| s.as_str().to_owned())
            }
            "forwarder_instance" => {
                let out = self
                    .ec2
                    .describe_instances()
                    .instance_ids(id)
                    .send()
                    .await
                    .map_err(api(role, "DescribeInstances"))?;
                out.reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .find_map(|i| i.state().and_then(|s| s.name()))
                    .map(|n| n.as_str().to_owned())
            }
            _ => None,
        })
    }

    /// Waits until resource `id` (of the kind `spec`) is in state `wanted`. An id AWS does not
    /// know is still on its way when waited for as created, and gone when waited for as deleted.
    pub(crate) async fn wait_state(
        &self,
        role: &str,
        kind: &str,
        id: &str,
        wanted: &'static str,
    ) -> Result<(), AwsError> {
        self.wait(role, wanted, || async {
            Ok(match self.state_of(role, kind, id).await? {
                Some(state) => state == wanted,
                None => wanted == "deleted",
            })
        })
        .await
    }

    pub(crate) async fn attachment_state(
        &self,
        role: &str,
        vgw: &str,
        vpc_id: &str,
    ) -> Result<Option<String>, AwsError> {
        let held = self.snapshot().await;
        let gateway = match held
            .as_ref()
            .and_then(|s| s.vgws.iter().find(|g| g.vpn_gateway_id() == Some(vgw)))
        {
            Some(gateway) => Some(gateway.clone()),
            None => self
                .ec2
                .describe_vpn_gateways()
                .vpn_gateway_ids(vgw)
                .send()
                .await
                .map_err(api(role, "DescribeVpnGateways"))?
                .vpn_gateways()
                .first()
                .cloned(),
        };
        Ok(gateway.and_then(|g| {
            g.vpc_attachments()
                .iter()
                .find(|a| a.vpc_id() == Some(vpc_id))
                .and_then(|a| a.state())
                .map(|s| s.as_str().to_owned())
        }))
    }

    pub(crate) async fn propagates(
        &self,
        role: &str,
        vgw: &str,
        route_table_id: &str,
    ) -> Result<bool, AwsError> {
        let held = self.snapshot().await;
        let table = match held.as_ref().and_then(|s| {
            s.route_tables
                .iter()
                .find(|t| t.route_table_id() == Some(route_table_id))
        }) {
            Some(table) => Some(table.clone()),
            None => self
                .ec2
                .describe_route_tables()
                .route_table_ids(route_table_id)
                .send()
                .await
                .map_err(api(role, "DescribeRouteTables"))?
                .route_tables()
                .first()
                .cloned(),
        };
        Ok(table.is_some_and(|r| {
            r.propagating_vgws()
                .iter()
                .any(|p| p.gateway_id() == Some(vgw))
        }))
    }

    /// Polls `done` with growing intervals (0.1 s up to 15 s, as AWS's waiters do) until it
    /// holds or the wait limit passes.
    pub(crate) async fn wait<F, Fut>(
        &self,
        role: &str,
        wanted: &'static str,
        done: F,
    ) -> Result<(), AwsError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<bool, AwsError>>,
    {
        let start = Instant::now();
        let mut interval = Duration::from_millis(100);
        loop {
            if done().await? {
                return Ok(());
            }
            if start.elapsed() > WAIT_LIMIT {
                return Err(AwsError::Timeout {
                    role: role.to_owned(),
                    wanted,
                    waited: start.elapsed(),
                });
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 3 / 2).min(Duration::from_secs(15));
        }
    }
}
