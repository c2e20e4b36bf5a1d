//! The AWS forwarder host of the development DNS path: one EC2 instance at the planned address,
//! in the DNS security group, IMDSv2 only, an encrypted gp3 root volume, its image named by a
//! public SSM parameter (`resolve:ssm:`, so no AMI id is hard-coded), started by the cloud-init
//! user data that `dxvpn_plan::forwarder_host` renders. Found again by its tags, like every
//! other EC2 resource; a terminated instance stays visible for about an hour and never counts.

use std::hash::{Hash, Hasher};
use std::time::{Duration, SystemTime};

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, HttpTokensState, IamInstanceProfileSpecification,
    InstanceMetadataEndpointState, InstanceMetadataOptionsRequest, InstanceType, ResourceType, Tag,
    TagSpecification, VolumeType,
};
use base64::Engine as _;
use dxvpn_plan::model::{Resource, Spec};
use dxvpn_plan::{Cloud, Drift, FieldChange, Plan};

use crate::lookup::{filter, of_deployment, tag_value, tagged_for_vpc};
use crate::{Aws, AwsError, Outputs, Stray, api};

/// The plan's kind name of a forwarder host (its strays' and its state reads' kind).
const KIND: &str = "forwarder_instance";
/// Its role in the plan.
const ROLE: &str = "aws.dns_forwarder";
/// The root volume, as the original module sizes it.
const ROOT_VOLUME_GIB: i32 = 8;
/// Amazon Linux 2023's root device.
const ROOT_DEVICE: &str = "/dev/xvda";
/// States of an instance that holds its address (not on its way out).
const HOLDING: [&str; 4] = ["pending", "running", "stopping", "stopped"];
/// How long a launch waits for a new instance profile to reach EC2: "After you create an IAM
/// role, it may take several seconds for the permissions to propagate. If your first attempt
/// to launch an instance with a role fails, wait a few seconds before trying again" (EC2 user
/// guide, "IAM roles for Amazon EC2"); terraform-provider-aws waits up to 2 minutes
/// (hashicorp/terraform#2037 and its `iamPropagationTimeout`).
const PROFILE_PROPAGATION: Duration = Duration::from_secs(120);
/// Between two launches refused for an unknown profile.
const PROFILE_RETRY: Duration = Duration::from_secs(2);

/// EC2's answer to a profile it does not know yet: `InvalidParameterValue`, "Value (...) for
/// parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name".
fn profile_not_propagated(e: &AwsError) -> bool {
    matches!(e, AwsError::Api { code, message, .. }
        if code == "InvalidParameterValue" && message.contains("iamInstanceProfile"))
}

/// The instance's `ImageId`: an SSM parameter path becomes `resolve:ssm:<path>` ("Use a Systems
/// Manager parameter instead of an AMI ID", EC2 user guide), an AMI id stays as it is.
pub(crate) fn image_id(image: &str) -> String {
    if image.starts_with('/') {
        format!("resolve:ssm:{image}")
    } else {
        image.to_owned()
    }
}

/// A RunInstances idempotency token, new for each run because EC2 answers a token it has seen
/// with the original instance, even a terminated one. It carries the second of the call, so a
/// retry a second later sends another one: the guard against a duplicate is the look by tags
/// before every retry (`Aws::ensure`), the token only covers the SDK's own resend.
fn client_token(plan: &Plan, role: &str, user_data: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&plan.name, &plan.aws.vpc_id, role, user_data).hash(&mut h);
    let started = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    format!("dxvpn-{:016x}-{started}", h.finish())
}

/// The instance's tags and the digest of its user data (`dxvpn_plan::forwarder_host::CONFIG_TAG`).
fn with_config_tag(spec: TagSpecification, user_data: &str) -> TagSpecification {
    let mut tags = spec.tags().to_vec();
    tags.push(
        Tag::builder()
            .key(dxvpn_plan::forwarder_host::CONFIG_TAG)
            .value(dxvpn_plan::forwarder_host::config_digest(user_data))
            .build(),
    );
    TagSpecification::builder()
        .set_resource_type(spec.resource_type().cloned())
        .set_tags(Some(tags))
        .build()
}

