//! The AWS forwarder host's IAM instance profile: a role that EC2 may assume, with AWS managed
//! policies attached (`AmazonSSMManagedInstanceCore`, so that Session Manager reaches the host
//! as in the original module), in an instance profile of the same name.
//!
//! IAM names are unique in the account, and a create under a name that exists answers
//! `EntityAlreadyExists`: the name is the idempotency, so a retried or re-run create finishes
//! what an earlier one began (role, policies, profile, the role in the profile). A name that
//! exists without this deployment's tags is someone else's and is never adopted or deleted.
//! IAM is eventually consistent ("Troubleshoot IAM: changes that I make are not always
//! immediately visible"): EC2 may refuse a new profile for some seconds, which the host's
//! launch waits out (`forwarder_host.rs`).

use aws_sdk_iam::types::Tag;
use dxvpn_plan::model::{Resource, Spec};
use dxvpn_plan::{Drift, FieldChange, Plan};

use crate::{Aws, AwsError, Outputs, Stray, api, gone_is_done};

/// The plan's kind name (its strays' kind).
pub(crate) const KIND: &str = "instance_profile";
/// Where dxvpn keeps its roles and profiles in IAM (`aws iam list-roles --path-prefix /dxvpn/`).
const PATH: &str = "/dxvpn/";
/// Who may assume the role: EC2, for the instance the profile is attached to ("Use an IAM role
/// to grant permissions to applications running on Amazon EC2 instances", IAM user guide).
const TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// What IAM holds under the planned name.
#[derive(Debug, Default)]
struct Found {
    /// The role exists with this deployment's tags.
    role: bool,
    /// The profile exists with this deployment's tags.
    profile: bool,
    /// The profile holds the role.
    role_in_profile: bool,
    /// The profile's ARN.
    arn: Option<String>,
}

/// The code of a name someone else holds ([`not_ours`]).
const NAME_TAKEN: &str = "NameTaken";

fn is_missing(e: &AwsError) -> bool {
    matches!(e, AwsError::Api { code, .. } if crate::is_gone(code))
}

fn is_someone_elses(e: &AwsError) -> bool {
    matches!(e, AwsError::Api { code, .. } if code == NAME_TAKEN)
}

/// A create under a name that exists (a lost answer's retry, or an earlier run's): done, and
/// the look by tags that follows tells whether it is this deployment's.
fn existing_is_done(e: AwsError) -> Result<(), AwsError> {
    match &e {
        AwsError::Api { code, .. } if code == "EntityAlreadyExists" => Ok(()),
        _ => Err(e),
    }
}

/// A name that exists in IAM without this deployment's tags.
fn not_ours(role: &str, what: &str, name: &str) -> AwsError {
    AwsError::Api {
        role: role.to_owned(),
        action: "GetInstanceProfile",
        code: NAME_TAKEN.into(),
        message: format!(
            "an IAM {what} named {name} exists but is not this deployment's (no matching dxvpn:deployment and dxvpn:vpc tags); fix: delete or rename it, or set dns.aws_forwarder_instance_profile to its instance profile's name to use it as it is"
        ),
    }
}

impl Aws {
    /// The tags of `resource` in IAM's words.
    fn iam_tags(resource: &Resource) -> Vec<Tag> {
        resource
            .tags
            .iter()
            .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
            .collect()
    }

    /// Whether `tags` mark a resource of this deployment in this VPC.
    fn ours(plan: &Plan, tags: &[Tag]) -> bool {
        let tag = |key: &str| tags.iter().find(|t| t.key() == key).map(Tag::value);
        tag("dxvpn:deployment") == Some(plan.name.as_str())
            && tag("dxvpn:vpc") == Some(plan.aws.vpc_id.as_str())
    }

