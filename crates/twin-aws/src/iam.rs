//! IAM, the subset an instance profile needs: roles, managed-policy attachments and instance
//! profiles over the Query protocol (API 2010-05-08, `Version=2010-05-08`, answers in
//! `<ActionResponse><ActionResult>` with `<member>` lists, errors in `<ErrorResponse>`), for
//! aws-sdk-iam pointed at the twin.
//!
//! The rules are the IAM API reference's, action by action: names unique in the account
//! (`EntityAlreadyExists`, 409), `NoSuchEntity` (404) for what is not there, one role per
//! instance profile (`LimitExceeded`, 409), and `DeleteConflict` (409) for a role that still
//! has policies or profiles, or a profile that still holds a role. A policy document comes
//! back URL-encoded ("The policy document returned in this structure is URL-encoded compliant
//! with RFC 3986", Role `AssumeRolePolicyDocument`). IAM is eventually consistent ("Troubleshoot
//! IAM: Changes that I make are not always immediately visible"): EC2 learns of a profile's
//! role some seconds after it was added, and refuses to launch with it until then (EC2 user
//! guide, "IAM roles for Amazon EC2"; hashicorp/terraform#2037 measured 5-10 s), and a new role
//! or profile is missing from reads (Get*, List*) for a seeded moment; writes see it at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::awsquery::Out;
use crate::query::Params;

/// The account the twin plays (the example account of AWS's documentation).
pub(crate) const ACCOUNT_ID: &str = "123456789012";
/// The answers' namespace.
const NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
/// The longest EC2 waits to learn of a profile's role (real time, scaled): terraform's
/// measurement was 5-10 s, and each profile draws its own delay up to this.
const EC2_PROPAGATION_MAX: Duration = Duration::from_secs(10);
/// The AWS managed policies the twin knows ("AWS managed policies", IAM user guide); the
/// partition is `aws`.
const MANAGED_POLICIES: &[&str] = &[
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy",
];

/// An IAM error: HTTP status, code and message.
pub(crate) use crate::awsquery::QueryError as IamError;

fn error(status: u16, code: &'static str, message: impl Into<String>) -> IamError {
    IamError {
        status,
        code,
        message: message.into(),
    }
}

fn no_such_entity(message: impl Into<String>) -> IamError {
    error(404, "NoSuchEntity", message)
}

fn validation(member: &str, value: &str, rule: &str) -> IamError {
    error(
        400,
        "ValidationError",
        format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {rule}"
        ),
    )
}

#[derive(Debug, Clone)]
struct Role {
    name: String,
    id: String,
    path: String,
    created: String,
    trust_policy: String,
    description: Option<String>,
    tags: Vec<(String, String)>,
    policies: Vec<String>,
    /// Until then reads do not show it yet.
    visible_at: Instant,
}

#[derive(Debug, Clone)]
struct Profile {
    name: String,
    id: String,
    path: String,
    created: String,
    tags: Vec<(String, String)>,
    role: Option<String>,
    /// When EC2 knows of the role in it.
    ec2_knows_at: Option<Instant>,
    /// Until then reads do not show it yet.
    visible_at: Instant,
}

/// What EC2 records of a profile it launched an instance with.
#[derive(Debug, Clone)]
pub(crate) struct ProfileRef {
    pub(crate) arn: String,
    pub(crate) id: String,
}

/// The twin's IAM: one account's roles and instance profiles.
#[derive(Debug)]
pub(crate) struct Iam {
    roles: BTreeMap<String, Role>,
    profiles: BTreeMap<String, Profile>,
    time_factor: f64,
    rng: StdRng,
}

fn arn(kind: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:{kind}{path}{name}")
}

