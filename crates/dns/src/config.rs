//! The forwarder's configuration file: which zones it answers itself, which it forwards where,
//! and where everything else goes. Checked whole before anything listens.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;

/// A forwarder's configuration (TOML).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwarderConfig {
    /// Address for UDP and TCP, e.g. `0.0.0.0:53`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where names outside every zone go (e.g. the VPC resolver, or Azure's 168.63.129.16).
    /// Without it such names are answered REFUSED.
    #[serde(default)]
    pub upstream: Vec<String>,
    /// How long to wait for a target before answering SERVFAIL, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Zones forwarded to other servers: the other cloud's private zones.
    #[serde(default)]
    pub forward: Vec<ForwardZone>,
    /// Zones answered from records held here (the lab's private zones).
    #[serde(default)]
    pub local: Vec<LocalZone>,
    /// Networks answered, besides loopback: give the VPC's and the VNet's. Empty: the private
    /// ranges (RFC 1918). Any other source gets REFUSED: a forwarder on a public address is not
    /// an open resolver.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// What an empty `allow` means: the private ranges of RFC 1918.
pub const PRIVATE_RANGES: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

/// One forwarded zone.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardZone {
    /// The zone, e.g. `azure.internal`.
    pub zone: String,
    /// Target servers, `IP` or `IP:PORT`.
    pub targets: Vec<String>,
}

/// One zone answered locally.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalZone {
    /// The zone, e.g. `aws.internal`.
    pub zone: String,
    /// Host name (relative to the zone) -> IPv4 address.
    #[serde(default)]
    pub records: std::collections::BTreeMap<String, std::net::Ipv4Addr>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 53))
}

fn default_timeout_ms() -> u64 {
    2000
}

/// A problem in a configuration: the field, the rule, and a fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}\n  fix: {fix}")]
pub struct ConfigError {
    /// Where, e.g. `forward[0].targets[1]`.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// How to correct it.
    pub fix: String,
}

fn problem(field: impl Into<String>, message: impl Into<String>, fix: &str) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
        fix: fix.to_owned(),
    }
}

