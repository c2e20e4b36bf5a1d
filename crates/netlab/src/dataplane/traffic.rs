//! Traffic through the data plane: pings from a host, continuous pings for outages, a tunnel's
//! packet counter.

use super::*;

/// "3 packets transmitted, 3 received, ..." -> (3, 3).
pub(super) fn parse_ping_summary(text: &str) -> Option<(u32, u32)> {
    let line = text.lines().find(|l| l.contains("packets transmitted"))?;
    let mut numbers = line
        .split(',')
        .map(|part| part.split_whitespace().next().and_then(|n| n.parse().ok()));
    Some((numbers.next()??, numbers.next()??))
}

/// A running ping, for measuring outages.
#[derive(Debug)]
pub struct PingStream {
    child: tokio::process::Child,
    reader: tokio::task::JoinHandle<Vec<f64>>,
}

impl PingStream {
    /// Stops the ping and returns the arrival times (UNIX seconds) of every reply.
    pub async fn stop(mut self) -> Vec<f64> {
        let _ = self.child.kill().await;
        self.reader.await.unwrap_or_default()
    }
}

/// The longest stretch without a reply, in seconds, minus the ping interval: the outage.
pub fn longest_outage(replies: &[f64], interval: f64) -> f64 {
    replies
        .windows(2)
        .map(|w| w[1] - w[0] - interval)
        .fold(0.0, f64::max)
}

impl DataPlane {
    /// Pings `to` from the host on `from`'s side: (sent, received).
    pub async fn ping(&self, from: Side, to: Ipv4Addr, count: u32) -> (u32, u32) {
        self.ping_sized(from, to, count, 56, "0.2").await
    }

    /// Traffic across: `count` echoes of `payload` bytes from `from`'s host to `to`, 2 ms apart
    /// (each crosses twice: the request one way, the reply the other): (sent, received).
    pub async fn bulk(&self, from: Side, to: Ipv4Addr, count: u32, payload: u16) -> (u32, u32) {
        self.ping_sized(from, to, count, payload, "0.002").await
    }

    async fn ping_sized(
        &self,
        from: Side,
        to: Ipv4Addr,
        count: u32,
        payload: u16,
        interval: &str,
    ) -> (u32, u32) {
        let ns = self.run.ns(host_role(from));
        let out = tokio::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "ping",
                "-n",
                "-q",
                "-c",
                &count.to_string(),
                "-s",
                &payload.to_string(),
                "-i",
                interval,
                "-W",
                "1",
                &to.to_string(),
            ])
            .stdin(Stdio::null())
            .output()
            .await;
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        parse_ping_summary(&text).unwrap_or((count, 0))
    }

    /// Pings continuously (every 100 ms) from `from`'s host until [`PingStream::stop`].
    pub fn ping_stream(&self, from: Side, to: Ipv4Addr) -> Result<PingStream, NetlabError> {
        let ns = self.run.ns(host_role(from));
        let mut child = tokio::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "ping",
                "-n",
                "-D",
                "-i",
                "0.1",
                "-W",
                "1",
                &to.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| NetlabError::Command {
                command: "ping".into(),
                stderr: e.to_string(),
            })?;
        let stdout = child.stdout.take().ok_or_else(|| NetlabError::Command {
            command: "ping".into(),
            stderr: "no stdout".into(),
        })?;
        let reader = tokio::spawn(async move {
            let mut replies = Vec::new();
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                // "[1700000000.123456] 64 bytes from 10.51.1.10: icmp_seq=1 ttl=60 time=0.5 ms"
                if line.contains("bytes from")
                    && let Some(ts) = line
                        .strip_prefix('[')
                        .and_then(|l| l.split(']').next())
                        .and_then(|s| s.parse::<f64>().ok())
                {
                    replies.push(ts);
                }
            }
            replies
        });
        Ok(PingStream { child, reader })
    }

    /// Packets sent into tunnel `key` by its AWS end so far (the `ipsec0` TX counter): which
    /// tunnel ECMP chose for a flow shows in how this grows.
    pub async fn tunnel_tx_packets(&self, key: &str) -> u64 {
        let ns = self.run.ns(&format!("aws-{key}"));
        let text = ip(&ns, &["-s", "link", "show", "ipsec0"])
            .await
            .unwrap_or_default();
        // "    TX:  bytes packets errors ..." followed by the numbers line.
        let mut lines = text
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("TX:"));
        lines
            .nth(1)
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    }
}
