//! The deploy engine: runs a [`Plan`]'s resources over both clouds as a DAG on tokio.
//!
//! `up` starts a resource the moment every resource it depends on is done, so the AWS customer
//! gateways and VPN connections are built while the Azure gateway is still provisioning, and no
//! step waits on a fixed sleep. Each resource is observed first and written only where it
//! differs (that is [`dxvpn_aws`]'s and [`dxvpn_azure`]'s `ensure`). A failure stops new work,
//! lets running work finish, and every failed resource is reported with its cloud's error; a
//! re-run resumes from what exists. `down` walks the same DAG backwards and deletes only this
//! deployment's resources. `diff` says what `up` would create without writing anything, and
//! `status` joins both clouds' own reports per tunnel (AWS telemetry, Azure connection status,
//! BGP peers, route propagation), and `traffic` their byte sums per tunnel and period
//! (CloudWatch, Azure Monitor).
//!
//! ```no_run
//! # async fn demo(plan: dxvpn_plan::Plan) -> Result<(), dxvpn_deploy::DeployError> {
//! let deployer = dxvpn_deploy::Deployer::connect(&plan).await?
//!     .with_events(|event| eprintln!("{} {:?}", event.role, event.state));
//! let report = deployer.up(std::sync::Arc::new(plan)).await;
//! println!("{} failed, makespan {:?}", report.failures().count(), report.makespan);
//! # Ok(()) }
//! ```

mod changes;
mod filters;
mod status;
mod traffic;
mod tunnels;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use changes::{Change, ChangeKind, any_writes};
use dxvpn_aws::Aws;
use dxvpn_azure::Azure;
use dxvpn_plan::model::{Resource, Spec};
use dxvpn_plan::{Cloud, Outputs, Plan};
pub use filters::{AddressFilters, HostFilters};
use serde::Serialize;
pub use status::{AzureForwarderHealth, ForwarderHostHealth, Status, TunnelHealth};
pub use traffic::{Traffic, TunnelBytes};

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// No Azure client.
    #[error(transparent)]
    Azure(#[from] dxvpn_azure::AzureError),
}

/// A cloud's error while reading or writing a resource.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// From AWS.
    #[error(transparent)]
    Aws(#[from] dxvpn_aws::AwsError),
    /// From Azure.
    #[error(transparent)]
    Azure(#[from] dxvpn_azure::AzureError),
}

/// Where one resource stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum NodeState {
    /// Waiting for the resources it needs.
    Waiting,
    /// The cloud is working on it (or dxvpn is checking it).
    Working,
    /// Exists as planned (up) or is gone (down).
    Done,
    /// Not handled by this version (the DNS resources).
    Skipped(String),
    /// The cloud refused it, with its error.
    Failed(String),
    /// Never started: something it needs failed.
    NotStarted,
}

/// A change of state, for progress displays.
#[derive(Debug, Clone)]
pub struct Event {
    /// Role key.
    pub role: String,
    /// New state.
    pub state: NodeState,
    /// Since the run started.
    pub at: Duration,
}

/// One resource's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    /// Role key.
    pub role: String,
    /// Cloud.
    pub cloud: Cloud,
    /// Name in the cloud.
    pub name: String,
    /// How it ended.
    #[serde(flatten)]
    pub state: NodeState,
    /// When it started and how long it took, since the run started.
    #[serde(with = "secs")]
    pub started: Duration,
    /// How long it took.
    #[serde(with = "secs")]
    pub took: Duration,
}

mod secs {
    pub(super) fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
    }
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Every resource, in plan order.
    pub nodes: Vec<NodeReport>,
    /// From the first call to the last answer.
    #[serde(with = "secs")]
    pub makespan: Duration,
    /// Values the resources produced (ids, addresses); keys are never included.
    #[serde(skip)]
    pub outputs: Outputs,
}

