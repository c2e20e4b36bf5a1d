//! `dxvpn lab` and `dxvpn render` on the binary, as root, with the real daemons.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dxvpn() -> Command {
    let mut cmd = Command::cargo_bin("dxvpn").unwrap();
    cmd.current_dir(root());
    cmd
}

/// `lab up` leaves a running lab behind; this removes it whatever happens to the test.
struct StopOnDrop(String);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = dxvpn().args(["lab", "down", "--run", &self.0]).output();
    }
}

#[test]
fn lab_up_status_down_through_the_binary() {
    let out = dxvpn()
        .args(["lab", "up", "--data-plane-only", "--output", "json"])
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let prefix = status["prefix"].as_str().unwrap_or_default().to_owned();
    let _stop = StopOnDrop(prefix.clone());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tunnels = status["tunnels"].as_array().unwrap();
    assert_eq!(tunnels.len(), 2);
    assert!(tunnels.iter().all(
        |t| t["aws_bgp"]["state"] == "Established" && t["azure_bgp"]["state"] == "Established"
    ));

    // Status reattaches to the detached run and reads the daemons again.
    let out = dxvpn()
        .args(["lab", "status", "--run", &prefix, "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["tunnels"][1]["key"], "c1t2");

    let out = dxvpn()
        .args(["lab", "down", "--run", &prefix])
        .output()
        .unwrap();
    assert!(out.status.success());
    let namespaces = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&namespaces.stdout).contains(&prefix));
    // Negative control: the stopped run is gone for status too.
    let out = dxvpn()
        .args(["lab", "status", "--run", &prefix])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bad_topology_file_is_bad_input_and_builds_nothing() {
    let dir = std::env::temp_dir().join(format!("dxvpn-topology-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "use_case = \"development\"\n[[tunnels]]\npsk = \"Secret+With+Plus\"\n",
    )
    .unwrap();
    // Other tests make runs meanwhile: only a run owned by this very process would count.
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("dxvpn"))
        .args(["lab", "up", "--data-plane-only", "--topology"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tunnels[0].psk") && !stderr.contains("Secret+With+Plus"),
        "{stderr}"
    );
    let owned = std::fs::read_dir(dxvpn_netlab::private_dir::lab_dir())
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| std::fs::read_to_string(e.path().join("owner")).is_ok_and(|o| o.trim() == pid))
        .count();
    assert_eq!(owned, 0, "a run was created");
    std::fs::remove_dir_all(dir).unwrap();
}

/// `render --format forwarder` prints the user data `up` sends; the lab reads it as cloud-init
/// does, and unbound's own checker accepts the file it starts (a broken copy is refused, the
/// negative control). A plan with no host on that side is bad input with a fix.
#[test]
fn the_rendered_forwarder_host_runs_a_file_unbound_accepts() {
    let render = |example: &str, side: &str| {
        dxvpn()
            .args([
                "render",
                "-c",
                example,
                "--side",
                side,
                "--format",
                "forwarder",
            ])
            .output()
            .unwrap()
    };
    let rendered = |side: &str| {
        let out = render("examples/development.toml", side);
        assert!(
            out.status.success(),
            "{side}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let programs =
            dxvpn_lab::cloud_init::programs(&String::from_utf8_lossy(&out.stdout)).unwrap();
        let (path, conf) = programs[0].files[0].clone();
        assert!(programs[0].argv.contains(&path), "{:?}", programs[0]);
        conf
    };
    let (conf, azure_conf) = (rendered("aws"), rendered("azure"));
    assert!(
        azure_conf.contains("forward-addr: 168.63.129.16"),
        "{azure_conf}"
    );
    let check = |text: &str| {
        let file =
            std::env::temp_dir().join(format!("dxvpn-forwarder-{}.conf", std::process::id()));
        std::fs::write(&file, text).unwrap();
        let ok = std::process::Command::new("unbound-checkconf")
            .arg(&file)
            .output()
            .unwrap()
            .status
            .success();
        std::fs::remove_file(&file).unwrap();
        ok
    };
    assert!(check(&conf), "{conf}");
    assert!(check(&azure_conf), "{azure_conf}");
    assert!(
        !check(&conf.replace("forward-addr: ", "forward-addr: x")),
        "a broken copy"
    );

    let none = render("examples/high_availability.toml", "azure");
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("fix:"));
}

#[test]
fn rendered_configs_are_accepted_by_strongswan_and_bird() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for example in [
        "examples/development.toml",
        "examples/high_availability.toml",
    ] {
        for side in ["aws", "azure"] {
            let swanctl = dxvpn()
                .args([
                    "render",
                    "-c",
                    example,
                    "--side",
                    side,
                    "--format",
                    "strongswan",
                ])
                .output()
                .unwrap();
            assert!(swanctl.status.success());
            let said = runtime
                .block_on(dxvpn_netlab::check_swanctl_conf(&String::from_utf8_lossy(
                    &swanctl.stdout,
                )))
                .unwrap();
            assert!(
                said.contains("successfully loaded") && !said.contains("failed"),
                "{example} {side}: {said}"
            );

            let bird = dxvpn()
                .args(["render", "-c", example, "--side", side, "--format", "bird"])
                .output()
                .unwrap();
            let path = std::env::temp_dir()
                .join(format!("dxvpn-render-{}-{side}.conf", std::process::id()));
            std::fs::write(&path, &bird.stdout).unwrap();
            let check = std::process::Command::new("bird")
                .args(["-p", "-c"])
                .arg(&path)
                .output()
                .unwrap();
            std::fs::remove_file(&path).unwrap();
            assert!(
                check.status.success(),
                "{example} {side}: {}",
                String::from_utf8_lossy(&check.stderr)
            );
        }
    }
    // Negative control: the same check refuses a broken configuration.
    assert!(
        runtime
            .block_on(dxvpn_netlab::check_swanctl_conf(
                "connections {\n  c1t1 {\n    version = 2\n"
            ))
            .is_err()
    );
}

