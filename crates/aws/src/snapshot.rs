//! One command's bulk read of this deployment's resources: one DescribeVpnGateways, one
//! DescribeCustomerGateways and one DescribeVpnConnections with the deployment's tag, its VPC
//! and the live states, the VPC's route tables, one DescribeSecurityGroups with the tag and
//! VPC, and Route 53
//! Resolver's rules, endpoints (of the VPC) and rule associations (with the VPC), and the
//! CloudWatch alarms named with the deployment's prefix, every page,
//! all at once, instead of one of each per role. From [`Aws::prefetch`] on, the lookups by
//! role and the strays wait for it and read it (reads that need no snapshot go ahead at
//! once); [`Aws::forget_prefetched`] sends them back to the APIs (`diff` holds it for its own
//! reads only: a write makes it stale). A snapshot that fails to read is none: every lookup
//! then asks the API itself and reports its error.

use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

use aws_sdk_cloudwatch::types::MetricAlarm;
use aws_sdk_ec2::types::{
    CustomerGateway, RouteTable, SecurityGroup, Tag, VpnConnection, VpnGateway,
};
use aws_sdk_route53resolver::types::{
    Filter as RFilter, ResolverEndpoint, ResolverRule, ResolverRuleAssociation,
};
use dxvpn_plan::Plan;

use crate::lookup::{filter, live, of_deployment, tag_value, tagged_for_vpc};
use crate::{Aws, AwsError, api};

/// What the bulk reads answered.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) vgws: Vec<VpnGateway>,
    pub(crate) cgws: Vec<CustomerGateway>,
    pub(crate) vpns: Vec<VpnConnection>,
    /// The VPC's route tables (their VGW propagation).
    pub(crate) route_tables: Vec<RouteTable>,
    /// This deployment's security groups in the VPC.
    pub(crate) groups: Vec<SecurityGroup>,
    /// Every resolver rule of the account and Region (a rule belongs to no VPC).
    pub(crate) rules: Vec<ResolverRule>,
    /// The resolver endpoints in the VPC.
    pub(crate) endpoints: Vec<ResolverEndpoint>,
    /// The rule associations with the VPC.
    pub(crate) associations: Vec<ResolverRuleAssociation>,
    /// That VPC.
    pub(crate) associations_vpc: String,
    /// The CloudWatch alarms named with this deployment's prefix.
    pub(crate) alarms: Vec<MetricAlarm>,
}

/// The snapshot being read, or read: `None` when it failed.
type Pending = Shared<BoxFuture<'static, Option<Arc<Snapshot>>>>;

/// The snapshot an [`Aws`] and its clones hold, if any.
pub(crate) type Held = Arc<Mutex<Option<Pending>>>;

fn lock(held: &Held) -> MutexGuard<'_, Option<Pending>> {
    // A poisoned lock only means a reader panicked; the snapshot is whole.
    held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The items tagged with `role`.
pub(crate) fn of_role<'a, T>(
    items: &'a [T],
    tags: fn(&T) -> &[Tag],
    role: &'a str,
) -> impl Iterator<Item = &'a T> {
    items
        .iter()
        .filter(move |i| tag_value(tags(i), "dxvpn:role") == Some(role))
}

impl Aws {
    /// Starts reading the snapshot (see the module): the lookups and strays from now on wait
    /// for it and share it. It is read while the first of them waits.
    pub fn prefetch(&self, plan: &Plan) {
        let this = self.clone();
        let plan = plan.clone();
        let pending = async move {
            match this.read_snapshot(&plan).await {
                Ok(snapshot) => Some(snapshot),
                Err(e) => {
                    tracing::debug!(error = %e, "bulk read failed; each lookup reads alone");
                    None
                }
            }
        };
        *lock(&self.snapshot) = Some(pending.boxed().shared());
    }

    /// The snapshot held, or a new one read for this caller alone.
    pub(crate) async fn held_or_read(&self, plan: &Plan) -> Result<Arc<Snapshot>, AwsError> {
        match self.snapshot().await {
            Some(held) => Ok(held),
            None => self.read_snapshot(plan).await,
        }
    }

    async fn read_snapshot(&self, plan: &Plan) -> Result<Arc<Snapshot>, AwsError> {
        let filters = || vec![of_deployment(plan), tagged_for_vpc(plan), live()];
        let in_vpc = |name: &str| {
            RFilter::builder()
                .name(name)
                .values(&plan.aws.vpc_id)
                .build()
        };
        // Route 53 Resolver lists at most `MaxResults` items a page (10 when it is not given):
        // every page is read.
        let (vgws, cgws, vpns, route_tables, groups, rules, endpoints, associations, alarms) = tokio::join!(
            self.ec2
                .describe_vpn_gateways()
                .set_filters(Some(filters()))
                .send(),
            self.ec2
                .describe_customer_gateways()
                .set_filters(Some(filters()))
                .send(),
            self.ec2
                .describe_vpn_connections()
                .set_filters(Some(filters()))
                .send(),
            self.ec2
                .describe_route_tables()
                .filters(filter("vpc-id", &[&plan.aws.vpc_id]))
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>(),
            self.ec2
                .describe_security_groups()
                .set_filters(Some(vec![
                    of_deployment(plan),
                    filter("vpc-id", &[&plan.aws.vpc_id]),
                ]))
                .send(),
            self.resolver
                .list_resolver_rules()
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>(),
            self.resolver
                .list_resolver_endpoints()
                .filters(in_vpc("HostVPCId"))
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>(),
            self.resolver
                .list_resolver_rule_associations()
                .filters(in_vpc("VPCId"))
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>(),
            self.cloudwatch
                .describe_alarms()
                .alarm_name_prefix(crate::alarms::prefix(plan))
                .into_paginator()
                .send()
                .collect::<Result<Vec<_>, _>>(),
        );
        let snapshot = Snapshot {
            vgws: vgws
                .map_err(api("aws.vpn_gateway", "DescribeVpnGateways"))?
                .vpn_gateways()
                .to_vec(),
            cgws: cgws
                .map_err(api("aws.customer_gateway", "DescribeCustomerGateways"))?
                .customer_gateways()
                .to_vec(),
            vpns: vpns
                .map_err(api("aws.vpn_connection", "DescribeVpnConnections"))?
                .vpn_connections()
                .to_vec(),
            route_tables: route_tables
                .map_err(api("aws.route_propagation", "DescribeRouteTables"))?,
            groups: groups
                .map_err(api("aws.dns_security_group", "DescribeSecurityGroups"))?
                .security_groups()
                .to_vec(),
            rules: rules.map_err(api("aws.resolver_rule", "ListResolverRules"))?,
            endpoints: endpoints.map_err(api("aws.resolver_endpoint", "ListResolverEndpoints"))?,
            associations: associations.map_err(api(
                "aws.resolver_rule_association",
                "ListResolverRuleAssociations",
            ))?,
            associations_vpc: plan.aws.vpc_id.clone(),
            alarms: alarms
                .map_err(api("aws.tunnel_alarm", "DescribeAlarms"))?
                .iter()
                .flat_map(|page| page.metric_alarms().to_vec())
                .collect(),
        };
        Ok(Arc::new(snapshot))
    }

    /// Drops the snapshot: lookups go to the APIs again.
    pub fn forget_prefetched(&self) {
        *lock(&self.snapshot) = None;
    }

    /// The snapshot, once read, while one is held.
    pub(crate) async fn snapshot(&self) -> Option<Arc<Snapshot>> {
        let pending = lock(&self.snapshot).clone()?;
        pending.await
    }
}
