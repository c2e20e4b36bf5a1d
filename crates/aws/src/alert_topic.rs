//! The alert topic (`Spec::AlertTopic`): an SNS topic that the tunnel alarms notify, with an
//! e-mail subscription per address of `alerts.emails` (aws-sdk-sns). SNS names a topic uniquely
//! in the account and region, and CreateTopic is idempotent by name ("If a topic with the same
//! name exists, the ARN is returned"), so the topic is found and made by its name, which
//! carries the deployment and the VPC; its tags must say it is this deployment's before it is
//! adopted or deleted. Each address must confirm its subscription (SNS sends it a link): until
//! then it is pending, has no ARN and cannot be removed, and SNS forgets it after 3 days if it
//! is never confirmed ("Subscribe", SNS API reference).

use std::collections::BTreeSet;

use aws_sdk_sns::types::Tag;
use dxvpn_plan::model::{Resource, Spec};
use dxvpn_plan::{Drift, FieldChange, Outputs, Plan};

use crate::drift::Stray;
use crate::{Aws, AwsError, api};

/// The plan's kind name of the alert topic.
pub(crate) const KIND: &str = "alert_topic";

/// The topic's name: `dxvpn-<deployment>-<vpc>-alerts`.
pub(crate) fn topic_name(plan: &Plan) -> String {
    format!("dxvpn-{}-{}-alerts", plan.name, plan.aws.vpc_id)
}

/// One subscription of the topic: its endpoint, and its ARN once confirmed.
struct Subscribed {
    endpoint: String,
    confirmed_arn: Option<String>,
}

impl Aws {
    /// The ARN of this deployment's topic, if SNS has it; one of that name with another
    /// deployment's tags is an error, never adopted.
    async fn find_topic(&self, plan: &Plan, role: &str) -> Result<Option<String>, AwsError> {
        let suffix = format!(":{}", topic_name(plan));
        let mut pages = self.sns.list_topics().into_paginator().send();
        let mut found = None;
        while let Some(page) = pages.next().await {
            let page = page.map_err(api(role, "ListTopics"))?;
            found = page
                .topics()
                .iter()
                .filter_map(|t| t.topic_arn())
                .find(|arn| arn.ends_with(&suffix))
                .map(str::to_owned);
            if found.is_some() {
                break;
            }
        }
        let Some(arn) = found else {
            return Ok(None);
        };
        let tags = self
            .sns
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .map_err(api(role, "ListTagsForResource"))?;
        let ours = tags
            .tags()
            .iter()
            .any(|t| t.key() == "dxvpn:deployment" && t.value() == plan.name);
        if !ours {
            return Err(AwsError::Api {
                role: role.to_owned(),
                action: "ListTagsForResource",
                code: "NotThisDeployment".into(),
                message: format!(
                    "the topic {arn} exists without this deployment's dxvpn:deployment tag; dxvpn neither adopts nor deletes it"
                ),
            });
        }
        Ok(Some(arn))
    }

