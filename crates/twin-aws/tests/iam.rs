//! IAM as the AWS twin holds it, through aws-sdk-iam and aws-sdk-ec2: names unique in the
//! account, one role per instance profile, deletes refused while something still hangs on,
//! EC2 refusing a new profile until it has learnt of it, and profiles associated with a
//! running instance in place.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::time::{Duration, Instant};

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::IamInstanceProfileSpecification;

const SSM_CORE: &str = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore";
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// A role named `name` in an instance profile of the same name.
async fn profile_with_its_role(iam: &aws_sdk_iam::Client, name: &str) {
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    iam.create_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .unwrap();
    iam.add_role_to_instance_profile()
        .instance_profile_name(name)
        .role_name(name)
        .send()
        .await
        .unwrap();
}

/// The call's answer once reads show what it reads (within the twin's read lag).
async fn eventually<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(
    call: impl Fn() -> F,
) -> T {
    let started = Instant::now();
    loop {
        match call().await {
            Ok(out) => return out,
            Err(e) if started.elapsed() > Duration::from_secs(3) => panic!("{e:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test]
async fn a_profile_is_built_and_taken_apart_in_the_order_iam_demands() {
    let twin = dxvpn_test_support::aws_twin(0.0).await;
    let iam = dxvpn_test_support::iam_client(&twin.endpoint);
    let role = iam
        .create_role()
        .role_name("fwd")
        .path("/dxvpn/")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    let role = role.role().unwrap();
    assert!(role.role_id().starts_with("AROA"));
    assert_eq!(role.arn(), "arn:aws:iam::123456789012:role/dxvpn/fwd");
    assert!(
        role.assume_role_policy_document()
            .unwrap()
            .starts_with("%7B%22Version%22"),
        "IAM answers policy documents URL-encoded"
    );
    let again = iam
        .create_role()
        .role_name("fwd")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some("EntityAlreadyExists"));
    let malformed = iam
        .create_role()
        .role_name("other")
        .assume_role_policy_document("{not json")
        .send()
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Some("MalformedPolicyDocument"));
    let unknown = iam
        .attach_role_policy()
        .role_name("fwd")
        .policy_arn("arn:aws:iam::aws:policy/NoSuchPolicy")
        .send()
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Some("NoSuchEntity"));
    for _ in 0..2 {
        // Attaching an attached policy is no error.
        iam.attach_role_policy()
            .role_name("fwd")
            .policy_arn(SSM_CORE)
            .send()
            .await
            .unwrap();
    }
    // Reads show a new role a moment after its create.
    let attached = eventually(|| iam.list_attached_role_policies().role_name("fwd").send()).await;
    assert_eq!(attached.attached_policies().len(), 1);

    iam.create_instance_profile()
        .instance_profile_name("fwd")
        .path("/dxvpn/")
        .send()
        .await
        .unwrap();
    iam.add_role_to_instance_profile()
        .instance_profile_name("fwd")
        .role_name("fwd")
        .send()
        .await
        .unwrap();
    let second = iam
        .add_role_to_instance_profile()
        .instance_profile_name("fwd")
        .role_name("fwd")
        .send()
        .await
        .unwrap_err();
    assert_eq!(second.code(), Some("LimitExceeded"), "one role a profile");
    let profile = eventually(|| {
        iam.get_instance_profile()
            .instance_profile_name("fwd")
            .send()
    })
    .await;
    let profile = profile.instance_profile().unwrap();
    assert_eq!(profile.roles()[0].role_name(), "fwd");
    assert!(profile.instance_profile_id().starts_with("AIPA"));

    // Deletes refused while something hangs on, then done in order.
    let role_held = iam.delete_role().role_name("fwd").send().await.unwrap_err();
    assert_eq!(role_held.code(), Some("DeleteConflict"));
    let profile_held = iam
        .delete_instance_profile()
        .instance_profile_name("fwd")
        .send()
        .await
        .unwrap_err();
    assert_eq!(profile_held.code(), Some("DeleteConflict"));
    iam.remove_role_from_instance_profile()
        .instance_profile_name("fwd")
        .role_name("fwd")
        .send()
        .await
        .unwrap();
    iam.delete_instance_profile()
        .instance_profile_name("fwd")
        .send()
        .await
        .unwrap();
    let policies_left = iam.delete_role().role_name("fwd").send().await.unwrap_err();
    assert_eq!(policies_left.code(), Some("DeleteConflict"));
    iam.detach_role_policy()
        .role_name("fwd")
        .policy_arn(SSM_CORE)
        .send()
        .await
        .unwrap();
    iam.delete_role().role_name("fwd").send().await.unwrap();
    let gone = iam.get_role().role_name("fwd").send().await.unwrap_err();
    assert_eq!(gone.code(), Some("NoSuchEntity"));
    assert_eq!(twin.inventory()["iam_roles"], serde_json::json!([]));
    assert_eq!(twin.inventory()["instance_profiles"], serde_json::json!([]));
}

/// EC2 learns of a profile's role some seconds after it was added: a launch before that is
/// refused as EC2 refuses it, one after carries the profile.
#[tokio::test]
async fn ec2_launches_with_a_new_profile_only_once_it_has_propagated() {
    // Seeded: this seed's propagation delay is well above a millisecond (time factor 0.5).
    let twin = dxvpn_test_support::aws_twin_seeded(0.5, 11).await;
    let iam = dxvpn_test_support::iam_client(&twin.endpoint);
    let ec2 = dxvpn_test_support::ec2_client(&twin.endpoint);
    profile_with_its_role(&iam, "fwd").await;
    let launch = ec2
        .run_instances()
        .image_id(
            "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
        )
        .min_count(1)
        .max_count(1)
        .subnet_id(&twin.seeded.subnet_ids[0])
        .iam_instance_profile(
            IamInstanceProfileSpecification::builder()
                .name("fwd")
                .build(),
        );
    let first = launch.clone().send().await.unwrap_err();
    assert_eq!(first.code(), Some("InvalidParameterValue"));
    assert!(
        first
            .message()
            .unwrap()
            .contains("Invalid IAM Instance Profile name"),
        "{first:?}"
    );
    let unknown = launch
        .clone()
        .iam_instance_profile(
            IamInstanceProfileSpecification::builder()
                .name("nope")
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Some("InvalidParameterValue"));

    let started = Instant::now();
    let out = loop {
        match launch.clone().send().await {
            Ok(out) => break out,
            Err(e) if started.elapsed() < Duration::from_secs(10) => {
                assert_eq!(e.code(), Some("InvalidParameterValue"));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("EC2 never learnt of the profile: {e:?}"),
        }
    };
    let profile = out.instances()[0].iam_instance_profile().unwrap();
    assert_eq!(
        profile.arn(),
        Some("arn:aws:iam::123456789012:instance-profile/fwd")
    );
    assert!(profile.id().unwrap().starts_with("AIPA"));
}

/// A running instance gets a profile in place, one at a time, and loses it again; each change
/// passes through EC2's documented association states.
#[tokio::test]
async fn a_running_instances_profile_is_associated_replaced_and_disassociated_in_place() {
    let twin = dxvpn_test_support::aws_twin(0.01).await;
    let iam = dxvpn_test_support::iam_client(&twin.endpoint);
    let ec2 = dxvpn_test_support::ec2_client(&twin.endpoint);
    for name in ["one", "two"] {
        profile_with_its_role(&iam, name).await;
    }
    let id = ec2
        .run_instances()
        .image_id(
            "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
        )
        .min_count(1)
        .max_count(1)
        .subnet_id(&twin.seeded.subnet_ids[0])
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_owned();
    let spec = |name: &str| {
        IamInstanceProfileSpecification::builder()
            .name(name)
            .build()
    };
    let associated = eventually(|| {
        ec2.associate_iam_instance_profile()
            .instance_id(&id)
            .iam_instance_profile(spec("one"))
            .send()
    })
    .await;
    let first = associated.iam_instance_profile_association().unwrap();
    assert_eq!(first.state().map(|s| s.as_str()), Some("associating"));
    // Profile two may not have reached EC2 yet (IAM's propagation delay is seeded per
    // profile): until it has, EC2 refuses the name itself, not the second association.
    let started = Instant::now();
    let second = loop {
        let e = ec2
            .associate_iam_instance_profile()
            .instance_id(&id)
            .iam_instance_profile(spec("two"))
            .send()
            .await
            .unwrap_err();
        if e.code() != Some("InvalidParameterValue") || started.elapsed() > Duration::from_secs(3) {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        second.code(),
        Some("IncorrectState"),
        "one profile an instance"
    );

    let replaced = ec2
        .replace_iam_instance_profile_association()
        .association_id(first.association_id().unwrap())
        .iam_instance_profile(spec("two"))
        .send()
        .await
        .unwrap();
    let now = replaced.iam_instance_profile_association().unwrap();
    assert_ne!(now.association_id(), first.association_id());
    let shown = || async {
        let out = eventually(|| ec2.describe_instances().instance_ids(&id).send()).await;
        out.reservations()[0].instances()[0]
            .iam_instance_profile()
            .and_then(|p| p.arn())
            .map(str::to_owned)
    };
    assert!(shown().await.unwrap().ends_with("/two"));

    ec2.disassociate_iam_instance_profile()
        .association_id(now.association_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(shown().await, None);
    let states: Vec<String> = ec2
        .describe_iam_instance_profile_associations()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-id")
                .values(&id)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .iam_instance_profile_associations()
        .iter()
        .filter_map(|a| a.state().map(|s| s.as_str().to_owned()))
        .collect();
    assert!(
        states
            .iter()
            .all(|s| s == "disassociated" || s == "disassociating"),
        "{states:?}"
    );
}
