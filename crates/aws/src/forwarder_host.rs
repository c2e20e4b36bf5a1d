//! The AWS forwarder host of the development DNS path: one EC2 instance at the planned address,
//! in the DNS security group, IMDSv2 only, an encrypted gp3 root volume, its image named by a
//! public SSM parameter (`resolve:ssm:`, so no AMI id is hard-coded), started by the cloud-init
//! user data that `dxvpn_plan::forwarder_host` renders. Found again by its tags, like every
//! other EC2 resource; a terminated instance stays visible for about an hour and never counts.

use std::hash::{Hash, Hasher};
use std::time::{Duration, SystemTime};

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, HttpTokensState, InstanceMetadataEndpointState,
    InstanceMetadataOptionsRequest, InstanceType, ResourceType, VolumeType,
};
use base64::Engine as _;
use dxvpn_plan::Plan;
use dxvpn_plan::model::{Resource, Spec};

use crate::lookup::{filter, of_deployment, tagged_for_vpc};
use crate::{Aws, AwsError, Outputs, api};

/// The root volume, as the original module sizes it.
const ROOT_VOLUME_GIB: i32 = 8;
/// Amazon Linux 2023's root device.
const ROOT_DEVICE: &str = "/dev/xvda";
/// States of an instance that holds its address (not on its way out).
const HOLDING: [&str; 4] = ["pending", "running", "stopping", "stopped"];

/// The instance's `ImageId`: an SSM parameter path becomes `resolve:ssm:<path>` ("Use a Systems
/// Manager parameter instead of an AMI ID", EC2 user guide), an AMI id stays as it is.
pub(crate) fn image_id(image: &str) -> String {
    if image.starts_with('/') {
        format!("resolve:ssm:{image}")
    } else {
        image.to_owned()
    }
}

/// A RunInstances idempotency token: the same for every retry of one run's create (so a lost
/// answer never makes a second instance), new for each run, because EC2 answers a token it has
/// seen with the original instance, even a terminated one.
fn client_token(plan: &Plan, role: &str, user_data: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&plan.name, &plan.aws.vpc_id, role, user_data).hash(&mut h);
    let started = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    format!("dxvpn-{:016x}-{started}", h.finish())
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
}

impl Aws {
    /// This deployment's forwarder host that holds its address, if any (the lowest id of
    /// several, as every lookup here).
    pub(crate) async fn find_forwarder_host(
        &self,
        plan: &Plan,
        role: &str,
    ) -> Result<Option<ForwarderHostState>, AwsError> {
        let out = self
            .ec2
            .describe_instances()
            .filters(of_deployment(plan))
            .filters(filter("tag:dxvpn:role", &[role]))
            .filters(tagged_for_vpc(plan))
            .filters(filter("instance-state-name", &HOLDING))
            .send()
            .await
            .map_err(api(role, "DescribeInstances"))?;
        Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| {
                Some(ForwarderHostState {
                    id: i.instance_id()?.to_owned(),
                    state: i
                        .state()
                        .and_then(|s| s.name())
                        .map(|n| n.as_str().to_owned())
                        .unwrap_or_default(),
                    private_ip: i.private_ip_address().map(str::to_owned),
                })
            })
            .min_by(|a, b| a.id.cmp(&b.id)))
    }

    /// The forwarder host `up` created for this plan, if the plan has one and it exists.
    pub async fn forwarder_host(
        &self,
        plan: &Plan,
    ) -> Result<Option<ForwarderHostState>, AwsError> {
        let Some(r) = plan
            .resources
            .iter()
            .find(|r| matches!(r.spec, Spec::ForwarderInstance { .. }))
        else {
            return Ok(None);
        };
        self.find_forwarder_host(plan, &r.role).await
    }

    /// The state of instance `id`: `None` while reads have not caught up with its launch, or
    /// once it is gone from them.
    async fn instance_state(&self, role: &str, id: &str) -> Result<Option<String>, AwsError> {
        let out = self.ec2.describe_instances().instance_ids(id).send().await;
        let out = match out.map_err(api(role, "DescribeInstances")) {
            Ok(out) => out,
            Err(AwsError::Api { code, .. }) if crate::is_gone(&code) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find_map(|i| {
                i.state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_owned())
            }))
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
        outputs.set(role, "id", &host.id);
        if let Some(ip) = &host.private_ip {
            outputs.set(role, "private_ip", ip);
        }
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
            setup,
        } = &resource.spec
        else {
            return Ok(None);
        };
        let group = outputs.need(role, "aws.dns_security_group", "id")?;
        let user_data = dxvpn_plan::forwarder_host::user_data(&plan.name, setup);
        tracing::info!(%role, %ip, %instance_type, "launching the forwarder host");
        let out = self
            .ec2
            .run_instances()
            .image_id(image_id(image))
            .instance_type(InstanceType::from(instance_type.as_str()))
            .min_count(1)
            .max_count(1)
            .subnet_id(subnet_id)
            .private_ip_address(ip.to_string())
            .security_group_ids(&group)
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
            .tag_specifications(Self::tag_spec(resource, ResourceType::Instance))
            .tag_specifications(Self::tag_spec(resource, ResourceType::Volume))
            .client_token(client_token(plan, role, &user_data))
            .send()
            .await
            .map_err(api(role, "RunInstances"))?;
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
            match self.instance_state(role, &id).await?.as_deref() {
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
        self.observe_forwarder_host(plan, role, outputs)
            .await
            .map(drop)
    }

    /// Terminates the host and waits until it is terminated.
    pub(crate) async fn delete_forwarder_host(
        &self,
        plan: &Plan,
        role: &str,
    ) -> Result<(), AwsError> {
        let found =
            crate::lookup::until_found(self.unsettled(), || self.find_forwarder_host(plan, role))
                .await?;
        let Some(host) = found else {
            return Ok(());
        };
        tracing::info!(%role, id = %host.id, "terminating the forwarder host");
        self.ec2
            .terminate_instances()
            .instance_ids(&host.id)
            .send()
            .await
            .map(drop)
            .map_err(api(role, "TerminateInstances"))
            .or_else(crate::gone_is_done)?;
        self.wait(role, "terminated", || async {
            Ok(matches!(
                self.instance_state(role, &host.id).await?.as_deref(),
                Some("terminated") | None
            ))
        })
        .await
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
}
