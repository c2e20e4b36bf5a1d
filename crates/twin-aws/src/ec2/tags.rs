//! CreateTags and DeleteTags on every resource the twin holds.

use super::*;

impl Ec2 {
    pub(super) fn create_tags(&mut self, p: &Params, create: bool) -> Result<Xml, Ec2Error> {
        let ids = p.list("ResourceId");
        if ids.is_empty() {
            return Err(err(
                "MissingParameter",
                "The request must contain the parameter ResourceId",
            ));
        }
        let tags = p.tags();
        for (key, value) in &tags {
            if key.is_empty()
                || key.chars().count() > 127
                || key.to_lowercase().starts_with("aws:")
                || value.chars().count() > 256
            {
                return Err(err(
                    "InvalidParameterValue",
                    format!("Invalid tag key or value: {key}"),
                ));
            }
        }
        for id in &ids {
            let target = self
                .tags_of(id)
                .ok_or_else(|| err("InvalidID", format!("The ID '{id}' is not valid")))?;
            if create {
                target.extend(tags.clone());
                if target.len() > 50 {
                    return Err(err(
                        "TagLimitExceeded",
                        format!("The maximum number of tags for {id} is 50"),
                    ));
                }
            } else if tags.is_empty() {
                target.clear();
            } else {
                target.retain(|k, _| !tags.contains_key(k));
            }
        }
        Ok(ok_return())
    }

    pub(super) fn tags_of(&mut self, id: &str) -> Option<&mut BTreeMap<String, String>> {
        if let Some(v) = self.vgws.iter_mut().find(|v| v.id == id) {
            return Some(&mut v.tags);
        }
        if let Some(c) = self.cgws.iter_mut().find(|c| c.id == id) {
            return Some(&mut c.tags);
        }
        if let Some(v) = self.vpns.iter_mut().find(|v| v.id == id) {
            return Some(&mut v.tags);
        }
        if let Some(g) = self.security_groups.iter_mut().find(|g| g.id == id) {
            return Some(&mut g.tags);
        }
        if let Some(r) = self.route_tables.iter_mut().find(|r| r.id == id) {
            return Some(&mut r.tags);
        }
        if let Some(v) = self.vpcs.iter_mut().find(|v| v.id == id) {
            return Some(&mut v.tags);
        }
        self.subnets
            .iter_mut()
            .find(|s| s.id == id)
            .map(|s| &mut s.tags)
    }
}
