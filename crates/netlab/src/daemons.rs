//! The two daemons of the lab, started inside namespaces and recorded by pid: charon (IKE and
//! user-space ESP through kernel-libipsec) and BIRD (BGP).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dxvpn_tunnel::psk::PresharedKey;
use serde::{Deserialize, Serialize};

use crate::NetlabError;
use crate::run::{LabRun, run};

/// Starts `program` in namespace `ns` with its output in `log`, and records its pid. `ip netns
/// exec` and `unshare` exec in place, so the pid of the spawned process is the daemon's.
pub(crate) fn spawn_daemon(
    lab: &LabRun,
    ns: &str,
    program: &[&str],
    log: &Path,
) -> Result<Child, NetlabError> {
    let out = File::create(log).map_err(|e| NetlabError::io(log, e))?;
    let err = out.try_clone().map_err(|e| NetlabError::io(log, e))?;
    let child = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(program)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| NetlabError::Command {
            command: format!("ip netns exec {ns} {}", program.join(" ")),
            stderr: e.to_string(),
        })?;
    lab.record_daemon(child.id())?;
    Ok(child)
}

/// A charon serving one tunnel end.
#[derive(Debug)]
pub(crate) struct Charon {
    /// Its VICI socket.
    pub(crate) vici: PathBuf,
}

impl Charon {
    /// Starts charon in `ns` with `strongswan.conf` from `dir`, each in a private `/run` so that
    /// several daemons' pid files never collide.
    pub(crate) async fn start(
        lab: &LabRun,
        ns: &str,
        dir: &Path,
        children: &mut Vec<Child>,
    ) -> Result<Self, NetlabError> {
        let vici = dir.join("charon.vici");
        let conf = dir.join("strongswan.conf");
        let text = dxvpn_tunnel::render::strongswan_conf(
            &vici.to_string_lossy(),
            Some(&dir.join("charon.log").to_string_lossy()),
        );
        crate::private_dir::write_private(&conf, text)?;
        let script = format!(
            "mount -t tmpfs tmpfs /run && STRONGSWAN_CONF={} exec /usr/lib/ipsec/charon",
            conf.display()
        );
        let out = dir.join("charon.out");
        children.push(spawn_daemon(
            lab,
            ns,
            &["unshare", "-m", "sh", "-c", &script],
            &out,
        )?);
        wait_for_socket(&vici, &out).await?;
        Ok(Charon { vici })
    }

    /// Loads the tunnel's key over VICI: it goes from memory to charon, never through a file.
    pub(crate) async fn load_psk(
        &self,
        connection: &str,
        ids: [&str; 2],
        psk: &PresharedKey,
    ) -> Result<(), NetlabError> {
        #[derive(Serialize)]
        struct LoadShared<'a> {
            id: String,
            #[serde(rename = "type")]
            kind: &'static str,
            data: &'a str,
            owners: [&'a str; 2],
        }
        #[derive(Deserialize)]
        struct Reply {
            success: bool,
            #[serde(default)]
            errmsg: Option<String>,
        }
        let vici = self.vici.display();
        let mut client = rsvici::unix::connect(&self.vici)
            .await
            .map_err(|e| NetlabError::Vici(format!("{vici}: {e}")))?;
        let request = LoadShared {
            id: format!("ike-{connection}"),
            kind: "IKE",
            data: psk.expose(),
            owners: ids,
        };
        let reply: Reply = client
            .request("load-shared", request)
            .await
            .map_err(|e| NetlabError::Vici(format!("{vici}: {e}")))?;
        if !reply.success {
            return Err(NetlabError::Vici(format!(
                "load-shared {connection}: {}",
                reply.errmsg.unwrap_or_default()
            )));
        }
        Ok(())
    }

    /// Loads connections from a `swanctl.conf` (no secrets in it) with the real swanctl.
    pub(crate) async fn load_connections(&self, swanctl_conf: &Path) -> Result<(), NetlabError> {
        let uri = format!("unix://{}", self.vici.display());
        run(&[
            "swanctl",
            "--load-conns",
            "--uri",
            &uri,
            "--file",
            &swanctl_conf.to_string_lossy(),
        ])
        .await
        .map(drop)
    }

