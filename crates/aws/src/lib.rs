//! The AWS half of a dxvpn deployment, on aws-sdk-ec2, aws-sdk-route53resolver, aws-sdk-iam
//! (the forwarder host's instance profile), aws-sdk-cloudwatch (tunnel alarms and traffic) and
//! aws-sdk-sns (the alert topic).
//!
//! For each AWS resource of a [`Plan`] this crate can `observe` it (find it by its
//! `dxvpn:deployment` and `dxvpn:role` tags), `ensure` it (create it only if it is missing, then
//! wait until it is usable), and `delete` it (and wait until it is gone). The clouds are the
//! state: nothing is kept on disk, and pre-shared keys are read back from AWS into memory only.
//!
//! EC2's create calls have no idempotency token, so a retried create after a lost response would
//! make a duplicate. Creates therefore run without the SDK's automatic retry; on any failure this
//! crate observes by tags again, for longer than reads lag, before trying once more, and a re-run
//! adopts what a killed run made. EC2's reads lag behind its writes: the id a create answers is
//! kept, and an id that answers `NotFound` is still on its way, never a reason to create again.
//!
//! ```no_run
//! # async fn demo(plan: dxvpn_plan::Plan) -> Result<(), dxvpn_aws::AwsError> {
//! let aws = dxvpn_aws::Aws::connect(&plan).await;
//! let mut outputs = dxvpn_aws::Outputs::default();
//! outputs.set("azure.public_ip.0", "ip_address", "20.1.2.3"); // from the Azure side
//! for resource in plan.resources.iter().filter(|r| r.cloud == dxvpn_plan::Cloud::Aws) {
//!     aws.ensure(&plan, resource, &mut outputs).await?;
//! }
//! println!("tunnel 1 of connection 1 ends at {:?}", outputs.get("aws.vpn_connection.0", "tunnel1_outside_ip"));
//! # Ok(()) }
//! ```

mod alarms;
mod alert_topic;
mod calls;
mod dns;
mod dns_strays;
mod drift;
mod filters;
mod forwarder_host;
mod instance_profile;
mod lookup;
mod snapshot;
mod states;
mod status;
mod traffic;
mod tunnels;

use std::time::{Duration, Instant};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_ec2::types::{
    GatewayType, ResourceType, Tag, TagSpecification, VpnConnectionOptionsSpecification,
    VpnTunnelOptionsSpecification,
};
pub use calls::CallCounter;
pub use drift::Stray;
use dxvpn_plan::model::{Resource, Spec};
use dxvpn_plan::{Cloud, Plan};
pub use dxvpn_plan::{MissingInput, Outputs};
use dxvpn_tunnel::psk::PresharedKey;
pub use filters::{AclRule, AwsHostFilters, IngressRule, NetworkAclRules, SecurityGroupRules};
pub use forwarder_host::ForwarderHostState;
pub use status::{AwsTunnelState, PropagationState};
pub use traffic::{TRAFFIC_PERIOD_SECONDS, TunnelTraffic};
pub use tunnels::TUNNEL_UP_LIMIT;

/// How long to wait for AWS at most: its slowest operation (a VPN connection) takes up to ~30 min.
const WAIT_LIMIT: Duration = Duration::from_secs(45 * 60);

/// What went wrong, with the resource it concerns.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// AWS answered with an error.
    #[error("{role}: {action} failed: {code}: {message}")]
    Api {
        /// Role key of the resource.
        role: String,
        /// EC2 action.
        action: &'static str,
        /// AWS error code (or the transport failure).
        code: String,
        /// AWS's message.
        message: String,
    },
    /// AWS never reached the wanted state.
    #[error("{role}: still not {wanted} after {waited:?}")]
    Timeout {
        /// Role key of the resource.
        role: String,
        /// The state waited for.
        wanted: &'static str,
        /// How long.
        waited: Duration,
    },
    /// A create succeeded, but reads never showed the resource.
    #[error(
        "{role}: created {id}, but AWS's reads still did not show it after {waited:?}; run `dxvpn up` again later (it adopts {id} once AWS shows it, and creates nothing twice)"
    )]
    NotSeen {
        /// Role key of the resource.
        role: String,
        /// The id the create answered (empty when it answers none).
        id: String,
        /// How long reads were polled.
        waited: Duration,
    },
    /// An input from another resource is not known yet.
    #[error(transparent)]
    MissingInput(#[from] MissingInput),
    /// A VPN connection holds a tunnel the plan does not have.
    #[error(
        "{role}: {vpn_id} has a tunnel with inside CIDR {answered}, but the plan gives this connection {planned}; fix: set the plan's tunnel inside CIDRs to the connection's, or delete {vpn_id} and run `dxvpn up` again"
    )]
    TunnelMismatch {
        /// Role key of the VPN connection.
        role: String,
        /// `vpn-...`.
        vpn_id: String,
        /// The inside CIDR AWS answered.
        answered: String,
        /// The inside CIDRs the plan has for the connection.
        planned: String,
    },
}

