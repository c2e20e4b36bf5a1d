//! `diff`: every planned resource compared with what its cloud holds, and the resources of this
//! deployment the plan no longer has, each with one change.

use std::collections::BTreeSet;
use std::time::Instant;

use dxvpn_plan::model::{Action, Resource};
use dxvpn_plan::{Cloud, Drift, FieldChange, Outputs, Plan};
use futures_util::StreamExt;
use serde::Serialize;

use crate::{CloudError, Deployer, NodeReport, NodeState, handled};

/// What `up` does to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Missing: created.
    Create,
    /// There as planned.
    Unchanged,
    /// There; `fields` change in place.
    Update,
    /// There, but a field the cloud cannot change differs: deleted and created again.
    Replace,
    /// This deployment's, and not planned (or a second of a role): deleted.
    Delete,
    /// Given in the config; read, never changed.
    Reference,
    /// A DNS forwarder host: the user runs it (docs/dns.md).
    Yours,
}

impl ChangeKind {
    /// Whether `up` would write anything for it.
    pub fn writes(self) -> bool {
        matches!(
            self,
            Self::Create | Self::Update | Self::Replace | Self::Delete
        )
    }

    /// Whether it loses a resource (and what runs on it): needs more than `--yes`.
    pub fn destroys(self) -> bool {
        matches!(self, Self::Replace | Self::Delete)
    }
}

/// One resource's change.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// Role key (a stray's from its tag).
    pub role: String,
    /// Cloud.
    pub cloud: Cloud,
    /// Name in the cloud (a stray's id).
    pub name: String,
    /// What `up` does.
    pub change: ChangeKind,
    /// For `update`, the fields that change; for `replace`, the one that forces it. Secrets
    /// are only ever "(changed)".
    pub fields: Vec<FieldChange>,
    /// For `replace` and `delete`: the cloud's rule, or why it goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What a `delete` or an AWS `replace` removes, for `up` and `down`.
    #[serde(skip)]
    pub(crate) stray: Option<Doomed>,
}

/// A resource `prune` deletes.
#[derive(Debug, Clone)]
pub(crate) enum Doomed {
    Aws(dxvpn_aws::Stray),
    Azure(dxvpn_azure::AzureStray),
}

impl Doomed {
    /// The order deletes go in, a resource before the one it holds: VPN connections and
    /// resolver rules (0); Azure connections, local network gateways, forwarding rules and
    /// links (1); customer gateways, resolver endpoints and Azure rulesets (2); VGWs, the DNS
    /// security group and Azure endpoints (3); then Azure resolvers, subnets and, after the
    /// DAG, the public IPs a gateway let go (`AzureStray::rank`).
    fn order(&self) -> u8 {
        match self {
            Doomed::Aws(s) => match s.kind {
                // A forwarder host holds the DNS security group until it is terminated.
                "vpn_connection" | "resolver_rule" | "forwarder_instance" | "tunnel_alarm" => 0,
                // The alarms notify the topic: it goes after them.
                "alert_topic" => 1,
                "customer_gateway" | "resolver_endpoint" => 2,
                _ => 3,
            },
            Doomed::Azure(s) => s.rank(),
        }
    }

    fn after_the_gateway(&self) -> bool {
        matches!(self, Doomed::Azure(s) if s.after_the_gateway())
    }
}

impl Change {
    /// A change with no fields and no reason.
    pub fn new(role: &str, cloud: Cloud, name: &str, change: ChangeKind) -> Self {
        Change {
            role: role.to_owned(),
            cloud,
            name: name.to_owned(),
            change,
            fields: Vec::new(),
            reason: None,
            stray: None,
        }
    }

    /// The `delete` of an AWS stray.
    pub(crate) fn delete(stray: dxvpn_aws::Stray) -> Self {
        Change {
            role: stray.role.clone(),
            cloud: Cloud::Aws,
            name: stray.id.clone(),
            change: ChangeKind::Delete,
            fields: Vec::new(),
            reason: Some(stray.reason.clone()),
            stray: Some(Doomed::Aws(stray)),
        }
    }

    /// The `delete` of an Azure stray.
    pub(crate) fn delete_azure(stray: dxvpn_azure::AzureStray) -> Self {
        Change {
            role: stray.role.clone(),
            cloud: Cloud::Azure,
            name: stray.name.clone(),
            change: ChangeKind::Delete,
            fields: Vec::new(),
            reason: Some(stray.reason.clone()),
            stray: Some(Doomed::Azure(stray)),
        }
    }
}

