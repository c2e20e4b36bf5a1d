//! FORWARD rules and their VPC associations: create, delete (refused while associated), associate,
//! disassociate.

use super::*;

pub(super) fn association_json(a: &Association) -> Value {
    json!({
        "Id": a.id, "ResolverRuleId": a.rule_id, "Name": a.name, "VPCId": a.vpc_id,
        "Status": a.status(), "StatusMessage": "",
    })
}

impl Resolver {
    pub(super) fn rule_json(&self, r: &Rule) -> Value {
        json!({
            "Id": r.id, "Arn": self.arn("resolver-rule", &r.id),
            "CreatorRequestId": r.creator_request_id, "DomainName": r.domain_name,
            "Status": "COMPLETE", "StatusMessage": "[Trace id: dxvpn-twin] Successfully created Resolver Rule.",
            "RuleType": "FORWARD", "Name": r.name,
            "TargetIps": r.target_ips.iter().map(|(ip, port)| json!({"Ip": ip.to_string(), "Port": port})).collect::<Vec<_>>(),
            "ResolverEndpointId": r.endpoint_id, "OwnerId": "123456789012",
            "ShareStatus": "NOT_SHARED", "CreationTime": r.created_at, "ModificationTime": r.created_at,
        })
    }
}

impl Resolver {
    pub(super) fn create_rule(&mut self, body: &Value) -> Result<Value, ResolverError> {
        let creator = text(body, "CreatorRequestId")?.to_owned();
        let rule_type = text(body, "RuleType")?;
        if rule_type != "FORWARD" {
            return Err(invalid(
                "RuleType",
                format!("the twin serves FORWARD rules, not {rule_type}"),
            ));
        }
        if let Some(r) = self
            .rules
            .iter()
            .find(|r| r.creator_request_id == creator && !r.deleted)
        {
            return Err(err(
                "ResourceExistsException",
                format!(
                    "A rule with CreatorRequestId {creator} already exists: {}",
                    r.id
                ),
            ));
        }
        let domain = text(body, "DomainName")?
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let endpoint_id = text(body, "ResolverEndpointId")?.to_owned();
        let endpoint = self.endpoint(&endpoint_id)?;
        if endpoint.direction != "OUTBOUND" {
            return Err(invalid(
                "ResolverEndpointId",
                format!("{endpoint_id} is not an OUTBOUND endpoint"),
            ));
        }
        let mut targets = Vec::new();
        for t in body
            .get("TargetIps")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ip = text(t, "Ip")?;
            let ip: Ipv4Addr = ip
                .parse()
                .map_err(|_| invalid("TargetIps.Ip", format!("{ip} is not an IPv4 address")))?;
            let port = t
                .get("Port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(53);
            targets.push((ip, port));
        }
        if targets.is_empty() {
            return Err(invalid(
                "TargetIps",
                "a FORWARD rule needs at least one target IP",
            ));
        }
        if self
            .rules
            .iter()
            .any(|r| !r.deleted && r.domain_name == domain && r.endpoint_id == endpoint_id)
        {
            return Err(err(
                "ResourceExistsException",
                format!("a rule for {domain} on {endpoint_id} already exists"),
            ));
        }
        let id = self.new_id("rslvr-rr");
        let rule = Rule {
            id,
            creator_request_id: creator,
            name: body
                .get("Name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            domain_name: domain,
            target_ips: targets,
            endpoint_id,
            deleted: false,
            created_at: now_iso(),
        };
        let out = json!({ "ResolverRule": self.rule_json(&rule) });
        self.rules.push(rule);
        Ok(out)
    }

    pub(super) fn delete_rule(&mut self, body: &Value) -> Result<Value, ResolverError> {
        let id = text(body, "ResolverRuleId")?.to_owned();
        let rule = self.rule(&id)?.clone();
        if let Some(a) = self.associations.iter().find(|a| a.rule_id == id) {
            return Err(err(
                "ResourceInUseException",
                format!(
                    "[RSLVR-00901] Cannot delete resolver rule {id}: it is associated with {} ({}). Disassociate it from all VPCs first.",
                    a.vpc_id,
                    a.status()
                ),
            ));
        }
        if let Some(r) = self.rules.iter_mut().find(|r| r.id == id) {
            r.deleted = true;
        }
        let mut out = self.rule_json(&rule);
        out["Status"] = json!("DELETING");
        Ok(json!({ "ResolverRule": out }))
    }

    pub(super) fn associate(
        &mut self,
        body: &Value,
        net: &dyn Network,
    ) -> Result<Value, ResolverError> {
        let rule_id = text(body, "ResolverRuleId")?.to_owned();
        let vpc_id = text(body, "VPCId")?.to_owned();
        let rule = self.rule(&rule_id)?.clone();
        if !net.vpc_exists(&vpc_id) {
            return Err(invalid("VPCId", format!("VPC {vpc_id} does not exist")));
        }
        if self
            .associations
            .iter()
            .any(|a| a.rule_id == rule_id && a.vpc_id == vpc_id)
        {
            return Err(err(
                "ResourceExistsException",
                format!("rule {rule_id} is already associated with {vpc_id}"),
            ));
        }
        if let Some(other) = self.associations.iter().find(|a| {
            a.vpc_id == vpc_id
                && self
                    .rules
                    .iter()
                    .any(|r| r.id == a.rule_id && r.domain_name == rule.domain_name)
        }) {
            return Err(err(
                "InvalidRequestException",
                format!(
                    "[RSLVR-00400] {vpc_id} already has a rule for {} ({})",
                    rule.domain_name, other.rule_id
                ),
            ));
        }
        let association = Association {
            id: self.new_id("rslvr-rrassoc"),
            rule_id,
            vpc_id,
            name: body
                .get("Name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            life: Life::new(dxvpn_twin_kit::scale(ASSOCIATION_CREATE, self.time_factor)),
        };
        let out = json!({ "ResolverRuleAssociation": association_json(&association) });
        self.associations.push(association);
        Ok(out)
    }

    pub(super) fn disassociate(&mut self, body: &Value) -> Result<Value, ResolverError> {
        let rule_id = text(body, "ResolverRuleId")?.to_owned();
        let vpc_id = text(body, "VPCId")?.to_owned();
        let after = dxvpn_twin_kit::scale(ASSOCIATION_DELETE, self.time_factor);
        let a = self
            .associations
            .iter_mut()
            .find(|a| a.rule_id == rule_id && a.vpc_id == vpc_id)
            .ok_or_else(|| not_found("rule association", &format!("{rule_id} with {vpc_id}")))?;
        if a.life.deleted.is_none() {
            a.life.deleted = Some((Instant::now(), after));
        }
        Ok(json!({ "ResolverRuleAssociation": association_json(a) }))
    }
}