/// The host's outputs: its id and address.
fn record(role: &str, host: &ForwarderHostState, outputs: &mut Outputs) {
    outputs.set(role, "id", &host.id);
    if let Some(ip) = &host.private_ip {
        outputs.set(role, "private_ip", ip);
    }
}

/// What DescribeInstances says of a forwarder host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ForwarderHostState {
    /// `i-...`.
    pub id: String,
    /// `pending`, `running`, `stopping` or `stopped`.
    pub state: String,
    /// Its private address.
    pub private_ip: Option<String>,
    /// Its instance type.
    pub instance_type: String,
    /// The digest of the user data it was launched with (its `dxvpn:config` tag).
    pub config: String,
    /// The ARN of its IAM instance profile, if it has one.
    pub instance_profile: Option<String>,
}

impl Aws {
    /// This deployment's forwarder hosts in this VPC that hold their address (not on their way
    /// out), with their role, sorted by role and id; only `role`'s when it is given.
    async fn forwarder_hosts(
        &self,
        plan: &Plan,
        role: Option<&str>,
    ) -> Result<Vec<(String, ForwarderHostState)>, AwsError> {
        let out = self
            .ec2
            .describe_instances()
            .filters(of_deployment(plan))
            .set_filters(role.map(|r| vec![filter("tag:dxvpn:role", &[r])]))
            .filters(tagged_for_vpc(plan))
            .filters(filter("instance-state-name", &HOLDING))
            .send()
            .await
            .map_err(api(role.unwrap_or(ROLE), "DescribeInstances"))?;
        let mut hosts: Vec<(String, ForwarderHostState)> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| {
                let host = ForwarderHostState {
                    id: i.instance_id()?.to_owned(),
                    state: i
                        .state()
                        .and_then(|s| s.name())
                        .map(|n| n.as_str().to_owned())
                        .unwrap_or_default(),
                    private_ip: i.private_ip_address().map(str::to_owned),
                    instance_type: i
                        .instance_type()
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                    config: tag_value(i.tags(), dxvpn_plan::forwarder_host::CONFIG_TAG)
                        .unwrap_or_default()
                        .to_owned(),
                    instance_profile: i
                        .iam_instance_profile()
                        .and_then(|p| p.arn())
                        .map(str::to_owned),
                };
                Some((tag_value(i.tags(), "dxvpn:role")?.to_owned(), host))
            })
            .collect();
        hosts.sort_by(|a, b| (&a.0, &a.1.id).cmp(&(&b.0, &b.1.id)));
        Ok(hosts)
    }

    /// This deployment's forwarder host of `role` that holds its address, if any (the lowest
    /// id of several, as every lookup here).
    pub(crate) async fn find_forwarder_host(
        &self,
        plan: &Plan,
        role: &str,
    ) -> Result<Option<ForwarderHostState>, AwsError> {
        let hosts = self.forwarder_hosts(plan, Some(role)).await?;
        Ok(hosts.into_iter().next().map(|(_, host)| host))
    }

    /// The forwarder host `up` created for this plan, if the plan has one and it exists.
    pub async fn forwarder_host(
        &self,
        plan: &Plan,
    ) -> Result<Option<ForwarderHostState>, AwsError> {
        match plan.forwarder_instance(Cloud::Aws) {
            Some(r) => self.find_forwarder_host(plan, &r.role).await,
            None => Ok(None),
        }
    }

    pub(crate) async fn observe_forwarder_host(
        &self,
        plan: &Plan,
        role: &str,
        outputs: &mut Outputs,
    ) -> Result<bool, AwsError> {
        let Some(host) = self.find_forwarder_host(plan, role).await? else {
            return Ok(false);
        };
        record(role, &host, outputs);
        Ok(true)
    }

    /// Launches the host and answers its instance id.
    pub(crate) async fn create_forwarder_host(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &Outputs,
    ) -> Result<Option<String>, AwsError> {
        let role = resource.role.as_str();
        let Spec::ForwarderInstance {
            ip,
            subnet_id,
            instance_type,
            image,
            instance_profile,
            setup,
        } = &resource.spec
        else {
            return Ok(None);
        };
        let group = outputs.need(role, "aws.dns_security_group", "id")?;
        let user_data = dxvpn_plan::forwarder_host::user_data(&plan.name, setup);
        tracing::info!(%role, %ip, %instance_type, "launching the forwarder host");
        let launch = self
            .ec2
            .run_instances()
            .image_id(image_id(image))
            .instance_type(InstanceType::from(instance_type.as_str()))
            .min_count(1)
            .max_count(1)
            .subnet_id(subnet_id)
            .private_ip_address(ip.to_string())
            .security_group_ids(&group)
            .set_iam_instance_profile(instance_profile.as_ref().map(|name| {
                IamInstanceProfileSpecification::builder()
                    .name(name)
                    .build()
            }))
            .user_data(base64::engine::general_purpose::STANDARD.encode(&user_data))
            .metadata_options(
                InstanceMetadataOptionsRequest::builder()
                    .http_tokens(HttpTokensState::Required)
                    .http_endpoint(InstanceMetadataEndpointState::Enabled)
                    .http_put_response_hop_limit(1)
                    .build(),
            )
            .block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name(ROOT_DEVICE)
                    .ebs(
                        EbsBlockDevice::builder()
                            .volume_size(ROOT_VOLUME_GIB)
                            .volume_type(VolumeType::Gp3)
                            .encrypted(true)
                            .delete_on_termination(true)
                            .build(),
                    )
                    .build(),
            )
            .tag_specifications(with_config_tag(
                Self::tag_spec(resource, ResourceType::Instance),
                &user_data,
            ))
            .tag_specifications(Self::tag_spec(resource, ResourceType::Volume));
        // A launch EC2 refuses for a profile it does not know yet created nothing: try again.
        let started = std::time::Instant::now();
        let out = loop {
            match launch
                .clone()
                .client_token(client_token(plan, role, &user_data))
                .send()
                .await
                .map_err(api(role, "RunInstances"))
            {
                Err(e) if profile_not_propagated(&e) && started.elapsed() < PROFILE_PROPAGATION => {
                    tracing::info!(%role, "EC2 does not know the new instance profile yet; trying again");
                    tokio::time::sleep(PROFILE_RETRY).await;
                }
                other => break other?,
            }
        };
        Ok(out
            .instances()
            .first()
            .and_then(|i| i.instance_id())
            .map(str::to_owned))
    }

    /// Waits until the host is `running` (cloud-init then starts the forwarder).
    pub(crate) async fn wait_forwarder_host(
        &self,
        plan: &Plan,
        role: &str,
        outputs: &mut Outputs,
    ) -> Result<(), AwsError> {
        let id = outputs.need(role, role, "id")?;
        self.wait(role, "running", || async {
            match self.state_of(role, KIND, &id).await?.as_deref() {
                Some("running") => Ok(true),
                Some("pending") | None => Ok(false),
                Some(other) => Err(AwsError::Api {
                    role: role.to_owned(),
                    action: "DescribeInstances",
                    code: format!("instance {other}"),
                    message: format!("the forwarder host {id} is {other}; run `dxvpn up` again"),
                }),
            }
        })
        .await?;
        let planned = match plan.resource(role).map(|r| &r.spec) {
            Some(Spec::ForwarderInstance {
                instance_profile, ..
            }) => instance_profile.as_deref(),
            _ => None,
        };
        let Some(host) = self.find_forwarder_host(plan, role).await? else {
            return Ok(());
        };
        if same_profile(host.instance_profile.as_deref(), planned) {
            record(role, &host, outputs);
            return Ok(());
        }
        self.set_profile(role, &host.id, planned).await?;
        self.observe_forwarder_host(plan, role, outputs)
            .await
            .map(drop)
    }

    /// Gives running instance `id` the planned profile in place (or takes its profile away):
    /// associate, replace or disassociate, then wait until EC2 says it is done.
    async fn set_profile(
        &self,
        role: &str,
        id: &str,
        planned: Option<&str>,
    ) -> Result<(), AwsError> {
        let current = self
            .ec2
            .describe_iam_instance_profile_associations()
            .filters(filter("instance-id", &[id]))
            .filters(filter("state", &["associating", "associated"]))
            .send()
            .await
            .map_err(api(role, "DescribeIamInstanceProfileAssociations"))?
            .iam_instance_profile_associations()
            .first()
            .and_then(|a| a.association_id())
            .map(str::to_owned);
        let spec = |name: &str| {
            IamInstanceProfileSpecification::builder()
                .name(name)
                .build()
        };
        let started = std::time::Instant::now();
        tracing::info!(%role, %id, profile = planned.unwrap_or("none"), "changing the forwarder host's instance profile in place");
        loop {
            let done = match (&current, planned) {
                (None, Some(name)) => self
                    .ec2
                    .associate_iam_instance_profile()
                    .instance_id(id)
                    .iam_instance_profile(spec(name))
                    .send()
                    .await
                    .map(drop)
                    .map_err(api(role, "AssociateIamInstanceProfile")),
                (Some(association), Some(name)) => self
                    .ec2
                    .replace_iam_instance_profile_association()
                    .association_id(association)
                    .iam_instance_profile(spec(name))
                    .send()
                    .await
                    .map(drop)
                    .map_err(api(role, "ReplaceIamInstanceProfileAssociation")),
                (Some(association), None) => self
                    .ec2
                    .disassociate_iam_instance_profile()
                    .association_id(association)
                    .send()
                    .await
                    .map(drop)
                    .map_err(api(role, "DisassociateIamInstanceProfile")),
                (None, None) => Ok(()),
            };
            match done {
                // A new profile EC2 does not know yet: as at launch, try again.
                Err(e) if profile_not_propagated(&e) && started.elapsed() < PROFILE_PROPAGATION => {
                    tokio::time::sleep(PROFILE_RETRY).await;
                }
                other => break other?,
            }
        }
        self.wait(role, "instance profile changed", || async {
            let states: Vec<String> = self
                .ec2
                .describe_iam_instance_profile_associations()
                .filters(filter("instance-id", &[id]))
                .send()
                .await
                .map_err(api(role, "DescribeIamInstanceProfileAssociations"))?
                .iam_instance_profile_associations()
                .iter()
                .filter_map(|a| a.state().map(|s| s.as_str().to_owned()))
                .collect();
            let settling = states
                .iter()
                .any(|s| s == "associating" || s == "disassociating");
            let holds = states.iter().any(|s| s == "associated");
            Ok(!settling && holds == planned.is_some())
        })
        .await
    }

    /// Terminates instance `id` and waits until it is terminated.
    pub(crate) async fn terminate(&self, role: &str, id: &str) -> Result<(), AwsError> {
        tracing::info!(%role, %id, "terminating the forwarder host");
        self.ec2
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await
            .map(drop)
            .map_err(api(role, "TerminateInstances"))
            .or_else(crate::gone_is_done)?;
        self.wait(role, "terminated", || async {
            Ok(matches!(
                self.state_of(role, KIND, id).await?.as_deref(),
                Some("terminated") | None
            ))
        })
        .await
    }
}

