//! The forwarder hosts of the development DNS path: the user's own (`dns.*_forwarder_ip`
//! given) or ones that `up` creates (their address, instance type or VM size, and image).

use std::net::Ipv4Addr;

use dxvpn_cidr::{Ipv4Net, nth_host};

use super::address_in;
use crate::config::{DnsConfig, ForwarderProgram};
use crate::problem::Problems;

/// The public SSM parameter naming the newest Amazon Linux 2023 image for x86_64 (t3 instances),
/// as the EC2 user guide's "Query for the latest Amazon Linux AMI IDs using Systems Manager
/// Parameter Store" lists it.
pub(crate) const AL2023_X86_64_PARAMETER: &str =
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";
/// The original module's instance type: burstable, the cheapest priced in `data/prices.toml`.
pub(crate) const DEFAULT_INSTANCE_TYPE: &str = "t3.micro";
/// The smallest Linux VM size Azure sells (1 vCPU, 0.5 GiB), plenty for a forwarder.
pub(crate) const DEFAULT_VM_SIZE: &str = "Standard_B1ls";
/// Ubuntu 24.04 LTS, Canonical's marketplace image (`az vm image list --publisher Canonical`):
/// cloud-init included, unbound in its own archive.
pub(crate) const DEFAULT_AZURE_IMAGE: &str = "Canonical:ubuntu-24_04-lts:server:latest";
/// The original module puts its forwarder at host .123 of the first private subnet.
const HOST_NUMBER: u32 = 123;
/// A subnet too small for .123 gets its 10th host.
const SMALL_SUBNET_HOST_NUMBER: u32 = 10;

/// The AWS forwarder host as checked.
#[derive(Debug, Clone)]
pub(crate) struct AwsForwarder {
    pub ip: Ipv4Addr,
    /// `None`: the user runs it (the address was given); else what `up` creates.
    pub created: Option<CreatedHost>,
    /// The IAM instance profile of the host `up` creates.
    pub profile: ProfileChoice,
}

/// `dns.aws_forwarder_instance_profile`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProfileChoice {
    /// `up` creates one with AWS's Session Manager policy (left out).
    Create,
    /// One the user has, by name.
    Existing(String),
    /// `none`.
    Without,
}

/// The value that asks for no instance profile.
const NO_PROFILE: &str = "none";

/// An instance profile name as IAM takes it: 1-128 of letters, digits and `+=,.@_-` (IAM API
/// reference, CreateInstanceProfile `InstanceProfileName`).
fn check_profile(p: &mut Problems, given: Option<&str>) -> ProfileChoice {
    let Some(text) = given else {
        return ProfileChoice::Create;
    };
    if text == NO_PROFILE {
        return ProfileChoice::Without;
    }
    let ok = (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        return ProfileChoice::Existing(text.to_owned());
    }
    p.add(
        "dns.aws_forwarder_instance_profile",
        "instance-profile-name",
        format!("`{text}` is not an IAM instance profile name"),
        "give the name (not the ARN) of an instance profile you have: 1-128 letters, digits and +=,.@_-; or `none`, or leave it out and `up` creates one",
    );
    ProfileChoice::Create
}

/// A forwarder host that `up` creates.
#[derive(Debug, Clone)]
pub(crate) struct CreatedHost {
    pub instance_type: String,
    pub image: String,
    pub program: ForwarderProgram,
}

pub(crate) fn check_aws_forwarder(
    p: &mut Problems,
    dns: &DnsConfig,
    subnets: &[Option<Ipv4Net>],
) -> AwsForwarder {
    let first_subnet = subnets.first().copied().flatten();
    let created = CreatedHost {
        instance_type: check_instance_type(p, dns.aws_forwarder_instance_type.as_deref()),
        image: check_image(p, dns.aws_forwarder_image.as_deref()),
        program: dns.forwarder_program.unwrap_or_default(),
    };
    let Some(text) = dns.aws_forwarder_ip.as_deref() else {
        let ip = first_subnet
            .and_then(|s| {
                nth_host(s, HOST_NUMBER).or_else(|| nth_host(s, SMALL_SUBNET_HOST_NUMBER))
            })
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        return AwsForwarder {
            ip,
            created: Some(created),
            profile: check_profile(p, dns.aws_forwarder_instance_profile.as_deref()),
        };
    };
    let ip = address_in(
        p,
        ("dns.aws_forwarder_ip", "forwarder-in-private-subnet", text),
        |ip| subnets.iter().flatten().any(|s| s.contains(ip)),
        |ip| format!("{ip} is in none of aws.private_subnet_cidrs"),
        "pick a free address in one of the private subnets",
    );
    AwsForwarder {
        ip: ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
        created: None,
        profile: ProfileChoice::Without,
    }
}

