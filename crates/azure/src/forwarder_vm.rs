//! The Azure forwarder host `up` creates in development: a network security group letting only
//! DNS in (on the forwarder's subnet), and a Linux VM with its network interface at the
//! planned static address, whose custom data is the cloud-init that `dxvpn render --side azure
//! --format forwarder` prints.
//!
//! The VM is written as JSON to Microsoft.Compute (no typed client of ours covers it); the
//! network interface and the security group go through azure_mgmt_network like every other
//! Microsoft.Network resource. Custom data is write-once and never read back (the Compute
//! REST reference, `OSProfile.customData`: "This property cannot be updated after the VM is
//! created"; GET does not return it), so the VM carries the digest of what it was created with
//! in the tag [`CONFIG_TAG`], and a VM whose digest differs from the plan's is replaced.

use base64::Engine as _;
use dxvpn_plan::forwarder_host::{CONFIG_TAG, config_digest, user_data};
use dxvpn_plan::model::{Resource, Spec};
use dxvpn_plan::{Outputs, Plan};
use serde::Serialize;
use serde_json::{Value, json};

use crate::body::Ids;
use crate::error::{api, is_not_found};
use crate::kind::Kind;
use crate::{Azure, AzureError};

/// Microsoft.Compute's api-version for virtual machines (azure-rest-api-specs,
/// specification/compute/resource-manager/Microsoft.Compute/ComputeRP/stable/2024-07-01).
pub(crate) const COMPUTE_API_VERSION: &str = "2024-07-01";
/// The VM's only login name; no one holds a key for it (see [`no_login_key`]).
const ADMIN_USER: &str = "dxvpn";

/// The name of the VM's network interface.
pub(crate) fn nic_name(vm: &Resource) -> String {
    nic_name_of(&vm.name)
}

/// The name of the network interface of the VM named `vm`.
pub(crate) fn nic_name_of(vm: &str) -> String {
    format!("{vm}-nic")
}

/// The network security group: DNS over UDP and TCP from the VPC and the VNet, and nothing
/// else in. Azure's default rules let the whole VNet and everything its gateway connects
/// (AllowVnetInBound, priority 65000) and the load balancer in; the last rule here denies all
/// of that ("Network security groups": rules are processed in priority order, 100 to 4096).
/// Azure's own resolver and health address 168.63.129.16 is not filtered by security rules.
pub(crate) fn security_group(plan: &Plan, resource: &Resource) -> Value {
    let Spec::NetworkSecurityGroup {
        ingress_cidrs,
        port,
    } = &resource.spec
    else {
        return Value::Null;
    };
    let sources: Vec<String> = ingress_cidrs.iter().map(ToString::to_string).collect();
    let allow = |name: &str, priority: u16, protocol: &str| {
        json!({ "name": name, "properties": {
            "priority": priority, "direction": "Inbound", "access": "Allow", "protocol": protocol,
            "sourceAddressPrefixes": sources, "sourcePortRange": "*",
            "destinationAddressPrefix": "*", "destinationPortRange": port.to_string(),
        } })
    };
    json!({
        "location": plan.azure.location,
        "tags": resource.tags,
        "properties": { "securityRules": [
            allow("dns-udp-in", 100, "Udp"),
            allow("dns-tcp-in", 110, "Tcp"),
            { "name": "deny-all-in", "properties": {
                "priority": 4096, "direction": "Inbound", "access": "Deny", "protocol": "*",
                "sourceAddressPrefix": "*", "sourcePortRange": "*",
                "destinationAddressPrefix": "*", "destinationPortRange": "*",
            } },
        ] },
    })
}

/// The VM's network interface: one static address in the forwarder's subnet.
fn nic(plan: &Plan, vm: &Resource, outputs: &Outputs) -> Result<Value, AzureError> {
    let Spec::ForwarderInstance { ip, subnet_id, .. } = &vm.spec else {
        return Ok(Value::Null);
    };
    let subnet = outputs.need(&vm.role, subnet_id, "id")?;
    Ok(json!({
        "location": plan.azure.location,
        "tags": vm.tags,
        "properties": { "ipConfigurations": [{
            "name": "ipconfig1",
            "properties": {
                "subnet": { "id": subnet },
                "privateIPAllocationMethod": "Static",
                "privateIPAddress": ip.to_string(),
                "primary": true,
            },
        }] },
    }))
}

