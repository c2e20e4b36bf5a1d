//! Failures on demand: a tunnel or an Azure instance cut with nftables in `inet`, a black hole
//! for large packets in the AWS gateway's router, each direction pinned to a tunnel, and undone.

use super::build::fabric_link;
use super::*;

/// The routing table of pinned paths.
const PINNED: &str = "300";

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

    /// Drops, without a word, every packet longer than `bytes` that the AWS gateway's router
    /// forwards, both ways: a device on the path with a smaller MTU whose "fragmentation
    /// needed" never comes back (it filters ICMP), the black hole behind "pings pass, TLS
    /// hangs". The drop sits in the forward hook, so no ICMP error is sent (the kernel sends
    /// one only for its own interfaces' MTU, checked before this hook).
    pub async fn black_hole_above(&self, bytes: u16) -> Result<(), NetlabError> {
        let vgw = self.run.ns("aws-vgw");
        let rules = format!(
            "table ip dxlab_mtu {{\n  chain forward {{ type filter hook forward priority 0; policy accept; ip length > {bytes} drop; }}\n}}\n"
        );
        let _ = self.remove_black_hole().await;
        run_with_input(
            &["ip", "netns", "exec", &vgw, "nft", "-f", "-"],
            Some(&rules),
        )
        .await
        .map(drop)
    }

    async fn remove_black_hole(&self) -> Result<(), NetlabError> {
        let vgw = self.run.ns("aws-vgw");
        run(&[
            "ip",
            "netns",
            "exec",
            &vgw,
            "nft",
            "delete",
            "table",
            "ip",
            "dxlab_mtu",
        ])
        .await
        .map(drop)
    }

    /// Pins each direction to one tunnel, as BGP attributes would: AWS's gateway sends the VNet's
    /// traffic by `aws_to_azure` only, and Azure (its fabric and the instance) sends the VPC's by
    /// `azure_to_aws` only. Two different tunnels make the asymmetric routing that AWS's
    /// knowledge center describes (one tunnel's bytes all in, the other's all out). Policy
    /// rules ahead of the routes BIRD installs; `restore` removes them.
    pub async fn pin_paths(
        &self,
        aws_to_azure: &str,
        azure_to_aws: &str,
    ) -> Result<(), NetlabError> {
        let tunnel = |key: &str| {
            self.topology
                .tunnels
                .iter()
                .find(|t| t.key == key)
                .cloned()
                .ok_or_else(|| NetlabError::Topology(format!("no tunnel {key}")))
        };
        let (out, back) = (tunnel(aws_to_azure)?, tunnel(azure_to_aws)?);
        let vnet = self.topology.azure.vnet_cidr.to_string();
        let vpc = self.topology.aws.vpc_cidr.to_string();
        let aws_end = router_link(2 * self.slot(&out.key)).1;
        let azure_end = router_link(2 * self.slot(&back.key) + 1).1;
        let instance = fabric_link(back.azure_instance).0;
        self.unpin_paths().await;
        for (ns, to, via) in [
            (self.run.ns("aws-vgw"), &vnet, aws_end),
            (
                self.run.ns(&format!("az-gw{}", back.azure_instance)),
                &vpc,
                azure_end,
            ),
            (self.run.ns("az-vnet"), &vpc, instance),
        ] {
            ip(
                &ns,
                &[
                    "route",
                    "replace",
                    "default",
                    "via",
                    &via.to_string(),
                    "table",
                    PINNED,
                ],
            )
            .await?;
            ip(
                &ns,
                &["rule", "add", "to", to, "lookup", PINNED, "priority", "50"],
            )
            .await?;
        }
        Ok(())
    }

    /// Undoes [`DataPlane::pin_paths`]; nothing to undo is fine.
    async fn unpin_paths(&self) {
        let mut namespaces = vec![self.run.ns("aws-vgw"), self.run.ns("az-vnet")];
        namespaces.extend(
            (0..self.topology.azure_instances()).map(|i| self.run.ns(&format!("az-gw{i}"))),
        );
        for ns in namespaces {
            let _ = ip(&ns, &["rule", "del", "priority", "50"]).await;
            let _ = ip(&ns, &["route", "flush", "table", PINNED]).await;
        }
    }

    /// Removes every cut, black hole and pinned path.
    pub async fn restore(&self) -> Result<(), NetlabError> {
        // Absent when none was made: nothing to undo.
        let _ = self.remove_black_hole().await;
        self.unpin_paths().await;
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