    async fn subscriptions(&self, role: &str, arn: &str) -> Result<Vec<Subscribed>, AwsError> {
        let mut pages = self
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(arn)
            .into_paginator()
            .send();
        let mut all = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(api(role, "ListSubscriptionsByTopic"))?;
            for s in page.subscriptions() {
                if s.protocol() != Some("email") {
                    continue;
                }
                all.push(Subscribed {
                    endpoint: s.endpoint().unwrap_or_default().to_owned(),
                    confirmed_arn: s
                        .subscription_arn()
                        .filter(|a| a.starts_with("arn:"))
                        .map(str::to_owned),
                });
            }
        }
        Ok(all)
    }

    /// How the topic differs from the plan: missing, or addresses to subscribe or to remove.
    pub(crate) async fn alert_topic_drift(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<Drift, AwsError> {
        let role = resource.role.as_str();
        let Some(arn) = self.find_topic(plan, role).await? else {
            return Ok(Drift::Missing);
        };
        outputs.set(role, "arn", &arn);
        let (missing, extra) = self.subscription_changes(resource, role, &arn).await?;
        let mut changes = Vec::new();
        if !missing.is_empty() {
            changes.push(FieldChange::new("subscriptions", "", missing.join(", ")));
        }
        if !extra.is_empty() {
            changes.push(FieldChange::new("subscriptions", extra.join(", "), ""));
        }
        Ok(if changes.is_empty() {
            Drift::Same
        } else {
            Drift::Update(changes)
        })
    }

    /// Planned addresses with no subscription, and confirmed subscriptions (by ARN) of
    /// addresses the plan no longer has.
    async fn subscription_changes(
        &self,
        resource: &Resource,
        role: &str,
        arn: &str,
    ) -> Result<(Vec<String>, Vec<String>), AwsError> {
        let Spec::AlertTopic { emails } = &resource.spec else {
            return Ok((Vec::new(), Vec::new()));
        };
        let wanted: BTreeSet<String> = emails.iter().map(|e| e.to_ascii_lowercase()).collect();
        let have = self.subscriptions(role, arn).await?;
        let missing = emails
            .iter()
            .filter(|e| !have.iter().any(|h| h.endpoint.eq_ignore_ascii_case(e)))
            .cloned()
            .collect();
        let extra = have
            .iter()
            .filter(|h| !wanted.contains(&h.endpoint.to_ascii_lowercase()))
            .filter_map(|h| h.confirmed_arn.clone())
            .collect();
        Ok((missing, extra))
    }

    pub(crate) async fn observe_alert_topic(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<bool, AwsError> {
        Ok(matches!(
            self.alert_topic_drift(plan, resource, outputs).await?,
            Drift::Same
        ))
    }

    /// CreateTopic (idempotent by name, with the deployment's tags), then a subscription for
    /// each planned address that has none, and no subscription left for one no longer
    /// planned (once confirmed; a pending one cannot be removed and lapses).
    pub(crate) async fn put_alert_topic(
        &self,
        plan: &Plan,
        resource: &Resource,
    ) -> Result<Option<String>, AwsError> {
        let role = resource.role.as_str();
        let mut create = self.sns.create_topic().name(topic_name(plan));
        for (k, v) in &resource.tags {
            create =
                create.tags(
                    Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .map_err(|e| AwsError::Api {
                            role: role.to_owned(),
                            action: "CreateTopic",
                            code: "InvalidTag".into(),
                            message: e.to_string(),
                        })?,
                );
        }
        let arn = create
            .send()
            .await
            .map_err(api(role, "CreateTopic"))?
            .topic_arn
            .unwrap_or_default();
        let (missing, extra) = self.subscription_changes(resource, role, &arn).await?;
        for email in missing {
            tracing::info!(%role, "subscribing an address; it is asked to confirm");
            self.sns
                .subscribe()
                .topic_arn(&arn)
                .protocol("email")
                .endpoint(email)
                .send()
                .await
                .map_err(api(role, "Subscribe"))?;
        }
        for subscription in extra {
            self.sns
                .unsubscribe()
                .subscription_arn(subscription)
                .send()
                .await
                .map_err(api(role, "Unsubscribe"))?;
        }
        // No id to keep: the topic is found again by its name, and `observe` records its ARN.
        Ok(None)
    }

    /// DeleteTopic (its subscriptions go with it); a topic already gone is done.
    pub(crate) async fn delete_alert_topic(&self, plan: &Plan, role: &str) -> Result<(), AwsError> {
        let Some(arn) = self.find_topic(plan, role).await? else {
            return Ok(());
        };
        self.delete_topic_arn(role, &arn).await
    }

    pub(crate) async fn delete_topic_arn(&self, role: &str, arn: &str) -> Result<(), AwsError> {
        tracing::info!(%role, %arn, "deleting the alert topic");
        self.sns
            .delete_topic()
            .topic_arn(arn)
            .send()
            .await
            .map(drop)
            .map_err(api(role, "DeleteTopic"))
    }

    /// This deployment's topic when the plan has none (alerts.emails emptied).
    pub(crate) async fn alert_topic_strays(&self, plan: &Plan) -> Result<Vec<Stray>, AwsError> {
        let planned = plan
            .resources
            .iter()
            .any(|r| matches!(r.spec, Spec::AlertTopic { .. }));
        if planned {
            return Ok(Vec::new());
        }
        let role = dxvpn_plan::model::ALERT_TOPIC_ROLE;
        Ok(self
            .find_topic(plan, role)
            .await?
            .map(|arn| Stray {
                role: role.to_owned(),
                kind: KIND,
                id: arn,
                reason: format!("{role} is no longer in the plan"),
            })
            .into_iter()
            .collect())
    }
}
