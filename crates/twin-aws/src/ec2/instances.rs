//! EC2 instances: the subset a forwarder host needs (RunInstances, DescribeInstances,
//! TerminateInstances), with the rules EC2 documents (EC2 API reference for each action;
//! "Instance lifecycle" in the EC2 user guide) and the images that the public SSM parameters
//! name (`crate::ssm`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::{Ec2, Ec2Error, Params, Xml, err, now_iso, required, select, tag_field};

/// "pending" to "running" and "shutting-down" to "terminated" ("Amazon EC2 instance state
/// changes", EC2 user guide). EC2 documents no duration for either; these are guesses at the
/// usual tens of seconds of a small Linux instance, scaled like every other duration.
const BOOT: Duration = Duration::from_secs(30);
const SHUTDOWN: Duration = Duration::from_secs(40);
/// "Terminated instances remain visible after termination (for approximately one hour)"
/// (EC2 user guide, "Terminate Amazon EC2 instances").
const VISIBLE_AFTER_TERMINATION: Duration = Duration::from_secs(3600);
/// RunInstances: "User data is limited to 16 KB", before base64 (EC2 API reference).
const USER_DATA_MAX: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub(super) struct Instance {
    pub(super) id: String,
    reservation_id: String,
    image_id: String,
    instance_type: String,
    pub(super) subnet_id: String,
    pub(super) vpc_id: String,
    pub(super) private_ip: Ipv4Addr,
    pub(super) security_groups: Vec<String>,
    /// Decoded; DescribeInstances never shows it (DescribeInstanceAttribute would).
    pub(super) user_data: String,
    http_tokens: String,
    /// Its IAM instance profile associations (`profile_associations`), the current one last.
    pub(super) associations: Vec<super::profile_associations::Association>,
    client_token: Option<String>,
    /// What the request asked for, to tell a retry from another request under the same token.
    request_print: String,
    launched: Instant,
    launch_time: String,
    boot: Duration,
    terminated: Option<Instant>,
    shutdown: Duration,
    /// The create's read lag ("Eventual consistency in the Amazon EC2 API": RunInstances is the
    /// guide's own example of an id that Describe does not know yet).
    lag: Duration,
    pub(super) tags: BTreeMap<String, String>,
}

impl Instance {
    /// (code, name) of the documented instance states.
    pub(super) fn state(&self) -> (u8, &'static str) {
        match self.terminated {
            Some(at) if at.elapsed() >= self.shutdown => (48, "terminated"),
            Some(_) => (32, "shutting-down"),
            None if self.launched.elapsed() >= self.boot => (16, "running"),
            None => (0, "pending"),
        }
    }

    pub(super) fn visible(&self) -> bool {
        self.launched.elapsed() >= self.lag
            && self
                .terminated
                .is_none_or(|at| at.elapsed() < self.shutdown + VISIBLE_AFTER_TERMINATION)
    }

    /// Holds its address and its security groups until it is terminated.
    pub(super) fn holds_resources(&self) -> bool {
        self.state().1 != "terminated"
    }
}