#[test]
fn ctrl_c_during_lab_up_removes_the_partial_lab() {
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("dxvpn"))
        .args([
            "lab",
            "up",
            "--data-plane-only",
            "--use-case",
            "high_availability",
        ])
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until this process's run exists and has started daemons, then interrupt it.
    let runs = dxvpn_netlab::private_dir::lab_dir();
    let owner = child.id().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let prefix = loop {
        let found = std::fs::read_dir(&runs)
            .into_iter()
            .flatten()
            .flatten()
            .find(|e| {
                std::fs::read_to_string(e.path().join("owner")).is_ok_and(|o| o == owner)
                    && e.path().join("daemons").exists()
            });
        if let Some(entry) = found {
            break entry.file_name().into_string().unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lab up never started a run"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let pids: Vec<u32> = std::fs::read_to_string(runs.join(&prefix).join("daemons"))
        .unwrap()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    std::process::Command::new("kill")
        .args(["-INT", &owner])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    let namespaces = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&namespaces.stdout).contains(&format!("{prefix}-")),
        "namespaces left"
    );
    assert!(!runs.join(&prefix).exists(), "run directory left");
    assert!(
        pids.iter().all(|p| !dxvpn_netlab::run::is_lab_daemon(*p)),
        "daemons left: {pids:?}"
    );
}

/// Starts `dxvpn lab serve ARGS --output json` and reads its banner.
fn serve(args: &[&str]) -> (std::process::Child, Value) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("dxvpn"))
        .args(["lab", "serve", "--output", "json"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, serde_json::from_str(&line).unwrap())
}