impl Report {
    /// The longest chain of measured durations through the plan's dependencies: the least time
    /// any schedule of these same operations could take.
    pub fn critical_path(&self, plan: &Plan) -> Duration {
        let mut finish: BTreeMap<&str, Duration> = BTreeMap::new();
        for r in &plan.resources {
            let took = self
                .nodes
                .iter()
                .find(|n| n.role == r.role)
                .map_or(Duration::ZERO, |n| n.took);
            let start = r
                .depends_on
                .iter()
                .filter_map(|d| finish.get(d.as_str()))
                .max()
                .copied()
                .unwrap_or_default();
            finish.insert(&r.role, start + took);
        }
        finish.into_values().max().unwrap_or_default()
    }

    /// The resources that failed.
    pub fn failures(&self) -> impl Iterator<Item = &NodeReport> {
        self.nodes
            .iter()
            .filter(|n| matches!(n.state, NodeState::Failed(_)))
    }

    /// Whether everything that was handled is done.
    pub fn ok(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| matches!(n.state, NodeState::Done | NodeState::Skipped(_)))
    }
}

type Listener = Arc<dyn Fn(&Event) + Send + Sync>;

/// How many requests each cloud's clients sent (every try counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CallCounts {
    /// To AWS (EC2, Route 53 Resolver, IAM, CloudWatch, SNS).
    pub aws: u64,
    /// To Azure Resource Manager.
    pub azure: u64,
}

/// Both clouds' clients, and who hears about progress.
#[derive(Clone)]
pub struct Deployer {
    aws: Aws,
    azure: Azure,
    listener: Option<Listener>,
    /// At most this many resources in flight (None: as many as are ready).
    limit: Option<usize>,
}

impl std::fmt::Debug for Deployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployer")
            .field("aws", &self.aws)
            .field("azure", &self.azure)
            .finish_non_exhaustive()
    }
}

/// Whether dxvpn writes resources of this kind. A forwarder host the user runs (an address
/// given in `dns.*_forwarder_ip`) is described, not created; the hosts `up` creates are
/// `ForwarderInstance`s.
fn handled(resource: &Resource) -> bool {
    !matches!(resource.spec, Spec::DnsForwarder { .. })
}

/// What the user runs for a resource dxvpn does not create.
fn yours_to_run(resource: &Resource) -> String {
    match &resource.spec {
        Spec::DnsForwarder { ip, upstream, .. } => format!(
            "run `dxvpn dns-forwarder` on a VM or container at {ip}, upstream {upstream} (docs/dns.md)"
        ),
        _ => "not created by dxvpn".into(),
    }
}

impl Deployer {
    /// Connects to both clouds with their standard credentials (or the lab's twins).
    pub async fn connect(plan: &Plan) -> Result<Self, DeployError> {
        Ok(Self::new(Aws::connect(plan).await, Azure::connect(plan)?))
    }

    /// Uses these clients.
    pub fn new(aws: Aws, azure: Azure) -> Self {
        Deployer {
            // Tunnel changes go one at a time with Azure following each (tunnels.rs).
            aws: aws.leaving_tunnel_updates_to_the_caller(),
            azure,
            listener: None,
            limit: None,
        }
    }

    /// Requests sent to each cloud so far by this deployer's clients.
    pub fn calls(&self) -> CallCounts {
        CallCounts {
            aws: self.aws.calls(),
            azure: self.azure.calls(),
        }
    }