impl Aws {
    /// How the host differs from the plan. An instance runs its user data at its first boot
    /// only, and its type changes only while it is stopped: either difference is a new host.
    pub(crate) async fn forwarder_host_drift(
        &self,
        plan: &Plan,
        resource: &Resource,
        outputs: &mut Outputs,
    ) -> Result<Drift, AwsError> {
        let role = resource.role.as_str();
        let Spec::ForwarderInstance {
            instance_type,
            instance_profile,
            setup,
            ..
        } = &resource.spec
        else {
            return Ok(Drift::Same);
        };
        let Some(host) = self.find_forwarder_host(plan, role).await? else {
            return Ok(Drift::Missing);
        };
        record(role, &host, outputs);
        let planned = dxvpn_plan::forwarder_host::config_digest(
            &dxvpn_plan::forwarder_host::user_data(&plan.name, setup),
        );
        Ok(if host.instance_type != *instance_type {
            Drift::Replace {
                field: FieldChange::new("instance_type", &host.instance_type, instance_type),
                rule: "an instance's type changes only while it is stopped; dxvpn launches a new forwarder host instead".into(),
            }
        } else if host.config != planned {
            Drift::Replace {
                field: FieldChange::new("user_data", &host.config, &planned),
                rule: "an instance runs its user data at its first boot only: the new forwarder configuration needs a new host (as the original module's user_data_replace_on_change)".into(),
            }
        } else if !same_profile(
            host.instance_profile.as_deref(),
            instance_profile.as_deref(),
        ) {
            // EC2 associates, replaces and disassociates a running instance's profile in place.
            Drift::Update(vec![FieldChange::new(
                "instance_profile",
                host.instance_profile.as_deref().unwrap_or("(none)"),
                instance_profile.as_deref().unwrap_or("(none)"),
            )])
        } else {
            Drift::Same
        })
    }

