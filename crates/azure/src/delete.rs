//! Deleting this deployment's Azure resources: only what it made (tags), an existing gateway
//! only losing the APIPA addresses it was given, each waited for until a GET answers 404.

use std::time::Instant;

use azure_mgmt_network::package_2024_03::models;
use dxvpn_plan::model::{Action, Resource};
use dxvpn_plan::{Cloud, Plan};

use crate::kind::Kind;
use crate::{Azure, AzureError, Op, Outputs, WAIT_LIMIT, api};

impl Azure {
    /// Deletes `resource` if this deployment made it, and waits until it is gone. Referenced
    /// resources (the VNet, an existing gateway) are never deleted; an existing gateway loses
    /// only the APIPA addresses this deployment added to it. Transient failures start again
    /// from the read, as in [`Azure::ensure`].
    pub async fn delete(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<(), AzureError> {
        self.retried(Op::Delete, plan, resource, outputs).await
    }

    pub(crate) async fn delete_once(
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
        let existing_gateway = kind == Kind::Gateway && resource.action == Action::Reference;
        if resource.action != Action::Create && !existing_gateway {
            return Ok(());
        }
        let role = resource.role.as_str();
        let (rg, parent, name) = self.locate(plan, kind, resource);
        let at = (rg.as_str(), parent.as_str(), name.as_str());
        let Some(found) = self.read(kind, at, role).await? else {
            outputs.forget(role);
            return Ok(());
        };
        if existing_gateway {
            self.release_existing_gateway(plan, resource, &found)
                .await?;
            outputs.forget(role);
            return Ok(());
        }
        Self::owned(plan, resource, &found)?;
        self.delete_named(kind, at, role).await?;
        if kind == Kind::VirtualMachine {
            self.delete_nic(&resource.name, role).await?;
        }
        outputs.forget(role);
        Ok(())
    }

    /// Deletes the resource of `kind` at `at` and waits until a GET answers 404.
    pub(crate) async fn delete_named(
        &self,
        kind: Kind,
        at: (&str, &str, &str),
        role: &str,
    ) -> Result<(), AzureError> {
        let (rg, _, name) = at;
        let operation = format!("DELETE {}", kind.type_path());
        let sub = self.subscription.as_str();
        self.report(role, "deleting");
        let response = if kind.json_api().is_some() {
            self.json_call(kind, azure_core::Method::Delete, name, None)
                .await
        } else if kind.is_gateway_family() {
            per_kind!(self, kind, |client, _Model| client
                .delete(rg, name, sub)
                .send()
                .await
                .map(|r| r.into_raw_response()))
        } else {
            self.dns_delete(kind, at).await
        }
        .map_err(api(role, &operation))?;
        self.settle(response, role, &operation).await?;
        // Gone means a 404 on the resource itself.
        let started = Instant::now();
        while self.read(kind, at, role).await?.is_some() {
            if started.elapsed() > WAIT_LIMIT {
                return Err(AzureError::Timeout {
                    role: role.to_owned(),
                    operation,
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(self.poller.floor).await;
        }
        self.report(role, "deleted");
        Ok(())
    }
}
