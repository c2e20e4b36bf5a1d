//! The Azure half of a dxvpn deployment, on azure_mgmt_network, azure_mgmt_dnsresolver and
//! azure_identity.
//!
//! For each Azure resource of a [`Plan`] this crate can `observe` it (read it by name and check
//! its `dxvpn:deployment` tag), `ensure` it (write it only when it is missing or differs from the
//! plan, then wait until Azure has provisioned it), and `delete` it (and wait until it is gone).
//! The cloud is the state: nothing is kept on disk. An existing VPN gateway (`existing_gateway_id`)
//! is read and used; dxvpn only adds the custom APIPA addresses its connections need (writing the
//! gateway back whole, and recording what it added in the tag `dxvpn:apipa:<deployment>`), and
//! `delete` removes exactly those, never the gateway. Cross-cloud DNS adds two delegated subnets, the DNS private resolver, its
//! endpoints, a forwarding ruleset with its rules and the ruleset's VNet link. Alerts add
//! Microsoft.Insights metric alerts on the gateway and an action group, and the exporter reads
//! the gateway's traffic from Azure Monitor.
//!
//! Long-running operations are polled here, not by the SDK's `.await`: that way progress can be
//! shown, and when Azure fails an operation its error code and message reach the user.
//!
//! ```no_run
//! # async fn demo(plan: dxvpn_plan::Plan) -> Result<(), dxvpn_azure::AzureError> {
//! let azure = dxvpn_azure::Azure::connect(&plan)?
//!     .with_progress(|role, state| eprintln!("{role}: {state}"));
//! let mut outputs = dxvpn_plan::Outputs::default();
//! for resource in dxvpn_azure::azure_resources(&plan) {
//!     azure.ensure(&plan, resource, &mut outputs).await?;
//! }
//! println!("gateway instance 1 answers at {:?}", outputs.get("azure.public_ip.0", "ip_address"));
//! # Ok(()) }
//! ```

#[macro_use]
mod kind;
mod alerts;
mod body;
mod calls;
mod credential;
mod delete;
mod dns;
mod drift;
mod error;
mod existing_gateway;
mod filters;
mod forwarder_vm;
mod lro;
mod prefetch;
mod raw;
mod shared_key;
mod status;
mod strays;
mod traffic;

use raw::json_body;

pub use error::AzureError;
use error::{answered, api, is_not_found};
pub use filters::{AzureHostFilters, NsgRule, NsgRules};
use kind::Kind;

pub use forwarder_vm::ForwarderVmState;
pub use status::{BgpPeerState, ConnectionState};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
pub use strays::AzureStray;
pub use traffic::ConnectionTraffic;

use azure_core::auth::TokenCredential;
use azure_mgmt_network::package_2024_03::{Client as NetworkClient, models};
use dxvpn_plan::model::{Action, Resource, Spec};
use dxvpn_plan::{Cloud, MissingInput, Outputs, Plan};
use serde_json::Value;

pub use credential::StaticToken;
use lro::{Outcome, Poll, Poller};

/// The log targets (a module prefix) where azure_core 0.21 writes whole requests at DEBUG and
/// TRACE (its transport and retry policies), bodies included:
/// a connection's body carries its pre-shared key. Keep this target at INFO or above
/// (`{SECRET_BEARING_LOG_TARGET}=info` in an `EnvFilter`), as the `dxvpn` CLI does.
pub const SECRET_BEARING_LOG_TARGET: &str = "azure_core::policies";

/// ARM's management endpoint and the scope of its tokens.
const ARM_ENDPOINT: &str = "https://management.azure.com";
const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// How long to wait for Azure at most: a VPN gateway takes 30 to 60 minutes, and azurerm allows 90.
pub(crate) const WAIT_LIMIT: Duration = Duration::from_secs(90 * 60);

