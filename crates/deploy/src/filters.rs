//! The packet filters on an address of either network: AWS's security groups and network ACL
//! when the plan's VPC holds it, Azure's NSGs when the VNet does; what `validate` judges when
//! a probe to that address fails with the tunnels up.

use std::net::Ipv4Addr;

use dxvpn_aws::AwsHostFilters;
use dxvpn_azure::AzureHostFilters;
use dxvpn_plan::Plan;
use serde::Serialize;

use crate::Deployer;

/// The filters on one address, as its cloud reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "cloud", rename_all = "snake_case")]
pub enum HostFilters {
    /// Security groups and network ACL of the interface holding it.
    Aws(AwsHostFilters),
    /// NSGs on the interface holding it and on its subnet.
    Azure(AzureHostFilters),
}

/// One address and what its cloud said: filters, no interface holding it (None), or why it
/// could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct AddressFilters {
    /// The address.
    pub address: Ipv4Addr,
    /// Its filters; `Ok(None)` when it is in neither network or no interface holds it.
    pub filters: Result<Option<HostFilters>, String>,
}

impl Deployer {
    /// The filters on each of `addresses`, all read at once.
    pub async fn host_filters(&self, plan: &Plan, addresses: &[Ipv4Addr]) -> Vec<AddressFilters> {
        let reads = addresses.iter().map(|address| async move {
            let address = *address;
            let filters = if plan.aws.vpc_cidr.contains(&address) {
                self.aws
                    .host_filters(&plan.aws.vpc_id, address)
                    .await
                    .map(|f| f.map(HostFilters::Aws))
                    .map_err(|e| e.to_string())
            } else if plan.azure.vnet_cidr.contains(&address) {
                self.azure
                    .host_filters(address)
                    .await
                    .map(|f| f.map(HostFilters::Azure))
                    .map_err(|e| e.to_string())
            } else {
                Ok(None)
            };
            AddressFilters { address, filters }
        });
        futures_util::future::join_all(reads).await
    }
}
