//! A VPN connection's tunnels as AWS answers them, paired with the planned ones, compared with
//! them, and changed in place (ModifyVpnTunnelOptions, one tunnel at a time).

use std::time::Duration;

use aws_sdk_ec2::types::{ModifyVpnTunnelOptionsSpecification, TunnelOption, VpnConnection};
use dxvpn_plan::{FieldChange, Plan};
use dxvpn_tunnel::psk::PresharedKey;

use crate::{Aws, AwsError, Outputs, api};

/// Sets the plan's IKE/IPsec policy and a tunnel's inside CIDR on a tunnel options builder: the
/// same members on CreateVpnConnection's `VpnTunnelOptionsSpecification` and on
/// ModifyVpnTunnelOptions' `ModifyVpnTunnelOptionsSpecification`, two types in the SDK.
macro_rules! with_policy {
    ($builder:expr, $policy:expr, $cidr:expr) => {{
        use aws_sdk_ec2::types::{
            IkeVersionsRequestListValue, Phase1DhGroupNumbersRequestListValue,
            Phase1EncryptionAlgorithmsRequestListValue, Phase1IntegrityAlgorithmsRequestListValue,
            Phase2DhGroupNumbersRequestListValue, Phase2EncryptionAlgorithmsRequestListValue,
            Phase2IntegrityAlgorithmsRequestListValue,
        };
        let policy = $policy;
        $builder
            .tunnel_inside_cidr($cidr.to_string())
            .phase1_encryption_algorithms(
                Phase1EncryptionAlgorithmsRequestListValue::builder()
                    .value(policy.phase1_encryption)
                    .build(),
            )
            .phase2_encryption_algorithms(
                Phase2EncryptionAlgorithmsRequestListValue::builder()
                    .value(policy.phase2_encryption)
                    .build(),
            )
            .phase1_integrity_algorithms(
                Phase1IntegrityAlgorithmsRequestListValue::builder()
                    .value(policy.phase1_integrity)
                    .build(),
            )
            .phase2_integrity_algorithms(
                Phase2IntegrityAlgorithmsRequestListValue::builder()
                    .value(policy.phase2_integrity)
                    .build(),
            )
            .phase1_dh_group_numbers(
                Phase1DhGroupNumbersRequestListValue::builder()
                    .value(i32::from(policy.phase1_dh_group))
                    .build(),
            )
            .phase2_dh_group_numbers(
                Phase2DhGroupNumbersRequestListValue::builder()
                    .value(i32::from(policy.phase2_dh_group))
                    .build(),
            )
            .ike_versions(
                IkeVersionsRequestListValue::builder()
                    .value(policy.ike_version)
                    .build(),
            )
            .phase1_lifetime_seconds(
                i32::try_from(policy.phase1_lifetime_seconds).unwrap_or(28_800),
            )
            .phase2_lifetime_seconds(i32::try_from(policy.phase2_lifetime_seconds).unwrap_or(3_600))
            .dpd_timeout_seconds(i32::try_from(policy.dpd_timeout_seconds).unwrap_or(30))
            .startup_action(policy.aws_startup_action)
    }};
}
pub(crate) use with_policy;

/// How long one tunnel's modification may take: terraform-provider-aws waits up to 30 minutes
/// for `modifying` to end.
const MODIFY_LIMIT: Duration = Duration::from_secs(30 * 60);
/// How long a modified tunnel may take to come back with BGP once its peer has followed:
/// IKE and BGP need seconds to a minute; DPD timeouts and retries make it minutes.
pub const TUNNEL_UP_LIMIT: Duration = Duration::from_secs(15 * 60);

