//! A host's packet filters as a twin describes them (`HostFilter`), written as the nftables
//! table the lab loads in that host's namespace, so that a rule written through a cloud's API
//! drops real packets.
//!
//! Each stage is a chain the base chain jumps to in order: a rule that allows returns (the next
//! stage judges), one that denies drops, and a packet no rule matches is dropped, as every
//! cloud filter ends. A stateful stage lets the answers of allowed flows through first (`ct
//! state established,related`), as security groups and NSGs do; a network ACL's stage judges
//! every packet alone. Traffic inside the namespace (loopback) is not filtered.

use std::fmt::Write as _;

use dxvpn_twin_kit::views::{FilterRule, FilterStage, HostFilter};

/// The table's name in the host namespace.
pub const TABLE: &str = "dxlab_host";

/// The nftables script that replaces the host's filter table with `filter`.
pub fn nft_ruleset(filter: &HostFilter) -> String {
    let mut out = format!("table ip {TABLE} {{\n");
    let mut jumps = [String::new(), String::new()];
    let directions = [
        ("in", "input", "saddr", "daddr", &filter.inbound),
        ("out", "output", "daddr", "saddr", &filter.outbound),
    ];
    for (d, (prefix, _, peer, own, stages)) in directions.iter().enumerate() {
        for (n, stage) in stages.iter().enumerate() {
            let chain = format!("{prefix}_{n}");
            let _ = writeln!(out, "  chain {chain} {{ # {}", sanitize(&stage.name));
            write_stage(&mut out, stage, peer);
            out.push_str("  }\n");
            let _ = writeln!(jumps[d], "    ip {own} {} jump {chain}", filter.address);
        }
    }
    for (d, (_, hook, ..)) in directions.iter().enumerate() {
        let _ = writeln!(
            out,
            "  chain {hook} {{\n    type filter hook {hook} priority 0; policy accept;\n    {} lo accept\n{}  }}",
            if *hook == "input" { "iif" } else { "oif" },
            jumps[d]
        );
    }
    out.push_str("}\n");
    out
}

fn write_stage(out: &mut String, stage: &FilterStage, peer: &str) {
    if stage.stateful {
        out.push_str("    ct state established,related return\n");
    }
    for rule in &stage.rules {
        let verdict = if rule.allow { "return" } else { "drop" };
        let matcher = matcher(rule);
        // One line per range: an anonymous set refuses overlapping intervals.
        for net in &rule.peers {
            let _ = writeln!(out, "    ip {peer} {net} {matcher}{verdict}");
        }
    }
    out.push_str("    drop\n");
}

/// The protocol and port (or ICMP type) part of a rule, with a trailing space when not empty.
fn matcher(rule: &FilterRule) -> String {
    match (rule.protocol, rule.ports) {
        (None, _) => String::new(),
        (Some(1), Some((from, to))) => format!("icmp type {from}-{to} "),
        (Some(p @ (6 | 17)), Some((from, to))) => {
            format!("meta l4proto {p} th dport {from}-{to} ")
        }
        (Some(p), _) => format!("meta l4proto {p} "),
    }
}

/// A stage's name goes in a comment: keep it to one harmless line.
fn sanitize(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_,.".contains(*c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn stages_become_chains_in_order_and_end_in_drop() {
        let rule = |protocol, ports, peer: &str, allow| FilterRule {
            protocol,
            ports,
            peers: vec![peer.parse().expect("net")],
            allow,
        };
        let filter = HostFilter {
            address: Ipv4Addr::new(10, 0, 1, 10),
            inbound: vec![
                FilterStage {
                    name: "acl-1".into(),
                    stateful: false,
                    rules: vec![
                        rule(Some(6), Some((22, 22)), "10.1.0.0/16", false),
                        rule(None, None, "0.0.0.0/0", true),
                    ],
                },
                FilterStage {
                    name: "sg-1".into(),
                    stateful: true,
                    rules: vec![rule(Some(1), Some((8, 8)), "10.1.0.0/16", true)],
                },
            ],
            outbound: Vec::new(),
        };
        let text = nft_ruleset(&filter);
        assert!(text.contains("ip saddr 10.1.0.0/16 meta l4proto 6 th dport 22-22 drop"));
        assert!(text.contains("ip saddr 0.0.0.0/0 return"));
        assert!(text.contains("ip saddr 10.1.0.0/16 icmp type 8-8 return"));
        let jumps: Vec<&str> = text.lines().filter(|l| l.contains("jump")).collect();
        assert_eq!(
            jumps,
            [
                "    ip daddr 10.0.1.10 jump in_0",
                "    ip daddr 10.0.1.10 jump in_1"
            ]
        );
        let sg = text.split("chain in_1").nth(1).expect("sg chain");
        assert!(
            sg.trim_start()
                .contains("ct state established,related return")
        );
        assert_eq!(text.matches("    drop\n").count(), 2);
    }
}
