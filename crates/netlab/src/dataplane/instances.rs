//! Instances in a cloud's network: each its own namespace at its private address, wired to the
//! side's router, running one program (what a cloud's VM would run, e.g. a DNS forwarder).
//!
//! The instance holds its address as a /32 with the router as its default gateway; the router
//! routes the address to it and answers ARP for the rest of the subnet on both sides (proxy
//! ARP), so the side's host and the instance reach each other as neighbours in one subnet do.

use std::net::Ipv4Addr;
use std::process::Child;

use super::{DataPlane, Side, first_host, ip};
use crate::NetlabError;

/// A running instance.
#[derive(Debug)]
pub(crate) struct LabInstance {
    ns: String,
    router_ns: String,
    router_if: String,
    ip: Ipv4Addr,
    program: InstanceProgram,
    child: Child,
}

/// What an instance runs: its argv, and the files it reads (written into the lab's private
/// folder; every argument equal to a file's path is pointed at the lab's copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceProgram {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// (path on the instance, content).
    pub files: Vec<(String, String)>,
}

impl DataPlane {
    /// Starts instance `name` at `ip` in `side`'s network, running `program`. Replaces an
    /// instance of that name that runs something else.
    pub async fn start_instance(
        &mut self,
        side: Side,
        name: &str,
        ip_addr: Ipv4Addr,
        program: &InstanceProgram,
    ) -> Result<(), NetlabError> {
        if self
            .instances
            .get(name)
            .is_some_and(|i| i.program == *program)
        {
            return Ok(());
        }
        self.stop_instance(name).await;
        let slot = self.next_instance_slot;
        self.next_instance_slot += 1;
        let (router_role, subnet) = match side {
            Side::Aws => ("aws-vgw", self.topology.aws.host_subnet),
            Side::Azure => ("az-vnet", self.topology.azure.host_subnet),
        };
        let router_ns = self.run.ns(router_role);
        let ns = self.run.add_namespace(&format!("vm{slot}")).await?;
        let router_if = format!("vm{slot}");
        self.run.link(&router_ns, &router_if, &ns, "eth0").await?;
        let gateway = first_host(subnet).to_string();
        ip(
            &ns,
            &["addr", "add", &format!("{ip_addr}/32"), "dev", "eth0"],
        )
        .await?;
        ip(&ns, &["route", "add", &gateway, "dev", "eth0"]).await?;
        ip(&ns, &["route", "add", "default", "via", &gateway]).await?;
        ip(
            &router_ns,
            &[
                "route",
                "replace",
                &format!("{ip_addr}/32"),
                "dev",
                &router_if,
            ],
        )
        .await?;
        for interface in [router_if.as_str(), "host"] {
            crate::run::run(&[
                "ip",
                "netns",
                "exec",
                &router_ns,
                "sysctl",
                "-q",
                "-w",
                &format!("net.ipv4.conf.{interface}.proxy_arp=1"),
            ])
            .await?;
        }
        let dir = self.role_dir(&ns)?;
        let mut argv = program.argv.clone();
        for (n, (path, content)) in program.files.iter().enumerate() {
            let local = dir.join(format!("file{n}"));
            crate::private_dir::write_private(&local, content)?;
            for arg in argv.iter_mut().filter(|a| *a == path) {
                *arg = local.to_string_lossy().into_owned();
            }
        }
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let child = crate::daemons::spawn_daemon(&self.run, &ns, &args, &dir.join("out"))?;
        tracing::info!(%name, %ip_addr, program = %program.argv.join(" "), "lab instance started");
        self.instances.insert(
            name.to_owned(),
            LabInstance {
                ns,
                router_ns,
                router_if,
                ip: ip_addr,
                program: program.clone(),
                child,
            },
        );
        Ok(())
    }

    /// Stops instance `name` (its program by pid, then its namespace), if it runs.
    pub async fn stop_instance(&mut self, name: &str) {
        let Some(mut instance) = self.instances.remove(name) else {
            return;
        };
        let _ = instance.child.kill();
        let _ = instance.child.wait();
        let _ = crate::run::run(&[
            "ip",
            "-n",
            &instance.router_ns,
            "route",
            "del",
            &format!("{}/32", instance.ip),
            "dev",
            &instance.router_if,
        ])
        .await;
        let _ = crate::run::run(&["ip", "netns", "del", &instance.ns]).await;
        tracing::info!(%name, "lab instance stopped");
    }

    /// The names of the instances running.
    pub fn instance_names(&self) -> Vec<String> {
        self.instances.keys().cloned().collect()
    }

    /// The namespace of instance `name`, while it runs.
    pub fn instance_namespace(&self, name: &str) -> Option<String> {
        self.instances.get(name).map(|i| i.ns.clone())
    }
}