    /// IKE SA established, CHILD SA installed and the bytes its CHILD SAs carried, from VICI's
    /// `list-sas` (one `list-sa` event per IKE SA; swanctl's README, "list-sas"). A daemon that
    /// does not answer reads as down with nothing carried.
    pub(crate) async fn sa_state(&self) -> SaState {
        match self.list_sas().await {
            Ok(events) => SaState::from_events(&events),
            Err(e) => {
                tracing::debug!(vici = %self.vici.display(), error = %e, "list-sas failed");
                SaState::default()
            }
        }
    }

    async fn list_sas(&self) -> Result<Vec<ListSaEvent>, rsvici::Error> {
        use futures_util::StreamExt;
        let mut client = rsvici::unix::connect(&self.vici).await?;
        let mut stream =
            std::pin::pin!(client.stream_request::<(), ListSaEvent>("list-sas", "list-sa", ()));
        let mut events = Vec::new();
        while let Some(event) = stream.next().await {
            events.push(event?);
        }
        Ok(events)
    }
}

/// One `list-sa` event: the IKE SA's name and its state, as VICI's README documents them.
type ListSaEvent = std::collections::BTreeMap<String, IkeSa>;

#[derive(Debug, Deserialize)]
struct IkeSa {
    state: String,
    #[serde(rename = "child-sas", default)]
    child_sas: std::collections::BTreeMap<String, ChildSa>,
}

#[derive(Debug, Deserialize)]
struct ChildSa {
    state: String,
    #[serde(rename = "bytes-in", default)]
    bytes_in: u64,
    #[serde(rename = "bytes-out", default)]
    bytes_out: u64,
}

/// The IPsec state of one tunnel end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SaState {
    /// IKE SA established.
    pub ike_established: bool,
    /// CHILD SA installed (ESP carries traffic).
    pub child_installed: bool,
    /// Bytes the CHILD SAs received (decrypted), charon's `bytes-in`. A rekeyed CHILD SA
    /// starts again from 0, so this can fall: a reader treats a fall as a counter reset.
    pub bytes_in: u64,
    /// Bytes the CHILD SAs sent, charon's `bytes-out`.
    pub bytes_out: u64,
}

impl SaState {
    fn from_events(events: &[ListSaEvent]) -> Self {
        let ikes = || events.iter().flat_map(|e| e.values());
        let children = || ikes().flat_map(|ike| ike.child_sas.values());
        SaState {
            ike_established: ikes().any(|ike| ike.state == "ESTABLISHED"),
            child_installed: children().any(|c| c.state == "INSTALLED"),
            bytes_in: children().map(|c| c.bytes_in).sum(),
            bytes_out: children().map(|c| c.bytes_out).sum(),
        }
    }
}

/// A BIRD serving one router.
#[derive(Debug)]
pub(crate) struct Bird {
    /// Its control socket.
    pub(crate) socket: PathBuf,
}

impl Bird {
    /// Checks `bird.conf` with `bird -p` and starts BIRD in the foreground in `ns`.
    pub(crate) async fn start(
        lab: &LabRun,
        ns: &str,
        dir: &Path,
        conf_text: &str,
        children: &mut Vec<Child>,
    ) -> Result<Self, NetlabError> {
        let conf = dir.join("bird.conf");
        crate::private_dir::write_private(&conf, conf_text)?;
        let conf_s = conf.to_string_lossy().into_owned();
        run(&["bird", "-p", "-c", &conf_s]).await?;
        let socket = dir.join("bird.ctl");
        let socket_s = socket.to_string_lossy().into_owned();
        let pidfile = dir.join("bird.pid").to_string_lossy().into_owned();
        let out = dir.join("bird.out");
        children.push(spawn_daemon(
            lab,
            ns,
            &["bird", "-f", "-c", &conf_s, "-s", &socket_s, "-P", &pidfile],
            &out,
        )?);
        wait_for_socket(&socket, &out).await?;
        Ok(Bird { socket })
    }

    /// Checks `conf_text` with `bird -p`, makes it BIRD's `bird.conf` and applies it with
    /// `birdc configure`: sessions whose settings are unchanged stay up, as in a cloud's
    /// router; added, removed or changed ones start, stop or restart.
    pub(crate) async fn reconfigure(&self, conf_text: &str) -> Result<(), NetlabError> {
        let conf = self.socket.with_file_name("bird.conf");
        let check = self.socket.with_file_name("bird.conf.next");
        crate::private_dir::write_private(&check, conf_text)?;
        run(&["bird", "-p", "-c", &check.to_string_lossy()]).await?;
        std::fs::rename(&check, &conf).map_err(|e| NetlabError::io(&conf, e))?;
        let socket = self.socket.to_string_lossy();
        let answer = run(&["birdc", "-s", &socket, "configure"]).await?;
        if answer.contains("Reconfigured") || answer.contains("Reconfiguration in progress") {
            Ok(())
        } else {
            Err(NetlabError::Topology(format!(
                "birdc configure: {}",
                answer.trim()
            )))
        }
    }