/// Which planned tunnel (0 or 1) each answered tunnel of `role` is. AWS does not promise the
/// order of a connection's tunnels, so their position says nothing (terraform-provider-aws
/// #19079; the provider pairs on the inside CIDR since PR #19077): a tunnel whose inside CIDR is
/// planned is that tunnel; the rest are tunnels whose inside CIDR the plan changes. Of those, one
/// at the address Azure's local network gateway of a planned tunnel points at (in `outputs`,
/// when the caller has read it) is that tunnel: with both inside CIDRs changed, nothing else
/// tells them apart. The others are paired in the order of their outside addresses with the
/// planned tunnels left over.
pub(crate) fn pair(
    plan: &Plan,
    role: &str,
    vpn: &VpnConnection,
    outputs: &Outputs,
) -> Result<Vec<usize>, AwsError> {
    let vpn_id = vpn.vpn_connection_id().unwrap_or_default();
    let planned: Vec<_> = plan.tunnels_of(role).collect();
    let answered = answered(vpn);
    let mut paired: Vec<Option<usize>> = answered
        .iter()
        .map(|t| {
            planned
                .iter()
                .find(|p| {
                    Some(p.pairing.inside_cidr.to_string().as_str()) == t.tunnel_inside_cidr()
                })
                .map(|p| p.pairing.aws_tunnel)
        })
        .collect();
    let peer_of = |key: &str| {
        outputs.get(
            &format!("azure.local_network_gateway.{key}"),
            "gateway_ip_address",
        )
    };
    for (a, t) in answered.iter().enumerate() {
        if paired[a].is_some() || t.outside_ip_address().is_none() {
            continue;
        }
        let known = planned.iter().find(|p| {
            !paired.contains(&Some(p.pairing.aws_tunnel))
                && peer_of(&p.key) == t.outside_ip_address()
        });
        paired[a] = known.map(|p| p.pairing.aws_tunnel);
    }
    let mut free: Vec<usize> = planned
        .iter()
        .map(|p| p.pairing.aws_tunnel)
        .filter(|i| !paired.contains(&Some(*i)))
        .collect();
    free.sort_unstable();
    let mut left: Vec<usize> = (0..answered.len())
        .filter(|a| paired[*a].is_none())
        .collect();
    left.sort_by_key(|a| {
        answered[*a]
            .outside_ip_address()
            .unwrap_or_default()
            .to_owned()
    });
    if left.len() > free.len() {
        let extra = answered[left[free.len()]];
        return Err(AwsError::TunnelMismatch {
            role: role.to_owned(),
            vpn_id: vpn_id.to_owned(),
            answered: extra.tunnel_inside_cidr().unwrap_or("none").to_owned(),
            planned: planned
                .iter()
                .map(|t| t.pairing.inside_cidr.to_string())
                .collect::<Vec<_>>()
                .join(" and "),
        });
    }
    for (a, i) in left.into_iter().zip(free) {
        paired[a] = Some(i);
    }
    Ok(paired.into_iter().flatten().collect())
}

fn answered(vpn: &VpnConnection) -> Vec<&TunnelOption> {
    vpn.options()
        .map(|o| o.tunnel_options().iter().collect())
        .unwrap_or_default()
}

/// What differs between an answered tunnel and planned tunnel `index` of `role`. A member AWS
/// does not answer is not compared; a key is compared only when the config gives one (a key
/// dxvpn generated is AWS's to keep), and never shown.
pub(crate) fn tunnel_changes(
    plan: &Plan,
    role: &str,
    index: usize,
    t: &TunnelOption,
) -> Vec<FieldChange> {
    let Some(planned) = plan.tunnel_of(role, index) else {
        return Vec::new();
    };
    let policy = &plan.ipsec_policy;
    let at = |field: &str| format!("tunnels[{index}].{field}");
    let mut changes = Vec::new();
    let cidr = planned.pairing.inside_cidr.to_string();
    if let Some(now) = t.tunnel_inside_cidr()
        && now != cidr
    {
        changes.push(FieldChange::new(at("inside_cidr"), now, &cidr));
    }
    if let (Some(given), Some(now)) = (&planned.preshared_key, t.pre_shared_key())
        && given.expose() != now
    {
        changes.push(FieldChange::secret(at("pre_shared_key")));
    }
    let mut list = |field: &str, now: Vec<String>, wanted: String| {
        if !now.is_empty() && now != [wanted.clone()] {
            changes.push(FieldChange::new(at(field), now.join(","), wanted));
        }
    };
    list(
        "ike_versions",
        t.ike_versions()
            .iter()
            .filter_map(|v| v.value())
            .map(str::to_owned)
            .collect(),
        policy.ike_version.to_owned(),
    );
    list(
        "phase1_encryption",
        t.phase1_encryption_algorithms()
            .iter()
            .filter_map(|v| v.value())
            .map(str::to_owned)
            .collect(),
        policy.phase1_encryption.to_owned(),
    );
    list(
        "phase2_encryption",
        t.phase2_encryption_algorithms()
            .iter()
            .filter_map(|v| v.value())
            .map(str::to_owned)
            .collect(),
        policy.phase2_encryption.to_owned(),
    );
    list(
        "phase1_integrity",
        t.phase1_integrity_algorithms()
            .iter()
            .filter_map(|v| v.value())
            .map(str::to_owned)
            .collect(),
        policy.phase1_integrity.to_owned(),
    );
    list(
        "phase2_integrity",
        t.phase2_integrity_algorithms()
            .iter()
            .filter_map(|v| v.value())
            .map(str::to_owned)
            .collect(),
        policy.phase2_integrity.to_owned(),
    );
    list(
        "phase1_dh_group",
        t.phase1_dh_group_numbers()
            .iter()
            .filter_map(|v| v.value())
            .map(|v| v.to_string())
            .collect(),
        policy.phase1_dh_group.to_string(),
    );
    list(
        "phase2_dh_group",
        t.phase2_dh_group_numbers()
            .iter()
            .filter_map(|v| v.value())
            .map(|v| v.to_string())
            .collect(),
        policy.phase2_dh_group.to_string(),
    );
    if let Some(now) = t.dpd_timeout_seconds()
        && i64::from(now) != i64::from(policy.dpd_timeout_seconds)
    {
        changes.push(FieldChange::new(
            at("dpd_timeout_seconds"),
            now,
            policy.dpd_timeout_seconds,
        ));
    }
    if let Some(now) = t.startup_action()
        && now != policy.aws_startup_action
    {
        changes.push(FieldChange::new(
            at("startup_action"),
            now,
            policy.aws_startup_action,
        ));
    }
    changes
}