#[test]
fn lab_serve_answers_ec2_calls_until_ctrl_c() {
    use std::io::{Read, Write};
    let (mut child, banner) = serve(&["--aws", "127.0.0.1:0"]);
    let endpoint = banner["aws"]["endpoint"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_owned();
    let vpc_id = banner["aws"]["seeded"]["vpc_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let body = "Action=DescribeVpcs&Version=2016-11-15";
    let mut stream = std::net::TcpStream::connect(&endpoint).unwrap();
    write!(stream, "POST / HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.contains("<DescribeVpcsResponse") && response.contains(&vpc_id),
        "{response}"
    );

    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    // Negative control: once stopped, nothing answers.
    assert!(std::net::TcpStream::connect(&endpoint).is_err());
}

#[test]
fn lab_serve_runs_both_twins_from_one_scenario_file() {
    use std::io::{Read, Write};
    let dir = std::env::temp_dir().join(format!("dxvpn-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("scenario.toml");
    std::fs::write(
        &scenario,
        r#"[aws]
region = "eu-west-1"
vpc_cidr = "10.7.0.0/16"
subnet_cidrs = ["10.7.1.0/24"]

[azure]
subscription_id = "11111111-2222-3333-4444-555555555555"
resource_group = "corp-rg"
location = "westeurope"
vnet_name = "corp-vnet"
vnet_cidr = "10.8.0.0/16"
subnets = [{ name = "GatewaySubnet", cidr = "10.8.255.0/27" }]
"#,
    )
    .unwrap();
    let (mut child, banner) = serve(&[
        "--aws",
        "127.0.0.1:0",
        "--azure",
        "127.0.0.1:0",
        "--scenario",
        scenario.to_str().unwrap(),
    ]);
    assert_eq!(banner["aws"]["region"], "eu-west-1");
    let endpoint = banner["azure"]["endpoint"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_owned();
    let vnet = banner["azure"]["seeded"]["vnet_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        vnet.ends_with(
            "/resourceGroups/corp-rg/providers/Microsoft.Network/virtualNetworks/corp-vnet"
        ),
        "{vnet}"
    );

    let get = |auth: &str| {
        let mut stream = std::net::TcpStream::connect(&endpoint).unwrap();
        write!(
            stream,
            "GET {vnet}?api-version=2024-03-01 HTTP/1.0\r\n{auth}\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    let response = get("Authorization: Bearer anything\r\n");
    assert!(
        response.starts_with("HTTP/1.0 200") && response.contains("10.8.255.0/27"),
        "{response}"
    );
    // Negative control: without a token, ARM's 401.
    let response = get("");
    assert!(
        response.starts_with("HTTP/1.0 401") && response.contains("AuthenticationFailed"),
        "{response}"
    );

    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(std::net::TcpStream::connect(&endpoint).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lab_serve_needs_a_twin_and_a_readable_scenario() {
    let out = assert_cmd::Command::cargo_bin("dxvpn")
        .unwrap()
        .args(["lab", "serve"])
        .assert()
        .code(2);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("--aws") && stderr.contains("--azure"),
        "{stderr}"
    );
    let bad = std::env::temp_dir().join(format!("dxvpn-bad-scenario-{}.toml", std::process::id()));
    std::fs::write(&bad, "[azure]\nvnet_cidr = \"not a cidr\"\n").unwrap();
    let out = assert_cmd::Command::cargo_bin("dxvpn")
        .unwrap()
        .args(["lab", "serve", "--azure", "127.0.0.1:0", "--scenario"])
        .arg(&bad)
        .assert()
        .code(2);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("--scenario") && stderr.contains("azure"),
        "{stderr}"
    );
    std::fs::remove_file(&bad).unwrap();
}

/// A time factor past any use is refused up front: 1e300 passed the old check (finite, not
/// negative) and then panicked scaling the first duration.
#[test]
fn lab_serve_refuses_a_time_factor_out_of_range() {
    for factor in ["1e300", "-1", "NaN", "inf"] {
        let out = assert_cmd::Command::cargo_bin("dxvpn")
            .unwrap()
            .args(["lab", "serve", "--aws", "127.0.0.1:0"])
            .arg(format!("--time-factor={factor}"))
            .timeout(std::time::Duration::from_secs(20))
            .assert()
            .code(2);
        let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
        assert!(
            stderr.contains("--time-factor") && !stderr.contains("panicked"),
            "{factor}: {stderr}"
        );
    }
}

/// The lab runs as root and keeps charon's configs and VICI socket in its folder: a folder
/// another user made first (here `nobody`, mode 0777) is refused, and nothing is written into
/// it. Run in a mount namespace of its own with a fresh /tmp, so that the squatted folder is
/// the lab's real one (`/tmp/dxvpn-lab`) and no other test sees it. The control is every other
/// lab test: each passes the same check on a folder root made.
#[test]
fn a_lab_folder_another_user_made_is_refused_and_left_empty() {
    let dxvpn = assert_cmd::cargo::cargo_bin("dxvpn");
    let script = format!(
        "set -e; mount -t tmpfs tmpfs /tmp; mkdir /tmp/dxvpn-lab; chown nobody /tmp/dxvpn-lab; chmod 777 /tmp/dxvpn-lab
        for args in 'lab up --data-plane-only' 'lab up --config-out /tmp/lab.toml' 'lab down' 'lab status'; do
            if {dxvpn} $args 2>/tmp/err; then echo \"took it: $args\"; fi
            cat /tmp/err
            echo \"inside after $args: [$(ls -A /tmp/dxvpn-lab)]\"
        done",
        dxvpn = dxvpn.display()
    );
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .current_dir(root())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!said.contains("took it"), "{said}");
    assert_eq!(said.matches("inside after").count(), 4, "{said}");
    assert_eq!(
        said.matches("]").count(),
        said.matches("[]").count(),
        "written into: {said}"
    );
    // Each command's stderr comes before its own "inside after" line.
    let parts: Vec<&str> = said.split("inside after").collect();
    for (i, command) in ["lab up --data-plane-only", "lab up --config-out"]
        .iter()
        .enumerate()
    {
        assert!(
            parts[i].contains("not safe to use") && parts[i].contains("/tmp/dxvpn-lab"),
            "{command} did not say why: {said}"
        );
    }
}
