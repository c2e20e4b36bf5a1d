//! One lab run: its name prefix, its namespaces, the daemons it started, and its cleanup.
//!
//! Every namespace is named `<prefix>-<role>` with a random per-run prefix `dxl` + 6 hex digits.
//! The run directory `/tmp/dxvpn-lab/<prefix>/` (root's alone, see [`crate::private_dir`]) records the owner process and every daemon pid,
//! so that a run whose owner died (a crashed test, a killed command) is torn down by the next
//! one: its daemons are stopped by their recorded pids, its namespaces deleted. A run started by
//! `dxvpn lab up` is marked detached and only `dxvpn lab down` removes it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::NetlabError;
use crate::private_dir::{lab_dir, private_dir, write_private};

/// Every lab namespace name starts with this.
pub const PREFIX_START: &str = "dxl";

/// A lab run. Dropping it tears everything down unless it was detached.
#[derive(Debug)]
pub struct LabRun {
    prefix: String,
    dir: PathBuf,
    detached: bool,
}

impl LabRun {
    /// Creates a run with a fresh prefix, after tearing down runs whose owner is gone.
    pub async fn create() -> Result<Self, NetlabError> {
        // Checked before anything is read from it or written into it.
        private_dir(&lab_dir())?;
        reap_stale_runs().await;
        let prefix = format!("{PREFIX_START}{:06x}", rand::random::<u32>() & 0xff_ffff);
        let dir = lab_dir().join(&prefix);
        private_dir(&dir)?;
        write_private(&dir.join("owner"), std::process::id().to_string())?;
        tracing::info!(%prefix, "lab run created");
        Ok(LabRun {
            prefix,
            dir,
            detached: false,
        })
    }

    /// Reattaches to a run by prefix (for `dxvpn lab status` / `down`).
    pub fn open(prefix: &str) -> Result<Self, NetlabError> {
        let dir = lab_dir().join(prefix);
        let a_name =
            prefix.starts_with(PREFIX_START) && prefix.chars().all(|c| c.is_ascii_alphanumeric());
        if !a_name || !dir.is_dir() {
            return Err(NetlabError::NoSuchRun(prefix.to_owned()));
        }
        private_dir(&dir)?;
        Ok(LabRun {
            prefix: prefix.to_owned(),
            dir,
            detached: true,
        })
    }

    /// The runs on this machine, by prefix.
    pub fn list() -> Vec<String> {
        let dir = lab_dir();
        if !dir.exists() {
            return Vec::new();
        }
        // Nothing is taken from a folder another user could have prepared.
        if let Err(e) = private_dir(&dir) {
            tracing::warn!(error = %e, "lab runs not listed");
            return Vec::new();
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut runs: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(PREFIX_START))
            .collect();
        runs.sort();
        runs
    }

    /// The live process that owns run `prefix` (a test, `dxvpn lab serve`), if any; None for a
    /// detached run or one whose owner is gone.
    pub fn owner_pid(prefix: &str) -> Option<u32> {
        std::fs::read_to_string(lab_dir().join(prefix).join("owner"))
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
    }

    /// The per-run prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The run directory (daemon configs without secrets, logs, sockets).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The full namespace name of a role, e.g. `dxl1a2b3c-aws-vgw`.
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// Keeps everything running after this handle is dropped (`dxvpn lab up`). A run reopened
    /// by [`LabRun::open`] is already detached from this handle, and its owner record stays: a
    /// test that looks into a lab it started must not make that lab immune to the reaper.
    pub fn detach(&mut self) -> Result<(), NetlabError> {
        if self.detached {
            return Ok(());
        }
        std::fs::write(self.dir.join("owner"), "detached")
            .map_err(|e| NetlabError::io(&self.dir, e))?;
        self.detached = true;
        Ok(())
    }

    /// Creates a namespace with loopback up, forwarding on and reverse-path filtering off
    /// (decrypted packets arrive on the TUN device with sources routed elsewhere).
    pub async fn add_namespace(&self, role: &str) -> Result<String, NetlabError> {
        let ns = self.ns(role);
        run(&["ip", "netns", "add", &ns]).await?;
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"]).await?;
        for setting in [
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
            "net.ipv4.conf.all.promote_secondaries=1",
        ] {
            run(&["ip", "netns", "exec", &ns, "sysctl", "-q", "-w", setting]).await?;
        }
        Ok(ns)
    }

    /// A veth pair from `a` (named `a_if`) to `b` (named `b_if`), both up, created directly
    /// inside the namespaces so that parallel runs never collide on names.
    pub async fn link(&self, a: &str, a_if: &str, b: &str, b_if: &str) -> Result<(), NetlabError> {
        run(&[
            "ip", "-n", a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b,
        ])
        .await?;
        run(&["ip", "-n", a, "link", "set", a_if, "up"]).await?;
        run(&["ip", "-n", b, "link", "set", b_if, "up"]).await?;
        Ok(())
    }

    /// Records a daemon pid so that teardown (or the next run, after a crash) stops it.
    pub fn record_daemon(&self, pid: u32) -> Result<(), NetlabError> {
        use std::io::Write;
        let path = self.dir.join("daemons");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| NetlabError::io(&path, e))?;
        writeln!(file, "{pid}").map_err(|e| NetlabError::io(&path, e))
    }

    /// The pids of the daemons this run started.
    pub fn daemon_pids(&self) -> Vec<u32> {
        read_pids(&self.dir)
    }

    /// The namespaces of this run that exist now.
    pub fn namespaces(&self) -> Vec<String> {
        namespaces_with_prefix_blocking(&format!("{}-", self.prefix))
    }

    /// Stops every daemon of the run and deletes its namespaces and directory.
    pub async fn teardown(mut self) {
        // A run this process created may have daemons still being exec'd; one it reattached to
        // (`dxvpn lab down`) only has daemons that started long ago.
        let owner = if self.detached {
            Owner::Other
        } else {
            Owner::Us
        };
        self.detached = true; // Drop must not do it twice
        teardown_dir(&self.prefix, &self.dir, owner).await;
    }
}

