//! DELETE: 202 and an operation, refused while another resource still uses the target.

use super::*;

impl Arm {
    /// Starts deleting `id`; 204 when it does not exist.
    pub(crate) fn delete(&mut self, id: &str, kind: Kind) -> Result<Accepted, ArmError> {
        self.sweep();
        let key = key_of(id);
        let Some(record) = self.live(id).filter(|r| r.kind == kind).cloned() else {
            return Ok(Accepted {
                status: 204,
                body: None,
                operation: None,
            });
        };
        if record.deleting.is_some() {
            let operation = Some(self.start_operation(&key, true, kind.is_dns()));
            return Ok(Accepted {
                status: 202,
                body: None,
                operation,
            });
        }
        self.check_deletable(&record)?;
        self.check_vnet_idle(id, kind)?;
        let failure = self.fail_next.take();
        let after = self.scaled(kind.delete_time());
        if kind == Kind::VirtualMachine && failure.is_none() {
            self.delete_with_vm(&record, after);
        }
        if let Some(r) = self.records.get_mut(&key) {
            if let Some(f) = failure {
                // The deletion fails: the resource stays, Failed.
                r.failure = Some(f);
                r.changed = Instant::now();
                r.ready_after = after;
            } else {
                r.deleting = Some((Instant::now(), after));
            }
        }
        // Children go with their parent.
        let children: Vec<String> = self
            .records
            .keys()
            .filter(|k| k.starts_with(&format!("{key}/")))
            .cloned()
            .collect();
        for c in children {
            if let Some(r) = self.records.get_mut(&c) {
                r.deleting.get_or_insert((Instant::now(), after));
            }
        }
        if kind.synchronous() {
            self.sweep();
            return Ok(Accepted {
                status: 200,
                body: None,
                operation: None,
            });
        }
        let operation = Some(self.start_operation(&key, true, kind.is_dns()));
        Ok(Accepted {
            status: 202,
            body: None,
            operation,
        })
    }

    pub(super) fn check_deletable(&self, r: &Record) -> Result<(), ArmError> {
        let in_use = |what: &str, by: &str| {
            bad(
                what,
                format!(
                    "{} {} cannot be deleted because it is still used by {by}.",
                    r.kind.short(),
                    r.name()
                ),
            )
        };
        let referencing = |kind: Kind, pointer: &str| -> Option<String> {
            self.all_live(kind)
                .find(|o| {
                    o.deleting.is_none()
                        && o.props()
                            .pointer(pointer)
                            .and_then(Value::as_str)
                            .map(key_of)
                            == Some(key_of(&r.id))
                })
                .map(|o| o.id.clone())
        };
        match r.kind {
            Kind::PublicIp => {
                if let Some(user) = self.public_ip_user(&r.id) {
                    return Err(bad(
                        "PublicIPAddressCannotBeDeleted",
                        format!(
                            "Public IP address {} can not be deleted since it is still allocated to resource {user}.",
                            r.id
                        ),
                    ));
                }
            }
            Kind::Gateway => {
                if let Some(c) = referencing(Kind::Connection, "/virtualNetworkGateway1/id") {
                    return Err(in_use("InUseVirtualNetworkGatewayCannotBeDeleted", &c));
                }
            }
            Kind::LocalGateway => {
                if let Some(c) = referencing(Kind::Connection, "/localNetworkGateway2/id") {
                    return Err(in_use("InUseLocalNetworkGatewayCannotBeDeleted", &c));
                }
            }
            Kind::Subnet => self.check_subnet_free(&r.id)?,
            Kind::NetworkInterface => {
                if let Some(vm) = self.vm_of_nic(&r.id) {
                    return Err(bad(
                        "NicInUse",
                        format!(
                            "Network Interface {} is used by existing resource {vm}. In order to delete the network interface, it must be dissociated from the resource.",
                            r.id
                        ),
                    ));
                }
            }
            Kind::SecurityGroup => {
                if let Some(user) = self.security_group_user(&r.id) {
                    return Err(in_use("InUseNetworkSecurityGroupCannotBeDeleted", &user));
                }
            }
            Kind::VirtualNetwork => {
                for s in self.children_of(&r.id, Kind::Subnet) {
                    self.check_subnet_free(&s.id)?;
                }
                if let Some(user) = referencing(Kind::DnsResolver, "/virtualNetwork/id")
                    .or_else(|| referencing(Kind::VnetLink, "/virtualNetwork/id"))
                {
                    return Err(in_use("InUseVirtualNetworkCannotBeDeleted", &user));
                }
            }
            Kind::DnsResolver => {
                if let Some(e) = self
                    .children_of(&r.id, Kind::InboundEndpoint)
                    .chain(self.children_of(&r.id, Kind::OutboundEndpoint))
                    .find(|e| e.deleting.is_none())
                {
                    return Err(in_use("DnsResolverHasEndpoints", &e.id));
                }
            }
            Kind::OutboundEndpoint => {
                let user = self.all_live(Kind::Ruleset).find(|s| {
                    s.deleting.is_none()
                        && s.props()
                            .get("dnsResolverOutboundEndpoints")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .any(|o| {
                                o.get("id").and_then(Value::as_str).map(key_of)
                                    == Some(key_of(&r.id))
                            })
                });
                if let Some(s) = user {
                    return Err(in_use("OutboundEndpointInUse", &s.id));
                }
            }
            Kind::Ruleset => {
                if let Some(l) = self
                    .children_of(&r.id, Kind::VnetLink)
                    .find(|l| l.deleting.is_none())
                {
                    return Err(in_use("RulesetHasVirtualNetworkLinks", &l.id));
                }
            }
            _ => {}
        }
        Ok(())
    }
}