/// An OpenSSH `ssh-ed25519` public key whose private half no one has: Azure requires a key
/// when password login is off, and the forwarder needs no login (serial console and Run
/// Command reach it). Its 32 bytes are a digest of the deployment's name, not a key pair's
/// public half, so no private key exists to lose or to leak.
fn no_login_key(deployment: &str) -> String {
    use sha2::Digest as _;
    let point = sha2::Sha256::digest(format!("dxvpn {deployment}: no login").as_bytes());
    let mut blob = Vec::new();
    for part in [b"ssh-ed25519".as_slice(), point.as_slice()] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    format!(
        "ssh-ed25519 {} dxvpn-no-login",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// The VM: the planned size and image, a Standard HDD OS disk (managed disks are encrypted at
/// rest by default), the interface, and cloud-init as custom data. Disk and interface go with
/// the VM when it is deleted (`deleteOption: Delete`).
pub(crate) fn vm(plan: &Plan, resource: &Resource, nic_id: &str) -> Value {
    let Spec::ForwarderInstance {
        instance_type,
        image,
        setup,
        ..
    } = &resource.spec
    else {
        return Value::Null;
    };
    let text = user_data(&plan.name, setup);
    let mut tags = resource.tags.clone();
    tags.insert(CONFIG_TAG.to_owned(), config_digest(&text));
    let mut urn = image.split(':');
    let mut next = || urn.next().unwrap_or_default();
    let (publisher, offer, sku, version) = (next(), next(), next(), next());
    json!({
        "location": plan.azure.location,
        "tags": tags,
        "properties": {
            "hardwareProfile": { "vmSize": instance_type },
            "storageProfile": {
                "imageReference": {
                    "publisher": publisher, "offer": offer, "sku": sku, "version": version,
                },
                "osDisk": {
                    "createOption": "FromImage",
                    "managedDisk": { "storageAccountType": "Standard_LRS" },
                    "deleteOption": "Delete",
                },
            },
            "osProfile": {
                // Linux host names: 64 characters at most.
                "computerName": resource.name.chars().take(64).collect::<String>(),
                "adminUsername": ADMIN_USER,
                "customData": base64::engine::general_purpose::STANDARD.encode(&text),
                "linuxConfiguration": {
                    "disablePasswordAuthentication": true,
                    "ssh": { "publicKeys": [{
                        "path": format!("/home/{ADMIN_USER}/.ssh/authorized_keys"),
                        "keyData": no_login_key(&plan.name),
                    }] },
                },
            },
            "networkProfile": { "networkInterfaces": [{
                "id": nic_id,
                "properties": { "primary": true, "deleteOption": "Delete" },
            }] },
        },
    })
}

/// What `ensure` compares of a VM it found: everything it writes but the OS profile, which
/// ARM keeps as created and answers without the custom data.
pub(crate) fn comparable(mut wanted: Value) -> Value {
    if let Some(props) = wanted.get_mut("properties").and_then(Value::as_object_mut) {
        props.remove("osProfile");
    }
    if let Some(tags) = wanted.get_mut("tags").and_then(Value::as_object_mut) {
        tags.remove(CONFIG_TAG);
    }
    wanted
}

/// Why a found VM must be replaced rather than written: it runs another configuration (its
/// digest tag), or another image (ARM refuses to change `storageProfile.imageReference`).
pub(crate) fn replaced_because(wanted: &Value, found: &Value) -> Option<(String, String, String)> {
    let digest = |v: &Value| {
        v.pointer(&format!("/tags/{}", CONFIG_TAG.replace('/', "~1")))
            .and_then(Value::as_str)
            .unwrap_or("(none)")
            .to_owned()
    };
    let (had, wants) = (digest(found), digest(wanted));
    if had != wants {
        return Some((format!(".tags.{CONFIG_TAG}"), had, wants));
    }
    let image = "/properties/storageProfile/imageReference";
    let wanted_image = wanted.pointer(image).cloned().unwrap_or_default();
    let found_image = found.pointer(image).cloned().unwrap_or_default();
    crate::body::first_difference(&wanted_image, &found_image).map(|path| {
        (
            format!(".properties.storageProfile.imageReference{path}"),
            found_image.to_string(),
            wanted_image.to_string(),
        )
    })
}

/// The forwarder VM as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForwarderVmState {
    /// Its name.
    pub name: String,
    /// ARM's provisioning state (`Succeeded`, `Creating`...).
    pub provisioning_state: String,
    /// Its power state from the instance view (`running`, `stopped`, `deallocated`...), when
    /// Azure reports one.
    pub power_state: Option<String>,
}

impl ForwarderVmState {
    /// Provisioned and running.
    pub fn running(&self) -> bool {
        self.provisioning_state == "Succeeded" && self.power_state.as_deref() == Some("running")
    }
}

impl Ids {
    /// The id of a Microsoft.Compute resource of the resource group.
    pub(crate) fn compute(&self, type_path: &str, name: &str) -> String {
        self.of_provider("Microsoft.Compute", type_path, name)
    }

    /// The id of `name` of `type_path` of `provider` in the resource group.
    pub(crate) fn of_provider(&self, provider: &str, type_path: &str, name: &str) -> String {
        format!(
            "{}/{type_path}/{name}",
            self.base.replace(
                "/providers/Microsoft.Network",
                &format!("/providers/{provider}")
            )
        )
    }
}

impl Azure {
    /// Makes the VM's network interface exist as planned (read, compare, write), and records
    /// its id as the VM's output `nic_id`.
    pub(crate) async fn ensure_nic(
        &self,
        plan: &Plan,
        vm: &Resource,
        outputs: &mut Outputs,
    ) -> Result<(), AzureError> {
        let name = nic_name(vm);
        let at = (self.resource_group.as_str(), "", name.as_str());
        let wanted = nic(plan, vm, outputs)?;
        let found = self.read(Kind::NetworkInterface, at, &vm.role).await?;
        if let Some(found) = &found {
            Self::owned(plan, vm, found)?;
        }
        let differs = found
            .as_ref()
            .is_none_or(|f| crate::body::first_difference(&wanted, f).is_some());
        if differs {
            self.write(Kind::NetworkInterface, at, &vm.role, wanted)
                .await?;
        }
        outputs.set(
            &vm.role,
            "nic_id",
            &self.ids.of(Kind::NetworkInterface.type_path(), &name),
        );
        Ok(())
    }

    /// Deletes the VM's network interface if it outlived the VM (a create that failed after
    /// the interface, or an Azure that has not yet removed it with the VM).
    pub(crate) async fn delete_nic(&self, vm: &str, role: &str) -> Result<(), AzureError> {
        let name = nic_name_of(vm);
        let at = (self.resource_group.as_str(), "", name.as_str());
        if self.read(Kind::NetworkInterface, at, role).await?.is_some() {
            self.delete_named(Kind::NetworkInterface, at, role).await?;
        }
        Ok(())
    }

    /// GET, PUT or DELETE of a resource of a JSON kind ([`Kind::json_api`]).
    pub(crate) async fn json_call(
        &self,
        kind: Kind,
        method: azure_core::Method,
        name: &str,
        body: Option<&Value>,
    ) -> azure_core::Result<azure_core::Response> {
        let (provider, version) = kind
            .json_api()
            .unwrap_or(("Microsoft.Compute", COMPUTE_API_VERSION));
        let id = self.ids.of_provider(provider, kind.type_path(), name);
        self.raw_call(method, &id, version, body).await
    }

    /// The forwarder VM of `plan`, when it has one and Azure holds it.
    pub async fn forwarder_vm(&self, plan: &Plan) -> Result<Option<ForwarderVmState>, AzureError> {
        let Some(vm) = plan.forwarder_instance(dxvpn_plan::Cloud::Azure) else {
            return Ok(None);
        };
        let id = self.ids.compute(Kind::VirtualMachine.type_path(), &vm.name);
        let view = match self
            .raw_call(
                azure_core::Method::Get,
                &format!("{id}/instanceView"),
                COMPUTE_API_VERSION,
                None,
            )
            .await
        {
            Ok(response) => crate::raw::json_body(response)
                .await
                .map_err(api(&vm.role, "GET virtualMachines/instanceView"))?,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(api(&vm.role, "GET virtualMachines/instanceView")(e)),
        };
        let codes: Vec<&str> = view
            .get("statuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("code").and_then(Value::as_str))
            .collect();
        let after = |prefix: &str| {
            codes
                .iter()
                .find_map(|c| c.strip_prefix(prefix))
                .map(str::to_owned)
        };
        Ok(Some(ForwarderVmState {
            name: vm.name.clone(),
            provisioning_state: after("ProvisioningState/")
                .map(|s| capitalized(&s))
                .unwrap_or_else(|| "Unknown".into()),
            power_state: after("PowerState/"),
        }))
    }
}

/// `succeeded` as ARM's provisioning states spell it: `Succeeded`.
fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_no_login_key_is_an_openssh_ed25519_line_of_32_bytes() {
        let key = no_login_key("dx");
        let blob = key.split(' ').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(blob)
            .unwrap();
        assert_eq!(bytes.len(), 4 + 11 + 4 + 32);
        assert_eq!(&bytes[4..15], b"ssh-ed25519");
        assert_ne!(no_login_key("dx"), no_login_key("other"));
    }
}
