//! What a forwarder host dxvpn creates runs: the forwarder's configuration, rendered from the
//! plan, and the cloud-init user data that installs the program from the distribution's own
//! repository, writes that configuration and a systemd unit, and starts it. Nothing else is
//! downloaded at boot, and no key or token is in it: the host needs none.
//!
//! `dxvpn render --format forwarder` prints [`user_data`]; `up` sends exactly that text, and
//! the lab runs what it says, with the same program.
//!
//! ```
//! use dxvpn_plan::config::ForwarderProgram;
//! use dxvpn_plan::model::ForwarderSetup;
//! let setup = ForwarderSetup {
//!     program: ForwarderProgram::Unbound,
//!     forwards: vec![("azure.internal".into(), vec!["10.1.0.4".parse().unwrap()])],
//!     upstream: "10.0.0.2".parse().unwrap(),
//!     allow: vec!["10.0.0.0/16".parse().unwrap(), "10.1.0.0/16".parse().unwrap()],
//!     listen: "10.0.1.123".parse().unwrap(),
//! };
//! let text = dxvpn_plan::forwarder_host::user_data("dx-dev", &setup);
//! assert!(text.starts_with("#cloud-config\n"));
//! assert!(text.contains("forward-addr: 10.1.0.4"));
//! ```

use std::fmt::Write as _;

use serde::Serialize;

use crate::config::ForwarderProgram;
use crate::model::ForwarderSetup;

/// Where the host keeps the forwarder's configuration (its own file, so that the package's
/// default configuration, whatever it holds, is never the one that runs).
pub const CONFIG_PATH: &str = "/etc/dxvpn/forwarder.conf";
/// The systemd unit that runs the forwarder.
pub const UNIT_NAME: &str = "dxvpn-forwarder.service";

/// A forwarder program as the host installs and runs it.
struct Program {
    /// The distribution package.
    package: &'static str,
    /// The binary the unit runs, in the foreground with dxvpn's file.
    run: &'static str,
    /// The package's own checker of that file.
    check: &'static str,
}

fn program(p: ForwarderProgram) -> Program {
    match p {
        ForwarderProgram::Unbound => Program {
            package: "unbound",
            run: "/usr/sbin/unbound -d -p -c",
            check: "/usr/sbin/unbound-checkconf",
        },
    }
}

/// The forwarder's configuration file.
pub fn forwarder_conf(deployment: &str, setup: &ForwarderSetup) -> String {
    match setup.program {
        ForwarderProgram::Unbound => unbound_conf(deployment, setup),
    }
}

/// Unbound as a forwarder only: no recursion of its own (`module-config: "iterator"` with every
/// zone forwarded, so no DNSSEC validator and no root trust anchor to fetch), answering only
/// the allowed networks (Unbound refuses everyone else by default), over UDP and TCP on 53.
fn unbound_conf(deployment: &str, setup: &ForwarderSetup) -> String {
    let mut out = format!(
        "# dxvpn forwarder host of deployment {deployment}: the other cloud's zones go to its\n\
         # receivers, every other name to this cloud's resolver.\nserver:\n"
    );
    // Its own address only (bound before the interface has it: ip-freebind), so that the
    // image's stub resolver on 127.0.0.53:53 and the package's own unit never collide with it.
    let _ = writeln!(out, "  interface: {}", setup.listen);
    for setting in [
        "ip-freebind: yes",
        "port: 53",
        "do-ip4: yes",
        "do-ip6: no",
        "do-udp: yes",
        "do-tcp: yes",
        "do-daemonize: no",
        "username: \"unbound\"",
        "chroot: \"\"",
        "directory: \"/\"",
        "use-syslog: no",
        "logfile: \"\"",
        "verbosity: 1",
        "module-config: \"iterator\"",
    ] {
        let _ = writeln!(out, "  {setting}");
    }
    for net in &setup.allow {
        let _ = writeln!(out, "  access-control: {net} allow");
    }
    for (zone, _) in &setup.forwards {
        // A private zone must not be answered by a built-in local zone of the same name.
        let _ = writeln!(
            out,
            "  local-zone: \"{}.\" nodefault",
            zone.trim_end_matches('.')
        );
    }
    for (zone, targets) in &setup.forwards {
        let _ = writeln!(
            out,
            "forward-zone:\n  name: \"{}.\"",
            zone.trim_end_matches('.')
        );
        for t in targets {
            let _ = writeln!(out, "  forward-addr: {t}");
        }
    }
    let _ = writeln!(
        out,
        "forward-zone:\n  name: \".\"\n  forward-addr: {}",
        setup.upstream
    );
    out
}

