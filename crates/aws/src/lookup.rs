//! Finding this deployment's EC2 resources again: by the `dxvpn:deployment`, `dxvpn:role` and
//! `dxvpn:vpc` tags, since EC2 creates take no idempotency token and gateways belong to no VPC.
//! Reads lag behind writes ("Eventual consistency in the Amazon EC2 API", EC2 developer guide),
//! so a lookup that misses is asked again, with backoff, before anything is created.

use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{CustomerGateway, Filter, VpnGateway};
use dxvpn_plan::Plan;
use dxvpn_plan::model::{Resource, Spec};

use crate::snapshot::of_role;
use crate::{Aws, AwsError, Outputs, api};

/// How long reads may take to show a write, as far as a lookup that misses is concerned: after a
/// failed create (the call may have taken effect), and in the first seconds of a run (an earlier,
/// killed run may just have created what this one looks for), a miss is asked again until this
/// has passed before anything is created, or taken as nothing to delete. EC2 names no bound for
/// the lag; its guide says to poll from a couple of seconds up.
pub(crate) const SETTLE: Duration = Duration::from_secs(2);
/// How long reads may take to show what a create made. terraform-provider-aws waits 2 minutes
/// (`ec2PropagationTimeout`) for the same reason.
pub(crate) const PROPAGATION: Duration = Duration::from_secs(120);

/// Asks `look` until it answers `Some` or `limit` has passed (one look when `limit` is 0),
/// with growing intervals from 0.1 s.
pub(crate) async fn until_found<T, F, Fut>(limit: Duration, look: F) -> Result<Option<T>, AwsError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, AwsError>>,
{
    let start = Instant::now();
    let mut interval = Duration::from_millis(100);
    loop {
        if let Some(found) = look().await? {
            return Ok(Some(found));
        }
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ok(None);
        }
        tokio::time::sleep(interval.min(left)).await;
        interval = (interval * 3 / 2).min(Duration::from_secs(10));
    }
}

/// An EC2 filter: one name, any of its values.
pub(crate) fn filter(name: &str, values: &[&str]) -> Filter {
    values
        .iter()
        .fold(Filter::builder().name(name), |f, v| f.values(*v))
        .build()
}

/// The value of tag `key` among `tags`.
pub(crate) fn tag_value<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// What carries this deployment's `dxvpn:deployment` tag.
pub(crate) fn of_deployment(plan: &Plan) -> Filter {
    filter("tag:dxvpn:deployment", &[&plan.name])
}

/// What this deployment tagged as made for its VPC (`dxvpn:vpc`).
pub(crate) fn tagged_for_vpc(plan: &Plan) -> Filter {
    filter("tag:dxvpn:vpc", &[&plan.aws.vpc_id])
}

/// Not deleted or being deleted; a VPN connection whose tunnel is being modified
/// (ModifyVpnTunnelOptions) is live too.
pub(crate) fn live() -> Filter {
    filter("state", &["pending", "available", "modifying"])
}

impl Aws {
    /// How long a miss is not to be trusted yet: the rest of [`SETTLE`] since this client began.
    pub(crate) fn unsettled(&self) -> Duration {
        (self.started + SETTLE).saturating_duration_since(Instant::now())
    }

