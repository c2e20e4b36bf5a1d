//! A VM and what it stands on: network security groups, network interfaces
//! (Microsoft.Network 2024-03-01) and virtual machines (Microsoft.Compute 2024-07-01), with
//! the rules ARM documents for them.
//!
//! Sources: the REST references "Network Security Groups - Create Or Update" (rule priorities
//! 100 to 4096, unique per direction: "Security rule has invalid Priority"), "Network
//! Interfaces - Create Or Update" (a static `privateIPAddress` must be a free address of its
//! subnet; Azure reserves the first four and the last of every subnet, "What are the
//! restrictions on using IP addresses within these subnets?" in the VNet FAQ), and "Virtual
//! Machines - Create Or Update": `osProfile.customData` is base64 of at most 65535 bytes,
//! "cannot be updated after the VM is created", and a GET does not return it (only `userData`
//! comes back, with `$expand=userData`); `deleteOption: Delete` on an interface or the OS disk
//! deletes it with the VM. Refusals: `NicInUse` (an interface attached to a VM cannot be
//! deleted or attached to another), `InUseNetworkSecurityGroupCannotBeDeleted` (a group on a
//! subnet or interface), `PropertyChangeNotAllowed` (a write-once member changed).

use base64::Engine as _;

use super::*;

/// Linux admin names Azure refuses ("Virtual Machines - Create Or Update", `adminUsername`:
/// "Disallowed values").
const RESERVED_ADMIN_NAMES: [&str; 12] = [
    "administrator",
    "admin",
    "user",
    "user1",
    "test",
    "user2",
    "test1",
    "user3",
    "admin1",
    "1",
    "123",
    "root",
];

/// The largest custom data Azure takes, decoded.
const CUSTOM_DATA_LIMIT: usize = 65_535;

fn invalid(target: &str, message: impl Into<String>) -> ArmError {
    bad(
        "InvalidParameter",
        format!("{} (target: {target})", message.into()),
    )
}