/// Drops both clouds' reads ahead when `diff` ends, however it ends.
struct ForgetReadAhead<'a>(&'a Deployer);

impl Drop for ForgetReadAhead<'_> {
    fn drop(&mut self) {
        self.0.aws.forget_prefetched();
        self.0.azure.forget_prefetched();
    }
}

/// Whether any change writes: `dxvpn diff`'s exit code 3.
pub fn any_writes(changes: &[Change]) -> bool {
    changes.iter().any(|c| c.change.writes())
}

impl Deployer {
    /// What `up` would do: every planned resource observed and compared field by field, then
    /// the resources this deployment has that the plan does not keep. Nothing is written.
    ///
    /// Read in bulk at the start: AWS's resources of this deployment by kind (one Describe or
    /// List each, `dxvpn_aws::Aws::prefetch`) and Azure's by type (one List per type and
    /// parent, `dxvpn_azure::Azure::prefetch`). A resource is compared as soon as everything it
    /// takes an output from has been, while the strays are listed beside them; so the time is
    /// that of the plan's longest chain of reads that remain, not the sum of every read.
    pub async fn diff(&self, plan: &Plan) -> Result<Vec<Change>, CloudError> {
        // Boxed: the reads' futures are large, and a caller's stack holds what it awaits.
        let planned = Box::pin(self.planned_changes(plan));
        // Azure's reads need only the planned names, and AWS's are a few bulk reads with this
        // deployment's tag: both start now, and every read that needs them waits for them.
        self.aws.prefetch(plan);
        self.azure.prefetch(plan);
        // What was read ahead is stale after any write: later reads go to the clouds, even
        // when this future is dropped half way.
        let _forget = ForgetReadAhead(self);
        let (planned, aws, azure) = tokio::join!(
            planned,
            Box::pin(self.aws.strays(plan)),
            Box::pin(self.azure.strays(plan))
        );
        let mut changes = planned?;
        changes.extend(aws?.into_iter().map(Change::delete));
        changes.extend(azure?.into_iter().map(Change::delete_azure));
        Ok(changes)
    }

    /// Each planned resource's change, in plan order. A resource is read the moment every
    /// resource it takes outputs from has been.
    async fn planned_changes(&self, plan: &Plan) -> Result<Vec<Change>, CloudError> {
        let mut outputs = Outputs::default();
        let mut changes: Vec<Change> = Vec::new();
        let mut waiting: Vec<&Resource> = plan.resources.iter().collect();
        let mut reading = futures_util::stream::FuturesUnordered::new();
        let started = Instant::now();
        loop {
            let read: BTreeSet<&str> = changes.iter().map(|c| c.role.as_str()).collect();
            let ready = |r: &&Resource| {
                r.depends_on
                    .iter()
                    .all(|d| read.contains(d.as_str()) || plan.resource(d).is_none())
            };
            while let Some(at) = waiting.iter().position(ready) {
                let r = waiting.remove(at);
                let mut view = outputs.clone();
                reading.push(async move {
                    let began = started.elapsed();
                    let drift = Box::pin(self.drift_of(plan, r, &mut view)).await;
                    let (began, ended) = (began.as_millis(), started.elapsed().as_millis());
                    tracing::debug!(role = %r.role, began, ended, "read");
                    (r, drift, view)
                });
            }
            let Some((r, drift, view)) = reading.next().await else {
                break;
            };
            outputs.absorb(view);
            let change = change_of(r, drift?, &changes, &outputs);
            changes.push(change);
        }
        // Reads end out of plan order; the plan's order is the report's.
        changes.sort_by_key(|c| plan.resources.iter().position(|r| r.role == c.role));
        Ok(changes)
    }

    /// `None` for what dxvpn does not create.
    async fn drift_of(
        &self,
        plan: &Plan,
        r: &Resource,
        outputs: &mut Outputs,
    ) -> Result<Option<Drift>, CloudError> {
        if !handled(r) {
            return Ok(None);
        }
        Ok(Some(match r.cloud {
            Cloud::Aws => match self.aws.drift(plan, r, outputs).await {
                // Made from something that does not exist yet: it cannot exist either.
                Err(dxvpn_aws::AwsError::MissingInput(_)) => Drift::Missing,
                other => other?,
            },
            Cloud::Azure => self.azure.drift(plan, r, outputs).await?,
        }))
    }
}