    /// Calls `listener` at every change of a resource's state.
    #[must_use]
    pub fn with_events(mut self, listener: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// Works on at most `n` resources at a time (1: a sequential apply, for comparison).
    #[must_use]
    pub fn with_limit(mut self, n: usize) -> Self {
        self.limit = Some(n.max(1));
        self
    }

    fn emit(&self, started: Instant, role: &str, state: NodeState) {
        if let Some(l) = &self.listener {
            l(&Event {
                role: role.to_owned(),
                state,
                at: started.elapsed(),
            });
        }
    }

    /// Makes every resource of `plan` exist as planned.
    pub async fn up(&self, plan: Arc<Plan>) -> Report {
        let deps: BTreeMap<String, Vec<String>> = plan
            .resources
            .iter()
            .map(|r| (r.role.clone(), r.depends_on.clone()))
            .collect();
        self.run(plan, deps, false).await
    }

    /// [`Deployer::up`] right after [`Deployer::diff`] answered `changes`: when they write
    /// nothing, every resource was just read and found as planned, so none is read again and
    /// each is reported done (the converged re-run costs the diff alone).
    pub async fn up_after(&self, plan: Arc<Plan>, changes: &[Change]) -> Report {
        if any_writes(changes) {
            return self.up(plan).await;
        }
        let nodes = plan
            .resources
            .iter()
            .map(|r| NodeReport {
                role: r.role.clone(),
                cloud: r.cloud,
                name: r.name.clone(),
                state: if handled(r) {
                    NodeState::Done
                } else {
                    NodeState::Skipped(yours_to_run(r))
                },
                started: Duration::ZERO,
                took: Duration::ZERO,
            })
            .collect();
        Report {
            nodes,
            makespan: Duration::ZERO,
            outputs: Outputs::default(),
        }
    }

    /// Deletes every resource this deployment made, dependents first: first the ones the plan
    /// does not have (strays: a shrunk config, or a duplicate of two racing runs), then the
    /// plan's.
    pub async fn down(&self, plan: Arc<Plan>) -> Report {
        let started = Instant::now();
        let (aws, azure) = tokio::join!(self.aws.strays(&plan), self.azure.strays(&plan));
        let mut changes: Vec<Change> = Vec::new();
        let mut failed = Vec::new();
        match aws {
            Ok(strays) => changes.extend(strays.into_iter().map(Change::delete)),
            Err(e) => failed.push(("aws strays", Cloud::Aws, e.to_string())),
        }
        match azure {
            Ok(strays) => changes.extend(strays.into_iter().map(Change::delete_azure)),
            Err(e) => failed.push(("azure strays", Cloud::Azure, e.to_string())),
        }
        let mut nodes: Vec<NodeReport> = failed
            .into_iter()
            .map(|(role, cloud, e)| NodeReport {
                role: role.into(),
                cloud,
                name: String::new(),
                state: NodeState::Failed(e),
                started: Duration::ZERO,
                took: started.elapsed(),
            })
            .collect();
        nodes.extend(self.prune(&plan, &changes, false).await);
        let mut report = self.down_planned(plan.clone()).await;
        nodes.extend(self.prune(&plan, &changes, true).await);
        report.nodes.splice(0..0, nodes);
        report.makespan = started.elapsed();
        report
    }

    async fn down_planned(&self, plan: Arc<Plan>) -> Report {
        // A resource goes once everything that depends on it is gone.
        let mut deps: BTreeMap<String, Vec<String>> = plan
            .resources
            .iter()
            .map(|r| (r.role.clone(), Vec::new()))
            .collect();
        for r in &plan.resources {
            for d in &r.depends_on {
                if let Some(list) = deps.get_mut(d) {
                    list.push(r.role.clone());
                }
            }
        }
        self.run(plan, deps, true).await
    }

    async fn run(
        &self,
        plan: Arc<Plan>,
        deps: BTreeMap<String, Vec<String>>,
        delete: bool,
    ) -> Report {
        let started = Instant::now();
        let mut outputs = Outputs::default();
        let mut states: BTreeMap<String, (NodeState, Duration, Duration)> = plan
            .resources
            .iter()
            .map(|r| {
                (
                    r.role.clone(),
                    (NodeState::Waiting, Duration::ZERO, Duration::ZERO),
                )
            })
            .collect();
        let mut finished: BTreeSet<String> = BTreeSet::new();
        let mut running = tokio::task::JoinSet::new();
        let mut stopping = false;
        loop {
            if !stopping {
                for r in &plan.resources {
                    let ready = matches!(states.get(&r.role), Some((NodeState::Waiting, ..)))
                        && deps
                            .get(&r.role)
                            .is_none_or(|d| d.iter().all(|d| finished.contains(d)));
                    if !ready {
                        continue;
                    }
                    if handled(r) && self.limit.is_some_and(|n| running.len() >= n) {
                        break;
                    }
                    let at = started.elapsed();
                    if !handled(r) {
                        let why = yours_to_run(r);
                        states.insert(
                            r.role.clone(),
                            (NodeState::Skipped(why.clone()), at, Duration::ZERO),
                        );
                        self.emit(started, &r.role, NodeState::Skipped(why));
                        finished.insert(r.role.clone());
                        continue;
                    }
                    states.insert(r.role.clone(), (NodeState::Working, at, Duration::ZERO));
                    self.emit(started, &r.role, NodeState::Working);
                    let this = self.clone();
                    let plan = plan.clone();
                    let resource = r.clone();
                    let mut view = outputs.clone();
                    running.spawn(async move {
                        let result = this.act(&plan, &resource, &mut view, delete).await;
                        (resource.role, result.map(|()| view))
                    });
                }
            }
            // Skipped resources may have made others ready.
            if running.is_empty() {
                let more = !stopping
                    && plan.resources.iter().any(|r| {
                        matches!(states.get(&r.role), Some((NodeState::Waiting, ..)))
                            && deps
                                .get(&r.role)
                                .is_none_or(|d| d.iter().all(|d| finished.contains(d)))
                    });
                if more {
                    continue;
                }
                break;
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (role, result) = match joined {
                Ok(done) => done,
                Err(e) => {
                    stopping = true;
                    tracing::error!(error = %e, "a deploy task ended abnormally");
                    continue;
                }
            };
            let began = states.get(&role).map_or(Duration::ZERO, |s| s.1);
            let took = started.elapsed().saturating_sub(began);
            match result {
                Ok(view) => {
                    outputs.absorb(view);
                    finished.insert(role.clone());
                    states.insert(role.clone(), (NodeState::Done, began, took));
                    self.emit(started, &role, NodeState::Done);
                }
                Err(message) => {
                    // Let what runs finish; start nothing new.
                    stopping = true;
                    states.insert(
                        role.clone(),
                        (NodeState::Failed(message.clone()), began, took),
                    );
                    self.emit(started, &role, NodeState::Failed(message));
                }
            }
        }
        let nodes = plan
            .resources
            .iter()
            .map(|r| {
                let (state, began, took) = states.remove(&r.role).unwrap_or((
                    NodeState::NotStarted,
                    Duration::ZERO,
                    Duration::ZERO,
                ));
                NodeReport {
                    role: r.role.clone(),
                    cloud: r.cloud,
                    name: r.name.clone(),
                    state: if state == NodeState::Waiting {
                        NodeState::NotStarted
                    } else {
                        state
                    },
                    started: began,
                    took,
                }
            })
            .collect();
        Report {
            nodes,
            makespan: started.elapsed(),
            outputs,
        }
    }

    /// Ensures or deletes one resource in its cloud.
    async fn act(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
        delete: bool,
    ) -> Result<(), String> {
        // Each cloud's delete leaves referenced resources standing (an existing Azure gateway
        // only loses the APIPA addresses this deployment gave it).
        match (resource.cloud, delete) {
            (Cloud::Aws, false) => {
                self.aws
                    .ensure(plan, resource, outputs)
                    .await
                    .map_err(|e| e.to_string())?;
                if matches!(resource.spec, Spec::VpnConnection { .. }) {
                    self.update_tunnels(plan, resource, outputs).await?;
                }
                Ok(())
            }
            (Cloud::Aws, true) => self
                .aws
                .delete(plan, resource, outputs)
                .await
                .map_err(|e| e.to_string()),
            (Cloud::Azure, false) => self
                .azure
                .ensure(plan, resource, outputs)
                .await
                .map_err(|e| e.to_string()),
            (Cloud::Azure, true) => self
                .azure
                .delete(plan, resource, outputs)
                .await
                .map_err(|e| e.to_string()),
        }
    }
}