impl Arm {
    pub(super) fn check_security_group(body: &Map<String, Value>) -> Result<(), ArmError> {
        let rules = body
            .pointer("/properties/securityRules")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut taken = BTreeSet::new();
        for rule in &rules {
            let name = rule.get("name").and_then(Value::as_str).unwrap_or_default();
            let p = rule.get("properties").cloned().unwrap_or_default();
            let priority = p.get("priority").and_then(Value::as_u64).unwrap_or(0);
            if !(100..=4096).contains(&priority) {
                return Err(bad(
                    "SecurityRuleInvalidPriority",
                    format!(
                        "Security rule {name} has invalid Priority. Value provided: {priority} Allowed range 100-4096."
                    ),
                ));
            }
            let direction = p.get("direction").and_then(Value::as_str).unwrap_or("");
            if !["Inbound", "Outbound"].contains(&direction) {
                return Err(invalid(name, "direction must be Inbound or Outbound"));
            }
            if !taken.insert((direction.to_owned(), priority)) {
                return Err(bad(
                    "SecurityRuleConflict",
                    format!(
                        "Security rule {name} conflicts with another rule of the same priority {priority} and direction {direction}."
                    ),
                ));
            }
            let access = p.get("access").and_then(Value::as_str).unwrap_or("");
            let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("");
            if !["Allow", "Deny"].contains(&access)
                || !["Tcp", "Udp", "Icmp", "Esp", "Ah", "*"].contains(&protocol)
            {
                return Err(invalid(
                    name,
                    "access must be Allow or Deny, protocol Tcp, Udp, Icmp, Esp, Ah or *",
                ));
            }
            let prefixes = p
                .get("sourceAddressPrefixes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str);
            for prefix in prefixes {
                parse_prefix(
                    prefix,
                    &format!("securityRules[{name}].sourceAddressPrefixes"),
                )?;
            }
        }
        Ok(())
    }

    /// A network interface: its subnet exists, and a static address is a free, unreserved
    /// address of that subnet.
    pub(super) fn check_nic(&self, id: &str, body: &Map<String, Value>) -> Result<(), ArmError> {
        let configs = required_list(
            body,
            "/properties/ipConfigurations",
            "A network interface needs at least one ipConfiguration.",
        )?;
        for c in configs {
            let p = c.get("properties").cloned().unwrap_or_default();
            let subnet = self.referenced(
                ref_id(p.get("subnet")),
                Kind::Subnet,
                id,
                "ipConfigurations[].properties.subnet",
            )?;
            let prefix = subnet_prefix(subnet.props(), "subnet")?;
            if p.get("privateIPAllocationMethod").and_then(Value::as_str) != Some("Static") {
                continue;
            }
            let text = p
                .get("privateIPAddress")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    invalid("privateIPAddress", "A static allocation needs an address.")
                })?;
            let ip = parse_ip(text, "privateIPAddress")?;
            if !prefix.contains(&ip) {
                return Err(bad(
                    "PrivateIPAddressNotInSubnet",
                    format!("IP address {ip} does not belong to subnet {}.", subnet.id),
                ));
            }
            let offset = u32::from(ip) - u32::from(prefix.network());
            if offset < 4 || ip == prefix.broadcast() {
                return Err(bad(
                    "PrivateIPAddressInReservedRange",
                    format!(
                        "IP address {ip} is reserved by Azure in subnet {}.",
                        subnet.id
                    ),
                ));
            }
            if let Some(holder) = self.address_holder(ip, id) {
                return Err(bad(
                    "PrivateIPAddressInUse",
                    format!("IP address {ip} is already in use by {holder}."),
                ));
            }
        }
        self.check_group_reference(body.pointer("/properties/networkSecurityGroup"), id)
    }

    /// A security group a subnet or an interface names exists.
    pub(super) fn check_group_reference(
        &self,
        group: Option<&Value>,
        by: &str,
    ) -> Result<(), ArmError> {
        match group {
            Some(g) => self
                .referenced(
                    ref_id(Some(g)),
                    Kind::SecurityGroup,
                    by,
                    "networkSecurityGroup",
                )
                .map(|_| ()),
            None => Ok(()),
        }
    }

    /// Who other than `except` holds private address `ip`: an interface or an inbound endpoint.
    fn address_holder(&self, ip: Ipv4Addr, except: &str) -> Option<String> {
        let ip = ip.to_string();
        self.records
            .values()
            .filter(|r| r.phase() != Phase::Gone && key_of(&r.id) != key_of(except))
            .find(|r| {
                let (list, member) = match r.kind {
                    Kind::NetworkInterface => ("ipConfigurations", "/properties/privateIPAddress"),
                    Kind::InboundEndpoint => ("ipConfigurations", "/privateIpAddress"),
                    _ => return false,
                };
                r.props()
                    .get(list)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|c| c.pointer(member).and_then(Value::as_str) == Some(ip.as_str()))
            })
            .map(|r| r.id.clone())
    }

    /// A VM: size, image, OS profile and interfaces as ARM requires them. On an update, a
    /// write-once member may not change, and an OS profile left out is kept.
    pub(super) fn check_vm(&self, id: &str, body: &mut Map<String, Value>) -> Result<(), ArmError> {
        let existing = self.live(id).cloned();
        if body
            .pointer("/properties/hardwareProfile/vmSize")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err(invalid(
                "hardwareProfile.vmSize",
                "The VM size is required.",
            ));
        }
        if let Some(old) = &existing {
            let kept = old.props().get("osProfile").cloned();
            let props = body
                .get_mut("properties")
                .and_then(Value::as_object_mut)
                .ok_or_else(|| bad("InvalidRequestContent", "properties must be an object."))?;
            match (props.get_mut("osProfile"), &kept) {
                (None, Some(k)) => {
                    props.insert("osProfile".into(), k.clone());
                }
                (Some(new), Some(k)) => {
                    // Not returned by a GET, so a client writing back what it read omits it.
                    if new.get("customData").is_none()
                        && let Some(data) = k.get("customData")
                    {
                        new["customData"] = data.clone();
                    }
                }
                _ => {}
            }
            for member in [
                "/osProfile/customData",
                "/osProfile/adminUsername",
                "/osProfile/computerName",
                "/storageProfile/imageReference",
            ] {
                let before = old.props().pointer(member);
                let after = body.pointer(&format!("/properties{member}"));
                if after.is_some() && before != after {
                    let name = member.rsplit('/').next().unwrap_or(member);
                    return Err(ArmError {
                        status: 409,
                        code: "PropertyChangeNotAllowed".into(),
                        message: format!("Changing property '{name}' is not allowed."),
                    });
                }
            }
        } else {
            Self::check_new_vm(body)?;
        }
        let nics = required_list(
            body,
            "/properties/networkProfile/networkInterfaces",
            "A VM needs at least one network interface.",
        )?;
        for n in nics {
            let nic = self.referenced(
                ref_id(Some(n)),
                Kind::NetworkInterface,
                id,
                "networkInterfaces[]",
            )?;
            if let Some(other) = self
                .vm_of_nic(&nic.id)
                .filter(|vm| key_of(vm) != key_of(id))
            {
                return Err(bad(
                    "NicInUse",
                    format!(
                        "Network interface {} is used by existing VM {other}.",
                        nic.id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// What only a new VM must give: its image and an OS profile whose login Azure accepts.
    fn check_new_vm(body: &Map<String, Value>) -> Result<(), ArmError> {
        for part in ["publisher", "offer", "sku", "version"] {
            if body
                .pointer(&format!("/properties/storageProfile/imageReference/{part}"))
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(invalid(
                    "storageProfile.imageReference",
                    format!("The image reference needs a {part}."),
                ));
            }
        }
        let os = body
            .pointer("/properties/osProfile")
            .cloned()
            .unwrap_or_default();
        let admin = os
            .get("adminUsername")
            .and_then(Value::as_str)
            .unwrap_or("");
        if admin.is_empty() || RESERVED_ADMIN_NAMES.contains(&admin.to_ascii_lowercase().as_str()) {
            return Err(invalid(
                "adminUsername",
                format!("The admin user name '{admin}' is not allowed."),
            ));
        }
        let keys = os
            .pointer("/linuxConfiguration/ssh/publicKeys")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let no_password = os
            .pointer("/linuxConfiguration/disablePasswordAuthentication")
            .and_then(Value::as_bool)
            == Some(true);
        if keys == 0 && (no_password || os.get("adminPassword").is_none()) {
            return Err(invalid(
                "linuxConfiguration",
                "Authentication using either SSH or by user name and password must be enabled in Linux profile.",
            ));
        }
        if let Some(data) = os.get("customData").and_then(Value::as_str) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|_| invalid("customData", "Custom data must be base64."))?;
            if decoded.len() > CUSTOM_DATA_LIMIT {
                return Err(invalid(
                    "customData",
                    format!(
                        "Custom data is {} bytes; at most {CUSTOM_DATA_LIMIT}.",
                        decoded.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The live VM an interface is attached to.
    pub(super) fn vm_of_nic(&self, nic: &str) -> Option<String> {
        self.all_live(Kind::VirtualMachine)
            .filter(|vm| vm.deleting.is_none())
            .find(|vm| {
                vm.props()
                    .pointer("/networkProfile/networkInterfaces")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|n| ref_id(Some(n)).map(key_of) == Some(key_of(nic)))
            })
            .map(|vm| vm.id.clone())
    }

    /// Who holds a security group: a subnet or an interface it is set on.
    pub(super) fn security_group_user(&self, nsg: &str) -> Option<String> {
        self.records
            .values()
            .filter(|r| {
                r.phase() != Phase::Gone
                    && r.deleting.is_none()
                    && matches!(r.kind, Kind::Subnet | Kind::NetworkInterface)
            })
            .find(|r| {
                ref_id(r.props().get("networkSecurityGroup")).map(key_of) == Some(key_of(nsg))
            })
            .map(|r| r.id.clone())
    }

    /// A deleted VM takes the interfaces marked `deleteOption: Delete` with it, once it is gone.
    pub(super) fn delete_with_vm(&mut self, vm: &Record, after: Duration) {
        let nics: Vec<String> = vm
            .props()
            .pointer("/networkProfile/networkInterfaces")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|n| {
                n.pointer("/properties/deleteOption")
                    .and_then(Value::as_str)
                    == Some("Delete")
            })
            .filter_map(|n| ref_id(Some(n)).map(key_of))
            .collect();
        let nic_time = self.scaled(Kind::NetworkInterface.delete_time());
        for nic in nics {
            if let Some(r) = self.records.get_mut(&nic) {
                r.deleting.get_or_insert((Instant::now(), after + nic_time));
            }
        }
    }

    /// `GET .../virtualMachines/{name}/instanceView`: provisioning and power state.
    pub(crate) fn instance_view(&mut self, id: &str) -> Result<Value, ArmError> {
        self.sweep();
        let vm = self
            .live(id)
            .filter(|r| r.kind == Kind::VirtualMachine)
            .ok_or_else(|| not_found(id, Kind::VirtualMachine, &self.seeded.resource_group))?;
        let (provisioning, power) = match vm.phase() {
            // A running VM being updated (a resize restarts it; other updates do not).
            Phase::Provisioning if vm.updated => ("updating", "running"),
            Phase::Provisioning => ("creating", "starting"),
            Phase::Succeeded => ("succeeded", "running"),
            Phase::Failed => ("failed", "stopped"),
            Phase::Deleting | Phase::Gone => ("deleting", "stopping"),
        };
        Ok(json!({
            "computerName": vm.props().pointer("/osProfile/computerName"),
            "statuses": [
                { "code": format!("ProvisioningState/{provisioning}"), "level": "Info" },
                { "code": format!("PowerState/{power}"), "level": "Info" },
            ],
        }))
    }

    /// Running VMs with their decoded custom data and their primary interface's address.
    pub(super) fn running_vms(&self) -> Vec<dxvpn_twin_kit::views::VmView> {
        self.all_live(Kind::VirtualMachine)
            .filter(|vm| vm.serving())
            .filter_map(|vm| {
                let nic = self.live(ref_id(
                    vm.props().pointer("/networkProfile/networkInterfaces/0"),
                )?)?;
                let ip = nic
                    .props()
                    .pointer("/ipConfigurations/0/properties/privateIPAddress")
                    .and_then(Value::as_str)?
                    .parse()
                    .ok()?;
                let data = vm
                    .props()
                    .pointer("/osProfile/customData")
                    .and_then(Value::as_str)?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .ok()?;
                Some(dxvpn_twin_kit::views::VmView {
                    id: key_of(&vm.id),
                    private_ip: ip,
                    user_data: String::from_utf8(bytes).ok()?,
                })
            })
            .collect()
    }
}

/// A GET of a VM: what ARM computes added, the custom data left out.
pub(super) fn render_vm(r: &Record, props: &mut Map<String, Value>) {
    if let Some(os) = props.get_mut("osProfile").and_then(Value::as_object_mut) {
        os.remove("customData");
        os.remove("adminPassword");
    }
    props.insert("vmId".into(), json!(r.guid));
}

/// A GET of an interface: the VM it is attached to, and each configuration's id.
pub(super) fn render_nic(r: &Record, vm: Option<String>, props: &mut Map<String, Value>) {
    if let Some(vm) = vm {
        props.insert("virtualMachine".into(), json!({ "id": vm }));
    }
    if let Some(Value::Array(configs)) = props.get_mut("ipConfigurations") {
        for c in configs.iter_mut() {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            c["id"] = json!(format!("{}/ipConfigurations/{name}", r.id));
        }
    }
}
