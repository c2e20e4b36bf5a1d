//! The AWS half of cross-cloud DNS: the security group for DNS, Route 53 Resolver endpoints,
//! FORWARD rules and their VPC associations (aws-sdk-route53resolver).
//!
//! Route 53 Resolver resources have no tags filter, so dxvpn finds them again by their
//! `CreatorRequestId`, `dxvpn:<deployment>:<role>`, which a retried create reuses: a create
//! whose answer was lost is found, not duplicated.

use std::time::Duration;

use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, SecurityGroup};
use aws_sdk_route53resolver::types::{
    Filter as RFilter, IpAddressRequest, ResolverEndpointDirection, RuleTypeOption, Tag,
    TargetAddress,
};
use dxvpn_plan::Plan;
use dxvpn_plan::model::{EndpointDirection, Resource, Spec};

use crate::lookup::{filter, of_deployment};
use crate::snapshot::of_role;
use crate::{Aws, AwsError, Outputs, api, gone_is_done};

/// The id a resource of this deployment is created with and found by.
fn creator_id(plan: &Plan, role: &str) -> String {
    format!("{}{role}", creator_prefix(plan))
}

/// What every creator id of this deployment starts with; the role follows.
pub(crate) fn creator_prefix(plan: &Plan) -> String {
    // The VPC is part of it: a same-named deployment in another VPC has other resolvers.
    format!("dxvpn:{}:{}:", plan.name, plan.aws.vpc_id)
}

fn by_creator(plan: &Plan, role: &str) -> RFilter {
    RFilter::builder()
        .name("CreatorRequestId")
        .values(creator_id(plan, role))
        .build()
}