impl Ec2 {
    pub(super) fn run_instances(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let associations: Vec<_> = self
            .launch_profile
            .take()
            .map(|profile| self.launch_association(profile))
            .into_iter()
            .collect();
        for count in ["MinCount", "MaxCount"] {
            if required(p, count)? != "1" {
                return Err(err(
                    "InvalidParameterValue",
                    format!("the dxvpn AWS twin launches one instance at a time ({count})"),
                ));
            }
        }
        let print = p.print_without("ClientToken");
        let client_token = p.get("ClientToken").map(str::to_owned);
        if let Some(token) = &client_token
            && let Some(same) = self
                .instances
                .iter()
                .find(|i| i.client_token.as_ref() == Some(token))
        {
            // "If you repeat the request with the same client token and the same parameters,
            // the original result is returned" (EC2 API reference, "Ensuring idempotency").
            if same.request_print != print {
                return Err(err(
                    "IdempotentParameterMismatch",
                    "The client token you have provided is associated with a resource that is already deleted or has different parameters.",
                ));
            }
            let same = same.clone();
            return Ok(self.reservation_xml(&same));
        }
        let image_id = self.resolve_image(required(p, "ImageId")?)?;
        if !self.images.values().any(|ami| *ami == image_id) {
            return Err(err(
                "InvalidAMIID.NotFound",
                format!("The image id '[{image_id}]' does not exist"),
            ));
        }
        // "Default: m1.small" (EC2 API reference, RunInstances InstanceType).
        let instance_type = p.get("InstanceType").unwrap_or("m1.small").to_owned();
        let subnet_id = required(p, "SubnetId")?.to_owned();
        let (vpc_id, cidr) = self
            .subnets
            .iter()
            .find(|s| s.id == subnet_id)
            .map(|s| (s.vpc_id.clone(), s.cidr))
            .ok_or_else(|| {
                err(
                    "InvalidSubnetID.NotFound",
                    format!("The subnet ID '{subnet_id}' does not exist"),
                )
            })?;
        let private_ip = match p.get("PrivateIpAddress") {
            Some(text) => self.check_private_ip(text, cidr, &subnet_id)?,
            None => self.free_ip(cidr)?,
        };
        let security_groups = p.list("SecurityGroupId");
        for g in &security_groups {
            if !self
                .security_groups
                .iter()
                .any(|s| s.id == *g && s.vpc_id == vpc_id)
            {
                return Err(err(
                    "InvalidGroup.NotFound",
                    format!("The security group '{g}' does not exist in VPC '{vpc_id}'"),
                ));
            }
        }
        let user_data = match p.get("UserData") {
            None => String::new(),
            Some(b64) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|_| {
                        err(
                            "InvalidParameterValue",
                            "Invalid BASE64 encoding of user data.",
                        )
                    })?;
                if bytes.len() > USER_DATA_MAX {
                    return Err(err(
                        "InvalidParameterValue",
                        format!("User data is limited to {USER_DATA_MAX} bytes"),
                    ));
                }
                String::from_utf8_lossy(&bytes).into_owned()
            }
        };
        // Without HttpTokens, an image whose ImdsSupport is v2.0 gets "required" (EC2 API
        // reference, InstanceMetadataOptionsRequest); every image the twin serves is Amazon Linux
        // 2023, whose AMIs are registered with ImdsSupport v2.0 (AL2023 user guide, "IMDSv2").
        let http_tokens = p
            .get("MetadataOptions.HttpTokens")
            .unwrap_or("required")
            .to_owned();
        if !matches!(http_tokens.as_str(), "optional" | "required") {
            return Err(err(
                "InvalidParameterValue",
                format!("Invalid value '{http_tokens}' for HttpTokens"),
            ));
        }
        let instance = Instance {
            id: self.new_id("i"),
            reservation_id: self.new_id("r"),
            image_id,
            instance_type,
            subnet_id,
            vpc_id,
            private_ip,
            security_groups,
            user_data,
            http_tokens,
            associations,
            client_token,
            request_print: print,
            launched: Instant::now(),
            launch_time: now_iso(),
            boot: self.scaled(BOOT),
            terminated: None,
            shutdown: self.scaled(SHUTDOWN),
            lag: self.read_lag(),
            tags: p.tags(),
        };
        let xml = self.reservation_xml(&instance);
        self.instances.push(instance);
        Ok(xml)
    }

    /// `resolve:ssm:<parameter>` names the image through a Systems Manager parameter, resolved
    /// at launch ("Use a Systems Manager parameter instead of an AMI ID", EC2 user guide); the
    /// error code for a parameter that does not exist is not documented (InvalidParameterValue
    /// here).
    fn resolve_image(&self, given: &str) -> Result<String, Ec2Error> {
        let Some(name) = given.strip_prefix("resolve:ssm:") else {
            return Ok(given.to_owned());
        };
        self.images.get(name).cloned().ok_or_else(|| {
            err(
                "InvalidParameterValue",
                format!("The SSM parameter '{name}' does not exist or is not an image id"),
            )
        })
    }

    /// The address must lie in the subnet, past the first four and before the last ("AWS
    /// reserves the first four IP addresses and the last IP address in each subnet CIDR
    /// block", VPC user guide), and be free.
    fn check_private_ip(
        &self,
        text: &str,
        cidr: dxvpn_cidr::Ipv4Net,
        subnet_id: &str,
    ) -> Result<Ipv4Addr, Ec2Error> {
        let ip: Ipv4Addr = text.parse().map_err(|_| {
            err(
                "InvalidParameterValue",
                format!("Invalid value '{text}' for PrivateIpAddress"),
            )
        })?;
        let offset = u32::from(ip).wrapping_sub(u32::from(cidr.network()));
        if !cidr.contains(&ip) || offset < 4 || ip == cidr.broadcast() {
            return Err(err(
                "InvalidParameterValue",
                format!(
                    "Address {ip} does not fall within the subnet's address range of {subnet_id}"
                ),
            ));
        }
        if self.address_in_use(ip) {
            return Err(err(
                "InvalidIPAddress.InUse",
                format!("Address {ip} is in use."),
            ));
        }
        Ok(ip)
    }

    fn address_in_use(&self, ip: Ipv4Addr) -> bool {
        self.instances
            .iter()
            .any(|i| i.private_ip == ip && i.holds_resources())
    }

    fn free_ip(&self, cidr: dxvpn_cidr::Ipv4Net) -> Result<Ipv4Addr, Ec2Error> {
        (4..u32::MAX)
            .map(|n| Ipv4Addr::from(u32::from(cidr.network()).saturating_add(n)))
            .take_while(|ip| cidr.contains(ip) && *ip != cidr.broadcast())
            .find(|ip| !self.address_in_use(*ip))
            .ok_or_else(|| {
                err(
                    "InsufficientFreeAddressesInSubnet",
                    "The specified subnet does not have enough free addresses",
                )
            })
    }

    fn reservation_xml(&self, i: &Instance) -> Xml {
        let mut x = Xml::new();
        x.field("reservationId", &i.reservation_id)
            .field("ownerId", "123456789012");
        x.set("instancesSet", [i], |x, i| self.instance_xml(x, i));
        x
    }

    fn instance_xml(&self, x: &mut Xml, i: &Instance) {
        let (code, name) = i.state();
        x.field("instanceId", &i.id)
            .field("imageId", &i.image_id)
            .element("instanceState", |x| {
                x.field("code", code).field("name", name);
            })
            .field("instanceType", &i.instance_type)
            .field("launchTime", &i.launch_time);
        if i.holds_resources() {
            x.field("subnetId", &i.subnet_id)
                .field("vpcId", &i.vpc_id)
                .field("privateIpAddress", i.private_ip);
        }
        if let Some(profile) = i
            .associations
            .iter()
            .rev()
            .find(|a| a.holds())
            .map(|a| &a.profile)
        {
            x.element("iamInstanceProfile", |x| {
                x.field("arn", &profile.arn).field("id", &profile.id);
            });
        }
        x.set("groupSet", &i.security_groups, |x, g| {
            x.field("groupId", g);
        })
        .element("metadataOptions", |x| {
            x.field("state", "applied")
                .field("httpTokens", &i.http_tokens)
                .field("httpEndpoint", "enabled");
        })
        .tags(&i.tags);
    }

    pub(super) fn describe_instances(&self, p: &Params) -> Result<Xml, Ec2Error> {
        let matched = select(
            self.seed,
            p,
            "InstanceId",
            self.instances.iter().filter(|i| i.visible()),
            |i| &i.id,
            ("InvalidInstanceID.NotFound", "instance"),
            |i, name| {
                Some(match name {
                    "instance-id" => vec![i.id.clone()],
                    "instance-state-name" => vec![i.state().1.to_owned()],
                    "vpc-id" => vec![i.vpc_id.clone()],
                    "subnet-id" => vec![i.subnet_id.clone()],
                    "private-ip-address" => vec![i.private_ip.to_string()],
                    _ => return tag_field(&i.tags, name),
                })
            },
        )?;
        let mut x = Xml::new();
        x.set("reservationSet", matched, |x, i| {
            x.field("reservationId", &i.reservation_id)
                .field("ownerId", "123456789012");
            x.set("instancesSet", [i], |x, i| self.instance_xml(x, i));
        });
        Ok(x)
    }

    pub(super) fn terminate_instances(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let ids = p.list("InstanceId");
        if ids.is_empty() {
            return Err(err(
                "MissingParameter",
                "The request must contain the parameter InstanceId",
            ));
        }
        if let Some(unknown) = ids.iter().find(|id| {
            !self
                .instances
                .iter()
                .any(|i| i.id == **id && i.launched.elapsed() >= i.lag)
        }) {
            return Err(err(
                "InvalidInstanceID.NotFound",
                format!("The instance ID '{unknown}' does not exist"),
            ));
        }
        let mut x = Xml::new();
        let mut changes = Vec::new();
        for i in self.instances.iter_mut().filter(|i| ids.contains(&i.id)) {
            let before = i.state();
            if i.terminated.is_none() {
                i.terminated = Some(Instant::now());
            }
            changes.push((i.id.clone(), before, i.state()));
        }
        x.set("instancesSet", changes, |x, (id, before, now)| {
            x.field("instanceId", id)
                .element("currentState", |x| {
                    x.field("code", now.0).field("name", now.1);
                })
                .element("previousState", |x| {
                    x.field("code", before.0).field("name", before.1);
                });
        });
        Ok(x)
    }

    /// The instance that holds security group `id`, if one does ("DependencyViolation" on its
    /// delete until the instance is terminated).
    pub(super) fn instance_using_group(&self, id: &str) -> Option<&str> {
        self.instances
            .iter()
            .find(|i| i.holds_resources() && i.security_groups.iter().any(|g| g == id))
            .map(|i| i.id.as_str())
    }
}
