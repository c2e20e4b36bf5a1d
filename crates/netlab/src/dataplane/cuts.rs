//! Failures on demand: a tunnel or an Azure instance cut with nftables in `inet`, and undone.

use super::*;

impl DataPlane {
    /// Drops every packet to and from an AWS tunnel's outside address in `inet`: the tunnel is cut.
    pub async fn cut_tunnel(&self, key: &str) -> Result<(), NetlabError> {
        let tunnel = self
            .topology
            .tunnels
            .iter()
            .find(|t| t.key == key)
            .ok_or_else(|| NetlabError::Topology(format!("no tunnel {key}")))?;
        let addr = tunnel.aws.outside_ip.to_string();
        self.nft_cut(&["ip", "saddr", &addr]).await?;
        self.nft_cut(&["ip", "daddr", &addr]).await
    }

    /// Cuts a whole Azure instance off the internet: its public IP and every tunnel end behind it.
    pub async fn cut_instance(&self, instance: usize) -> Result<(), NetlabError> {
        let pip = self
            .topology
            .azure
            .public_ips
            .get(instance)
            .ok_or_else(|| NetlabError::Topology(format!("no Azure instance {instance}")))?;
        self.nft_cut(&["ip", "daddr", &pip.to_string()]).await?;
        for tunnel in &self.topology.tunnels {
            if tunnel.azure_instance == instance {
                let j = self.slot(&tunnel.key);
                self.nft_cut(&["ip", "saddr", &inet_link(2 * j + 1).1.to_string()])
                    .await?;
            }
        }
        Ok(())
    }

    /// Removes every cut.
    pub async fn restore(&self) -> Result<(), NetlabError> {
        run(&[
            "ip",
            "netns",
            "exec",
            &self.run.ns("inet"),
            "nft",
            "flush",
            "chain",
            "ip",
            "dxlab",
            "cut",
        ])
        .await
        .map(drop)
    }

    pub(super) async fn nft_cut(&self, matcher: &[&str]) -> Result<(), NetlabError> {
        let inet = self.run.ns("inet");
        let mut args = vec![
            "ip", "netns", "exec", &inet, "nft", "add", "rule", "ip", "dxlab", "cut",
        ];
        args.extend_from_slice(matcher);
        args.push("drop");
        run(&args).await.map(drop)
    }
}
