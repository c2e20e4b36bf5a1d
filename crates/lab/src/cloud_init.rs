//! What an instance's cloud-init user data makes it run, read as cloud-init reads it
//! (cloud-init docs, "User data formats" and the `packages`, `write_files` and `runcmd`
//! modules): a `#cloud-config` YAML document whose files are written, whose packages are
//! installed, and whose commands start systemd units. The lab runs each started unit's
//! `ExecStart` with the files written, so a wrong configuration fails here as on the instance.
//!
//! Only what a package the user data installs provides can run: the lab knows which binaries
//! each distribution package puts where (the same paths on Debian and Amazon Linux).

use dxvpn_netlab::InstanceProgram;
use serde_norway::Value;

/// Binaries of the distribution packages the lab can run, by package.
const PACKAGES: &[(&str, &[&str])] = &[("unbound", &["/usr/sbin/unbound"])];

/// Why the user data starts nothing the lab can run (as the instance would fail to).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cloud-init user data: {0}")]
pub struct BootError(String);

fn fail<T>(why: impl Into<String>) -> Result<T, BootError> {
    Err(BootError(why.into()))
}

/// The programs the user data starts, one per unit it enables with `--now` (or starts).
pub fn programs(user_data: &str) -> Result<Vec<InstanceProgram>, BootError> {
    if !user_data.starts_with("#cloud-config") {
        return fail("not a #cloud-config document (only that format is read here)");
    }
    let doc: Value = serde_norway::from_str(user_data).map_err(|e| BootError(e.to_string()))?;
    let strings = |v: &Value| -> Vec<String> {
        v.as_sequence()
            .map(|s| {
                s.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let packages = strings(&doc["packages"]);
    let files: Vec<(String, String)> = doc["write_files"]
        .as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|f| {
                    Some((
                        f["path"].as_str()?.to_owned(),
                        f["content"].as_str().unwrap_or_default().to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for command in doc["runcmd"].as_sequence().into_iter().flatten() {
        // runcmd entries are a list (exec'd as is) or a string (run by the shell).
        let words: Vec<String> = match command {
            Value::String(line) => line.split_whitespace().map(str::to_owned).collect(),
            other => strings(other),
        };
        let Some(unit) = started_unit(&words) else {
            continue;
        };
        let unit_path = format!("/etc/systemd/system/{unit}");
        let Some((_, unit_text)) = files.iter().find(|(p, _)| *p == unit_path) else {
            return fail(format!(
                "{unit} is started but no unit file {unit_path} is written"
            ));
        };
        let Some(exec) = unit_text
            .lines()
            .find_map(|l| l.trim().strip_prefix("ExecStart="))
        else {
            return fail(format!("{unit_path} has no ExecStart"));
        };
        let argv: Vec<String> = exec.split_whitespace().map(str::to_owned).collect();
        let Some(binary) = argv.first() else {
            return fail(format!("{unit_path}: ExecStart is empty"));
        };
        let installed = PACKAGES
            .iter()
            .filter(|(package, _)| packages.iter().any(|p| p == package))
            .any(|(_, binaries)| binaries.contains(&binary.as_str()));
        if !installed {
            return fail(format!(
                "{binary} is not installed by the packages the user data lists ({packages:?})"
            ));
        }
        let read: Vec<(String, String)> = files
            .iter()
            .filter(|(path, _)| argv.contains(path))
            .cloned()
            .collect();
        out.push(InstanceProgram { argv, files: read });
    }
    Ok(out)
}

/// `systemctl enable --now UNIT` or `systemctl start UNIT`.
fn started_unit(words: &[String]) -> Option<&str> {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["systemctl", "enable", "--now", unit] | ["systemctl", "start", unit] => Some(unit),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dxvpn_plan::config::ForwarderProgram;
    use dxvpn_plan::model::ForwarderSetup;

    #[test]
    fn the_rendered_forwarder_user_data_starts_unbound_with_its_file() {
        let setup = ForwarderSetup {
            program: ForwarderProgram::Unbound,
            forwards: vec![],
            upstream: "10.0.0.2".parse().unwrap(),
            allow: vec!["10.0.0.0/16".parse().unwrap()],
            listen: "10.0.1.123".parse().unwrap(),
        };
        let text = dxvpn_plan::forwarder_host::user_data("dx", &setup);
        let programs = programs(&text).unwrap();
        assert_eq!(programs.len(), 1);
        let p = &programs[0];
        assert_eq!(p.argv[0], "/usr/sbin/unbound");
        assert_eq!(p.files.len(), 1);
        assert!(p.files[0].1.contains("forward-addr: 10.0.0.2"));
    }

    #[test]
    fn a_program_no_listed_package_installs_does_not_run() {
        let text = "#cloud-config\npackages: [bind]\nwrite_files:\n- path: /etc/systemd/system/x.service\n  content: \"[Service]\\nExecStart=/usr/sbin/unbound -d\\n\"\nruncmd:\n- [systemctl, enable, --now, x.service]\n";
        let e = programs(text).unwrap_err();
        assert!(e.to_string().contains("not installed"), "{e}");
        assert!(programs("#!/bin/sh\necho hi").is_err());
    }
}
