//! How this deployment's Azure resources differ from the plan (`dxvpn diff`): the members of
//! the body `ensure` would PUT that the resource lacks or holds otherwise.

use dxvpn_plan::model::{Action, Resource};
use dxvpn_plan::{Drift, FieldChange, Plan};
use serde_json::Value;

use crate::kind::Kind;
use crate::{Azure, AzureError, Outputs, body};

/// Members ARM does not change on an existing resource, with the rule. Microsoft.Network
/// refuses a PUT that changes them: a public IP's SKU and zones ("Public IP addresses": a
/// Basic SKU cannot become Standard in place, zones are set at creation), its allocation method
/// for a Standard SKU (always Static), and a gateway's type and VPN type ("About VPN Gateway
/// settings": "you can't change the VPN type once the gateway is created").
fn immutable(kind: Kind, path: &str) -> Option<&'static str> {
    match kind {
        Kind::PublicIp if path.starts_with(".sku") || path.starts_with(".zones") => Some(
            "a public IP's SKU and zones are set when it is created: a new public IP, so a new address for the gateway instance and a new AWS customer gateway",
        ),
        Kind::PublicIp if path == ".properties.publicIPAllocationMethod" => {
            Some("a Standard public IP is always Static: a new public IP")
        }
        Kind::Gateway if path == ".properties.gatewayType" || path == ".properties.vpnType" => {
            Some(
                "a VPN gateway's type and VPN type cannot change once it is created: a new gateway",
            )
        }
        _ => None,
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::Null => "(none)".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Azure {
    /// How `resource` differs in Azure from the plan; records its outputs as `observe` does.
    /// A resource whose body needs a value another resource does not have yet (it is to be
    /// created) follows that resource: one `update` naming it.
    pub async fn drift(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<Drift, AzureError> {
        let Some(kind) = Kind::of(&resource.spec) else {
            return Ok(if self.observe(plan, resource, outputs).await? {
                Drift::Same
            } else {
                Drift::Missing
            });
        };
        let (rg, parent, name) = self.locate(plan, kind, resource);
        let at = (rg.as_str(), parent.as_str(), name.as_str());
        let Some(found) = self.read(kind, at, &resource.role).await? else {
            return Ok(Drift::Missing);
        };
        if resource.action == Action::Create {
            Self::owned(plan, resource, &found)?;
        }
        self.record(&resource.role, kind, &found, outputs);
        let mut wanted = match self.wanted(plan, resource, kind, Some(&found), outputs) {
            Ok(wanted) => wanted,
            Err(AzureError::MissingInput(missing)) => {
                return Ok(Drift::Update(vec![FieldChange::new(
                    format!("(from {})", missing.from),
                    "(current)",
                    format!("its {} once created", missing.output),
                )]));
            }
            Err(e) => return Err(e),
        };
        // A connection's key is set by SetSharedKey, not by the body (see `ensure`): it is
        // compared with the one the connection holds, read apart.
        let mut wanted_key = None;
        if kind == Kind::Connection
            && let Some(props) = wanted.get_mut("properties").and_then(Value::as_object_mut)
        {
            wanted_key = props
                .remove("sharedKey")
                .and_then(|k| k.as_str().map(str::to_owned));
        }
        if kind == Kind::VirtualMachine {
            if let Some((path, from, to)) = crate::forwarder_vm::replaced_because(&wanted, &found) {
                return Ok(Drift::Replace {
                    field: FieldChange::new(path, from, to),
                    rule: "a VM runs its custom data (cloud-init) at its first boot only, and its image is set when it is created: a new VM".to_owned(),
                });
            }
            wanted = crate::forwarder_vm::comparable(wanted);
        }
        let mut updates = Vec::new();
        for (path, from, to) in body::differences(&wanted, &found) {
            if let Some(rule) = immutable(kind, &path) {
                return Ok(Drift::Replace {
                    field: FieldChange::new(path, shown(&from), shown(&to)),
                    rule: rule.to_owned(),
                });
            }
            updates.push(FieldChange::new(path, shown(&from), shown(&to)));
        }
        let failed = found
            .pointer("/properties/provisioningState")
            .and_then(Value::as_str)
            == Some("Failed");
        if failed {
            updates.push(FieldChange::new(
                ".properties.provisioningState",
                "Failed",
                "Succeeded (ARM's way out of a failed provisioning is to PUT it again)",
            ));
        }
        if let Some(key) = wanted_key
            && self.held_shared_key(at, &resource.role).await?.as_deref() != Some(key.as_str())
        {
            updates.push(FieldChange::new(".sharedKey", "(changed)", "(changed)"));
        }
        Ok(if updates.is_empty() {
            Drift::Same
        } else {
            Drift::Update(updates)
        })
    }
}