impl Aws {
    /// `role`'s live VPN connection, by tags; with several (racing runs), the one on the
    /// customer gateway this run uses, else the lowest id, so that every command keeps the same.
    pub(crate) async fn find_vpn(
        &self,
        plan: &Plan,
        role: &str,
        on_cgw: Option<&str>,
    ) -> Result<Option<VpnConnection>, AwsError> {
        let mut found: Vec<VpnConnection> = match self.snapshot().await {
            Some(snapshot) => crate::snapshot::of_role(&snapshot.vpns, VpnConnection::tags, role)
                .cloned()
                .collect(),
            None => self
                .ec2
                .describe_vpn_connections()
                .set_filters(Some(Self::live_by_tags(plan, role)))
                .send()
                .await
                .map_err(api(role, "DescribeVpnConnections"))?
                .vpn_connections()
                .to_vec(),
        };
        found.sort_by_key(|v| {
            (
                on_cgw.is_some() && v.customer_gateway_id() != on_cgw,
                v.vpn_connection_id().unwrap_or_default().to_owned(),
            )
        });
        // With several, only one on this run's customer gateway counts (`strays` deletes the
        // others).
        if found.len() > 1 && on_cgw.is_some() {
            found.retain(|v| v.customer_gateway_id() == on_cgw);
        }
        Ok(found.into_iter().next())
    }

    /// Finds `role`'s VPN connection by tags and records its id, tunnel addresses and keys,
    /// each under the planned tunnel it is; `false` when it does not exist.
    pub(crate) async fn observe_vpn(
        &self,
        plan: &Plan,
        role: &str,
        outputs: &mut Outputs,
    ) -> Result<bool, AwsError> {
        let cgw = cgw_of(role).and_then(|c| outputs.get(&c, "id").map(str::to_owned));
        let Some(vpn) = self.find_vpn(plan, role, cgw.as_deref()).await? else {
            return Ok(false);
        };
        record(plan, role, &vpn, outputs)?;
        Ok(true)
    }

    /// Changes in place what differs in `role`'s tunnels, one tunnel at a time: AWS takes one
    /// modification per connection, and the other tunnel carries traffic meanwhile. Each waits
    /// until the connection is `available` again. The outside addresses and the id stay.
    /// A caller whose peer must follow each change (dxvpn's deployer: Azure's local network
    /// gateway holds the tunnel's BGP address) uses the three steps below instead.
    pub(crate) async fn update_tunnels(
        &self,
        plan: &Plan,
        role: &str,
        outputs: &mut Outputs,
    ) -> Result<(), AwsError> {
        for index in self.tunnels_to_update(plan, role, outputs).await? {
            self.update_tunnel(plan, role, index, outputs).await?;
        }
        Ok(())
    }

    /// The plan's tunnel indexes of `role` that differ in AWS from the plan, in order.
    pub async fn tunnels_to_update(
        &self,
        plan: &Plan,
        role: &str,
        outputs: &Outputs,
    ) -> Result<Vec<usize>, AwsError> {
        let cgw = cgw_of(role).and_then(|c| outputs.get(&c, "id").map(str::to_owned));
        let Some(vpn) = self.find_vpn(plan, role, cgw.as_deref()).await? else {
            return Ok(Vec::new());
        };
        let pairs = pair(plan, role, &vpn, outputs)?;
        let mut pending: Vec<usize> = answered(&vpn)
            .into_iter()
            .zip(pairs)
            .filter(|(t, index)| !tunnel_changes(plan, role, *index, t).is_empty())
            .map(|(_, index)| index)
            .collect();
        pending.sort_unstable();
        Ok(pending)
    }

