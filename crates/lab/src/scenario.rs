//! What the twins are seeded with, read from one TOML file with an `[aws]` and an `[azure]` table.

use serde::Deserialize;

use dxvpn_twin_aws::AwsScenario;
use dxvpn_twin_azure::AzureScenario;

/// Both twins' seeds; a missing table means that twin's default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabScenario {
    /// The AWS twin's VPC.
    #[serde(default)]
    pub aws: Option<AwsScenario>,
    /// The Azure twin's resource group and VNet.
    #[serde(default)]
    pub azure: Option<AzureScenario>,
}

impl LabScenario {
    /// Parses a scenario file. The AWS-only form of earlier releases (`region`, `vpc_cidr`,
    /// `subnet_cidrs` at the top level) is still read.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        match toml::from_str::<LabScenario>(text) {
            Ok(s) => Ok(s),
            Err(e) => toml::from_str::<AwsScenario>(text)
                .map(|aws| LabScenario {
                    aws: Some(aws),
                    azure: None,
                })
                .map_err(|_| e.to_string()),
        }
    }
}
