//! This deployment's Route 53 Resolver endpoints and rules, and its DNS security group, that
//! the plan no longer has: a config moved from managed DNS to forwarders (high availability
//! shrunk to development), a zone dropped, DNS turned off.
//!
//! Route 53 Resolver lists at most `MaxResults` items a page (10 when it is not given, the
//! ListResolverEndpoints and ListResolverRules references), so the snapshot (`snapshot.rs`)
//! reads every page.

use dxvpn_plan::Plan;

use crate::dns::creator_prefix;
use crate::drift::Stray;
use crate::snapshot::Snapshot;
use crate::{Aws, AwsError};

impl Aws {
    /// The DNS resources of this deployment whose role the plan does not have (or has as
    /// another kind of resource), rules first (a rule holds its endpoint), as `snapshot` read
    /// them.
    pub(crate) fn dns_strays(plan: &Plan, snapshot: &Snapshot) -> Vec<Stray> {
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

        for rule in &snapshot.rules {
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
        for endpoint in &snapshot.endpoints {
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
        for group in &snapshot.groups {
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
        strays
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