fn tags(resource: &Resource) -> Vec<Tag> {
    resource
        .tags
        .iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

fn invalid(role: &str, action: &'static str, message: String) -> AwsError {
    AwsError::Api {
        role: role.to_owned(),
        action,
        code: "InvalidInput".into(),
        message,
    }
}

/// Both DNS protocols on port 53.
const DNS_PROTOCOLS: [&str; 2] = ["tcp", "udp"];
/// How many times a refused duplicate rule sends the group back to be read (0.4 s to 3.2 s
/// apart, past the twin's and EC2's usual read lag).
const DUPLICATE_TRIES: u32 = 4;

impl Aws {
    /// Finds a DNS resource and records its outputs; `None` when `resource` is not one.
    pub(crate) async fn observe_dns(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<Option<bool>, AwsError> {
        let role = resource.role.as_str();
        let found = match &resource.spec {
            Spec::SecurityGroup { .. } => self.find_security_group(plan, role).await?,
            Spec::ResolverEndpoint { .. } => {
                let Some((id, _)) = self.find_endpoint(plan, role).await? else {
                    return Ok(Some(false));
                };
                let ips = self.endpoint_ips(role, &id).await?;
                if !ips.is_empty() {
                    outputs.set(role, "ip_addresses", &ips.join(","));
                }
                Some(id)
            }
            Spec::ResolverRule { .. } => self.find_rule(plan, role).await?,
            Spec::ResolverRuleAssociation { vpc_id, rule } => {
                let Some(rule_id) = self.find_rule(plan, rule).await? else {
                    return Ok(Some(false));
                };
                self.find_association(role, &rule_id, vpc_id)
                    .await?
                    .map(|(id, _)| id)
            }
            _ => return Ok(None),
        };
        if let Some(id) = &found {
            outputs.set(role, "id", id);
        }
        Ok(Some(found.is_some()))
    }

    /// Creates a DNS resource (one call, never retried by the SDK) and answers its new id.
    pub(crate) async fn create_dns(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &Outputs,
    ) -> Result<Option<String>, AwsError> {
        let role = resource.role.as_str();
        match &resource.spec {
            Spec::SecurityGroup { vpc_id, .. } => {
                tracing::info!(%role, "creating security group");
                let out = self
                    .ec2
                    .create_security_group()
                    .group_name(&resource.name)
                    .description("dxvpn: DNS (TCP and UDP 53) from both networks")
                    .vpc_id(vpc_id)
                    .tag_specifications(Self::tag_spec(resource, ResourceType::SecurityGroup))
                    .send()
                    .await
                    .map_err(api(role, "CreateSecurityGroup"))?;
                Ok(out.group_id().map(str::to_owned))
            }
            Spec::ResolverEndpoint {
                direction,
                subnet_ids,
            } => {
                let group = outputs.need(role, "aws.dns_security_group", "id")?;
                // Route 53 needs two addresses; with one subnet both go there.
                let subnets: Vec<&String> = match subnet_ids.as_slice() {
                    [one] => vec![one, one],
                    more => more.iter().take(2).collect(),
                };
                if subnets.len() < 2 {
                    return Err(invalid(
                        role,
                        "CreateResolverEndpoint",
                        "aws.private_subnet_ids: a resolver endpoint needs at least one subnet"
                            .into(),
                    ));
                }
                let mut request = self
                    .resolver
                    .create_resolver_endpoint()
                    .creator_request_id(creator_id(plan, role))
                    .name(&resource.name)
                    .security_group_ids(group)
                    .direction(match direction {
                        EndpointDirection::Inbound => ResolverEndpointDirection::Inbound,
                        EndpointDirection::Outbound => ResolverEndpointDirection::Outbound,
                    })
                    .set_tags(Some(tags(resource)));
                for subnet in subnets {
                    let ip = IpAddressRequest::builder()
                        .subnet_id(subnet)
                        .build()
                        .map_err(|e| invalid(role, "CreateResolverEndpoint", e.to_string()))?;
                    request = request.ip_addresses(ip);
                }
                tracing::info!(%role, ?direction, "creating Route 53 Resolver endpoint");
                let out = request
                    .send()
                    .await
                    .map_err(api(role, "CreateResolverEndpoint"))?;
                Ok(out
                    .resolver_endpoint()
                    .and_then(|e| e.id())
                    .map(str::to_owned))
            }
            Spec::ResolverRule {
                domain_name,
                target_ips,
            } => {
                let endpoint = outputs.need(role, "aws.resolver_endpoint.outbound", "id")?;
                let targets = outputs.resolve_ips(role, target_ips)?;
                let mut request = self
                    .resolver
                    .create_resolver_rule()
                    .creator_request_id(creator_id(plan, role))
                    .name(&resource.name)
                    .rule_type(RuleTypeOption::Forward)
                    .domain_name(domain_name)
                    .resolver_endpoint_id(endpoint)
                    .set_tags(Some(tags(resource)));
                for ip in targets {
                    request = request
                        .target_ips(TargetAddress::builder().ip(ip.to_string()).port(53).build());
                }
                tracing::info!(%role, %domain_name, "creating Route 53 Resolver rule");
                let out = request
                    .send()
                    .await
                    .map_err(api(role, "CreateResolverRule"))?;
                Ok(out.resolver_rule().and_then(|r| r.id()).map(str::to_owned))
            }
            Spec::ResolverRuleAssociation { vpc_id, rule } => {
                let rule_id = outputs.need(role, rule, "id")?;
                tracing::info!(%role, %rule_id, %vpc_id, "associating resolver rule");
                let out = self
                    .resolver
                    .associate_resolver_rule()
                    .resolver_rule_id(rule_id)
                    .vpc_id(vpc_id)
                    .name(&resource.name)
                    .send()
                    .await
                    .map_err(api(role, "AssociateResolverRule"))?;
                Ok(out
                    .resolver_rule_association()
                    .and_then(|a| a.id())
                    .map(str::to_owned))
            }
            _ => Ok(None),
        }
    }

    /// Waits until a DNS resource works: ingress rules in place, endpoint OPERATIONAL with
    /// its addresses known, association COMPLETE.
    pub(crate) async fn wait_dns(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<(), AwsError> {
        let role = resource.role.as_str();
        match &resource.spec {
            Spec::SecurityGroup { ingress_cidrs, .. } => {
                let id = outputs.need(role, role, "id")?;
                self.allow_dns(role, &id, ingress_cidrs).await
            }
            Spec::ResolverEndpoint { .. } => {
                self.wait(role, "OPERATIONAL", || async {
                    let status = self.find_endpoint(plan, role).await?.map(|(_, s)| s);
                    match status.as_deref() {
                        Some("OPERATIONAL") => Ok(true),
                        // Field notes: endpoints can pass through ACTION_NEEDED; keep waiting.
                        Some("CREATING" | "UPDATING" | "AUTO_RECOVERING" | "ACTION_NEEDED") => {
                            Ok(false)
                        }
                        other => Err(AwsError::Api {
                            role: role.to_owned(),
                            action: "GetResolverEndpoint",
                            code: other.unwrap_or("gone").to_owned(),
                            message: "the endpoint is not being created; run `dxvpn up` again"
                                .into(),
                        }),
                    }
                })
                .await?;
                self.observe_dns(plan, resource, outputs).await.map(|_| ())
            }
            Spec::ResolverRuleAssociation { vpc_id, rule } => {
                let rule_id = outputs.need(role, rule, "id")?;
                self.wait(role, "COMPLETE", || async {
                    let status = self
                        .find_association(role, &rule_id, vpc_id)
                        .await?
                        .map(|(_, s)| s);
                    Ok(status.as_deref() == Some("COMPLETE"))
                })
                .await
            }
            _ => Ok(()),
        }
    }

    /// Deletes a DNS resource of this deployment and waits until it is gone.
    pub(crate) async fn delete_dns(
        &self,
        plan: &Plan,
        resource: &Resource,
    ) -> Result<(), AwsError> {
        let role = resource.role.as_str();
        match &resource.spec {
            Spec::ResolverRuleAssociation { vpc_id, rule } => {
                let Some(rule_id) = self.find_rule(plan, rule).await? else {
                    return Ok(());
                };
                self.disassociate(role, &rule_id, vpc_id).await
            }
            Spec::ResolverRule { .. } => self.delete_rule(plan, role).await,
            Spec::ResolverEndpoint { .. } => self.delete_endpoint(plan, role).await,
            Spec::SecurityGroup { .. } => self.delete_dns_group(plan, role).await,
            _ => Ok(()),
        }
    }

    /// Disassociates rule `rule_id` from `vpc_id` and waits until the association is gone.
    pub(crate) async fn disassociate(
        &self,
        role: &str,
        rule_id: &str,
        vpc_id: &str,
    ) -> Result<(), AwsError> {
        if let Some((_, status)) = self.find_association(role, rule_id, vpc_id).await?
            && status != "DELETING"
        {
            tracing::info!(%role, "disassociating resolver rule");
            self.resolver
                .disassociate_resolver_rule()
                .resolver_rule_id(rule_id)
                .vpc_id(vpc_id)
                .send()
                .await
                .map(drop)
                .map_err(api(role, "DisassociateResolverRule"))
                .or_else(gone_is_done)?;
        }
        self.wait(role, "disassociated", || async {
            Ok(self
                .find_association(role, rule_id, vpc_id)
                .await?
                .is_none())
        })
        .await
    }

    /// Deletes the resolver rule of `role` and waits until it is gone.
    pub(crate) async fn delete_rule(&self, plan: &Plan, role: &str) -> Result<(), AwsError> {
        if let Some(id) = self.find_rule(plan, role).await? {
            tracing::info!(%role, %id, "deleting resolver rule");
            self.resolver
                .delete_resolver_rule()
                .resolver_rule_id(&id)
                .send()
                .await
                .map(drop)
                .map_err(api(role, "DeleteResolverRule"))
                .or_else(gone_is_done)?;
            self.wait(role, "deleted", || async {
                Ok(self.find_rule(plan, role).await?.is_none())
            })
            .await?;
        }
        Ok(())
    }

    /// Deletes the resolver endpoint of `role` and waits until it is gone.
    pub(crate) async fn delete_endpoint(&self, plan: &Plan, role: &str) -> Result<(), AwsError> {
        if let Some((id, status)) = self.find_endpoint(plan, role).await? {
            if status != "DELETING" {
                tracing::info!(%role, %id, "deleting resolver endpoint");
                self.resolver
                    .delete_resolver_endpoint()
                    .resolver_endpoint_id(&id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(api(role, "DeleteResolverEndpoint"))
                    .or_else(gone_is_done)?;
            }
            self.wait(role, "deleted", || async {
                Ok(self.find_endpoint(plan, role).await?.is_none())
            })
            .await?;
        }
        Ok(())
    }

    /// Deletes the DNS security group of `role`.
    pub(crate) async fn delete_dns_group(&self, plan: &Plan, role: &str) -> Result<(), AwsError> {
        let found =
            crate::lookup::until_found(self.unsettled(), || self.find_security_group(plan, role))
                .await?;
        let Some(id) = found else {
            return Ok(());
        };
        tracing::info!(%role, %id, "deleting security group");
        // An endpoint's network interfaces let go of the group a little after the endpoint is
        // gone: DependencyViolation is worth a few retries.
        let mut tries = 0;
        loop {
            let result = self
                .ec2
                .delete_security_group()
                .group_id(&id)
                .send()
                .await
                .map_err(api(role, "DeleteSecurityGroup"));
            match result {
                Ok(_) => return Ok(()),
                Err(AwsError::Api { code, .. }) if crate::is_gone(&code) => return Ok(()),
                Err(AwsError::Api { code, .. }) if code == "DependencyViolation" && tries < 20 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn find_security_group(
        &self,
        plan: &Plan,
        role: &str,
    ) -> Result<Option<String>, AwsError> {
        if let Some(snapshot) = self.snapshot().await {
            return Ok(of_role(&snapshot.groups, SecurityGroup::tags, role)
                .find_map(|g| g.group_id())
                .map(str::to_owned));
        }
        let out = self
            .ec2
            .describe_security_groups()
            .set_filters(Some(vec![
                of_deployment(plan),
                filter("tag:dxvpn:role", &[role]),
                filter("vpc-id", &[&plan.aws.vpc_id]),
            ]))
            .send()
            .await
            .map_err(api(role, "DescribeSecurityGroups"))?;
        Ok(out
            .security_groups()
            .first()
            .and_then(|g| g.group_id())
            .map(str::to_owned))
    }

    /// Authorizes TCP and UDP 53 from each CIDR that the group does not allow yet.
    ///
    /// The SDK retries an authorize whose answer was lost; if the first try took effect, the
    /// retry is refused with `InvalidPermission.Duplicate` ("the specified rule already exists",
    /// EC2 API error codes), and so is a request naming a rule that a lagging read did not show
    /// yet. Either way the rule is there: the group is read again and only what is still
    /// missing is asked for.
    async fn allow_dns(
        &self,
        role: &str,
        group: &str,
        cidrs: &[dxvpn_cidr::Ipv4Net],
    ) -> Result<(), AwsError> {
        let mut tries = 0;
        loop {
            match self.allow_missing_dns(role, group, cidrs).await {
                Err(AwsError::Api { code, .. })
                    if code == "InvalidPermission.Duplicate" && tries < DUPLICATE_TRIES =>
                {
                    tries += 1;
                    tracing::debug!(%role, "a DNS rule exists already; reading the group again");
                    tokio::time::sleep(Duration::from_millis(200 << tries)).await;
                }
                other => return other,
            }
        }
    }

    async fn allow_missing_dns(
        &self,
        role: &str,
        group: &str,
        cidrs: &[dxvpn_cidr::Ipv4Net],
    ) -> Result<(), AwsError> {
        let out = self
            .ec2
            .describe_security_groups()
            .group_ids(group)
            .send()
            .await
            .map_err(api(role, "DescribeSecurityGroups"))?;
        let existing = out
            .security_groups()
            .first()
            .map(|g| g.ip_permissions().to_vec())
            .unwrap_or_default();
        let allowed = |protocol: &str, cidr: &str| {
            existing.iter().any(|p| {
                p.ip_protocol() == Some(protocol)
                    && p.from_port() == Some(53)
                    && p.to_port() == Some(53)
                    && p.ip_ranges().iter().any(|r| r.cidr_ip() == Some(cidr))
            })
        };
        let mut request = self.ec2.authorize_security_group_ingress().group_id(group);
        let mut missing = 0;
        for protocol in DNS_PROTOCOLS {
            let ranges: Vec<IpRange> = cidrs
                .iter()
                .map(ToString::to_string)
                .filter(|c| !allowed(protocol, c))
                .map(|c| {
                    IpRange::builder()
                        .cidr_ip(c)
                        .description("dxvpn: cross-cloud DNS")
                        .build()
                })
                .collect();
            if ranges.is_empty() {
                continue;
            }
            missing += ranges.len();
            request = request.ip_permissions(
                IpPermission::builder()
                    .ip_protocol(protocol)
                    .from_port(53)
                    .to_port(53)
                    .set_ip_ranges(Some(ranges))
                    .build(),
            );
        }
        if missing > 0 {
            tracing::info!(%role, missing, "allowing DNS in the security group");
            request
                .send()
                .await
                .map_err(api(role, "AuthorizeSecurityGroupIngress"))?;
        }
        Ok(())
    }

    /// The endpoint of this role (id, status), unless it is gone.
    async fn find_endpoint(
        &self,
        plan: &Plan,
        role: &str,
    ) -> Result<Option<(String, String)>, AwsError> {
        let creator = creator_id(plan, role);
        let held = self.snapshot().await;
        let found = match &held {
            Some(snapshot) => snapshot
                .endpoints
                .iter()
                .find(|e| e.creator_request_id() == Some(creator.as_str()))
                .cloned(),
            None => self
                .resolver
                .list_resolver_endpoints()
                .filters(by_creator(plan, role))
                .send()
                .await
                .map_err(api(role, "ListResolverEndpoints"))?
                .resolver_endpoints()
                .first()
                .cloned(),
        };
        Ok(found.and_then(|e| {
            Some((
                e.id()?.to_owned(),
                e.status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            ))
        }))
    }

    async fn endpoint_ips(&self, role: &str, id: &str) -> Result<Vec<String>, AwsError> {
        let out = self
            .resolver
            .list_resolver_endpoint_ip_addresses()
            .resolver_endpoint_id(id)
            .send()
            .await
            .map_err(api(role, "ListResolverEndpointIpAddresses"))?;
        // Route 53 Resolver lists them in no promised order; sorted, the output (Azure's
        // forwarding targets) does not change between two reads of the same endpoint.
        let mut ips: Vec<std::net::Ipv4Addr> = out
            .ip_addresses()
            .iter()
            .filter_map(|a| a.ip()?.parse().ok())
            .collect();
        ips.sort_unstable();
        Ok(ips.iter().map(ToString::to_string).collect())
    }

    async fn find_rule(&self, plan: &Plan, role: &str) -> Result<Option<String>, AwsError> {
        if let Some(snapshot) = self.snapshot().await {
            let creator = creator_id(plan, role);
            return Ok(snapshot
                .rules
                .iter()
                .find(|r| r.creator_request_id() == Some(creator.as_str()))
                .and_then(|r| r.id())
                .map(str::to_owned));
        }
        let out = self
            .resolver
            .list_resolver_rules()
            .filters(by_creator(plan, role))
            .send()
            .await
            .map_err(api(role, "ListResolverRules"))?;
        Ok(out
            .resolver_rules()
            .first()
            .and_then(|r| r.id())
            .map(str::to_owned))
    }

    /// The association of `rule_id` with `vpc_id` (id, status), unless it is gone.
    async fn find_association(
        &self,
        role: &str,
        rule_id: &str,
        vpc_id: &str,
    ) -> Result<Option<(String, String)>, AwsError> {
        // The snapshot holds the associations with the plan's VPC.
        if let Some(snapshot) = self.snapshot().await
            && snapshot.associations_vpc == vpc_id
        {
            return Ok(snapshot
                .associations
                .iter()
                .find(|a| a.resolver_rule_id() == Some(rule_id))
                .and_then(|a| {
                    Some((
                        a.id()?.to_owned(),
                        a.status()
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                    ))
                }));
        }
        let out = self
            .resolver
            .list_resolver_rule_associations()
            .filters(
                RFilter::builder()
                    .name("ResolverRuleId")
                    .values(rule_id)
                    .build(),
            )
            .filters(RFilter::builder().name("VPCId").values(vpc_id).build())
            .send()
            .await
            .map_err(api(role, "ListResolverRuleAssociations"))?;
        Ok(out.resolver_rule_associations().first().and_then(|a| {
            Some((
                a.id()?.to_owned(),
                a.status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            ))
        }))
    }
}

/// Route 53 Resolver's `InternalServiceErrorException` means "try again" (its API reference),
/// but comes with HTTP 400, which the SDK's standard retry leaves alone. Retrying is safe:
/// every create carries its `CreatorRequestId`.
#[derive(Debug)]
pub(crate) struct InternalErrorIsTransient;

impl aws_sdk_route53resolver::config::retry::ClassifyRetry for InternalErrorIsTransient {
    fn classify_retry(
        &self,
        ctx: &aws_sdk_route53resolver::config::interceptors::InterceptorContext,
    ) -> aws_sdk_route53resolver::config::retry::RetryAction {
        const CODE: &[u8] = b"InternalServiceErrorException";
        let transient = ctx.response().is_some_and(|r| {
            r.status().as_u16() == 400
                && r.body()
                    .bytes()
                    .is_some_and(|b| b.windows(CODE.len()).any(|w| w == CODE))
        });
        if transient {
            aws_sdk_route53resolver::config::retry::RetryAction::server_error()
        } else {
            aws_sdk_route53resolver::config::retry::RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "Route53ResolverInternalServiceErrorIsTransient"
    }
}