    /// This deployment's forwarder hosts in this VPC that the plan does not keep: one whose
    /// role the plan has no created host for, or a second of one role (the lowest id stays).
    pub(crate) async fn forwarder_host_strays(&self, plan: &Plan) -> Result<Vec<Stray>, AwsError> {
        let found = self.forwarder_hosts(plan, None).await?;
        let planned = |role: &str| {
            plan.resource(role)
                .is_some_and(|r| matches!(r.spec, Spec::ForwarderInstance { .. }))
        };
        let mut strays = Vec::new();
        for (n, (role, host)) in found.iter().enumerate() {
            let first_of_role = found.iter().position(|(r, _)| r == role) == Some(n);
            let reason = if !planned(role) {
                format!("{role} is no longer a forwarder host dxvpn creates")
            } else if !first_of_role {
                format!("a second {role} of this deployment (two runs raced); the other one stays")
            } else {
                continue;
            };
            strays.push(Stray {
                role: role.clone(),
                kind: KIND,
                id: host.id.clone(),
                reason,
            });
        }
        Ok(strays)
    }
}

/// Whether an instance's profile (its ARN, `arn:aws:iam::<account>:instance-profile/<path><name>`)
/// is the planned one (by name).
fn same_profile(arn: Option<&str>, planned: Option<&str>) -> bool {
    match (arn, planned) {
        (None, None) => true,
        (Some(arn), Some(name)) => arn.rsplit('/').next() == Some(name),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parameter_path_is_resolved_by_ec2_and_an_ami_id_is_kept() {
        assert_eq!(
            image_id("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"),
            "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
        );
        assert_eq!(image_id("ami-0123456789abcdef0"), "ami-0123456789abcdef0");
    }

    #[test]
    fn a_profile_is_matched_by_the_last_part_of_its_arn() {
        let arn = "arn:aws:iam::123456789012:instance-profile/dxvpn/dx-dns-forwarder-0abc";
        assert!(same_profile(Some(arn), Some("dx-dns-forwarder-0abc")));
        assert!(!same_profile(Some(arn), Some("other")));
        assert!(!same_profile(Some(arn), None));
        assert!(!same_profile(None, Some("dx-dns-forwarder-0abc")));
        assert!(same_profile(None, None));
    }
}