fn api<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    role: &str,
    action: &'static str,
) -> impl FnOnce(aws_sdk_ec2::error::SdkError<E, R>) -> AwsError {
    move |e| {
        let code = e
            .code()
            .map_or_else(|| "transport".to_owned(), str::to_owned);
        let message = e
            .message()
            .map_or_else(|| DisplayErrorContext(&e).to_string(), str::to_owned);
        AwsError::Api {
            role: role.to_owned(),
            action,
            code,
            message,
        }
    }
}

/// For a delete, "not found" is success: the SDK retries a call whose answer was lost, and
/// the retry finds the resource already gone.
pub(crate) fn gone_is_done(e: AwsError) -> Result<(), AwsError> {
    match &e {
        AwsError::Api { code, .. } if is_gone(code) => Ok(()),
        _ => Err(e),
    }
}

/// EC2's `*.NotFound` codes, Route 53 Resolver's `ResourceNotFoundException` and IAM's
/// `NoSuchEntity`.
pub(crate) fn is_gone(code: &str) -> bool {
    code.ends_with(".NotFound") || code == "ResourceNotFoundException" || code == "NoSuchEntity"
}

/// The AWS side of one deployment.
#[derive(Debug, Clone)]
pub struct Aws {
    ec2: Client,
    resolver: aws_sdk_route53resolver::Client,
    iam: aws_sdk_iam::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    sns: aws_sdk_sns::Client,
    /// Every request the clients above sent.
    calls: CallCounter,
    /// This deployment's VPN resources read in bulk, while a command holds them.
    snapshot: snapshot::Held,
    /// When this run began: reads may not show yet what an earlier run wrote just before.
    started: Instant,
    /// Whether `ensure` leaves a VPN connection's tunnel changes to the caller (see
    /// [`Aws::leaving_tunnel_updates_to_the_caller`]).
    caller_updates_tunnels: bool,
}

/// Tries per SDK call (the first and the retries).
const MAX_ATTEMPTS: u32 = 8;
/// Tries per create, each after observing that the resource is still missing: creates run
/// without the SDK's retry, because EC2 creates carry no idempotency token.
const CREATE_ATTEMPTS: u32 = 6;