/// The Azure forwarder host that `up` creates when `dns.azure_forwarder_ip` is not given.
pub(crate) fn check_azure_forwarder_host(p: &mut Problems, dns: &DnsConfig) -> CreatedHost {
    CreatedHost {
        instance_type: check_vm_size(p, dns.azure_forwarder_vm_size.as_deref()),
        image: check_urn(p, dns.azure_forwarder_image.as_deref()),
        program: dns.forwarder_program.unwrap_or_default(),
    }
}

/// Azure VM sizes are `Standard_` or `Basic_` and a name of letters, digits and underscores
/// (`Standard_B1ls`, `Standard_D2s_v5`).
fn check_vm_size(p: &mut Problems, given: Option<&str>) -> String {
    let Some(text) = given else {
        return DEFAULT_VM_SIZE.to_owned();
    };
    let well_formed = ["Standard_", "Basic_"].iter().any(|prefix| {
        text.strip_prefix(prefix).is_some_and(|rest| {
            !rest.is_empty()
                && rest.len() <= 64
                && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
    });
    if well_formed {
        return text.to_owned();
    }
    p.add(
        "dns.azure_forwarder_vm_size",
        "vm-size",
        format!("`{text}` is not an Azure VM size (Standard_...)"),
        format!("use a size such as `{DEFAULT_VM_SIZE}` (az vm list-sizes), or leave it out"),
    );
    DEFAULT_VM_SIZE.to_owned()
}

/// A marketplace image URN: four non-empty parts, `publisher:offer:sku:version`.
fn check_urn(p: &mut Problems, given: Option<&str>) -> String {
    let Some(text) = given else {
        return DEFAULT_AZURE_IMAGE.to_owned();
    };
    let parts: Vec<&str> = text.split(':').collect();
    let part_ok = |s: &&str| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    if parts.len() == 4 && parts.iter().all(part_ok) {
        return text.to_owned();
    }
    p.add(
        "dns.azure_forwarder_image",
        "image-urn",
        format!("`{text}` is not an image URN (publisher:offer:sku:version)"),
        format!("give a URN such as `{DEFAULT_AZURE_IMAGE}` (az vm image list), or leave it out"),
    );
    DEFAULT_AZURE_IMAGE.to_owned()
}

/// EC2 instance types are `family.size` in lower case (`t3.micro`, `t4g.nano`, `c7gn.medium`).
fn check_instance_type(p: &mut Problems, given: Option<&str>) -> String {
    let Some(text) = given else {
        return DEFAULT_INSTANCE_TYPE.to_owned();
    };
    let part = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    match text.split_once('.') {
        Some((family, size)) if part(family) && part(size) && text.len() <= 32 => text.to_owned(),
        _ => {
            p.add(
                "dns.aws_forwarder_instance_type",
                "instance-type",
                format!("`{text}` is not an EC2 instance type (family.size)"),
                format!("use an instance type such as `{DEFAULT_INSTANCE_TYPE}`, or leave it out"),
            );
            DEFAULT_INSTANCE_TYPE.to_owned()
        }
    }
}

/// An SSM parameter path (`/aws/service/...`) or an AMI id (`ami-` and 8 or 17 hex digits).
fn check_image(p: &mut Problems, given: Option<&str>) -> String {
    let Some(text) = given else {
        return AL2023_X86_64_PARAMETER.to_owned();
    };
    let is_ami = text.strip_prefix("ami-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    });
    let is_parameter = text.starts_with('/')
        && text.len() <= 2048
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b));
    if is_ami || is_parameter {
        return text.to_owned();
    }
    p.add(
        "dns.aws_forwarder_image",
        "image",
        format!("`{text}` is neither an AMI id nor an SSM parameter path"),
        format!(
            "give an AMI id (`ami-...`) or a parameter path such as `{AL2023_X86_64_PARAMETER}`"
        ),
    );
    AL2023_X86_64_PARAMETER.to_owned()
}

/// The AWS service domains the VNet forwards to AWS with the AWS zones (the original module's
/// list, and the region's own domain for instance names: `ec2.internal` in us-east-1,
/// `<region>.compute.internal` elsewhere, as the VPC user guide's "DNS attributes" says).
pub(crate) fn aws_service_zones(dns: &DnsConfig, region: &str) -> Vec<String> {
    if dns.aws_service_zones == Some(false) {
        return Vec::new();
    }
    let regional = if region == "us-east-1" {
        "ec2.internal".to_owned()
    } else {
        format!("{region}.compute.internal")
    };
    [
        "compute.internal",
        &regional,
        "rds.amazonaws.com",
        "elasticache.amazonaws.com",
        "aws",
        "internal.aws",
        "aws.local",
    ]
    .iter()
    .map(|z| (*z).to_owned())
    .collect()
}