    /// Reads the role and the profile named `name`; an error when either is someone else's.
    async fn find_profile(&self, plan: &Plan, role: &str, name: &str) -> Result<Found, AwsError> {
        let mut found = Found::default();
        // Both reads at once; the role's answer is judged first, as before.
        let (role_answer, profile_answer) = tokio::join!(
            self.iam.get_role().role_name(name).send(),
            self.iam
                .get_instance_profile()
                .instance_profile_name(name)
                .send(),
        );
        match role_answer.map_err(api(role, "GetRole")) {
            Ok(out) => {
                if !out.role().is_some_and(|r| Self::ours(plan, r.tags())) {
                    return Err(not_ours(role, "role", name));
                }
                found.role = true;
            }
            Err(e) if is_missing(&e) => {}
            Err(e) => return Err(e),
        }
        match profile_answer.map_err(api(role, "GetInstanceProfile")) {
            Ok(out) => {
                let Some(profile) = out.instance_profile() else {
                    return Ok(found);
                };
                if !Self::ours(plan, profile.tags()) {
                    return Err(not_ours(role, "instance profile", name));
                }
                found.profile = true;
                found.role_in_profile = profile.roles().iter().any(|r| r.role_name() == name);
                found.arn = Some(profile.arn().to_owned());
            }
            Err(e) if is_missing(&e) => {}
            Err(e) => return Err(e),
        }
        Ok(found)
    }