/// The change `up` makes to `r`, given its drift (`None`: not dxvpn's to create) and the
/// changes of the resources read before it.
fn change_of(r: &Resource, drift: Option<Drift>, before: &[Change], outputs: &Outputs) -> Change {
    let mut change = Change::new(&r.role, r.cloud, &r.name, ChangeKind::Yours);
    if let Some(drift) = drift {
        // An AWS resource built on one that is replaced goes with it: EC2 cannot move it (a
        // VPN connection on a new customer gateway is a new connection).
        let on_replaced = r
            .depends_on
            .iter()
            .find(|d| {
                before.iter().any(|c| {
                    c.role == **d && c.cloud == Cloud::Aws && c.change == ChangeKind::Replace
                })
            })
            .filter(|_| r.cloud == Cloud::Aws)
            .cloned();
        (change.change, change.fields, change.reason) = match (drift, on_replaced) {
            (Drift::Missing, _) => (ChangeKind::Create, Vec::new(), None),
            (Drift::Replace { field, rule }, _) => (ChangeKind::Replace, vec![field], Some(rule)),
            (_, Some(on)) => (
                ChangeKind::Replace,
                Vec::new(),
                Some(format!("it is built on {on}, which is replaced")),
            ),
            (Drift::Same, None) if r.action == Action::Reference => {
                (ChangeKind::Reference, Vec::new(), None)
            }
            (Drift::Same, None) => (ChangeKind::Unchanged, Vec::new(), None),
            (Drift::Update(fields), None) => (ChangeKind::Update, fields, None),
        };
    }
    // An AWS resource that is replaced goes first, as a stray does.
    if change.change == ChangeKind::Replace
        && r.cloud == Cloud::Aws
        && let Some(id) = outputs.get(&r.role, "id")
    {
        change.stray = Some(Doomed::Aws(dxvpn_aws::Stray {
            role: r.role.clone(),
            kind: r.kind(),
            id: id.to_owned(),
            reason: change.reason.clone().unwrap_or_default(),
        }));
    }
    // So does an Azure forwarder VM: its custom data and image are write-once.
    if change.change == ChangeKind::Replace
        && let Some(stray) =
            dxvpn_azure::AzureStray::replaced(r, change.reason.as_deref().unwrap_or(""))
    {
        change.stray = Some(Doomed::Azure(stray));
    }
    change
}

impl Deployer {
    /// Deletes what `changes` replaces or deletes (strays, and AWS resources a field the cloud
    /// cannot change forces out), dependents first, so that `up` then creates the replacements.
    /// `after_the_gateway` picks the phase: false before `up`'s or `down`'s DAG (everything but
    /// public IPs), true after it (the public IPs a gateway held until then). Each is one report
    /// line, `<role> <id or name>`.
    pub async fn prune(
        &self,
        plan: &Plan,
        changes: &[Change],
        after_the_gateway: bool,
    ) -> Vec<NodeReport> {
        let started = Instant::now();
        let mut doomed: Vec<&Doomed> = changes
            .iter()
            .filter_map(|c| c.stray.as_ref())
            .filter(|d| d.after_the_gateway() == after_the_gateway)
            .collect();
        doomed.sort_by_key(|d| d.order());
        let mut nodes = Vec::new();
        for stray in doomed {
            let (cloud, role, name) = match stray {
                Doomed::Aws(s) => (Cloud::Aws, &s.role, &s.id),
                Doomed::Azure(s) => (Cloud::Azure, &s.role, &s.name),
            };
            let line = format!("{role} {name}");
            let began = started.elapsed();
            self.emit(started, &line, NodeState::Working);
            let result = match stray {
                Doomed::Aws(s) => self
                    .aws
                    .delete_stray(plan, s)
                    .await
                    .map_err(|e| e.to_string()),
                Doomed::Azure(s) => self.azure.delete_stray(s).await.map_err(|e| e.to_string()),
            };
            let state = match result {
                Ok(()) => NodeState::Done,
                Err(e) => NodeState::Failed(e),
            };
            self.emit(started, &line, state.clone());
            nodes.push(NodeReport {
                role: line,
                cloud,
                name: name.clone(),
                state,
                started: began,
                took: started.elapsed().saturating_sub(began),
            });
        }
        nodes
    }
}