type Progress = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// The Azure side of one deployment.
#[derive(Clone)]
pub struct Azure {
    network: NetworkClient,
    dns: azure_mgmt_dnsresolver::package_2022_07::Client,
    poller: Poller,
    /// ARM's endpoint, for the raw writes that bypass the typed clients.
    endpoint: azure_core::Url,
    subscription: String,
    resource_group: String,
    ids: body::Ids,
    progress: Option<Progress>,
    /// The transport of every client above: counts requests, bounds them in flight.
    http: Arc<calls::CountedHttp>,
    /// What [`Azure::prefetch`] reads ahead, for the reads that follow to wait for and take.
    prefetched: Arc<prefetch::Prefetched>,
    /// One write at a time per virtual network: ARM refuses a subnet write while another runs.
    vnet_turns: Arc<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl std::fmt::Debug for Azure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Azure")
            .field("subscription", &self.subscription)
            .field("resource_group", &self.resource_group)
            .field("poller", &self.poller)
            .finish_non_exhaustive()
    }
}

impl Azure {
    /// Connects with the first credential that works, in DefaultAzureCredential's order: a client
    /// secret or workload identity from the environment, a managed identity, the Azure CLI. With
    /// `azure.endpoint` set (the lab's twin) it uses a static token instead.
    pub fn connect(plan: &Plan) -> Result<Self, AzureError> {
        let credential: Arc<dyn TokenCredential> = match &plan.azure.endpoint {
            Some(_) => Arc::new(StaticToken::new("dxvpn-lab")),
            None => azure_identity::create_default_credential()
                .map_err(|e| AzureError::Credential(e.to_string()))?,
        };
        let endpoint = plan.azure.endpoint.as_deref().unwrap_or(ARM_ENDPOINT);
        Self::with_credential(plan, credential, endpoint)
    }