    /// The managed policies attached to role `name`, by ARN.
    async fn attached_policies(&self, role: &str, name: &str) -> Result<Vec<String>, AwsError> {
        let mut arns = Vec::new();
        let mut pages = self
            .iam
            .list_attached_role_policies()
            .role_name(name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(api(role, "ListAttachedRolePolicies"))?;
            arns.extend(
                page.attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn().map(str::to_owned)),
            );
        }
        Ok(arns)
    }

    /// The profile exists, holds its role, and is this deployment's.
    pub(crate) async fn observe_instance_profile(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<bool, AwsError> {
        let Spec::InstanceProfile { name, .. } = &resource.spec else {
            return Ok(false);
        };
        let role = resource.role.as_str();
        let found = self.find_profile(plan, role, name).await?;
        if found.role && found.profile && found.role_in_profile {
            outputs.set(role, "id", name);
            if let Some(arn) = &found.arn {
                outputs.set(role, "arn", arn);
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// Creates what is missing of the role, its policies, the profile and the role in it, in
    /// that order (a profile that holds the role had its policies attached first). Answers the
    /// name, the profile's id in dxvpn's outputs.
    pub(crate) async fn create_instance_profile(
        &self,
        plan: &Plan,
        resource: &Resource,
    ) -> Result<Option<String>, AwsError> {
        let Spec::InstanceProfile { name, policy_arns } = &resource.spec else {
            return Ok(None);
        };
        let role = resource.role.as_str();
        let found = self.find_profile(plan, role, name).await?;
        let description = format!(
            "dxvpn {}: the DNS forwarder host's role (Session Manager)",
            plan.name
        );
        if !found.role {
            tracing::info!(%role, %name, "creating the forwarder host's IAM role");
            self.iam
                .create_role()
                .role_name(name)
                .path(PATH)
                .assume_role_policy_document(TRUST_POLICY)
                .description(description)
                .set_tags(Some(Self::iam_tags(resource)))
                .send()
                .await
                .map(drop)
                .map_err(api(role, "CreateRole"))
                .or_else(existing_is_done)?;
        }
        // Reads may not show a new role yet, writes do: attach without listing first (an
        // attached policy attached again changes nothing).
        for arn in policy_arns {
            self.iam
                .attach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map(drop)
                .map_err(api(role, "AttachRolePolicy"))?;
        }
        if !found.profile {
            tracing::info!(%role, %name, "creating the forwarder host's instance profile");
            self.iam
                .create_instance_profile()
                .instance_profile_name(name)
                .path(PATH)
                .set_tags(Some(Self::iam_tags(resource)))
                .send()
                .await
                .map(drop)
                .map_err(api(role, "CreateInstanceProfile"))
                .or_else(existing_is_done)?;
        }
        if !found.role_in_profile {
            // A read that lagged may have missed the role already in it: IAM then answers
            // LimitExceeded, and `ensure` observes the whole profile before trying again.
            self.iam
                .add_role_to_instance_profile()
                .instance_profile_name(name)
                .role_name(name)
                .send()
                .await
                .map(drop)
                .map_err(api(role, "AddRoleToInstanceProfile"))?;
        }
        Ok(Some(name.clone()))
    }

    /// Attaches the policies of `wanted` that role `name` lacks.
    async fn attach_missing_policies(
        &self,
        role: &str,
        name: &str,
        wanted: &[String],
    ) -> Result<(), AwsError> {
        let attached = self.attached_policies(role, name).await?;
        for arn in wanted.iter().filter(|a| !attached.contains(a)) {
            tracing::info!(%role, %name, policy = %arn, "attaching a managed policy");
            self.iam
                .attach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map(drop)
                .map_err(api(role, "AttachRolePolicy"))?;
        }
        Ok(())
    }

    /// An existing profile's role gets the planned policies it lacks (`diff`'s update).
    pub(crate) async fn wait_instance_profile(&self, resource: &Resource) -> Result<(), AwsError> {
        let Spec::InstanceProfile { name, policy_arns } = &resource.spec else {
            return Ok(());
        };
        self.attach_missing_policies(&resource.role, name, policy_arns)
            .await
    }

    /// How the profile differs from the plan: missing, or its role lacks a planned policy.
    pub(crate) async fn instance_profile_drift(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<Drift, AwsError> {
        let Spec::InstanceProfile { name, policy_arns } = &resource.spec else {
            return Ok(Drift::Same);
        };
        // The policies are read beside the profile: a missing role fails that read, and the
        // drift is then `Missing` whatever it says.
        let (seen, attached) = tokio::join!(
            self.observe_instance_profile(plan, resource, outputs),
            self.attached_policies(&resource.role, name),
        );
        if !seen? {
            return Ok(Drift::Missing);
        }
        let attached = attached?;
        let lacking: Vec<&String> = policy_arns
            .iter()
            .filter(|a| !attached.contains(a))
            .collect();
        Ok(if lacking.is_empty() {
            Drift::Same
        } else {
            Drift::Update(vec![FieldChange::new(
                "policy_arns",
                attached.join(", "),
                policy_arns.join(", "),
            )])
        })
    }

    /// Takes the profile apart and deletes it and its role, each step skipped when done (the
    /// order IAM demands: "you must first remove the role from the instance profile", and a
    /// role "must not have any policies attached", IAM API reference, DeleteRole). Someone
    /// else's name is left alone.
    pub(crate) async fn delete_instance_profile(
        &self,
        plan: &Plan,
        role: &str,
        name: &str,
    ) -> Result<(), AwsError> {
        let found = match self.find_profile(plan, role, name).await {
            Err(e) if is_someone_elses(&e) => {
                tracing::warn!(%role, %name, "not this deployment's; left alone");
                return Ok(());
            }
            other => other?,
        };
        if found.role_in_profile {
            self.iam
                .remove_role_from_instance_profile()
                .instance_profile_name(name)
                .role_name(name)
                .send()
                .await
                .map(drop)
                .map_err(api(role, "RemoveRoleFromInstanceProfile"))
                .or_else(gone_is_done)?;
        }
        if found.profile {
            tracing::info!(%role, %name, "deleting the instance profile");
            self.iam
                .delete_instance_profile()
                .instance_profile_name(name)
                .send()
                .await
                .map(drop)
                .map_err(api(role, "DeleteInstanceProfile"))
                .or_else(gone_is_done)?;
        }
        if found.role {
            for arn in self.attached_policies(role, name).await? {
                self.iam
                    .detach_role_policy()
                    .role_name(name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map(drop)
                    .map_err(api(role, "DetachRolePolicy"))
                    .or_else(gone_is_done)?;
            }
            tracing::info!(%role, %name, "deleting the IAM role");
            self.iam
                .delete_role()
                .role_name(name)
                .send()
                .await
                .map(drop)
                .map_err(api(role, "DeleteRole"))
                .or_else(gone_is_done)?;
        }
        Ok(())
    }

    /// The profile `up` would have made for this deployment when the plan makes none (the DNS
    /// mode changed, a forwarder address or profile name is given now): a stray.
    pub(crate) async fn instance_profile_strays(
        &self,
        plan: &Plan,
    ) -> Result<Vec<Stray>, AwsError> {
        if plan
            .resources
            .iter()
            .any(|r| matches!(r.spec, Spec::InstanceProfile { .. }))
        {
            return Ok(Vec::new());
        }
        let role = dxvpn_plan::forwarder_host::AWS_PROFILE_ROLE;
        let name = dxvpn_plan::forwarder_host::aws_profile_name(&plan.name, &plan.aws.vpc_id);
        let found = match self.find_profile(plan, role, &name).await {
            Err(e) if is_someone_elses(&e) => return Ok(Vec::new()),
            other => other?,
        };
        Ok(if found.role || found.profile {
            vec![Stray {
                role: role.to_owned(),
                kind: KIND,
                id: name,
                reason: format!("{role} is no longer in the plan (its forwarder host is gone)"),
            }]
        } else {
            Vec::new()
        })
    }
}