fn now_iso() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// A name IAM takes: 1 to `max` of letters, digits and `+=,.@_-`.
fn check_name(member: &str, name: &str, max: usize) -> Result<(), IamError> {
    if name.is_empty() || name.len() > max {
        return Err(validation(
            member,
            name,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
    {
        return Err(validation(
            member,
            name,
            "Member must satisfy regular expression pattern: [\\w+=,.@-]+",
        ));
    }
    Ok(())
}

/// `/`, or `/` text `/` of printable ASCII (IAM API reference, `Path`); default `/`.
fn check_path(p: &Params) -> Result<String, IamError> {
    let path = p.get("Path").unwrap_or("/");
    let ok = path == "/"
        || (path.len() >= 2
            && path.len() <= 512
            && path.starts_with('/')
            && path.ends_with('/')
            && path.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    if ok {
        Ok(path.to_owned())
    } else {
        Err(validation(
            "path",
            path,
            "Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007F]+\\u002F)",
        ))
    }
}

fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str, IamError> {
    p.get(name).ok_or_else(|| {
        let mut member = name.to_owned();
        member[..1].make_ascii_lowercase();
        validation(&member, "null", "Member must not be null")
    })
}

/// `Tags.member.N.Key` / `.Value`.
fn tags(p: &Params) -> Vec<(String, String)> {
    p.entries("Tags.member")
        .into_iter()
        .filter_map(|t| {
            Some((
                t.get("Key")?.to_owned(),
                t.get("Value").unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Out {
    fn tags(&mut self, tags: &[(String, String)]) -> &mut Self {
        self.members("Tags", tags, |o, (k, v)| {
            o.field("Key", k).field("Value", v);
        })
    }

    fn role(&mut self, role: &Role) -> &mut Self {
        self.field("Path", &role.path)
            .field("RoleName", &role.name)
            .field("RoleId", &role.id)
            .field("Arn", &arn("role", &role.path, &role.name))
            .field("CreateDate", &role.created)
            .field("AssumeRolePolicyDocument", &url_encoded(&role.trust_policy));
        if let Some(d) = &role.description {
            self.field("Description", d);
        }
        self.field("MaxSessionDuration", "3600").tags(&role.tags)
    }
}

impl Iam {
    pub(crate) fn new(time_factor: f64, seed: u64) -> Self {
        Iam {
            roles: BTreeMap::new(),
            profiles: BTreeMap::new(),
            time_factor,
            rng: StdRng::seed_from_u64(seed ^ 0x1a3),
        }
    }

    /// `AROA` or `AIPA` and 17 characters, as IAM's unique ids look ("IAM identifiers").
    fn new_id(&mut self, prefix: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let tail: String = (0..17)
            .map(|_| ALPHABET[self.rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        format!("{prefix}{tail}")
    }

    /// When a new role or profile shows in reads: a seeded window of up to the EC2 twin's read
    /// lag (IAM documents no figure, only that changes take time to replicate).
    fn read_lag(&mut self) -> Instant {
        Instant::now() + crate::ec2::READ_LAG_MAX.mul_f64(self.rng.random::<f64>())
    }

    /// A role as reads show it.
    fn role_read(&self, name: &str) -> Result<&Role, IamError> {
        self.roles
            .get(name)
            .filter(|r| Instant::now() >= r.visible_at)
            .ok_or_else(|| no_such_entity(format!("The role with name {name} cannot be found.")))
    }

    fn role_mut(&mut self, name: &str) -> Result<&mut Role, IamError> {
        self.roles
            .get_mut(name)
            .ok_or_else(|| no_such_entity(format!("The role with name {name} cannot be found.")))
    }

    fn profile_mut(&mut self, name: &str) -> Result<&mut Profile, IamError> {
        self.profiles
            .get_mut(name)
            .ok_or_else(|| no_such_entity(format!("Instance Profile {name} cannot be found.")))
    }

    fn profile_xml(&self, profile: &Profile) -> Out {
        let mut out = Out::default();
        let roles: Vec<&Role> = profile
            .role
            .iter()
            .filter_map(|r| self.roles.get(r))
            .collect();
        out.field("Path", &profile.path)
            .field("InstanceProfileName", &profile.name)
            .field("InstanceProfileId", &profile.id)
            .field(
                "Arn",
                &arn("instance-profile", &profile.path, &profile.name),
            )
            .field("CreateDate", &profile.created)
            .members("Roles", &roles, |o, r| {
                o.role(r);
            })
            .tags(&profile.tags);
        out
    }

    /// Runs one IAM action: the XML inside its `<ActionResult>` (empty for actions that answer
    /// nothing).
    pub(crate) fn handle(&mut self, action: &str, p: &Params) -> Result<Option<String>, IamError> {
        match action {
            "CreateRole" => {
                let name = required(p, "RoleName")?;
                check_name("roleName", name, 64)?;
                let trust_policy = required(p, "AssumeRolePolicyDocument")?;
                let parsed: Option<serde_json::Value> = serde_json::from_str(trust_policy).ok();
                if parsed.as_ref().is_none_or(|d| d.get("Statement").is_none()) {
                    return Err(error(
                        400,
                        "MalformedPolicyDocument",
                        "This policy contains invalid Json",
                    ));
                }
                if self.roles.contains_key(name) {
                    return Err(error(
                        409,
                        "EntityAlreadyExists",
                        format!("Role with name {name} already exists."),
                    ));
                }
                let role = Role {
                    name: name.to_owned(),
                    id: self.new_id("AROA"),
                    path: check_path(p)?,
                    created: now_iso(),
                    trust_policy: trust_policy.to_owned(),
                    description: p.get("Description").map(str::to_owned),
                    tags: tags(p),
                    policies: Vec::new(),
                    visible_at: self.read_lag(),
                };
                let mut out = Out::default();
                out.0.push_str("<Role>");
                out.role(&role);
                out.0.push_str("</Role>");
                self.roles.insert(role.name.clone(), role);
                Ok(Some(out.0))
            }
            "GetRole" => {
                let name = required(p, "RoleName")?;
                let role = self.role_read(name)?.clone();
                let mut out = Out::default();
                out.0.push_str("<Role>");
                out.role(&role);
                out.0.push_str("</Role>");
                Ok(Some(out.0))
            }
            "AttachRolePolicy" => {
                let name = required(p, "RoleName")?;
                let policy = required(p, "PolicyArn")?;
                if !MANAGED_POLICIES.contains(&policy) {
                    return Err(no_such_entity(format!(
                        "Policy {policy} does not exist or is not attachable."
                    )));
                }
                let role = self.role_mut(name)?;
                // Attaching an attached policy changes nothing and is no error.
                if !role.policies.iter().any(|a| a == policy) {
                    role.policies.push(policy.to_owned());
                }
                Ok(None)
            }
            "DetachRolePolicy" => {
                let name = required(p, "RoleName")?;
                let policy = required(p, "PolicyArn")?;
                let role = self.role_mut(name)?;
                let before = role.policies.len();
                role.policies.retain(|a| a != policy);
                if role.policies.len() == before {
                    return Err(no_such_entity(format!("Policy {policy} was not found.")));
                }
                Ok(None)
            }
            "ListAttachedRolePolicies" => {
                let name = required(p, "RoleName")?;
                let policies = self.role_read(name)?.policies.clone();
                let mut out = Out::default();
                out.members("AttachedPolicies", &policies, |o, arn| {
                    let name = arn.rsplit('/').next().unwrap_or_default();
                    o.field("PolicyName", name).field("PolicyArn", arn);
                })
                .field("IsTruncated", "false");
                Ok(Some(out.0))
            }
            "DeleteRole" => {
                let name = required(p, "RoleName")?;
                let role = self.role_mut(name)?;
                if !role.policies.is_empty() {
                    return Err(error(
                        409,
                        "DeleteConflict",
                        "Cannot delete entity, must detach all policies first.",
                    ));
                }
                if self
                    .profiles
                    .values()
                    .any(|pr| pr.role.as_deref() == Some(name))
                {
                    return Err(error(
                        409,
                        "DeleteConflict",
                        "Cannot delete entity, must remove roles from instance profile first.",
                    ));
                }
                self.roles.remove(name);
                Ok(None)
            }
            "CreateInstanceProfile" => {
                let name = required(p, "InstanceProfileName")?;
                check_name("instanceProfileName", name, 128)?;
                if self.profiles.contains_key(name) {
                    return Err(error(
                        409,
                        "EntityAlreadyExists",
                        format!("Instance Profile {name} already exists."),
                    ));
                }
                let profile = Profile {
                    name: name.to_owned(),
                    id: self.new_id("AIPA"),
                    path: check_path(p)?,
                    created: now_iso(),
                    tags: tags(p),
                    role: None,
                    ec2_knows_at: None,
                    visible_at: self.read_lag(),
                };
                let out = self.profile_xml(&profile);
                self.profiles.insert(profile.name.clone(), profile);
                Ok(Some(format!(
                    "<InstanceProfile>{}</InstanceProfile>",
                    out.0
                )))
            }
            "GetInstanceProfile" => {
                let name = required(p, "InstanceProfileName")?;
                let profile = self
                    .profiles
                    .get(name)
                    .filter(|pr| Instant::now() >= pr.visible_at)
                    .cloned()
                    .ok_or_else(|| {
                        no_such_entity(format!("Instance Profile {name} cannot be found."))
                    })?;
                let out = self.profile_xml(&profile);
                Ok(Some(format!(
                    "<InstanceProfile>{}</InstanceProfile>",
                    out.0
                )))
            }
            "AddRoleToInstanceProfile" => {
                let name = required(p, "InstanceProfileName")?;
                let role = required(p, "RoleName")?.to_owned();
                self.role_mut(&role)?;
                let lag = dxvpn_twin_kit::scale(
                    EC2_PROPAGATION_MAX.mul_f64(self.rng.random::<f64>()),
                    self.time_factor,
                );
                let profile = self.profile_mut(name)?;
                if profile.role.is_some() {
                    return Err(error(
                        409,
                        "LimitExceeded",
                        "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1",
                    ));
                }
                profile.role = Some(role);
                profile.ec2_knows_at = Some(Instant::now() + lag);
                Ok(None)
            }
            "RemoveRoleFromInstanceProfile" => {
                let name = required(p, "InstanceProfileName")?;
                let role = required(p, "RoleName")?;
                let profile = self.profile_mut(name)?;
                if profile.role.as_deref() != Some(role) {
                    return Err(no_such_entity(format!(
                        "The role with name {role} cannot be found."
                    )));
                }
                profile.role = None;
                profile.ec2_knows_at = None;
                Ok(None)
            }
            "DeleteInstanceProfile" => {
                let name = required(p, "InstanceProfileName")?;
                if self.profile_mut(name)?.role.is_some() {
                    return Err(error(
                        409,
                        "DeleteConflict",
                        "Cannot delete entity, must remove roles from instance profile first.",
                    ));
                }
                self.profiles.remove(name);
                Ok(None)
            }
            other => Err(error(
                400,
                "InvalidAction",
                format!("The action {other} is not valid for this web service."),
            )),
        }
    }

    /// The profile named (or ARN'd) in a RunInstances, as EC2 sees it now: refused as EC2
    /// refuses one it does not know, or one whose role it has not learnt of yet (the message for
    /// a name as aws/aws-sdk-js-v3#5253 quotes it; the ARN form's wording is a guess).
    pub(crate) fn for_ec2(&self, name_or_arn: &str) -> Result<ProfileRef, String> {
        let name = name_or_arn.rsplit('/').next().unwrap_or(name_or_arn);
        let member = if name_or_arn.starts_with("arn:") {
            "iamInstanceProfile.arn"
        } else {
            "iamInstanceProfile.name"
        };
        let refused = || {
            format!(
                "Value ({name_or_arn}) for parameter {member} is invalid. Invalid IAM Instance Profile {}",
                if member.ends_with("arn") {
                    "ARN"
                } else {
                    "name"
                }
            )
        };
        let profile = self.profiles.get(name).ok_or_else(refused)?;
        if profile.ec2_knows_at.is_none_or(|at| Instant::now() < at) {
            return Err(refused());
        }
        Ok(ProfileRef {
            arn: arn("instance-profile", &profile.path, &profile.name),
            id: profile.id.clone(),
        })
    }

    /// Every role and profile, for the inventory (no policy document).
    pub(crate) fn inventory(&self) -> serde_json::Value {
        serde_json::json!({
            "iam_roles": self.roles.values().map(|r| serde_json::json!({
                "name": r.name, "path": r.path, "policies": r.policies,
                "tags": r.tags.iter().cloned().collect::<BTreeMap<_, _>>(),
            })).collect::<Vec<_>>(),
            "instance_profiles": self.profiles.values().map(|p| serde_json::json!({
                "name": p.name, "path": p.path, "role": p.role,
                "tags": p.tags.iter().cloned().collect::<BTreeMap<_, _>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// The answers' namespace, for the Query protocol's documents.
pub(crate) const IAM_NAMESPACE: &str = NAMESPACE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_documents_come_back_percent_encoded() {
        assert_eq!(url_encoded(r#"{"a": 1}"#), "%7B%22a%22%3A%201%7D");
    }

    #[test]
    fn names_follow_iams_pattern_and_length() {
        assert!(check_name("roleName", "dx-dns-forwarder-0abc", 64).is_ok());
        assert!(check_name("roleName", &"a".repeat(65), 64).is_err());
        assert!(check_name("roleName", "bad name", 64).is_err());
    }
}
