//! What Azure's DNS applies to the seeded VNet, read from the DNS resolver resources.

use std::net::Ipv4Addr;

use serde_json::Value;

use super::{Arm, Kind, Phase, Record, key_of, ref_id};
use dxvpn_twin_kit::views::DnsRules;

fn ready(r: &&Record) -> bool {
    r.phase() == Phase::Succeeded
}

fn ips(values: Option<&Value>, field: &str) -> Vec<Ipv4Addr> {
    values
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get(field).and_then(Value::as_str)?.parse().ok())
        .collect()
}

impl Arm {
    pub(crate) fn dns_view(&mut self) -> DnsRules {
        self.sweep();
        let vnet = key_of(&self.seeded.vnet_id);
        let in_vnet = |r: &Record| {
            ref_id(r.props().get("virtualNetwork")).is_some_and(|id| key_of(id) == vnet)
        };
        let resolvers: Vec<&Record> = self
            .all_live(Kind::DnsResolver)
            .filter(ready)
            .filter(|r| in_vnet(r))
            .collect();
        let mut view = DnsRules::default();
        let mut outbound = Vec::new();
        for resolver in &resolvers {
            for e in self
                .children_of(&resolver.id, Kind::InboundEndpoint)
                .filter(ready)
            {
                view.inbound_ips
                    .extend(ips(e.props().get("ipConfigurations"), "privateIpAddress"));
            }
            outbound.extend(
                self.children_of(&resolver.id, Kind::OutboundEndpoint)
                    .filter(ready)
                    .map(|e| key_of(&e.id)),
            );
        }
        for ruleset in self.all_live(Kind::Ruleset).filter(ready) {
            let sends = ruleset
                .props()
                .get("dnsResolverOutboundEndpoints")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|e| ref_id(Some(e)).is_some_and(|id| outbound.contains(&key_of(id))));
            let linked = self
                .children_of(&ruleset.id, Kind::VnetLink)
                .filter(ready)
                .any(&in_vnet);
            if !(sends && linked) {
                continue;
            }
            for rule in self
                .children_of(&ruleset.id, Kind::ForwardingRule)
                .filter(ready)
            {
                let props = rule.props();
                let enabled =
                    props.get("forwardingRuleState").and_then(Value::as_str) != Some("Disabled");
                let zone = props
                    .get("domainName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                if enabled && !zone.is_empty() {
                    view.forwards
                        .push((zone, ips(props.get("targetDnsServers"), "ipAddress")));
                }
            }
        }
        view
    }
}
