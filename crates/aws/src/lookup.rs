//! Finding this deployment's EC2 resources again: by the `dxvpn:deployment`, `dxvpn:role` and
//! `dxvpn:vpc` tags, since EC2 creates take no idempotency token and gateways belong to no VPC.

use aws_sdk_ec2::types::Filter;
use dxvpn_plan::Plan;
use dxvpn_plan::model::Spec;

use crate::{Aws, AwsError, api};

impl Aws {
    /// The live (pending or available) resource of this deployment with this role, in the
    /// configured VPC.
    pub(crate) fn live_by_tags(plan: &Plan, role: &str) -> Vec<Filter> {
        let mut filters = Self::live_anywhere(plan, role);
        filters.push(
            Filter::builder()
                .name("tag:dxvpn:vpc")
                .values(&plan.aws.vpc_id)
                .build(),
        );
        filters
    }

    /// [`Aws::live_by_tags`] in any VPC of the account.
    fn live_anywhere(plan: &Plan, role: &str) -> Vec<Filter> {
        vec![
            Filter::builder()
                .name("tag:dxvpn:deployment")
                .values(&plan.name)
                .build(),
            Filter::builder()
                .name("tag:dxvpn:role")
                .values(role)
                .build(),
            Filter::builder()
                .name("state")
                .values("pending")
                .values("available")
                .build(),
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
            Spec::VpnConnection { .. } => {
                let out = self
                    .ec2
                    .describe_vpn_connections()
                    .set_filters(Some(Self::live_by_tags(plan, role)))
                    .send()
                    .await
                    .map_err(api(role, "DescribeVpnConnections"))?;
                Ok(out
                    .vpn_connections()
                    .first()
                    .and_then(|v| v.vpn_connection_id())
                    .map(str::to_owned))
            }
            _ => Ok(None),
        }
    }

    pub(crate) async fn find_vgw(
        &self,
        plan: &Plan,
        role: &str,
    ) -> Result<Option<String>, AwsError> {
        let out = self
            .ec2
            .describe_vpn_gateways()
            .set_filters(Some(Self::live_by_tags(plan, role)))
            .send()
            .await
            .map_err(api(role, "DescribeVpnGateways"))?;
        Ok(out
            .vpn_gateways()
            .first()
            .and_then(|g| g.vpn_gateway_id())
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
        let out = self
            .ec2
            .describe_customer_gateways()
            .set_filters(Some(Self::live_by_tags(plan, role)))
            .send()
            .await
            .map_err(api(role, "DescribeCustomerGateways"))?;
        Ok(out
            .customer_gateways()
            .first()
            .and_then(|c| c.customer_gateway_id())
            .map(str::to_owned))
    }
}
