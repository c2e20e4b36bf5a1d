//! The packet filters of the seeded VPC through the real aws-sdk-ec2: the lab host's interface
//! found by its address, its security group, and the default network ACL of its subnet (rule 100
//! allows, `*` denies, both ways); entries and ingress rules written and removed, with EC2's
//! error codes for a taken rule number, a missing entry and a rule that does not exist.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, PortRange, RuleAction};
use dxvpn_twin_aws::{AwsScenario, AwsTwin};

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

#[tokio::test]
async fn the_hosts_interface_group_and_acl_are_read_and_written_as_ec2_does() {
    let twin = AwsTwin::start(dxvpn_test_support::loopback(), &AwsScenario::default(), 0.0)
        .await
        .unwrap();
    let ec2 = dxvpn_test_support::ec2_client(&twin.endpoint);
    let vpc = twin.seeded.vpc_id.clone();
    let subnet = twin.seeded.subnet_ids[0].clone();

    let nics = ec2
        .describe_network_interfaces()
        .filters(filter("addresses.private-ip-address", "10.0.1.10"))
        .filters(filter("vpc-id", &vpc))
        .send()
        .await
        .unwrap();
    let nic = &nics.network_interfaces()[0];
    assert_eq!(nic.subnet_id(), Some(subnet.as_str()));
    let group = nic.groups()[0].group_id().unwrap().to_owned();
    assert_eq!(Some(&group), twin.seeded.host_security_group_id.as_ref());
    let nobody = ec2
        .describe_network_interfaces()
        .filters(filter("addresses.private-ip-address", "10.0.1.11"))
        .send()
        .await
        .unwrap();
    assert!(nobody.network_interfaces().is_empty());

    let acls = ec2
        .describe_network_acls()
        .filters(filter("association.subnet-id", &subnet))
        .send()
        .await
        .unwrap();
    let acl = &acls.network_acls()[0];
    assert_eq!(acl.is_default(), Some(true));
    let mut numbers: Vec<(bool, i32, String)> = acl
        .entries()
        .iter()
        .map(|e| {
            (
                e.egress().unwrap(),
                e.rule_number().unwrap(),
                e.rule_action().unwrap().as_str().to_owned(),
            )
        })
        .collect();
    numbers.sort();
    assert_eq!(
        numbers,
        [
            (false, 100, "allow".into()),
            (false, 32767, "deny".into()),
            (true, 100, "allow".into()),
            (true, 32767, "deny".into())
        ]
    );
    let acl_id = acl.network_acl_id().unwrap().to_owned();
    let entry = || {
        ec2.create_network_acl_entry()
            .network_acl_id(&acl_id)
            .rule_number(50)
            .protocol("6")
            .port_range(PortRange::builder().from(22).to(22).build())
            .cidr_block("10.1.0.0/16")
            .rule_action(RuleAction::Deny)
            .egress(false)
            .send()
    };
    entry().await.unwrap();
    let taken = entry().await.unwrap_err();
    assert_eq!(taken.code(), Some("NetworkAclEntryAlreadyExists"));
    let read = ec2
        .describe_network_acls()
        .network_acl_ids(&acl_id)
        .send()
        .await
        .unwrap();
    let fifty = read.network_acls()[0]
        .entries()
        .iter()
        .find(|e| e.rule_number() == Some(50))
        .unwrap();
    assert_eq!(fifty.port_range().unwrap().from(), Some(22));
    assert_eq!(fifty.protocol(), Some("6"));
    let delete = || {
        ec2.delete_network_acl_entry()
            .network_acl_id(&acl_id)
            .rule_number(50)
            .egress(false)
            .send()
    };
    delete().await.unwrap();
    let gone = delete().await.unwrap_err();
    assert_eq!(gone.code(), Some("InvalidNetworkAclEntry.NotFound"));

    // The group allows everything from 10.0.0.0/8; revoked, it allows nothing; a rule it does
    // not have cannot be revoked.
    let everything = IpPermission::builder()
        .ip_protocol("-1")
        .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/8").build())
        .build();
    let revoke = || {
        ec2.revoke_security_group_ingress()
            .group_id(&group)
            .ip_permissions(everything.clone())
            .send()
    };
    revoke().await.unwrap();
    let groups = ec2
        .describe_security_groups()
        .group_ids(&group)
        .send()
        .await
        .unwrap();
    let read = &groups.security_groups()[0];
    assert!(read.ip_permissions().is_empty());
    assert_eq!(read.ip_permissions_egress()[0].ip_protocol(), Some("-1"));
    assert_eq!(
        revoke().await.unwrap_err().code(),
        Some("InvalidPermission.NotFound")
    );
    twin.stop().await;
}