    /// Observes `resource` until it is found or `limit` has passed (one look when `limit` is 0).
    pub(crate) async fn seen_within(
        &self,
        limit: Duration,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<bool, AwsError> {
        // One `Outputs` cannot be lent to every look at once; each look fills its own.
        let found = until_found(limit, || async {
            let mut seen = outputs.clone();
            Ok(self
                .observe(plan, resource, &mut seen)
                .await?
                .then_some(seen))
        })
        .await?;
        Ok(match found {
            Some(seen) => {
                *outputs = seen;
                true
            }
            None => false,
        })
    }

    /// [`Aws::find`], asked again until reads have settled since this run began: what to delete.
    pub(crate) async fn find_settled(
        &self,
        plan: &Plan,
        role: &str,
        spec: &Spec,
    ) -> Result<Option<String>, AwsError> {
        until_found(self.unsettled(), || self.find(plan, role, spec)).await
    }

    /// The live (pending or available) resource of this deployment with this role, in the
    /// configured VPC.
    pub(crate) fn live_by_tags(plan: &Plan, role: &str) -> Vec<Filter> {
        let mut filters = Self::live_anywhere(plan, role);
        filters.push(tagged_for_vpc(plan));
        filters
    }

    /// [`Aws::live_by_tags`] in any VPC of the account.
    fn live_anywhere(plan: &Plan, role: &str) -> Vec<Filter> {
        vec![
            of_deployment(plan),
            filter("tag:dxvpn:role", &[role]),
            live(),
        ]
    }

    pub(crate) async fn find(
        &self,
        plan: &Plan,
        role: &str,
        spec: &Spec,
    ) -> Result<Option<String>, AwsError> {
        match spec {
            Spec::VpnGateway { .. } => self.find_vgw(plan, role).await,
            Spec::CustomerGateway { .. } => self.find_cgw(plan, role).await,
            Spec::VpnConnection { .. } => Ok(self
                .find_vpn(plan, role, None)
                .await?
                .and_then(|v| v.vpn_connection_id().map(str::to_owned))),
            Spec::ForwarderInstance { .. } => Ok(self
                .find_forwarder_host(plan, role)
                .await?
                .map(|host| host.id)),
            _ => Ok(None),
        }
    }

    pub(crate) async fn find_vgw(
        &self,
        plan: &Plan,
        role: &str,
    ) -> Result<Option<String>, AwsError> {
        if let Some(snapshot) = self.snapshot().await {
            return Ok(of_role(&snapshot.vgws, VpnGateway::tags, role)
                .filter_map(|g| g.vpn_gateway_id())
                .min()
                .map(str::to_owned));
        }
        let out = self
            .ec2
            .describe_vpn_gateways()
            .set_filters(Some(Self::live_by_tags(plan, role)))
            .send()
            .await
            .map_err(api(role, "DescribeVpnGateways"))?;
        // With several (racing runs), every lookup keeps the same one: the lowest id.
        Ok(out
            .vpn_gateways()
            .iter()
            .filter_map(|g| g.vpn_gateway_id())
            .min()
            .map(str::to_owned))
    }

    /// Says so when a deployment of the same name lives in another VPC: it is left alone, and
    /// the user may have meant it.
    pub(crate) async fn warn_of_namesakes(&self, plan: &Plan, role: &str) -> Result<(), AwsError> {
        let out = self
            .ec2
            .describe_vpn_gateways()
            .set_filters(Some(Self::live_anywhere(plan, role)))
            .send()
            .await
            .map_err(api(role, "DescribeVpnGateways"))?;
        for gateway in out.vpn_gateways() {
            let vpc = gateway
                .tags()
                .iter()
                .find(|t| t.key() == Some("dxvpn:vpc"))
                .and_then(|t| t.value())
                .unwrap_or("no VPC tag");
            tracing::warn!(
                %role,
                "a deployment named {} also exists in {vpc} ({}); it is left alone, and this one, in {}, is separate",
                plan.name,
                gateway.vpn_gateway_id().unwrap_or("?"),
                plan.aws.vpc_id
            );
        }
        Ok(())
    }

    pub(crate) async fn find_cgw(
        &self,
        plan: &Plan,
        role: &str,
    ) -> Result<Option<String>, AwsError> {
        if let Some(snapshot) = self.snapshot().await {
            return Ok(of_role(&snapshot.cgws, CustomerGateway::tags, role)
                .filter_map(|c| c.customer_gateway_id())
                .min()
                .map(str::to_owned));
        }
        let out = self
            .ec2
            .describe_customer_gateways()
            .set_filters(Some(Self::live_by_tags(plan, role)))
            .send()
            .await
            .map_err(api(role, "DescribeCustomerGateways"))?;
        Ok(out
            .customer_gateways()
            .iter()
            .filter_map(|c| c.customer_gateway_id())
            .min()
            .map(str::to_owned))
    }
}