impl Drop for LabRun {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        // Drop cannot await: do it synchronously, the same steps as `teardown_dir`.
        let pids = read_pids(&self.dir);
        stop_pids_blocking(&pids, Owner::Us);
        for ns in namespaces_with_prefix_blocking(&format!("{}-", self.prefix)) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &ns])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Tears down runs whose owner process is gone, and namespaces left without a run directory.
pub async fn reap_stale_runs() {
    for prefix in LabRun::list() {
        let dir = lab_dir().join(&prefix);
        let owner = std::fs::read_to_string(dir.join("owner")).unwrap_or_default();
        let alive = owner.trim() == "detached" || LabRun::owner_pid(&prefix).is_some();
        if !alive {
            tracing::warn!(%prefix, "removing the leftovers of a lab run whose owner is gone");
            teardown_dir(&prefix, &dir, Owner::Other).await;
        }
    }
    let runs = LabRun::list();
    for ns in namespaces_with_prefix_blocking(PREFIX_START) {
        if !runs.iter().any(|p| ns.starts_with(&format!("{p}-"))) {
            let _ = run(&["ip", "netns", "del", &ns]).await;
        }
    }
}

async fn teardown_dir(prefix: &str, dir: &Path, owner: Owner) {
    let pids = read_pids(dir);
    tokio::task::spawn_blocking(move || stop_pids_blocking(&pids, owner))
        .await
        .ok();
    for ns in namespaces_with_prefix_blocking(&format!("{prefix}-")) {
        if let Err(e) = run(&["ip", "netns", "del", &ns]).await {
            tracing::warn!(%ns, error = %e, "could not delete namespace");
        }
    }
    let _ = tokio::fs::remove_dir_all(dir).await;
}

fn read_pids(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("daemons"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// True when `pid` is a running lab daemon (charon, bird, or a lab instance's unbound), not a
/// recycled pid.
pub fn is_lab_daemon(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| matches!(comm.trim(), "charon" | "bird" | "unbound"))
        && !is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
    })
}

/// Who is stopping a run's daemons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// The process that started them: they are its unreaped children, so their pids cannot have
    /// been recycled, and one may still be on its way to exec charon (`ip`, `unshare`, `sh`).
    Us,
    /// Another process (`dxvpn lab down`, or the next run after a crash): only a pid that is
    /// still charon or bird is signalled, so a recycled pid is never hit.
    Other,
}

/// Stops daemons by pid: SIGTERM, then SIGKILL for any still there after 3 s.
fn stop_pids_blocking(pids: &[u32], owner: Owner) {
    let starting = |pid: u32| {
        owner == Owner::Us
            && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| matches!(comm.trim(), "ip" | "unshare" | "sh"))
            && !is_zombie(pid)
    };
    let ours = |pid: &u32| is_lab_daemon(*pid) || starting(*pid);
    let live: Vec<u32> = pids.iter().copied().filter(ours).collect();
    for pid in &live {
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
    }
    // charon takes a moment to close its SAs; give every daemon up to 3 s before SIGKILL.
    for _ in 0..60 {
        if !live.iter().any(ours) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in live.iter().filter(|p| ours(p)) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
}

/// Network namespaces whose names start with `prefix` (blocking: one `ip netns list`).
pub fn namespaces_with_prefix_blocking(prefix: &str) -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output();
    let Ok(out) = out else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// Runs a command and returns its stdout; a non-zero exit is an error carrying stderr.
pub async fn run(args: &[&str]) -> Result<String, NetlabError> {
    run_with_input(args, None).await
}

/// Like [`run`], with `input` written to the command's stdin.
pub async fn run_with_input(args: &[&str], input: Option<&str>) -> Result<String, NetlabError> {
    use tokio::io::AsyncWriteExt;
    let (program, rest) = args.split_first().ok_or_else(|| NetlabError::Command {
        command: String::new(),
        stderr: "empty command".into(),
    })?;
    let mut child = Command::new(program)
        .args(rest)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| NetlabError::Command {
            command: args.join(" "),
            stderr: e.to_string(),
        })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| NetlabError::Command {
                command: args.join(" "),
                stderr: e.to_string(),
            })?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| NetlabError::Command {
            command: args.join(" "),
            stderr: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(NetlabError::Command {
            command: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Moves the calling thread into network namespace `name` (`/run/netns/<name>`): sockets it
/// opens afterwards live there. Only for a thread of its own, which never leaves again.
pub fn enter_namespace(name: &str) -> Result<(), String> {
    let path = format!("/run/netns/{name}");
    let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&file),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| format!("setns {path}: {e}"))
}

/// Runs `work` to completion inside network namespace `name`, on a thread of its own with a
/// current-thread runtime, so that every socket it opens is in that namespace: what a process
/// on that host would see.
pub async fn run_in_namespace<T, F, Fut>(name: &str, work: F) -> Result<T, NetlabError>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Result<T, String>>();
    let ns = name.to_owned();
    std::thread::Builder::new()
        .name(format!("in-{ns}"))
        .spawn(move || {
            let result = enter_namespace(&ns).and_then(|()| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())
            });
            let _ = done_tx.send(result.map(|runtime| runtime.block_on(work())));
        })
        .map_err(|e| NetlabError::Topology(format!("thread for {name}: {e}")))?;
    done_rx
        .await
        .unwrap_or_else(|_| Err("the namespace thread ended early".into()))
        .map_err(|e| NetlabError::Topology(format!("in namespace {name}: {e}")))
}
