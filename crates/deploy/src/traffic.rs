//! The bytes through each tunnel as both clouds report them (CloudWatch's TunnelDataIn/Out,
//! Azure Monitor's TunnelIngress/EgressBytes), per period: what `dxvpn metrics` turns into
//! counters. Each cloud is read apart, so that one that cannot be read (a role without
//! `cloudwatch:GetMetricData` or Monitoring Reader) leaves the other's.

use std::time::Duration;

use dxvpn_plan::Plan;
use serde::Serialize;

use crate::{CloudError, Deployer, Status};

/// One tunnel's bytes as one cloud reports them: (period start in epoch seconds, bytes),
/// oldest first. `bytes_in` is what that cloud's end received, `bytes_out` what it sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TunnelBytes {
    /// `c1t1`, ...
    pub key: String,
    /// `aws` or `azure`.
    pub cloud: &'static str,
    /// AWS: the VPN connection id; Azure: the connection's name.
    pub connection: String,
    /// AWS's outside address of the tunnel.
    pub outside_ip: String,
    /// Bytes that cloud's end received, per period.
    pub bytes_in: Vec<(u64, f64)>,
    /// Bytes that cloud's end sent, per period.
    pub bytes_out: Vec<(u64, f64)>,
}

/// Both clouds' traffic; a cloud that could not be read says why in `errors` and has no
/// tunnels.
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    /// Per tunnel and cloud.
    pub tunnels: Vec<TunnelBytes>,
    /// Why a cloud could not be read.
    pub errors: Vec<String>,
}

impl Deployer {
    /// The last `window` of traffic of the tunnels `status` reported.
    pub async fn traffic(&self, plan: &Plan, status: &Status, window: Duration) -> Traffic {
        let aws_tunnels: Vec<(String, String)> = status
            .tunnels
            .iter()
            .filter(|t| !t.aws_connection.is_empty() && !t.outside_ip.is_empty())
            .map(|t| (t.aws_connection.clone(), t.outside_ip.clone()))
            .collect();
        let (aws, azure) = tokio::join!(
            self.aws.tunnel_traffic(&aws_tunnels, window),
            self.azure.connection_traffic(plan, window),
        );
        assemble(status, aws, azure)
    }
}

/// What each cloud's counters answered, keyed by the tunnels of `status`.
pub(crate) fn assemble(
    status: &Status,
    aws: Result<Vec<dxvpn_aws::TunnelTraffic>, dxvpn_aws::AwsError>,
    azure: Result<Vec<dxvpn_azure::ConnectionTraffic>, dxvpn_azure::AzureError>,
) -> Traffic {
    let mut traffic = Traffic::default();
    match aws {
        Ok(found) => {
            for f in found {
                let Some(t) = status
                    .tunnels
                    .iter()
                    .find(|t| t.aws_connection == f.connection_id && t.outside_ip == f.outside_ip)
                else {
                    continue;
                };
                traffic.tunnels.push(TunnelBytes {
                    key: t.key.clone(),
                    cloud: "aws",
                    connection: f.connection_id,
                    outside_ip: f.outside_ip,
                    bytes_in: f.bytes_in,
                    bytes_out: f.bytes_out,
                });
            }
        }
        Err(e) => traffic.errors.push(CloudError::from(e).to_string()),
    }
    match azure {
        Ok(found) => {
            for f in found {
                let Some(t) = status
                    .tunnels
                    .iter()
                    .find(|t| t.azure_connection.eq_ignore_ascii_case(&f.name))
                else {
                    continue;
                };
                traffic.tunnels.push(TunnelBytes {
                    key: t.key.clone(),
                    cloud: "azure",
                    connection: f.name,
                    outside_ip: t.outside_ip.clone(),
                    bytes_in: f.ingress,
                    bytes_out: f.egress,
                });
            }
        }
        Err(e) => traffic.errors.push(CloudError::from(e).to_string()),
    }
    traffic
}
