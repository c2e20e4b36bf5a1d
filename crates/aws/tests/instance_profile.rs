//! The forwarder host's instance profile against the AWS twin's IAM: a run killed half way is
//! finished by the next, by name; a name someone else holds is neither adopted nor deleted.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use aws_sdk_ec2::error::ProvideErrorMetadata;
use dxvpn_aws::{Aws, AwsError, Outputs};
use dxvpn_plan::Plan;
use dxvpn_plan::forwarder_host::AWS_PROFILE_ROLE;
use dxvpn_test_support::{ec2_client, iam_client, resolver_client};
use dxvpn_twin_aws::AwsTwin;

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// Development with zones on both sides: forwarder hosts, so an AWS host with its profile.
fn forwarder_config(twin: &AwsTwin) -> String {
    dxvpn_test_support::aws_config("development", twin).replace(
        "[azure]\n",
        "private_dns_zones = [\"aws.internal\"]\n[azure]\nprivate_dns_zones = [\"azure.internal\"]\n",
    )
}

fn clients(twin: &AwsTwin) -> Aws {
    Aws::from_clients(
        ec2_client(&twin.endpoint),
        resolver_client(&twin.endpoint),
        iam_client(&twin.endpoint),
        dxvpn_test_support::cloudwatch_client(&twin.endpoint),
        dxvpn_test_support::sns_client(&twin.endpoint),
    )
}

/// A twin, its deployment's AWS side, the plan and a plain IAM client.
async fn setup() -> (AwsTwin, Aws, Plan, aws_sdk_iam::Client) {
    let twin = dxvpn_test_support::aws_twin(0.0005).await;
    let config = forwarder_config(&twin);
    let plan = dxvpn_plan::plan_from_toml(&config).unwrap();
    let aws = clients(&twin);
    let iam = iam_client(&twin.endpoint);
    (twin, aws, plan, iam)
}

fn profile_name(plan: &Plan) -> String {
    dxvpn_plan::forwarder_host::aws_profile_name(&plan.name, &plan.aws.vpc_id)
}

#[tokio::test]
async fn a_run_killed_after_the_role_is_finished_by_the_next() {
    let (twin, aws, plan, iam) = setup().await;
    let resource = plan.resource(AWS_PROFILE_ROLE).unwrap();
    let name = profile_name(&plan);
    // What a killed run left: the role with this deployment's tags, nothing more.
    let tags: Vec<aws_sdk_iam::types::Tag> = resource
        .tags
        .iter()
        .map(|(k, v)| {
            aws_sdk_iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .unwrap()
        })
        .collect();
    iam.create_role()
        .role_name(&name)
        .path("/dxvpn/")
        .assume_role_policy_document(TRUST)
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap();

    let mut outputs = Outputs::default();
    aws.ensure(&plan, resource, &mut outputs).await.unwrap();
    let inventory = twin.inventory();
    assert_eq!(
        inventory["iam_roles"].as_array().unwrap().len(),
        1,
        "{inventory}"
    );
    assert_eq!(
        inventory["iam_roles"][0]["policies"],
        serde_json::json!(["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"])
    );
    assert_eq!(inventory["instance_profiles"][0]["role"], name.as_str());
    assert!(
        outputs
            .get(AWS_PROFILE_ROLE, "arn")
            .unwrap()
            .ends_with(&format!(":instance-profile/dxvpn/{name}"))
    );

    // A converged re-run writes nothing to IAM.
    let before = twin.mutating_calls();
    aws.ensure(&plan, resource, &mut outputs).await.unwrap();
    assert_eq!(twin.mutating_calls(), before);

    aws.delete(&plan, resource, &mut outputs).await.unwrap();
    let inventory = twin.inventory();
    assert_eq!(inventory["iam_roles"], serde_json::json!([]), "{inventory}");
    assert_eq!(inventory["instance_profiles"], serde_json::json!([]));
}

#[tokio::test]
async fn a_name_someone_else_holds_is_neither_adopted_nor_deleted() {
    let (twin, aws, plan, iam) = setup().await;
    let resource = plan.resource(AWS_PROFILE_ROLE).unwrap();
    let name = profile_name(&plan);
    // The same name, without this deployment's tags.
    iam.create_role()
        .role_name(&name)
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    // Let reads show it (the twin's IAM lags up to a second).
    while iam.get_role().role_name(&name).send().await.is_err() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut outputs = Outputs::default();
    let error = aws.ensure(&plan, resource, &mut outputs).await.unwrap_err();
    let AwsError::Api { code, message, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(code, "NameTaken", "{error}");
    assert!(
        message.contains("dns.aws_forwarder_instance_profile"),
        "{message}"
    );
    aws.delete(&plan, resource, &mut outputs).await.unwrap();
    let role = iam.get_role().role_name(&name).send().await;
    assert!(
        role.is_ok(),
        "someone else's role is kept: {:?}",
        role.err().map(|e| e.code().map(str::to_owned))
    );
    assert_eq!(twin.inventory()["instance_profiles"], serde_json::json!([]));
}

/// EC2 refuses a profile it has not learnt of yet (the twin draws the delay, here some tenths
/// of a second): the host's launch waits it out and launches once, with the profile.
#[tokio::test]
async fn the_host_launch_waits_until_ec2_knows_the_new_profile() {
    // Seeded: this seed's propagation delay is some tenths of a second (time factor 0.1).
    let twin = dxvpn_test_support::aws_twin_seeded(0.1, 11).await;
    let config = forwarder_config(&twin);
    let plan = dxvpn_plan::plan_from_toml(&config).unwrap();
    let aws = clients(&twin);
    let mut outputs = Outputs::default();
    let group = plan.resource("aws.dns_security_group").unwrap();
    aws.ensure(&plan, group, &mut outputs).await.unwrap();
    // The profile as `ensure` makes it, without its wait for reads (which outlasts this seed's
    // propagation delay): the launch comes right after the role went into the profile.
    let iam = iam_client(&twin.endpoint);
    let name = profile_name(&plan);
    iam.create_role()
        .role_name(&name)
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    iam.create_instance_profile()
        .instance_profile_name(&name)
        .send()
        .await
        .unwrap();
    iam.add_role_to_instance_profile()
        .instance_profile_name(&name)
        .role_name(&name)
        .send()
        .await
        .unwrap();
    let host = plan.resource("aws.dns_forwarder").unwrap();
    aws.ensure(&plan, host, &mut outputs).await.unwrap();
    let inventory = twin.inventory();
    let launches = inventory["calls"]["RunInstances"].as_u64().unwrap_or(0);
    assert!(
        launches >= 2,
        "refused first, then launched: {}",
        inventory["calls"]
    );
    assert_eq!(inventory["instances"].as_array().unwrap().len(), 1);
    let found = aws.forwarder_host(&plan).await.unwrap().unwrap();
    assert!(
        found
            .instance_profile
            .unwrap()
            .ends_with(&format!("instance-profile/{name}"))
    );
}