    /// Uses `credential` against `endpoint` (tests, or a caller with its own credential).
    pub fn with_credential(
        plan: &Plan,
        credential: Arc<dyn TokenCredential>,
        endpoint: &str,
    ) -> Result<Self, AzureError> {
        let url = azure_core::Url::parse(endpoint).map_err(|e| AzureError::Api {
            role: "azure".into(),
            operation: "connect".into(),
            code: "InvalidEndpoint".into(),
            message: format!("azure.endpoint `{endpoint}`: {e}"),
            transient: false,
        })?;
        // A twin on this machine answers at once: poll and back off in milliseconds, not seconds.
        let local = url.host_str().is_some_and(|h| {
            h == "localhost"
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        let http = calls::CountedHttp::new();
        let transport = || azure_core::TransportOptions::new(http.clone());
        let network = NetworkClient::builder(credential.clone())
            .retry(retry_options(local))
            .transport(transport())
            .endpoint(url.clone())
            // The builder derives the scope from the endpoint; tokens are for ARM whatever it is.
            .scopes(&[ARM_SCOPE])
            .build()
            .map_err(api("azure", "connect"))?;
        let dns = azure_mgmt_dnsresolver::package_2022_07::Client::builder(credential.clone())
            .retry(retry_options(local))
            .transport(transport())
            .endpoint(url.clone())
            .scopes(&[ARM_SCOPE])
            .build()
            .map_err(api("azure", "connect"))?;
        Ok(Azure {
            network,
            dns,
            poller: Poller {
                http: http.clone(),
                credential,
                scopes: vec![ARM_SCOPE.to_owned()],
                floor: Duration::from_millis(if local { 100 } else { 2_000 }),
                // Terraform's azurerm poller starts at 10 s when ARM says nothing.
                default_interval: Duration::from_secs(if local { 1 } else { 10 }),
                origin: url.clone(),
            },
            endpoint: url,
            subscription: plan.azure.subscription_id.clone(),
            resource_group: plan.azure.resource_group.clone(),
            ids: body::Ids::new(&plan.azure.subscription_id, &plan.azure.resource_group),
            progress: None,
            http,
            prefetched: Arc::default(),
            vnet_turns: Arc::default(),
        })
    }

    /// Requests sent to Resource Manager so far, every try counted.
    pub fn calls(&self) -> u64 {
        self.http.calls()
    }

    /// Reports each resource's state while Azure works on it: `(role, state)`.
    #[must_use]
    pub fn with_progress(mut self, progress: impl Fn(&str, &str) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(progress));
        self
    }

    fn report(&self, role: &str, state: &str) {
        tracing::debug!(%role, %state, "azure");
        if let Some(p) = &self.progress {
            p(role, state);
        }
    }

    /// The gateway's ARM id: the existing one, or the one dxvpn creates.
    fn gateway_id(&self, plan: &Plan) -> String {
        match &plan.azure.existing_gateway {
            Some(g) => g.id.clone(),
            None => plan.resource("azure.vpn_gateway").map_or_else(
                || self.ids.of("virtualNetworkGateways", "vpngw"),
                |r| self.ids.of("virtualNetworkGateways", &r.name),
            ),
        }
    }

    /// Resource group, parent (a child resource's VNet, resolver or ruleset) and name of a
    /// resource, from its ARM id or the plan.
    fn locate(&self, plan: &Plan, kind: Kind, resource: &Resource) -> (String, String, String) {
        let (rg, name) = self.locate_top(kind, resource);
        (rg, dns::parent(plan, kind), name)
    }

    fn locate_top(&self, kind: Kind, resource: &Resource) -> (String, String) {
        if kind == Kind::Gateway && resource.action == Action::Reference {
            let parts: Vec<&str> = resource.name.split('/').collect();
            let rg = parts
                .iter()
                .position(|p| p.eq_ignore_ascii_case("resourceGroups"))
                .and_then(|i| parts.get(i + 1))
                .map_or_else(|| self.resource_group.clone(), |s| (*s).to_owned());
            let name = parts.last().copied().unwrap_or_default().to_owned();
            return (rg, name);
        }
        (self.resource_group.clone(), resource.name.clone())
    }

    /// Reads a resource as JSON; `None` when it does not exist. The answer of a
    /// [`Azure::prefetch`] is taken when there is one.
    async fn read(
        &self,
        kind: Kind,
        at: (&str, &str, &str),
        role: &str,
    ) -> Result<Option<Value>, AzureError> {
        match self.take_prefetched(kind.type_path(), at).await {
            Some(answer) => Ok(answer),
            None => self.read_now(kind, at, role).await,
        }
    }

    /// [`Azure::read`] from Azure itself.
    async fn read_now(
        &self,
        kind: Kind,
        (rg, parent, name): (&str, &str, &str),
        role: &str,
    ) -> Result<Option<Value>, AzureError> {
        let sub = self.subscription.as_str();
        let operation = format!("GET {}", kind.type_path());
        let result = if kind.json_api().is_some() {
            match self
                .json_call(kind, azure_core::Method::Get, name, None)
                .await
            {
                Ok(response) => json_body(response).await,
                Err(e) => Err(e),
            }
        } else if kind.is_gateway_family() {
            per_kind!(
                self,
                kind,
                |client, _Model| match client.get(rg, name, sub).send().await {
                    Ok(response) => json_body(response.into_raw_response()).await,
                    Err(e) => Err(e),
                }
            )
        } else {
            self.dns_get(kind, rg, parent, name).await
        };
        match result {
            Ok(v) => Ok(Some(v)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(api(role, &operation)(e)),
        }
    }

    /// Writes a resource and waits until Azure has provisioned it.
    async fn write(
        &self,
        kind: Kind,
        (rg, parent, name): (&str, &str, &str),
        role: &str,
        body: Value,
    ) -> Result<(), AzureError> {
        let sub = self.subscription.as_str();
        let operation = format!("PUT {}", kind.type_path());
        let invalid = |e: serde_json::Error| AzureError::Api {
            role: role.to_owned(),
            operation: operation.clone(),
            code: "InvalidBody".into(),
            message: e.to_string(),
            transient: false,
        };
        self.report(role, "writing");
        let response = if kind.json_api().is_some() {
            self.json_call(kind, azure_core::Method::Put, name, Some(&body))
                .await
        } else if kind.is_gateway_family() {
            per_kind!(self, kind, |client, Model| client
                .create_or_update(
                    rg,
                    name,
                    serde_json::from_value::<Model>(body).map_err(invalid)?,
                    sub
                )
                .send()
                .await
                .map(|r| r.into_raw_response()))
        } else {
            self.dns_put(kind, rg, parent, name, body)
                .await
                .map_err(invalid)?
        }
        .map_err(api(role, &operation))?;
        self.settle(response, role, &operation).await
    }

    /// Follows a write's or a delete's answer to its end: its long-running operation when it
    /// names one, else the whole body of a synchronous answer (a connection that broke off
    /// mid-answer proves nothing).
    async fn settle(
        &self,
        response: azure_core::Response,
        role: &str,
        operation: &str,
    ) -> Result<(), AzureError> {
        match Poll::from_headers(response.headers()) {
            Some(poll) => self.finish(role, operation, poll).await,
            None => answered(response, role, operation).await,
        }
    }

    /// Waits for an accepted operation and turns its end into a result.
    async fn finish(&self, role: &str, operation: &str, poll: Poll) -> Result<(), AzureError> {
        let started = Instant::now();
        let progress = |status: &str| {
            self.report(
                role,
                &format!("{status} ({}s)", started.elapsed().as_secs()),
            );
        };
        match self
            .poller
            .wait(poll, WAIT_LIMIT, &progress)
            .await
            .map_err(api(role, operation))?
        {
            Outcome::Succeeded => {
                self.report(role, "succeeded");
                Ok(())
            }
            Outcome::Failed(e) => Err(AzureError::OperationFailed {
                role: role.to_owned(),
                operation: operation.to_owned(),
                code: e.code,
                message: e.message,
            }),
            Outcome::TimedOut(waited) => Err(AzureError::Timeout {
                role: role.to_owned(),
                operation: operation.to_owned(),
                waited,
            }),
        }
    }

    /// Checks that an existing resource is this deployment's.
    fn owned(plan: &Plan, resource: &Resource, found: &Value) -> Result<(), AzureError> {
        // Tracked resources carry tags; forwarding rules and VNet links only metadata; a
        // subnet only the name of its delegation.
        let tag = found
            .pointer("/tags/dxvpn:deployment")
            .or_else(|| found.pointer("/properties/metadata/dxvpn:deployment"))
            .and_then(Value::as_str);
        if tag == Some(plan.name.as_str()) || dns::marked_subnet(plan, found, &[]) {
            return Ok(());
        }
        Err(AzureError::NotOurs {
            role: resource.role.clone(),
            id: found
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or(&resource.name)
                .to_owned(),
            deployment: plan.name.clone(),
        })
    }

    fn record(&self, role: &str, kind: Kind, found: &Value, outputs: &mut Outputs) {
        if let Some(id) = found.get("id").and_then(Value::as_str) {
            outputs.set(role, "id", id);
        }
        if kind == Kind::PublicIp
            && let Some(ip) = found
                .pointer("/properties/ipAddress")
                .and_then(Value::as_str)
        {
            outputs.set(role, "ip_address", ip);
        }
        if kind == Kind::LocalGateway
            && let Some(ip) = found
                .pointer("/properties/gatewayIpAddress")
                .and_then(Value::as_str)
        {
            // The AWS tunnel it points at: which one that is, when both inside CIDRs change.
            outputs.set(role, "gateway_ip_address", ip);
        }
        if kind == Kind::VirtualMachine
            && let Some(nic) = found
                .pointer("/properties/networkProfile/networkInterfaces/0/id")
                .and_then(Value::as_str)
        {
            outputs.set(role, "nic_id", nic);
        }
        if kind == Kind::Gateway {
            // Connections name the gateway's ipConfigurations as the gateway spells them.
            let configs = found
                .pointer("/properties/ipConfigurations")
                .and_then(Value::as_array);
            for (i, c) in configs.into_iter().flatten().enumerate() {
                if let Some(id) = c.get("id").and_then(Value::as_str) {
                    outputs.set(role, &format!("ip_configuration_id.{i}"), id);
                }
            }
        }
        if let Some(state) = found
            .pointer("/properties/provisioningState")
            .and_then(Value::as_str)
        {
            outputs.set(role, "provisioning_state", state);
        }
    }

    /// Finds `resource` in Azure and records its outputs; `false` when it does not exist.
    pub async fn observe(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<bool, AzureError> {
        let Some(kind) = Kind::of(&resource.spec) else {
            // The VNet and the DNS resources are not this crate's to observe yet.
            return Ok(matches!(resource.spec, Spec::VirtualNetwork { .. }));
        };
        let (rg, parent, name) = self.locate(plan, kind, resource);
        let at = (rg.as_str(), parent.as_str(), name.as_str());
        let Some(found) = self.read(kind, at, &resource.role).await? else {
            return Ok(false);
        };
        if resource.action == Action::Create {
            Self::owned(plan, resource, &found)?;
        }
        self.record(&resource.role, kind, &found, outputs);
        Ok(true)
    }

    /// The body dxvpn wants for `resource`, given what exists (`found`).
    fn wanted(
        &self,
        plan: &Plan,
        resource: &Resource,
        kind: Kind,
        found: Option<&Value>,
        outputs: &Outputs,
    ) -> Result<Value, AzureError> {
        let gateway_id = self.gateway_id(plan);
        Ok(match kind {
            Kind::PublicIp => body::public_ip(plan, resource),
            Kind::Gateway if resource.action == Action::Reference => {
                let found = found.ok_or_else(|| AzureError::ExistingGateway {
                    id: resource.name.clone(),
                    problem: "not found; check the id (az network vnet-gateway show --ids ...)"
                        .into(),
                })?;
                self.existing_gateway(plan, resource, found)?
            }
            Kind::Gateway => body::gateway(plan, resource, &self.ids, &gateway_id),
            Kind::LocalGateway => body::local_gateway(plan, resource, outputs)?,
            Kind::Connection => {
                let gateway = plan
                    .resource("azure.vpn_gateway")
                    .ok_or_else(|| MissingInput {
                        role: resource.role.clone(),
                        from: "azure.vpn_gateway".into(),
                        output: "spec".into(),
                    })?;
                let Spec::GatewayConnection { tunnel, .. } = &resource.spec else {
                    return Ok(Value::Null);
                };
                let lng = format!("azure.local_network_gateway.{tunnel}");
                let lng_id = outputs.need(&resource.role, &lng, "id")?;
                let key = body::tunnel_key(plan, resource, outputs)?;
                let Spec::VirtualNetworkGateway { instances, .. } = &gateway.spec else {
                    return Ok(Value::Null);
                };
                let config_ids = (0..instances.len())
                    .map(|i| {
                        outputs.need(
                            &resource.role,
                            "azure.vpn_gateway",
                            &format!("ip_configuration_id.{i}"),
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                body::connection(
                    plan,
                    resource,
                    gateway,
                    &gateway_id,
                    &config_ids,
                    &lng_id,
                    &key,
                )
            }
            Kind::SecurityGroup => forwarder_vm::security_group(plan, resource),
            Kind::VirtualMachine => {
                let nic_id = outputs.need(&resource.role, &resource.role, "nic_id")?;
                forwarder_vm::vm(plan, resource, &nic_id)
            }
            Kind::MetricAlert => self.alert_body(plan, resource)?,
            Kind::ActionGroup => alerts::action_group(resource),
            _ => dns::body(plan, resource, &self.ids, outputs)?,
        })
    }

    /// Makes `resource` exist as planned and provisioned, writing it only when it is missing or
    /// differs. A transient failure (a broken connection, 429 or 5xx past the SDK's retries)
    /// starts the whole read-compare-write again: ARM's PUT is idempotent, and the read first
    /// tells whether a lost answer's write happened.
    pub async fn ensure(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<(), AzureError> {
        self.retried(Op::Ensure, plan, resource, outputs).await
    }

    /// Runs `op` until it succeeds, fails for good, or has failed transiently
    /// [`RESOURCE_ATTEMPTS`] times, backing off 0.5 s, 1 s, 2 s, 4 s and 8 s in between.
    async fn retried(
        &self,
        op: Op,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<(), AzureError> {
        // A subnet waits for its VNet's turn for the whole read-compare-write, so that
        // dxvpn never races itself into ARM's 409 AnotherOperationInProgress.
        let _turn = match Kind::of(&resource.spec) {
            Some(Kind::Subnet) => Some(self.vnet_turn(&dns::parent(plan, Kind::Subnet)).await),
            _ => None,
        };
        let mut tries = 1;
        loop {
            let result = match op {
                Op::Ensure => self.ensure_once(plan, resource, outputs).await,
                Op::Delete => self.delete_once(plan, resource, outputs).await,
            };
            match result {
                Err(e) if e.is_transient() && tries < RESOURCE_ATTEMPTS => {
                    tracing::warn!(role = %resource.role, error = %e, "transient failure; reading again before retrying");
                    tokio::time::sleep(Duration::from_millis(250 << tries)).await;
                    tries += 1;
                }
                done => return done,
            }
        }
    }

    /// Waits until no other write of this `Azure` is on the virtual network `vnet`.
    async fn vnet_turn(&self, vnet: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let turn = {
            let mut turns = self
                .vnet_turns
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            turns.entry(vnet.to_ascii_lowercase()).or_default().clone()
        };
        turn.lock_owned().await
    }

    async fn ensure_once(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<(), AzureError> {
        if resource.cloud != Cloud::Azure {
            return Ok(());
        }
        let Some(kind) = Kind::of(&resource.spec) else {
            return Ok(());
        };
        let role = resource.role.as_str();
        let (rg, parent, name) = self.locate(plan, kind, resource);
        let at = (rg.as_str(), parent.as_str(), name.as_str());
        let found = self.read(kind, at, role).await?;
        if let Some(found) = &found
            && resource.action == Action::Create
        {
            Self::owned(plan, resource, found)?;
        }
        if kind == Kind::VirtualMachine {
            self.ensure_nic(plan, resource, outputs).await?;
        }
        let wanted = self.wanted(plan, resource, kind, found.as_ref(), outputs)?;
        let state = found
            .as_ref()
            .and_then(|f| f.pointer("/properties/provisioningState"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        // An existing connection's key is not the body's to change: ARM keeps it on a PUT, and
        // only SetSharedKey sets it (terraform-provider-azurerm #11673, PR #11742).
        let wanted_key = match (&found, kind) {
            (Some(_), Kind::Connection) => wanted
                .pointer("/properties/sharedKey")
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        };
        let mut compared = match kind {
            Kind::VirtualMachine => forwarder_vm::comparable(wanted.clone()),
            _ => wanted.clone(),
        };
        if wanted_key.is_some()
            && let Some(props) = compared
                .get_mut("properties")
                .and_then(Value::as_object_mut)
        {
            props.remove("sharedKey");
        }
        let difference = match &found {
            None => Some("missing".to_owned()),
            // ARM's way out of a failed provisioning is to PUT the resource again.
            Some(_) if state == "Failed" => Some("provisioning failed".to_owned()),
            Some(f) => {
                body::first_difference(&compared, f).map(|path| format!("differs at {path}"))
            }
        };
        match difference {
            Some(why) => {
                tracing::info!(%role, %why, "writing");
                if kind == Kind::Gateway && resource.action == Action::Reference {
                    self.write_existing_gateway(&resource.name, role, &wanted)
                        .await?;
                } else {
                    self.write(kind, at, role, wanted).await?;
                }
            }
            None if state == "Succeeded" || !kind.provisions() => {}
            None => {
                // A run before this one started it; wait for Azure to finish.
                self.report(role, &format!("waiting ({state})"));
                self.wait_provisioned(kind, at, role).await?;
            }
        }
        if let Some(key) = &wanted_key {
            self.ensure_shared_key(at, role, key).await?;
        }
        let found = self
            .read(kind, at, role)
            .await?
            .ok_or_else(|| AzureError::Api {
                role: role.to_owned(),
                operation: format!("GET {}", kind.type_path()),
                code: "ResourceNotFound".into(),
                message: "written, then not found".into(),
                // ARM's reads may lag its writes; ensure looks again.
                transient: true,
            })?;
        self.record(role, kind, &found, outputs);
        Ok(())
    }
}

/// Whole tries of one resource's ensure or delete.
const RESOURCE_ATTEMPTS: u32 = 6;

/// The SDK's retries per call: its defaults for ARM (8 retries within a minute, from 200 ms),
/// and the same count within a few seconds for a twin on this machine.
fn retry_options(local: bool) -> azure_core::RetryOptions {
    let options = azure_core::ExponentialRetryOptions::default();
    azure_core::RetryOptions::exponential(if local {
        options
            .initial_delay(Duration::from_millis(50))
            .max_total_elapsed(Duration::from_secs(5))
    } else {
        options
    })
}

/// What [`Azure::retried`] runs.
#[derive(Clone, Copy)]
enum Op {
    Ensure,
    Delete,
}

/// The Azure resources of `plan` that this crate writes, in dependency order.
pub fn azure_resources(plan: &Plan) -> impl Iterator<Item = &Resource> {
    plan.resources
        .iter()
        .filter(|r| r.cloud == Cloud::Azure && Kind::of(&r.spec).is_some())
}
