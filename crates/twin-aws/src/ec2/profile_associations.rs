//! IAM instance profile associations: how EC2 gives a running instance a profile, swaps it or
//! takes it away (AssociateIamInstanceProfile, ReplaceIamInstanceProfileAssociation,
//! DisassociateIamInstanceProfile, DescribeIamInstanceProfileAssociations; EC2 API reference),
//! and the association RunInstances makes for a profile given at launch.
//!
//! "You cannot associate more than one IAM instance profile with an instance" (Associate, EC2
//! API reference): a second answers `IncorrectState`. An association is `associating`, then
//! `associated`; a disassociated one `disassociating`, then `disassociated` (the documented
//! states). EC2 documents no duration for either; a few seconds is a guess, scaled like every
//! other duration. DescribeInstances shows a profile while it is associating or associated. A
//! new instance's id is unknown here too until reads show it ("Eventual consistency in the
//! Amazon EC2 API").

use std::time::{Duration, Instant};

use super::instances::Instance;
use super::{Ec2, Ec2Error, Params, Xml, err, required, select};
use crate::iam::ProfileRef;

/// How long an association takes to become `associated` or `disassociated` (a guess).
const SETTLE: Duration = Duration::from_secs(5);

/// One profile association of an instance.
#[derive(Debug, Clone)]
pub(crate) struct Association {
    id: String,
    pub(super) profile: ProfileRef,
    since: Instant,
    settle: Duration,
    /// Disassociated (or replaced): on its way out.
    leaving: bool,
}

impl Association {
    pub(super) fn state(&self) -> &'static str {
        let settled = self.since.elapsed() >= self.settle;
        match (self.leaving, settled) {
            (false, false) => "associating",
            (false, true) => "associated",
            (true, false) => "disassociating",
            (true, true) => "disassociated",
        }
    }

    /// Gives the instance its profile (DescribeInstances `iamInstanceProfile`).
    pub(super) fn holds(&self) -> bool {
        !self.leaving
    }
}

fn association_xml(x: &mut Xml, instance: &str, a: &Association) {
    x.field("associationId", &a.id)
        .field("instanceId", instance)
        .element("iamInstanceProfile", |x| {
            x.field("arn", &a.profile.arn).field("id", &a.profile.id);
        })
        .field("state", a.state());
}

impl Ec2 {
    /// The association a launch with a profile makes: associated from the start.
    pub(super) fn launch_association(&mut self, profile: ProfileRef) -> Association {
        Association {
            id: self.new_id("iip-assoc"),
            profile,
            since: Instant::now(),
            settle: Duration::ZERO,
            leaving: false,
        }
    }

    fn new_association(&mut self, profile: ProfileRef) -> Association {
        Association {
            id: self.new_id("iip-assoc"),
            profile,
            since: Instant::now(),
            settle: self.scaled(SETTLE),
            leaving: false,
        }
    }

    /// The profile EC2 got from IAM for this call (`crate::iam`, checked before the call).
    fn profile_for_call(&mut self) -> Result<ProfileRef, Ec2Error> {
        self.launch_profile.take().ok_or_else(|| {
            err(
                "MissingParameter",
                "The request must contain the parameter IamInstanceProfile",
            )
        })
    }

    fn instance_by_association(&mut self, id: &str) -> Result<&mut Instance, Ec2Error> {
        self.instances
            .iter_mut()
            .find(|i| {
                i.associations
                    .iter()
                    .any(|a| a.id == id && a.state() != "disassociated")
            })
            .ok_or_else(|| {
                err(
                    "InvalidAssociationID.NotFound",
                    format!("The association ID '{id}' does not exist"),
                )
            })
    }

    pub(super) fn associate_iam_instance_profile(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let instance_id = required(p, "InstanceId")?.to_owned();
        let profile = self.profile_for_call()?;
        let association = self.new_association(profile);
        let instance = self
            .instances
            .iter_mut()
            .find(|i| i.id == instance_id && i.holds_resources() && i.visible())
            .ok_or_else(|| {
                err(
                    "InvalidInstanceID.NotFound",
                    format!("The instance ID '{instance_id}' does not exist"),
                )
            })?;
        if instance.associations.iter().any(Association::holds) {
            return Err(err(
                "IncorrectState",
                format!("There is an existing association for instance {instance_id}"),
            ));
        }
        let mut x = Xml::new();
        x.element("iamInstanceProfileAssociation", |x| {
            association_xml(x, &instance_id, &association);
        });
        instance.associations.push(association);
        Ok(x)
    }

    pub(super) fn replace_iam_instance_profile_association(
        &mut self,
        p: &Params,
    ) -> Result<Xml, Ec2Error> {
        let id = required(p, "AssociationId")?.to_owned();
        let profile = self.profile_for_call()?;
        let association = self.new_association(profile);
        let leaving_since = Instant::now();
        let instance = self.instance_by_association(&id)?;
        for old in instance.associations.iter_mut().filter(|a| a.id == id) {
            old.leaving = true;
            old.since = leaving_since;
            old.settle = Duration::ZERO;
        }
        let mut x = Xml::new();
        x.element("iamInstanceProfileAssociation", |x| {
            association_xml(x, &instance.id, &association);
        });
        instance.associations.push(association);
        Ok(x)
    }

    pub(super) fn disassociate_iam_instance_profile(
        &mut self,
        p: &Params,
    ) -> Result<Xml, Ec2Error> {
        let id = required(p, "AssociationId")?.to_owned();
        let settle = self.scaled(SETTLE);
        let instance = self.instance_by_association(&id)?;
        let instance_id = instance.id.clone();
        let mut x = Xml::new();
        for a in instance.associations.iter_mut().filter(|a| a.id == id) {
            a.leaving = true;
            a.since = Instant::now();
            a.settle = settle;
            x.element("iamInstanceProfileAssociation", |x| {
                association_xml(x, &instance_id, a);
            });
        }
        Ok(x)
    }

    pub(super) fn describe_iam_instance_profile_associations(
        &self,
        p: &Params,
    ) -> Result<Xml, Ec2Error> {
        let all: Vec<(String, Association)> = self
            .instances
            .iter()
            .filter(|i| i.holds_resources())
            .flat_map(|i| i.associations.iter().map(|a| (i.id.clone(), a.clone())))
            .collect();
        let matched = select(
            self.seed,
            p,
            "AssociationId",
            all.iter(),
            |(_, a)| &a.id,
            ("InvalidAssociationID.NotFound", "association"),
            |(instance, a), name| {
                Some(match name {
                    "instance-id" => vec![instance.clone()],
                    "state" => vec![a.state().to_owned()],
                    _ => return None,
                })
            },
        )?;
        let mut x = Xml::new();
        x.set(
            "iamInstanceProfileAssociationSet",
            matched,
            |x, (instance, a)| association_xml(x, instance, a),
        );
        Ok(x)
    }
}
