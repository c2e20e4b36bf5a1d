//! What the Azure twin is seeded with: a resource group, a VNet with subnets, optionally an
//! existing VPN gateway.

use super::*;

/// What a scenario seeds: a resource group with a VNet, its subnets, and optionally a VPN gateway
/// that dxvpn should reuse rather than create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AzureScenario {
    /// Subscription id.
    pub subscription_id: String,
    /// Resource group.
    pub resource_group: String,
    /// Region.
    pub location: String,
    /// The VNet's name.
    pub vnet_name: String,
    /// Its address space.
    pub vnet_cidr: Ipv4Net,
    /// Its subnets, `GatewaySubnet` included.
    pub subnets: Vec<SeedSubnet>,
    /// A VPN gateway that exists already.
    #[serde(default)]
    pub existing_gateway: Option<SeedGateway>,
}

/// A seeded subnet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedSubnet {
    /// Name (`GatewaySubnet` for the gateway's).
    pub name: String,
    /// Prefix.
    pub cidr: Ipv4Net,
}

/// A seeded VPN gateway (in `GatewaySubnet`, with its own Standard public IPs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedGateway {
    /// Gateway name.
    pub name: String,
    /// Two instances or one.
    pub active_active: bool,
    /// BGP ASN.
    pub asn: u32,
}

impl Default for AzureScenario {
    fn default() -> Self {
        AzureScenario {
            subscription_id: "5eed0000-0000-4000-8000-00000000a2e1".into(),
            resource_group: "dxvpn-lab-rg".into(),
            location: "italynorth".into(),
            vnet_name: "dxvpn-lab-vnet".into(),
            vnet_cidr: Ipv4Net::new_assert(Ipv4Addr::new(10, 1, 0, 0), 16),
            subnets: vec![
                SeedSubnet {
                    name: "GatewaySubnet".into(),
                    cidr: Ipv4Net::new_assert(Ipv4Addr::new(10, 1, 255, 0), 27),
                },
                SeedSubnet {
                    name: "workload".into(),
                    cidr: Ipv4Net::new_assert(Ipv4Addr::new(10, 1, 1, 0), 24),
                },
            ],
            existing_gateway: None,
        }
    }
}

/// Ids the scenario was seeded with.
#[derive(Debug, Clone, Serialize)]
pub struct AzureSeeded {
    /// Subscription.
    pub subscription_id: String,
    /// Resource group.
    pub resource_group: String,
    /// Region.
    pub location: String,
    /// The VNet's ARM id.
    pub vnet_id: String,
    /// The existing gateway's ARM id, when the scenario has one.
    pub existing_gateway_id: Option<String>,
    /// Its public IPs.
    pub existing_gateway_ips: Vec<Ipv4Addr>,
    /// The seed of what ARM does not document (the order of a list); `DXVPN_TWIN_SEED`
    /// replays it.
    pub seed: u64,
}

impl Arm {
    /// A twin seeded from `scenario`.
    pub(crate) fn new(
        scenario: &AzureScenario,
        time_factor: f64,
        seed: u64,
    ) -> Result<Self, ArmError> {
        let base = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network",
            scenario.subscription_id, scenario.resource_group
        );
        let vnet_id = format!("{base}/virtualNetworks/{}", scenario.vnet_name);
        let mut arm = Arm {
            seeded: AzureSeeded {
                subscription_id: scenario.subscription_id.clone(),
                resource_group: scenario.resource_group.clone(),
                location: scenario.location.clone(),
                vnet_id: vnet_id.clone(),
                existing_gateway_id: None,
                existing_gateway_ips: Vec::new(),
                seed,
            },
            seed_ids: BTreeSet::new(),
            // Seeding is instant whatever the time factor.
            time_factor: 0.0,
            records: BTreeMap::new(),
            keys: SharedKeys::default(),
            operations: BTreeMap::new(),
            next_serial: 0,
            telemetry: Telemetry::default(),
            fail_next: None,
        };
        let subnets: Vec<Value> = scenario
            .subnets
            .iter()
            .map(|s| json!({"name": s.name, "properties": {"addressPrefix": s.cidr.to_string()}}))
            .collect();
        arm.put(
            &vnet_id,
            Kind::VirtualNetwork,
            json!({
                "location": scenario.location,
                "properties": {
                    "addressSpace": {"addressPrefixes": [scenario.vnet_cidr.to_string()]},
                    "subnets": subnets,
                }
            }),
        )?;
        if let Some(workload) = scenario
            .subnets
            .iter()
            .find(|s| !s.name.eq_ignore_ascii_case("GatewaySubnet"))
        {
            let subnet_id = format!("{vnet_id}/subnets/{}", workload.name);
            arm.seed_host_interface(&base, &subnet_id, workload.cidr, &scenario.location)?;
        }
        if let Some(gw) = &scenario.existing_gateway {
            let instances = if gw.active_active { 2 } else { 1 };
            let mut ip_configurations = Vec::new();
            for i in 0..instances {
                let pip_id = format!("{base}/publicIPAddresses/{}-pip-{}", gw.name, i + 1);
                arm.put(
                    &pip_id,
                    Kind::PublicIp,
                    json!({
                        "location": scenario.location,
                        "sku": {"name": "Standard", "tier": "Regional"},
                        "properties": {"publicIPAllocationMethod": "Static"},
                    }),
                )?;
                if let Some(ip) = arm.records.get(&key_of(&pip_id)).and_then(|r| r.ip) {
                    arm.seeded.existing_gateway_ips.push(ip);
                }
                ip_configurations.push(json!({
                    "name": format!("ipconfig{}", i + 1),
                    "properties": {
                        "privateIPAllocationMethod": "Dynamic",
                        "subnet": {"id": format!("{vnet_id}/subnets/GatewaySubnet")},
                        "publicIPAddress": {"id": pip_id},
                    }
                }));
            }
            let gw_id = format!("{base}/virtualNetworkGateways/{}", gw.name);
            arm.put(
                &gw_id,
                Kind::Gateway,
                json!({
                    "location": scenario.location,
                    "properties": {
                        "gatewayType": "Vpn",
                        "vpnType": "RouteBased",
                        "sku": {"name": "VpnGw2AZ", "tier": "VpnGw2AZ"},
                        "vpnGatewayGeneration": "Generation2",
                        "activeActive": gw.active_active,
                        "enableBgp": true,
                        "bgpSettings": {"asn": gw.asn},
                        "ipConfigurations": ip_configurations,
                    }
                }),
            )?;
            arm.seeded.existing_gateway_id = Some(gw_id);
        }
        arm.seed_ids = arm.records.keys().cloned().collect();
        arm.operations.clear();
        arm.time_factor = time_factor;
        Ok(arm)
    }
}