/// `IP` or `IP:PORT` (port 53 when absent).
pub fn parse_target(text: &str) -> Option<SocketAddr> {
    text.parse::<SocketAddr>().ok().or_else(|| {
        text.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

/// A zone name: labels of 1-63 letters, digits or hyphens, not starting or ending with a hyphen.
fn valid_zone(zone: &str) -> bool {
    let zone = zone.strip_suffix('.').unwrap_or(zone);
    !zone.is_empty()
        && zone.len() <= 253
        && zone.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl ForwarderConfig {
    /// Reads and checks a configuration.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: ForwarderConfig = toml::from_str(text).map_err(|e| {
            problem(
                "config",
                e.message().to_owned(),
                "keys are listen, upstream, timeout_ms, allow, [[forward]] zone/targets, [[local]] zone/records",
            )
        })?;
        config.check()?;
        Ok(config)
    }

    /// The networks answered: loopback (127.0.0.1, ::1), and `allow` (or [`PRIVATE_RANGES`] when it is empty).
    pub fn allowed_networks(&self) -> Vec<ipnet::IpNet> {
        let given: Vec<&str> = if self.allow.is_empty() {
            PRIVATE_RANGES.to_vec()
        } else {
            self.allow.iter().map(String::as_str).collect()
        };
        ["127.0.0.1/32", "::1/128"]
            .into_iter()
            .chain(given)
            .filter_map(|n| n.parse().ok())
            .collect()
    }

    /// Checks every field.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (i, n) in self.allow.iter().enumerate() {
            if n.parse::<ipnet::IpNet>().is_err() {
                return Err(problem(
                    format!("allow[{i}]"),
                    format!("`{n}` is not a network"),
                    "give a CIDR such as 10.0.0.0/16 (the VPC's or the VNet's range)",
                ));
            }
        }
        let target_fix =
            "give an IPv4 or IPv6 address, optionally with :PORT (e.g. 10.1.0.4 or 127.0.0.1:5353)";
        for (i, t) in self.upstream.iter().enumerate() {
            if parse_target(t).is_none() {
                return Err(problem(
                    format!("upstream[{i}]"),
                    format!("`{t}` is not an address"),
                    target_fix,
                ));
            }
        }
        if !(100..=30_000).contains(&self.timeout_ms) {
            return Err(problem(
                "timeout_ms",
                format!("{} is outside 100..=30000", self.timeout_ms),
                "2000 answers SERVFAIL two seconds after a silent target",
            ));
        }
        let mut zones = std::collections::BTreeSet::new();
        let zone_fix = "a DNS name such as azure.internal: labels of letters, digits and hyphens";
        for (i, f) in self.forward.iter().enumerate() {
            if !valid_zone(&f.zone) {
                return Err(problem(
                    format!("forward[{i}].zone"),
                    format!("`{}` is not a zone name", f.zone),
                    zone_fix,
                ));
            }
            if f.targets.is_empty() {
                return Err(problem(
                    format!("forward[{i}].targets"),
                    "no target",
                    "list the other cloud's inbound resolver addresses",
                ));
            }
            for (j, t) in f.targets.iter().enumerate() {
                if parse_target(t).is_none() {
                    return Err(problem(
                        format!("forward[{i}].targets[{j}]"),
                        format!("`{t}` is not an address"),
                        target_fix,
                    ));
                }
            }
            if !zones.insert(f.zone.trim_end_matches('.').to_ascii_lowercase()) {
                return Err(problem(
                    format!("forward[{i}].zone"),
                    format!("`{}` appears twice", f.zone),
                    "one entry per zone, with all its targets",
                ));
            }
        }
        for (i, l) in self.local.iter().enumerate() {
            if !valid_zone(&l.zone) {
                return Err(problem(
                    format!("local[{i}].zone"),
                    format!("`{}` is not a zone name", l.zone),
                    zone_fix,
                ));
            }
            if !zones.insert(l.zone.trim_end_matches('.').to_ascii_lowercase()) {
                return Err(problem(
                    format!("local[{i}].zone"),
                    format!("`{}` is also forwarded or repeated", l.zone),
                    "a zone is either forwarded or local, once",
                ));
            }
            for host in l.records.keys() {
                if !valid_zone(host) {
                    return Err(problem(
                        format!("local[{i}].records.{host}"),
                        "not a host name",
                        zone_fix,
                    ));
                }
            }
        }
        Ok(())
    }

    /// The timeout as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_config_reads_and_bad_fields_are_named() {
        let good = ForwarderConfig::from_toml(
            "listen = \"127.0.0.1:5353\"\nupstream = [\"10.0.0.2\"]\n[[forward]]\nzone = \"azure.internal\"\ntargets = [\"10.1.0.4\", \"10.1.0.5:53\"]\n[[local]]\nzone = \"aws.internal\"\nrecords = { vm1 = \"10.0.1.10\" }\n",
        )
        .unwrap();
        assert_eq!(good.forward[0].targets.len(), 2);
        assert_eq!(good.timeout(), Duration::from_secs(2));
        for (text, field) in [
            (
                "[[forward]]\nzone = \"azure.internal\"\ntargets = []\n",
                "forward[0].targets",
            ),
            (
                "[[forward]]\nzone = \"-bad\"\ntargets = [\"1.2.3.4\"]\n",
                "forward[0].zone",
            ),
            (
                "[[forward]]\nzone = \"a.b\"\ntargets = [\"nope\"]\n",
                "forward[0].targets[0]",
            ),
            ("upstream = [\"x\"]\n", "upstream[0]"),
            ("timeout_ms = 5\n", "timeout_ms"),
            ("lissen = 1\n", "config"),
            (
                "[[forward]]\nzone = \"a.b\"\ntargets = [\"1.2.3.4\"]\n[[local]]\nzone = \"A.B.\"\n",
                "local[0].zone",
            ),
        ] {
            let e = ForwarderConfig::from_toml(text).unwrap_err();
            assert_eq!(e.field, field, "{text}: {e}");
            assert!(!e.fix.is_empty());
        }
    }
}
