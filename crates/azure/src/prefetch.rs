//! One command's reads, all sent at once and in bulk: `diff` compares each resource once the
//! ones it takes outputs from are compared, but reading it needs only its planned name. So at
//! the start every type the plan has is listed once per resource group and parent (ARM's list
//! answers the same resource as its GET), with the lists the strays need, and each
//! connection's shared key is read; from [`Azure::prefetch`] on, the reads and the strays wait
//! for these and take their answers from them, until [`Azure::forget_prefetched`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

use dxvpn_plan::Plan;
use serde_json::Value;

use crate::kind::Kind;
use crate::strays::LISTED;
use crate::{Azure, azure_resources};

/// What was read ahead.
#[derive(Debug, Default)]
pub(crate) struct ReadAhead {
    /// Whole lists, by [`list_key`].
    lists: HashMap<String, Vec<Value>>,
    /// Single answers (a resource outside the resource group, a shared key), by [`key`], each
    /// taken by its first read.
    answers: HashMap<String, Option<Value>>,
}

/// [`ReadAhead`] being read, or read.
type Pending = Shared<BoxFuture<'static, Arc<Mutex<ReadAhead>>>>;

/// What an [`Azure`] and its clones read ahead, if anything.
pub(crate) type Prefetched = Mutex<Option<Pending>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a reader panicked; what was read is whole.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The key of one read: what is read, and where.
pub(crate) fn key(what: &str, (rg, parent, name): (&str, &str, &str)) -> String {
    format!("{what}|{rg}|{parent}|{name}").to_ascii_lowercase()
}

/// The key of a list of `kind` under `parent` in the client's resource group (as
/// [`Azure::take_prefetched`] spells it from a type path).
fn list_key(kind: Kind, parent: &str) -> String {
    format!("{}|{parent}", kind.type_path()).to_ascii_lowercase()
}

impl Azure {
    /// Starts listing every type of the plan (and the types the strays look for) once, and
    /// reading what a list cannot answer, all at once: the reads from now on wait for these.
    /// A read that fails is not kept: the read that needs it asks again and reports the error.
    pub fn prefetch(&self, plan: &Plan) {
        let this = self.clone();
        let plan = plan.clone();
        let pending = async move { Arc::new(Mutex::new(this.read_ahead(&plan).await)) };
        *lock(&self.prefetched) = Some(pending.boxed().shared());
    }

    async fn read_ahead(&self, plan: &Plan) -> ReadAhead {
        let vnet = plan.azure.vnet_name.clone();
        let mut lists: Vec<(Kind, String)> = LISTED.iter().map(|k| (*k, String::new())).collect();
        lists.push((Kind::Subnet, vnet));
        let mut singles = Vec::new();
        for resource in azure_resources(plan) {
            let Some(kind) = Kind::of(&resource.spec) else {
                continue;
            };
            let (rg, parent, name) = self.locate(plan, kind, resource);
            if rg.eq_ignore_ascii_case(&self.resource_group) {
                let list = (kind, parent.clone());
                if !lists
                    .iter()
                    .any(|l| list_key(l.0, &l.1) == list_key(kind, &parent))
                {
                    lists.push(list);
                }
            } else {
                singles.push((
                    kind.type_path(),
                    kind,
                    rg.clone(),
                    parent.clone(),
                    name.clone(),
                ));
            }
            if kind == Kind::Connection {
                singles.push(("sharedkey", kind, rg, parent, name));
            }
        }
        let listing = futures_util::future::join_all(
            lists
                .iter()
                .map(|(kind, parent)| self.list_now(*kind, parent)),
        );
        let reading = futures_util::future::join_all(singles.iter().map(
            |(what, kind, rg, parent, name)| async move {
                let at = (rg.as_str(), parent.as_str(), name.as_str());
                let answer = if *what == "sharedkey" {
                    self.held_shared_key_now(at, "azure")
                        .await
                        .map(|k| k.map(Value::String))
                } else {
                    self.read_now(*kind, at, "azure").await
                };
                (key(what, at), answer)
            },
        ));
        let (listed, read) = tokio::join!(listing, reading);
        let mut ahead = ReadAhead::default();
        for ((kind, parent), items) in lists.iter().zip(listed) {
            if let Ok(items) = items {
                ahead.lists.insert(list_key(*kind, parent), items);
            }
        }
        for (key, answer) in read {
            if let Ok(answer) = answer {
                ahead.answers.insert(key, answer);
            }
        }
        ahead
    }

    /// Drops what was read ahead: later reads go to Azure.
    pub fn forget_prefetched(&self) {
        *lock(&self.prefetched) = None;
    }

    /// What was read ahead, once read, while it is held.
    async fn read_ahead_held(&self) -> Option<Arc<Mutex<ReadAhead>>> {
        let pending = lock(&self.prefetched).clone()?;
        Some(pending.await)
    }

    /// The answer read ahead for the resource of `kind` at `at`, if any: from its type's list
    /// (absent from the list: it does not exist), or a single answer, taken once.
    pub(crate) async fn take_prefetched(
        &self,
        kind: &str,
        at: (&str, &str, &str),
    ) -> Option<Option<Value>> {
        let held = self.read_ahead_held().await?;
        let mut ahead = lock(&held);
        let (rg, parent, name) = at;
        let listed = format!("{kind}|{parent}").to_ascii_lowercase();
        if rg.eq_ignore_ascii_case(&self.resource_group)
            && let Some(list) = ahead.lists.get(&listed)
        {
            return Some(
                list.iter()
                    .find(|item| {
                        item.get("name")
                            .and_then(Value::as_str)
                            .is_some_and(|n| n.eq_ignore_ascii_case(name))
                    })
                    .cloned(),
            );
        }
        ahead.answers.remove(&key(kind, at))
    }

    /// The list of `kind` under `parent` read ahead, if any.
    pub(crate) async fn prefetched_list(&self, kind: Kind, parent: &str) -> Option<Vec<Value>> {
        let held = self.read_ahead_held().await?;
        lock(&held).lists.get(&list_key(kind, parent)).cloned()
    }
}
