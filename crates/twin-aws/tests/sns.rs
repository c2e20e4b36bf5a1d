//! SNS through the real aws-sdk-sns (Query protocol): CreateTopic is idempotent by name and
//! refuses other tags on a name that exists; an e-mail subscription stays pending (no ARN to
//! remove it by) and a second Subscribe of the address answers the same one; a bad address,
//! a topic that is not there and an unknown subscription are refused with SNS's codes;
//! DeleteTopic of a topic that is not there is no error; ListTopics pages by 100.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use aws_sdk_sns::error::ProvideErrorMetadata;
use aws_sdk_sns::types::Tag;
use dxvpn_twin_aws::{AwsScenario, AwsTwin};

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().unwrap()
}

#[tokio::test]
async fn topics_and_email_subscriptions_follow_the_sns_reference() {
    let twin = AwsTwin::start(dxvpn_test_support::loopback(), &AwsScenario::default(), 0.0)
        .await
        .unwrap();
    let sns = dxvpn_test_support::sns_client(&twin.endpoint);
    let create = |name: &str, owner: &str| {
        sns.create_topic()
            .name(name)
            .tags(tag("dxvpn:deployment", owner))
            .send()
    };
    let arn = create("dx-alerts", "dx").await.unwrap().topic_arn.unwrap();
    assert_eq!(arn, "arn:aws:sns:eu-south-1:123456789012:dx-alerts");
    // Idempotent by name with the same tags; refused with others.
    assert_eq!(
        create("dx-alerts", "dx").await.unwrap().topic_arn.unwrap(),
        arn
    );
    let other = create("dx-alerts", "someone-else").await.unwrap_err();
    assert_eq!(other.code(), Some("InvalidParameter"), "{other:?}");
    let bad_name = create("dx alerts!", "dx").await.unwrap_err();
    assert_eq!(bad_name.code(), Some("InvalidParameter"));
    let tags = sns
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags()[0].value(), "dx");

    let subscribe = |endpoint: &str| {
        sns.subscribe()
            .topic_arn(&arn)
            .protocol("email")
            .endpoint(endpoint)
            .send()
    };
    let pending = subscribe("ops@example.com").await.unwrap();
    assert_eq!(pending.subscription_arn(), Some("pending confirmation"));
    subscribe("ops@example.com").await.unwrap();
    let listed = sns
        .list_subscriptions_by_topic()
        .topic_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.subscriptions().len(), 1, "the same address once");
    assert_eq!(
        listed.subscriptions()[0].subscription_arn(),
        Some("PendingConfirmation")
    );
    let bad = subscribe("not an address").await.unwrap_err();
    assert_eq!(bad.code(), Some("InvalidParameter"));
    let nowhere = sns
        .subscribe()
        .topic_arn("arn:aws:sns:eu-south-1:123456789012:none")
        .protocol("email")
        .endpoint("ops@example.com")
        .send()
        .await
        .unwrap_err();
    assert_eq!(nowhere.code(), Some("NotFound"));
    let unknown = sns
        .unsubscribe()
        .subscription_arn(format!("{arn}:0000"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Some("NotFound"));

    // 150 topics: two pages, each topic once.
    for i in 0..150 {
        sns.create_topic()
            .name(format!("t{i}"))
            .send()
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut pages = sns.list_topics().into_paginator().send();
    let mut count = 0;
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        assert!(page.topics().len() <= 100);
        count += 1;
        seen.extend(
            page.topics()
                .iter()
                .filter_map(|t| t.topic_arn().map(str::to_owned)),
        );
    }
    seen.sort();
    seen.dedup();
    assert_eq!((count, seen.len()), (2, 151));

    // Deleting a topic takes its subscriptions; deleting it again is no error.
    sns.delete_topic().topic_arn(&arn).send().await.unwrap();
    sns.delete_topic().topic_arn(&arn).send().await.unwrap();
    let gone = sns
        .list_subscriptions_by_topic()
        .topic_arn(&arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Some("NotFound"));
    twin.stop().await;
}
