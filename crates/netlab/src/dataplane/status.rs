//! What the daemons and kernels report: SAs, BGP sessions and routes per tunnel.

use super::*;

/// One tunnel as the daemons of both ends report it.
#[derive(Debug, Clone, Serialize)]
pub struct TunnelStatus {
    /// `c1t1`, ...
    pub key: String,
    /// AWS end: IKE and CHILD SA.
    pub aws_ipsec: SaState,
    /// Azure end: IKE and CHILD SA.
    pub azure_ipsec: SaState,
    /// The AWS gateway's BGP session over this tunnel.
    pub aws_bgp: BgpSessionState,
    /// The Azure instance's BGP session over this tunnel.
    pub azure_bgp: BgpSessionState,
}

impl TunnelStatus {
    /// IPsec up on both ends.
    pub fn ipsec_up(&self) -> bool {
        self.aws_ipsec.ike_established
            && self.aws_ipsec.child_installed
            && self.azure_ipsec.ike_established
            && self.azure_ipsec.child_installed
    }

    /// BGP established on both ends.
    pub fn bgp_up(&self) -> bool {
        self.aws_bgp.established() && self.azure_bgp.established()
    }

    /// Carrying traffic: IPsec up, BGP up, and each side has the other's routes.
    pub fn up(&self) -> bool {
        self.ipsec_up()
            && self.bgp_up()
            && self.aws_bgp.routes_received > 0
            && self.azure_bgp.routes_received > 0
    }
}

/// How a router reaches the other cloud's prefix.
#[derive(Debug, Clone, Serialize)]
pub struct RouteStatus {
    /// Router (or host) role, e.g. `aws-vgw`.
    pub router: String,
    /// The other cloud's prefix.
    pub prefix: Ipv4Net,
    /// Next hops installed in the kernel (2 = ECMP over two tunnels or instances).
    pub next_hops: usize,
}

impl RouteStatus {
    async fn read(ns: &str, router: &str, prefix: Ipv4Net) -> Self {
        let text = ip(ns, &["route", "show", "exact", &prefix.to_string()])
            .await
            .unwrap_or_default();
        let multipath = text
            .lines()
            .filter(|l| l.trim_start().starts_with("nexthop"))
            .count();
        let next_hops = if multipath > 0 {
            multipath
        } else {
            text.lines().filter(|l| l.contains(" via ")).count()
        };
        RouteStatus {
            router: router.to_owned(),
            prefix,
            next_hops,
        }
    }
}

/// The whole data plane's state.
#[derive(Debug, Clone, Serialize)]
pub struct DataPlaneStatus {
    /// Run prefix.
    pub prefix: String,
    /// Every tunnel.
    pub tunnels: Vec<TunnelStatus>,
    /// Routes to the other cloud, per router.
    pub routes: Vec<RouteStatus>,
}

impl DataPlaneStatus {
    /// The tunnel with key `key`.
    pub fn tunnel(&self, key: &str) -> Option<&TunnelStatus> {
        self.tunnels.iter().find(|t| t.key == key)
    }

    /// Next hops of router `router` towards the other cloud.
    pub fn next_hops(&self, router: &str) -> usize {
        self.routes
            .iter()
            .find(|r| r.router == router)
            .map_or(0, |r| r.next_hops)
    }

    /// Traffic can cross both ways: the VPC host and the VNet fabric each have a route to the
    /// other cloud (the fabric learns it a moment after the tunnels are up).
    pub fn routes_across(&self) -> bool {
        self.next_hops("az-vnet") >= 1 && self.next_hops("aws-host") >= 1
    }

    /// Every tunnel up.
    pub fn all_up(&self) -> bool {
        self.tunnels.iter().all(TunnelStatus::up)
    }
}

impl DataPlane {
    /// Everything the daemons and kernels report now.
    pub async fn status(&self) -> DataPlaneStatus {
        let mut tunnels = Vec::new();
        for tunnel in &self.topology.tunnels {
            let aws_ns = self.run.ns(&format!("aws-{}", tunnel.key));
            let az_ns = self.run.ns(&format!("az-{}", tunnel.key));
            let gw_ns = self.run.ns(&format!("az-gw{}", tunnel.azure_instance));
            let sa = |ns: &str| self.charons.get(ns).map(|c| c.sa_state());
            let bgp = |ns: &str| self.birds.get(ns).map(|b| b.session(&tunnel.key));
            tunnels.push(TunnelStatus {
                key: tunnel.key.clone(),
                aws_ipsec: match sa(&aws_ns) {
                    Some(f) => f.await,
                    None => SaState::default(),
                },
                azure_ipsec: match sa(&az_ns) {
                    Some(f) => f.await,
                    None => SaState::default(),
                },
                aws_bgp: match bgp(&self.run.ns("aws-vgw")) {
                    Some(f) => f.await,
                    None => BgpSessionState::default(),
                },
                azure_bgp: match bgp(&gw_ns) {
                    Some(f) => f.await,
                    None => BgpSessionState::default(),
                },
            });
        }
        let mut routes = vec![
            RouteStatus::read(
                &self.run.ns("aws-vgw"),
                "aws-vgw",
                self.topology.azure.vnet_cidr,
            )
            .await,
        ];
        for i in 0..self.topology.azure_instances() {
            routes.push(
                RouteStatus::read(
                    &self.run.ns(&format!("az-gw{i}")),
                    &format!("az-gw{i}"),
                    self.topology.aws.vpc_cidr,
                )
                .await,
            );
        }
        routes.push(
            RouteStatus::read(
                &self.run.ns("az-vnet"),
                "az-vnet",
                self.topology.aws.vpc_cidr,
            )
            .await,
        );
        routes.push(
            RouteStatus::read(
                &self.run.ns("aws-host"),
                "aws-host",
                self.topology.azure.vnet_cidr,
            )
            .await,
        );
        DataPlaneStatus {
            prefix: self.run.prefix().to_owned(),
            tunnels,
            routes,
        }
    }

    /// Polls [`Self::status`] until `done` holds or `timeout` passes; returns the last status.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&DataPlaneStatus) -> bool,
    ) -> Result<DataPlaneStatus, DataPlaneStatus> {
        let start = Instant::now();
        loop {
            let status = self.status().await;
            if done(&status) {
                return Ok(status);
            }
            if start.elapsed() > timeout {
                return Err(status);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