    /// Changes tunnel `index` of `role` in place (ModifyVpnTunnelOptions), waits until the
    /// connection is `available` again and records its outputs anew. Nothing when it is
    /// already as planned.
    pub async fn update_tunnel(
        &self,
        plan: &Plan,
        role: &str,
        index: usize,
        outputs: &mut Outputs,
    ) -> Result<(), AwsError> {
        let cgw = cgw_of(role).and_then(|c| outputs.get(&c, "id").map(str::to_owned));
        let Some(vpn) = self.find_vpn(plan, role, cgw.as_deref()).await? else {
            return Ok(());
        };
        let vpn_id = vpn.vpn_connection_id().unwrap_or_default().to_owned();
        let pairs = pair(plan, role, &vpn, outputs)?;
        let Some(t) = answered(&vpn)
            .into_iter()
            .zip(pairs)
            .find_map(|(t, i)| (i == index).then_some(t))
        else {
            return Ok(());
        };
        let changes = tunnel_changes(plan, role, index, t);
        let (Some(outside), Some(planned)) = (t.outside_ip_address(), plan.tunnel_of(role, index))
        else {
            return Ok(());
        };
        if changes.is_empty() {
            return Ok(());
        }
        let fields: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        tracing::info!(%role, %vpn_id, tunnel = index + 1, ?fields, "modifying tunnel in place");
        let mut spec = with_policy!(
            ModifyVpnTunnelOptionsSpecification::builder(),
            &plan.ipsec_policy,
            planned.pairing.inside_cidr
        );
        if let Some(key) = &planned.preshared_key {
            spec = spec.pre_shared_key(key.expose());
        }
        self.ec2
            .modify_vpn_tunnel_options()
            .vpn_connection_id(&vpn_id)
            .vpn_tunnel_outside_ip_address(outside)
            .tunnel_options(spec.build())
            .send()
            .await
            .map_err(api(role, "ModifyVpnTunnelOptions"))?;
        self.wait_modified(role, &vpn_id).await?;
        self.observe_vpn(plan, role, outputs).await.map(drop)
    }

    /// Waits until tunnel `index` of `role` reports `UP` in the VGW's telemetry with at least
    /// one accepted route (`AcceptedRouteCount`: routes learned over BGP), up to
    /// [`TUNNEL_UP_LIMIT`]. A replaced tunnel endpoint stays `DOWN` until IKE is negotiated
    /// again (re:Post, "Why did I get a notification that the tunnel endpoints ... are being
    /// replaced?"), so the other tunnel must not be touched before this one carries routes.
    pub async fn wait_tunnel_up(
        &self,
        plan: &Plan,
        role: &str,
        index: usize,
    ) -> Result<(), AwsError> {
        let started = std::time::Instant::now();
        loop {
            let states = self.tunnel_states(plan).await?;
            let up = states.iter().any(|s| {
                s.connection_role == role
                    && s.tunnel == index
                    && s.status == "UP"
                    && s.accepted_routes > 0
            });
            if up {
                return Ok(());
            }
            if started.elapsed() >= TUNNEL_UP_LIMIT {
                return Err(AwsError::Timeout {
                    role: role.to_owned(),
                    wanted: "the modified tunnel UP with BGP before the next one is modified",
                    waited: TUNNEL_UP_LIMIT,
                });
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Waits until `vpn_id` is no longer `modifying`.
    async fn wait_modified(&self, role: &str, vpn_id: &str) -> Result<(), AwsError> {
        let started = std::time::Instant::now();
        loop {
            let state = self.state_of(role, "vpn_connection", vpn_id).await?;
            if state.as_deref() == Some("available") {
                return Ok(());
            }
            if started.elapsed() >= MODIFY_LIMIT {
                return Err(AwsError::Timeout {
                    role: role.to_owned(),
                    wanted: "available after the tunnel modification",
                    waited: MODIFY_LIMIT,
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The customer gateway role a VPN connection role is on.
fn cgw_of(role: &str) -> Option<String> {
    role.strip_prefix("aws.vpn_connection.")
        .map(|n| format!("aws.customer_gateway.{n}"))
}

/// The output of a VPN connection that holds the outside address of its planned tunnel
/// `index` (0 or 1).
pub(crate) fn outside_ip_output(index: usize) -> &'static str {
    if index == 0 {
        "tunnel1_outside_ip"
    } else {
        "tunnel2_outside_ip"
    }
}

/// Records `vpn`'s id, outside addresses and keys under the planned tunnels they are.
pub(crate) fn record(
    plan: &Plan,
    role: &str,
    vpn: &VpnConnection,
    outputs: &mut Outputs,
) -> Result<(), AwsError> {
    outputs.set(role, "id", vpn.vpn_connection_id().unwrap_or_default());
    let pairs = pair(plan, role, vpn, outputs)?;
    for (t, i) in answered(vpn).into_iter().zip(pairs) {
        if let Some(ip) = t.outside_ip_address().filter(|ip| *ip != "0.0.0.0") {
            outputs.set(role, outside_ip_output(i), ip);
        }
        if let Some(key) = t.pre_shared_key().and_then(|k| PresharedKey::parse(k).ok()) {
            outputs.set_key(role, i, key);
        }
    }
    Ok(())
}
