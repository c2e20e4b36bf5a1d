//! This deployment's Route 53 Resolver endpoints and rules, and its DNS security group, that
//! the plan no longer has: a config moved from managed DNS to forwarders (high availability
//! shrunk to development), a zone dropped, DNS turned off.
//!
//! Route 53 Resolver lists at most `MaxResults` items a page (10 when it is not given, the
//! ListResolverEndpoints and ListResolverRules references), so every page is read.

use aws_sdk_route53resolver::types::Filter as RFilter;
use dxvpn_plan::Plan;

use crate::dns::creator_prefix;
use crate::drift::Stray;
use crate::lookup::{filter, of_deployment};
use crate::{Aws, AwsError, api};

impl Aws {
    /// The DNS resources of this deployment whose role the plan does not have (or has as
    /// another kind of resource), rules first: a rule holds its endpoint.
    pub(crate) async fn dns_strays(&self, plan: &Plan) -> Result<Vec<Stray>, AwsError> {
        let prefix = creator_prefix(plan);
        let stray = |role: &str, kind: &'static str| {
            let planned = plan.resource(role).is_some_and(|r| r.kind() == kind);
            (!planned).then(|| Stray {
                role: role.to_owned(),
                kind,
                id: String::new(),
                reason: format!("{role} is no longer in the plan"),
            })
        };
        let mut strays = Vec::new();

        let mut rules = self
            .resolver
            .list_resolver_rules()
            .into_paginator()
            .items()
            .send();
        while let Some(rule) = rules.next().await {
            let rule = rule.map_err(api("aws.resolver_rule", "ListResolverRules"))?;
            let role = rule
                .creator_request_id()
                .and_then(|c| c.strip_prefix(&prefix));
            if let (Some(role), Some(id)) = (role, rule.id())
                && let Some(s) = stray(role, "resolver_rule")
            {
                strays.push(Stray {
                    id: id.to_owned(),
                    ..s
                });
            }
        }

        let mut endpoints = self
            .resolver
            .list_resolver_endpoints()
            .filters(
                RFilter::builder()
                    .name("HostVPCId")
                    .values(&plan.aws.vpc_id)
                    .build(),
            )
            .into_paginator()
            .items()
            .send();
        while let Some(endpoint) = endpoints.next().await {
            let endpoint =
                endpoint.map_err(api("aws.resolver_endpoint", "ListResolverEndpoints"))?;
            let role = endpoint
                .creator_request_id()
                .and_then(|c| c.strip_prefix(&prefix));
            if let (Some(role), Some(id)) = (role, endpoint.id())
                && let Some(s) = stray(role, "resolver_endpoint")
            {
                strays.push(Stray {
                    id: id.to_owned(),
                    ..s
                });
            }
        }

        // The security group is tagged as the EC2 resources are.
        let groups = self
            .ec2
            .describe_security_groups()
            .set_filters(Some(vec![
                of_deployment(plan),
                filter("vpc-id", &[&plan.aws.vpc_id]),
            ]))
            .send()
            .await
            .map_err(api("aws.dns_security_group", "DescribeSecurityGroups"))?;
        for group in groups.security_groups() {
            let role = crate::lookup::tag_value(group.tags(), "dxvpn:role");
            if let (Some(role), Some(id)) = (role, group.group_id())
                && let Some(s) = stray(role, "security_group")
            {
                strays.push(Stray {
                    id: id.to_owned(),
                    ..s
                });
            }
        }
        Ok(strays)
    }

    /// Deletes a DNS stray: a rule after its association with this VPC, an endpoint, the group.
    pub(crate) async fn delete_dns_stray(
        &self,
        plan: &Plan,
        stray: &Stray,
    ) -> Result<(), AwsError> {
        let role = stray.role.as_str();
        match stray.kind {
            "resolver_rule" => {
                self.disassociate(role, &stray.id, &plan.aws.vpc_id).await?;
                self.delete_rule(plan, role).await
            }
            "resolver_endpoint" => self.delete_endpoint(plan, role).await,
            _ => self.delete_dns_group(plan, role).await,
        }
    }
}