/// The systemd unit: the program in the foreground with dxvpn's file, restarted if it dies.
fn unit(setup: &ForwarderSetup) -> String {
    let run = program(setup.program).run;
    format!(
        "[Unit]\nDescription=dxvpn DNS forwarder\nWants=network-online.target\nAfter=network-online.target\n\n\
         [Service]\nExecStart={run} {CONFIG_PATH}\nRestart=on-failure\nRestartSec=2s\n\n\
         [Install]\nWantedBy=multi-user.target\n"
    )
}

#[derive(Serialize)]
struct CloudConfig {
    packages: Vec<&'static str>,
    write_files: Vec<WriteFile>,
    runcmd: Vec<Vec<String>>,
}

#[derive(Serialize)]
struct WriteFile {
    path: String,
    permissions: &'static str,
    owner: &'static str,
    content: String,
}

/// The cloud-init user data: install the package, write the configuration and the unit, check
/// the configuration, start the unit. cloud-init writes files before it installs packages, and
/// the package's own default configuration is left alone.
pub fn user_data(deployment: &str, setup: &ForwarderSetup) -> String {
    let Program { package, check, .. } = program(setup.program);
    let config = CloudConfig {
        packages: vec![package],
        write_files: vec![
            WriteFile {
                path: CONFIG_PATH.to_owned(),
                permissions: "0644",
                owner: "root:root",
                content: forwarder_conf(deployment, setup),
            },
            WriteFile {
                path: format!("/etc/systemd/system/{UNIT_NAME}"),
                permissions: "0644",
                owner: "root:root",
                content: unit(setup),
            },
        ],
        runcmd: vec![
            vec![check.to_owned(), CONFIG_PATH.to_owned()],
            vec!["systemctl".into(), "daemon-reload".into()],
            vec![
                "systemctl".into(),
                "enable".into(),
                "--now".into(),
                UNIT_NAME.into(),
            ],
        ],
    };
    // Serializing a plain struct of strings cannot fail.
    let yaml = serde_norway::to_string(&config).unwrap_or_default();
    format!("#cloud-config\n{yaml}")
}

/// The plan's role of the AWS forwarder host's instance profile.
pub const AWS_PROFILE_ROLE: &str = "aws.dns_forwarder_profile";

/// The name of the IAM role and instance profile `up` creates for the AWS forwarder host of
/// `deployment` in `vpc_id`. IAM names are unique in the whole account (every region), so the
/// name carries the VPC's id as well as the deployment's: at most 64 characters, IAM's limit
/// for a role name (the deployment name has 32 at most, a VPC id's digits 17).
pub fn aws_profile_name(deployment: &str, vpc_id: &str) -> String {
    format!("{deployment}-{}", aws_profile_suffix(vpc_id))
}

/// [`aws_profile_name`] without the deployment's name (the plan's name suffix).
pub(crate) fn aws_profile_suffix(vpc_id: &str) -> String {
    format!("dns-forwarder-{}", vpc_id.trim_start_matches("vpc-"))
}

/// The tag that carries [`config_digest`] of the user data a host was launched with.
pub const CONFIG_TAG: &str = "dxvpn:config";

/// A short digest of user data: an instance runs its user data at its first boot only, so a
/// host whose digest differs from the plan's runs another configuration and is replaced.
pub fn config_digest(user_data: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(user_data.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The user data `up` sends to the forwarder host it creates on `side`; `None` when the plan
/// has none there (no forwarder mode, no zones to answer, or the host is the user's own).
pub fn planned_user_data(plan: &crate::Plan, side: crate::Cloud) -> Option<String> {
    match &plan.forwarder_instance(side)?.spec {
        crate::model::Spec::ForwarderInstance { setup, .. } => Some(user_data(&plan.name, setup)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> ForwarderSetup {
        ForwarderSetup {
            program: ForwarderProgram::Unbound,
            forwards: vec![("azure.internal".into(), vec!["10.1.0.4".parse().unwrap()])],
            upstream: "10.0.0.2".parse().unwrap(),
            allow: vec!["10.0.0.0/16".parse().unwrap()],
            listen: "10.0.1.123".parse().unwrap(),
        }
    }

    #[test]
    fn the_user_data_is_cloud_config_yaml_holding_the_files_and_the_start() {
        let text = user_data("dx", &setup());
        let body: serde_norway::Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(body["packages"][0], "unbound");
        let conf = body["write_files"][0]["content"].as_str().unwrap();
        assert_eq!(conf, forwarder_conf("dx", &setup()));
        assert!(conf.contains("access-control: 10.0.0.0/16 allow"));
        assert!(conf.contains("name: \"azure.internal.\"\n  forward-addr: 10.1.0.4"));
        assert!(conf.contains("name: \".\"\n  forward-addr: 10.0.0.2"));
        let unit = body["write_files"][1]["content"].as_str().unwrap();
        assert!(unit.contains(&format!(
            "ExecStart=/usr/sbin/unbound -d -p -c {CONFIG_PATH}"
        )));
        assert_eq!(body["runcmd"][2][3], UNIT_NAME);
    }
}