impl Aws {
    /// Connects with the standard credential chain (environment, profile, SSO, instance
    /// metadata) in the plan's region, at `aws.endpoint_url` when the config sets one.
    pub async fn connect(plan: &Plan) -> Self {
        // A deployment is a hundred calls or more, and control planes throttle and fail
        // transiently: each call gets 8 tries with backoff, not the default 3.
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(plan.aws.region.clone()))
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
        if let Some(url) = &plan.aws.endpoint_url {
            loader = loader.endpoint_url(url);
            // The lab's twin takes any credentials; a machine without AWS ones can still use it.
            let loopback = url.starts_with("http://127.") || url.starts_with("http://localhost");
            if loopback && std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
                loader = loader.credentials_provider(aws_sdk_ec2::config::Credentials::new(
                    "dxvpn-lab",
                    "dxvpn-lab",
                    None,
                    None,
                    "dxvpn-lab",
                ));
            }
        }
        let config = loader.load().await;
        let calls = CallCounter::default();
        Aws {
            started: Instant::now(),
            ec2: Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            resolver: aws_sdk_route53resolver::Client::from_conf(
                aws_sdk_route53resolver::config::Builder::from(&config)
                    .retry_classifier(dns::InternalErrorIsTransient)
                    .interceptor(calls.clone())
                    .build(),
            ),
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(&config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(&config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            sns: aws_sdk_sns::Client::from_conf(
                aws_sdk_sns::config::Builder::from(&config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            calls,
            snapshot: snapshot::Held::default(),
            caller_updates_tunnels: false,
        }
    }

    /// Uses existing clients (tests, or a caller with its own configuration).
    pub fn from_clients(
        ec2: Client,
        resolver: aws_sdk_route53resolver::Client,
        iam: aws_sdk_iam::Client,
        cloudwatch: aws_sdk_cloudwatch::Client,
        sns: aws_sdk_sns::Client,
    ) -> Self {
        Aws {
            cloudwatch,
            sns,
            ec2,
            resolver,
            iam,
            calls: CallCounter::default(),
            snapshot: snapshot::Held::default(),
            started: Instant::now(),
            caller_updates_tunnels: false,
        }
    }

    /// Requests sent to AWS so far by a client [`Aws::connect`] made, every try counted (0 for
    /// [`Aws::from_clients`], whose clients are the caller's).
    pub fn calls(&self) -> u64 {
        self.calls.get()
    }

    /// `ensure` of a VPN connection then creates it or waits for it, and no more: the caller
    /// changes its tunnels one by one ([`Aws::tunnels_to_update`], [`Aws::update_tunnel`],
    /// [`Aws::wait_tunnel_up`]), with the peer following each before the next.
    pub fn leaving_tunnel_updates_to_the_caller(mut self) -> Self {
        self.caller_updates_tunnels = true;
        self
    }

    fn tag_spec(resource: &Resource, kind: ResourceType) -> TagSpecification {
        let mut spec = TagSpecification::builder().resource_type(kind);
        for (k, v) in &resource.tags {
            spec = spec.tags(Tag::builder().key(k).value(v).build());
        }
        spec.build()
    }

    /// Finds `resource` in AWS and records its outputs; `false` when it does not exist.
    pub async fn observe(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<bool, AwsError> {
        let role = resource.role.as_str();
        if let Some(found) = self.observe_dns(plan, resource, outputs).await? {
            return Ok(found);
        }
        match &resource.spec {
            Spec::VpnGateway { .. } => Ok(match self.find_vgw(plan, role).await? {
                Some(id) => {
                    outputs.set(role, "id", &id);
                    true
                }
                None => false,
            }),
            Spec::VpnGatewayAttachment { vpc_id } => {
                let vgw = outputs.need(role, "aws.vpn_gateway", "id")?;
                Ok(self
                    .attachment_state(role, &vgw, vpc_id)
                    .await?
                    .is_some_and(|s| s == "attaching" || s == "attached"))
            }
            Spec::RoutePropagation { route_table_id } => {
                let vgw = outputs.need(role, "aws.vpn_gateway", "id")?;
                self.propagates(role, &vgw, route_table_id).await
            }
            Spec::CustomerGateway { .. } => Ok(match self.find_cgw(plan, role).await? {
                Some(id) => {
                    outputs.set(role, "id", &id);
                    true
                }
                None => false,
            }),
            Spec::VpnConnection { .. } => self.observe_vpn(plan, role, outputs).await,
            Spec::ForwarderInstance { .. } => {
                self.observe_forwarder_host(plan, role, outputs).await
            }
            Spec::InstanceProfile { .. } => {
                self.observe_instance_profile(plan, resource, outputs).await
            }
            Spec::TunnelAlarm { .. } => self.observe_alarm(plan, resource, outputs).await,
            Spec::AlertTopic { .. } => self.observe_alert_topic(plan, resource, outputs).await,
            Spec::Vpc { .. } => Ok(true),
            _ => Ok(false),
        }
    }

    /// Makes `resource` exist and be usable, creating it only if it is missing.
    pub async fn ensure(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<(), AwsError> {
        if resource.cloud != Cloud::Aws {
            return Ok(());
        }
        let role = resource.role.as_str();
        let mut last_error = None;
        for attempt in 0..CREATE_ATTEMPTS {
            if attempt > 0 {
                // Back off as AWS asks of throttled clients: 0.5 s, 1 s, 2 s, 4 s, 8 s.
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
            // A failed create may still have happened (its answer was lost), and so may an
            // earlier run's that was killed; reads lag behind writes: look for longer than
            // the lag before creating.
            let look_for = if last_error.is_some() {
                lookup::SETTLE
            } else {
                self.unsettled()
            };
            if self.seen_within(look_for, plan, resource, outputs).await? {
                return self.wait_usable(plan, resource, outputs).await;
            }
            match self.create(plan, resource, outputs).await {
                Err(e) => {
                    tracing::warn!(%role, error = %e, "create failed; observing before trying again");
                    last_error = Some(e);
                }
                Ok(created) => {
                    // Keep the id the create answered: until reads catch up, it is the only
                    // trace of the resource, and a lookup that misses it must not create again.
                    if let Some(id) = created {
                        outputs.set(role, "id", &id);
                        if !self
                            .seen_within(lookup::PROPAGATION, plan, resource, outputs)
                            .await?
                        {
                            return Err(AwsError::NotSeen {
                                role: role.to_owned(),
                                id,
                                waited: lookup::PROPAGATION,
                            });
                        }
                    } else {
                        self.observe(plan, resource, outputs).await?;
                    }
                    return self.wait_usable(plan, resource, outputs).await;
                }
            }
        }
        Err(last_error.unwrap_or(AwsError::Timeout {
            role: role.to_owned(),
            wanted: "created",
            waited: Duration::ZERO,
        }))
    }

    /// Creates `resource` and answers the id the create returned (none for attachments and
    /// route propagation, which have no id of their own).
    async fn create(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &Outputs,
    ) -> Result<Option<String>, AwsError> {
        let role = resource.role.as_str();
        let once = || aws_sdk_ec2::config::Builder::default().retry_config(RetryConfig::disabled());
        match &resource.spec {
            Spec::VpnGateway { amazon_side_asn } => {
                // None of this deployment's in this VPC: say so if one lives in another.
                self.warn_of_namesakes(plan, role).await?;
                tracing::info!(%role, "creating VPN gateway");
                let out = self
                    .ec2
                    .create_vpn_gateway()
                    .r#type(GatewayType::Ipsec1)
                    .amazon_side_asn(i64::from(*amazon_side_asn))
                    .tag_specifications(Self::tag_spec(resource, ResourceType::VpnGateway))
                    .customize()
                    .config_override(once())
                    .send()
                    .await
                    .map_err(api(role, "CreateVpnGateway"))?;
                Ok(out
                    .vpn_gateway()
                    .and_then(|g| g.vpn_gateway_id())
                    .map(str::to_owned))
            }
            Spec::VpnGatewayAttachment { vpc_id } => {
                let vgw = outputs.need(role, "aws.vpn_gateway", "id")?;
                tracing::info!(%role, %vgw, %vpc_id, "attaching VPN gateway");
                self.ec2
                    .attach_vpn_gateway()
                    .vpc_id(vpc_id)
                    .vpn_gateway_id(&vgw)
                    .send()
                    .await
                    .map_err(api(role, "AttachVpnGateway"))?;
                Ok(None)
            }
            Spec::RoutePropagation { route_table_id } => {
                let vgw = outputs.need(role, "aws.vpn_gateway", "id")?;
                tracing::info!(%role, %route_table_id, "enabling route propagation");
                self.ec2
                    .enable_vgw_route_propagation()
                    .gateway_id(&vgw)
                    .route_table_id(route_table_id)
                    .send()
                    .await
                    .map_err(api(role, "EnableVgwRoutePropagation"))?;
                Ok(None)
            }
            Spec::CustomerGateway {
                bgp_asn,
                ip_address,
            } => {
                let ip = outputs.resolve_ip(role, ip_address)?;
                tracing::info!(%role, %ip, "creating customer gateway");
                let request = self
                    .ec2
                    .create_customer_gateway()
                    .r#type(GatewayType::Ipsec1)
                    .ip_address(ip.to_string());
                let request = match i32::try_from(*bgp_asn) {
                    Ok(asn) => request.bgp_asn(asn),
                    Err(_) => request.bgp_asn_extended(i64::from(*bgp_asn)),
                };
                let out = request
                    .tag_specifications(Self::tag_spec(resource, ResourceType::CustomerGateway))
                    .customize()
                    .config_override(once())
                    .send()
                    .await
                    .map_err(api(role, "CreateCustomerGateway"))?;
                Ok(out
                    .customer_gateway()
                    .and_then(|g| g.customer_gateway_id())
                    .map(str::to_owned))
            }
            Spec::VpnConnection { connection, .. } => {
                let vgw = outputs.need(role, "aws.vpn_gateway", "id")?;
                let cgw =
                    outputs.need(role, &format!("aws.customer_gateway.{connection}"), "id")?;
                // The customer gateway must be available before AWS accepts the connection.
                self.wait_state(role, "customer_gateway", &cgw, "available")
                    .await?;
                let policy = &plan.ipsec_policy;
                let mut options =
                    VpnConnectionOptionsSpecification::builder().static_routes_only(false);
                for tunnel in plan
                    .tunnels
                    .iter()
                    .filter(|t| t.pairing.aws_connection == *connection)
                {
                    // dxvpn makes the keys itself (CSPRNG) unless the config gives them.
                    let key = tunnel
                        .preshared_key
                        .clone()
                        .unwrap_or_else(PresharedKey::generate);
                    options = options.tunnel_options(
                        tunnels::with_policy!(
                            VpnTunnelOptionsSpecification::builder(),
                            policy,
                            tunnel.pairing.inside_cidr
                        )
                        .pre_shared_key(key.expose())
                        .build(),
                    );
                }
                tracing::info!(%role, %vgw, %cgw, "creating VPN connection");
                let out = self
                    .ec2
                    .create_vpn_connection()
                    .r#type("ipsec.1")
                    .customer_gateway_id(&cgw)
                    .vpn_gateway_id(&vgw)
                    .options(options.build())
                    .tag_specifications(Self::tag_spec(resource, ResourceType::VpnConnection))
                    .customize()
                    .config_override(once())
                    .send()
                    .await
                    .map_err(api(role, "CreateVpnConnection"))?;
                Ok(out
                    .vpn_connection()
                    .and_then(|v| v.vpn_connection_id())
                    .map(str::to_owned))
            }
            Spec::ForwarderInstance { .. } => {
                self.create_forwarder_host(plan, resource, outputs).await
            }
            Spec::InstanceProfile { .. } => self.create_instance_profile(plan, resource).await,
            Spec::TunnelAlarm { .. } => self.put_alarm(plan, resource, outputs).await,
            Spec::AlertTopic { .. } => self.put_alert_topic(plan, resource).await,
            _ => self.create_dns(plan, resource, outputs).await,
        }
    }

    async fn wait_usable(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<(), AwsError> {
        let role = resource.role.as_str();
        match &resource.spec {
            Spec::VpnGatewayAttachment { vpc_id } => {
                let vgw = outputs.need(role, "aws.vpn_gateway", "id")?;
                self.wait(role, "attached", || async {
                    Ok(self.attachment_state(role, &vgw, vpc_id).await?.as_deref()
                        == Some("attached"))
                })
                .await
            }
            Spec::CustomerGateway { .. } | Spec::VpnConnection { .. } | Spec::VpnGateway { .. } => {
                let id = outputs.need(role, role, "id")?;
                self.wait_state(role, resource.kind(), &id, "available")
                    .await?;
                if matches!(resource.spec, Spec::VpnConnection { .. })
                    && !self.caller_updates_tunnels
                {
                    // Tunnels that differ from the plan change in place, keeping the id and
                    // the outside addresses that Azure's side points at.
                    self.update_tunnels(plan, role, outputs).await?;
                }
                Ok(())
            }
            Spec::ForwarderInstance { .. } => self.wait_forwarder_host(plan, role, outputs).await,
            Spec::InstanceProfile { .. } => self.wait_instance_profile(resource).await,
            // PutMetricAlarm and CreateTopic take effect at once.
            Spec::TunnelAlarm { .. } | Spec::AlertTopic { .. } => Ok(()),
            _ => self.wait_dns(plan, resource, outputs).await,
        }
    }

    /// Deletes `resource` if dxvpn made it, and waits until it is gone.
    pub async fn delete(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<(), AwsError> {
        if resource.cloud != Cloud::Aws || resource.action != dxvpn_plan::model::Action::Create {
            return Ok(());
        }
        let role = resource.role.as_str();
        match &resource.spec {
            Spec::VpnConnection { .. } => {
                if let Some(id) = self.find_settled(plan, role, &resource.spec).await? {
                    tracing::info!(%role, %id, "deleting VPN connection");
                    self.ec2
                        .delete_vpn_connection()
                        .vpn_connection_id(&id)
                        .send()
                        .await
                        .map(drop)
                        .map_err(api(role, "DeleteVpnConnection"))
                        .or_else(gone_is_done)?;
                    self.wait_state(role, resource.kind(), &id, "deleted")
                        .await?;
                }
            }
            Spec::CustomerGateway { .. } => {
                if let Some(id) = self.find_settled(plan, role, &resource.spec).await? {
                    tracing::info!(%role, %id, "deleting customer gateway");
                    self.ec2
                        .delete_customer_gateway()
                        .customer_gateway_id(&id)
                        .send()
                        .await
                        .map(drop)
                        .map_err(api(role, "DeleteCustomerGateway"))
                        .or_else(gone_is_done)?;
                    self.wait_state(role, resource.kind(), &id, "deleted")
                        .await?;
                }
            }
            Spec::RoutePropagation { route_table_id } => {
                if let Some(vgw) =
                    lookup::until_found(self.unsettled(), || self.find_vgw(plan, "aws.vpn_gateway"))
                        .await?
                    && self.propagates(role, &vgw, route_table_id).await?
                {
                    tracing::info!(%role, "disabling route propagation");
                    self.ec2
                        .disable_vgw_route_propagation()
                        .gateway_id(&vgw)
                        .route_table_id(route_table_id)
                        .send()
                        .await
                        .map(drop)
                        .map_err(api(role, "DisableVgwRoutePropagation"))
                        .or_else(gone_is_done)?;
                }
            }
            Spec::VpnGatewayAttachment { vpc_id } => {
                if let Some(vgw) =
                    lookup::until_found(self.unsettled(), || self.find_vgw(plan, "aws.vpn_gateway"))
                        .await?
                {
                    self.detach(role, &vgw, vpc_id).await?;
                }
            }
            Spec::VpnGateway { .. } => {
                if let Some(id) = self.find_settled(plan, role, &resource.spec).await? {
                    tracing::info!(%role, %id, "deleting VPN gateway");
                    self.ec2
                        .delete_vpn_gateway()
                        .vpn_gateway_id(&id)
                        .send()
                        .await
                        .map(drop)
                        .map_err(api(role, "DeleteVpnGateway"))
                        .or_else(gone_is_done)?;
                    self.wait_state(role, resource.kind(), &id, "deleted")
                        .await?;
                }
            }
            Spec::ForwarderInstance { .. } => {
                if let Some(id) = self.find_settled(plan, role, &resource.spec).await? {
                    self.terminate(role, &id).await?;
                }
            }
            Spec::InstanceProfile { name, .. } => {
                self.delete_instance_profile(plan, role, name).await?;
            }
            Spec::TunnelAlarm { .. } => self.delete_alarm(plan, resource).await?,
            Spec::AlertTopic { .. } => self.delete_alert_topic(plan, role).await?,
            _ => self.delete_dns(plan, resource).await?,
        }
        outputs.forget(role);
        Ok(())
    }
}

impl Aws {
    /// Detaches VPN gateway `vgw` from `vpc` if it is attached, and waits until it is detached.
    pub(crate) async fn detach(&self, role: &str, vgw: &str, vpc: &str) -> Result<(), AwsError> {
        let state = self.attachment_state(role, vgw, vpc).await?;
        if matches!(state.as_deref(), Some("attaching" | "attached")) {
            tracing::info!(%role, %vgw, "detaching VPN gateway");
            self.ec2
                .detach_vpn_gateway()
                .vpc_id(vpc)
                .vpn_gateway_id(vgw)
                .send()
                .await
                .map(drop)
                .map_err(api(role, "DetachVpnGateway"))
                .or_else(gone_is_done)?;
        }
        self.wait(role, "detached", || async {
            Ok(matches!(
                self.attachment_state(role, vgw, vpc).await?.as_deref(),
                None | Some("detached")
            ))
        })
        .await
    }
}

/// The AWS resources of a plan, in the order they can be created (the plan's order).
pub fn aws_resources(plan: &Plan) -> impl Iterator<Item = &Resource> {
    plan.resources
        .iter()
        .filter(|r| r.cloud == Cloud::Aws && r.action == dxvpn_plan::model::Action::Create)
}
