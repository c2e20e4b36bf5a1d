//! A forwarder VM and what it stands on, over HTTP as JSON: a network security group on a
//! subnet, an interface at a static address, and a Microsoft.Compute VM with custom data, with
//! the refusals ARM documents for each.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;

use base64::Engine as _;
use common::*;
use dxvpn_test_support::azure_raw_put;
use serde_json::{Value, json};

async fn call(
    lab: &Lab,
    method: azure_core::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    dxvpn_test_support::azure_raw(&lab.twin, method, path, body).await
}

fn vm_id(lab: &Lab, name: &str) -> String {
    lab.id(&format!("virtualMachines/{name}"))
        .replace("Microsoft.Network", "Microsoft.Compute")
}

fn nic_body(subnet: &str, ip: &str) -> Value {
    json!({ "location": "centralus", "properties": { "ipConfigurations": [{
        "name": "ipconfig1",
        "properties": { "subnet": { "id": subnet }, "privateIPAllocationMethod": "Static", "privateIPAddress": ip },
    }] } })
}

fn vm_body(nic: &str, custom_data: &str) -> Value {
    json!({ "location": "centralus", "properties": {
        "hardwareProfile": { "vmSize": "Standard_B1ls" },
        "storageProfile": {
            "imageReference": { "publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest" },
            "osDisk": { "createOption": "FromImage", "deleteOption": "Delete" },
        },
        "osProfile": {
            "computerName": "fwd", "adminUsername": "dxvpn",
            "customData": base64::engine::general_purpose::STANDARD.encode(custom_data),
            "linuxConfiguration": { "disablePasswordAuthentication": true, "ssh": { "publicKeys": [
                { "path": "/home/dxvpn/.ssh/authorized_keys", "keyData": "ssh-ed25519 AAAA x" }
            ] } },
        },
        "networkProfile": { "networkInterfaces": [{ "id": nic, "properties": { "deleteOption": "Delete" } }] },
    } })
}

/// Subnet 10.1.9.0/28 behind security group `nsg`, and interface `nic` at 10.1.9.4 in it.
async fn subnet_and_nic(lab: &Lab) -> (String, String, String) {
    let nsg = lab.id("networkSecurityGroups/nsg");
    azure_raw_put(&lab.twin, &nsg, &json!({ "location": "centralus", "properties": { "securityRules": [
        { "name": "dns", "properties": { "priority": 100, "direction": "Inbound", "access": "Allow", "protocol": "Udp",
          "sourceAddressPrefixes": ["10.0.0.0/16"], "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": "53" } },
    ] } })).await;
    let subnet = lab.subnet("snet-fwd");
    azure_raw_put(
        &lab.twin,
        &subnet,
        &json!({ "properties": {
        "addressPrefix": "10.1.9.0/28", "networkSecurityGroup": { "id": nsg },
    } }),
    )
    .await;
    let nic = lab.id("networkInterfaces/nic");
    azure_raw_put(&lab.twin, &nic, &nic_body(&subnet, "10.1.9.4")).await;
    (nsg, subnet, nic)
}

#[tokio::test]
async fn an_interface_takes_only_a_free_unreserved_address_of_its_subnet() {
    let lab = Lab::new().await;
    let (_, subnet, _) = subnet_and_nic(&lab).await;
    for (ip, code) in [
        ("10.1.9.2", "PrivateIPAddressInReservedRange"),
        ("10.1.9.15", "PrivateIPAddressInReservedRange"),
        ("10.1.8.4", "PrivateIPAddressNotInSubnet"),
        ("10.1.9.4", "PrivateIPAddressInUse"),
    ] {
        let (status, body) = call(
            &lab,
            azure_core::Method::Put,
            &lab.id("networkInterfaces/other"),
            Some(&nic_body(&subnet, ip)),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{ip}: {body}"
        );
    }
    let (status, _) = call(
        &lab,
        azure_core::Method::Put,
        &lab.id("networkInterfaces/other"),
        Some(&nic_body(&subnet, "10.1.9.5")),
    )
    .await;
    assert!(status < 300, "a free address is taken");
}

#[tokio::test]
async fn a_vm_keeps_its_custom_data_to_itself_and_never_changes_it() {
    let lab = Lab::new().await;
    let (_, _, nic) = subnet_and_nic(&lab).await;
    let vm = vm_id(&lab, "fwd");
    azure_raw_put(&lab.twin, &vm, &vm_body(&nic, "#cloud-config\n")).await;
    let (_, read) = call(&lab, azure_core::Method::Get, &vm, None).await;
    assert!(
        read.pointer("/properties/osProfile/customData").is_none(),
        "{read}"
    );
    assert_eq!(read["properties"]["osProfile"]["adminUsername"], "dxvpn");
    // The lab sees what cloud-init would run.
    let view = lab.twin.lab_view();
    assert_eq!(view.vms.len(), 1);
    assert_eq!(
        (
            view.vms[0].user_data.as_str(),
            view.vms[0].private_ip.to_string()
        ),
        ("#cloud-config\n", "10.1.9.4".into())
    );
    let (_, state) = call(
        &lab,
        azure_core::Method::Get,
        &format!("{vm}/instanceView"),
        None,
    )
    .await;
    assert!(state.to_string().contains("PowerState/running"), "{state}");
    // Written back as read (no custom data): accepted, and the custom data stays.
    let (status, _) = call(&lab, azure_core::Method::Put, &vm, Some(&read)).await;
    assert!(status < 300, "a VM written back as read is accepted");
    let (status, body) = call(
        &lab,
        azure_core::Method::Put,
        &vm,
        Some(&vm_body(&nic, "#cloud-config\nother\n")),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("PropertyChangeNotAllowed")),
        "{body}"
    );
    assert_eq!(lab.twin.lab_view().vms[0].user_data, "#cloud-config\n");
}

#[tokio::test]
async fn what_a_vm_stands_on_cannot_go_before_it_and_its_interface_goes_with_it() {
    let lab = Lab::new().await;
    let (nsg, subnet, nic) = subnet_and_nic(&lab).await;
    let vm = vm_id(&lab, "fwd");
    azure_raw_put(&lab.twin, &vm, &vm_body(&nic, "#cloud-config\n")).await;
    for (path, code) in [
        (&nic, "NicInUse"),
        (&subnet, "InUseSubnetCannotBeDeleted"),
        (&nsg, "InUseNetworkSecurityGroupCannotBeDeleted"),
    ] {
        let (status, body) = call(&lab, azure_core::Method::Delete, path, None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{path}: {body}"
        );
    }
    let (status, _) = call(
        &lab,
        azure_core::Method::Put,
        &vm_id(&lab, "second"),
        Some(&vm_body(&nic, "x")),
    )
    .await;
    assert_eq!(status, 400, "an interface serves one VM");
    let (status, _) = call(&lab, azure_core::Method::Delete, &vm, None).await;
    assert_eq!(status, 202);
    for _ in 0..200 {
        if !lab.twin.live_ids().contains(&nic.to_ascii_lowercase()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        !lab.twin.live_ids().contains(&nic.to_ascii_lowercase()),
        "deleteOption Delete took the interface"
    );
    let (status, _) = call(&lab, azure_core::Method::Delete, &subnet, None).await;
    assert_eq!(status, 202, "the subnet is free once the interface is gone");
}