    /// State of BGP protocol `name`, from `birdc show protocols all`.
    pub(crate) async fn session(&self, name: &str) -> BgpSessionState {
        let socket = self.socket.to_string_lossy();
        let text = run(&["birdc", "-s", &socket, "show", "protocols", "all", name])
            .await
            .unwrap_or_default();
        parse_bgp_session(&text)
    }
}

/// One BGP session as BIRD reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct BgpSessionState {
    /// `Established`, `Active`, `Connect`, `Idle`, ...
    pub state: String,
    /// Routes received and accepted from the peer.
    pub routes_received: u32,
    /// BIRD's last error, e.g. `Received: Bad peer AS` or `Hold timer expired`.
    pub last_error: Option<String>,
}

impl BgpSessionState {
    /// True when the session is up.
    pub fn established(&self) -> bool {
        self.state == "Established"
    }
}

fn parse_bgp_session(text: &str) -> BgpSessionState {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
    };
    BgpSessionState {
        state: field("BGP state:").unwrap_or_else(|| "Unknown".into()),
        routes_received: field("Routes:")
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0),
        last_error: field("Last error:").filter(|e| !e.is_empty()),
    }
}

/// Waits for a daemon's control socket; on timeout the error carries the end of its output,
/// which is where the daemon says why it did not start.
async fn wait_for_socket(path: &Path, output: &Path) -> Result<(), NetlabError> {
    for _ in 0..100 {
        if path.exists() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let said = std::fs::read_to_string(output).unwrap_or_default();
    let tail: Vec<&str> = said
        .lines()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(NetlabError::Timeout(format!(
        "{} did not appear in 5 s; the daemon said:\n{}",
        path.display(),
        tail.join("\n")
    )))
}

/// Loads `swanctl_conf` into a throwaway charon (its own run and namespace) with
/// `swanctl --load-all`, and returns what swanctl said. For checking rendered configurations
/// with the real tool.
pub async fn check_swanctl_conf(swanctl_conf: &str) -> Result<String, NetlabError> {
    let lab = LabRun::create().await?;
    let ns = lab.add_namespace("check").await?;
    let dir = lab.dir().join("check");
    crate::private_dir::private_dir(&dir)?;
    let mut children = Vec::new();
    let charon = Charon::start(&lab, &ns, &dir, &mut children).await?;
    let conf = dir.join("swanctl.conf");
    crate::private_dir::write_private(&conf, swanctl_conf)?;
    let uri = format!("unix://{}", charon.vici.display());
    let result = run(&[
        "swanctl",
        "--load-all",
        "--uri",
        &uri,
        "--file",
        &conf.to_string_lossy(),
    ])
    .await;
    lab.teardown().await;
    for child in &mut children {
        let _ = child.wait();
    }
    // swanctl exits 0 on a file it cannot parse ("no connections found"): judge by what it says.
    let said = result?;
    if said.contains("successfully loaded") && !said.contains("failed") {
        Ok(said)
    } else {
        Err(NetlabError::Command {
            command: "swanctl --load-all".into(),
            stderr: said,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_birdc_protocol_details() {
        let text = "c1t1       BGP        ---        up     10:00:00.000  Established\n  BGP state:          Established\n    Neighbor address: 169.254.21.2\n  Channel ipv4\n    State:          UP\n    Routes:         1 imported, 1 exported, 1 preferred\n";
        let s = parse_bgp_session(text);
        assert!(s.established());
        assert_eq!(s.routes_received, 1);
        let down = "c1t1 BGP --- start 10:00 Active Socket: Connection refused\n  BGP state:          Active\n    Last error:       Received: Bad peer AS\n";
        let s = parse_bgp_session(down);
        assert!(!s.established());
        assert_eq!(s.last_error.as_deref(), Some("Received: Bad peer AS"));
    }
}
