//! The IKEv2/IPsec policy both clouds are configured with, in each cloud's own vocabulary.
//!
//! Both ends must offer the same proposal, or the tunnel never comes up and neither console says
//! why. dxvpn therefore sets the policy explicitly on both sides instead of relying on defaults:
//! AES-256, SHA-256, DH group 14 with PFS, IKEv2, and the same dead-peer-detection timeout.

use serde::Serialize;

/// One IKE + IPsec policy, expressed for AWS tunnel options, the Azure connection's
/// `ipsecPolicies`, and strongSwan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpsecPolicy {
    /// IKE version; AWS `IKEVersion` value.
    pub ike_version: &'static str,
    /// Phase 1 encryption, AWS name (Azure `ikeEncryption` uses the same word).
    pub phase1_encryption: &'static str,
    /// Phase 1 integrity, AWS name.
    pub phase1_integrity: &'static str,
    /// Phase 1 Diffie-Hellman group number.
    pub phase1_dh_group: u8,
    /// Phase 2 encryption, AWS name.
    pub phase2_encryption: &'static str,
    /// Phase 2 integrity, AWS name.
    pub phase2_integrity: &'static str,
    /// Phase 2 PFS Diffie-Hellman group number.
    pub phase2_dh_group: u8,
    /// IKE SA lifetime (AWS `Phase1LifetimeSeconds`).
    pub phase1_lifetime_seconds: u32,
    /// IPsec SA lifetime (AWS `Phase2LifetimeSeconds`, Azure `saLifeTimeSeconds`).
    pub phase2_lifetime_seconds: u32,
    /// Dead peer detection timeout, the same on both sides (AWS minimum 30, Azure 9-3600).
    pub dpd_timeout_seconds: u32,
    /// Who initiates on AWS: `start` makes AWS bring the tunnel up, as Microsoft's tutorial sets.
    pub aws_startup_action: &'static str,
}

impl Default for IpsecPolicy {
    fn default() -> Self {
        IpsecPolicy {
            ike_version: "ikev2",
            phase1_encryption: "AES256",
            phase1_integrity: "SHA2-256",
            phase1_dh_group: 14,
            phase2_encryption: "AES256",
            phase2_integrity: "SHA2-256",
            phase2_dh_group: 14,
            phase1_lifetime_seconds: 28_800,
            phase2_lifetime_seconds: 3_600,
            dpd_timeout_seconds: 30,
            aws_startup_action: "start",
        }
    }
}

/// The Azure `ipsecPolicies[0]` values for a policy (all eight members are required by Azure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AzureIpsecPolicy {
    /// `saLifeTimeSeconds`.
    pub sa_life_time_seconds: u32,
    /// `saDataSizeKilobytes`: Azure's default; AWS has no data-size limit.
    pub sa_data_size_kilobytes: u32,
    /// `ipsecEncryption`.
    pub ipsec_encryption: &'static str,
    /// `ipsecIntegrity`.
    pub ipsec_integrity: &'static str,
    /// `ikeEncryption`.
    pub ike_encryption: &'static str,
    /// `ikeIntegrity`.
    pub ike_integrity: &'static str,
    /// `dhGroup`.
    pub dh_group: &'static str,
    /// `pfsGroup`.
    pub pfs_group: &'static str,
}

impl IpsecPolicy {
    /// The same policy in Azure's vocabulary.
    pub fn azure(&self) -> AzureIpsecPolicy {
        AzureIpsecPolicy {
            sa_life_time_seconds: self.phase2_lifetime_seconds,
            sa_data_size_kilobytes: 102_400_000,
            ipsec_encryption: azure_encryption(self.phase2_encryption),
            ipsec_integrity: azure_integrity(self.phase2_integrity),
            ike_encryption: azure_encryption(self.phase1_encryption),
            ike_integrity: azure_integrity(self.phase1_integrity),
            dh_group: match self.phase1_dh_group {
                14 => "DHGroup14",
                19 => "ECP256",
                20 => "ECP384",
                24 => "DHGroup24",
                _ => "DHGroup2",
            },
            pfs_group: match self.phase2_dh_group {
                14 => "PFS2048",
                19 => "ECP256",
                20 => "ECP384",
                24 => "PFS24",
                _ => "PFS2",
            },
        }
    }

    /// strongSwan `proposals` for the IKE SA, e.g. `aes256-sha256-modp2048`.
    pub fn strongswan_ike_proposal(&self) -> String {
        format!(
            "{}-{}-{}",
            strongswan_encryption(self.phase1_encryption),
            strongswan_integrity(self.phase1_integrity),
            strongswan_dh(self.phase1_dh_group)
        )
    }

    /// strongSwan `esp_proposals` for the CHILD SA, with PFS.
    pub fn strongswan_esp_proposal(&self) -> String {
        format!(
            "{}-{}-{}",
            strongswan_encryption(self.phase2_encryption),
            strongswan_integrity(self.phase2_integrity),
            strongswan_dh(self.phase2_dh_group)
        )
    }
}

fn azure_encryption(aws: &str) -> &'static str {
    match aws {
        "AES128" => "AES128",
        "AES128-GCM-16" => "GCMAES128",
        "AES256-GCM-16" => "GCMAES256",
        _ => "AES256",
    }
}

fn azure_integrity(aws: &str) -> &'static str {
    match aws {
        "SHA1" => "SHA1",
        "SHA2-384" => "SHA384",
        _ => "SHA256",
    }
}

fn strongswan_encryption(aws: &str) -> &'static str {
    match aws {
        "AES128" => "aes128",
        "AES128-GCM-16" => "aes128gcm16",
        "AES256-GCM-16" => "aes256gcm16",
        _ => "aes256",
    }
}

fn strongswan_integrity(aws: &str) -> &'static str {
    match aws {
        "SHA1" => "sha1",
        "SHA2-384" => "sha384",
        _ => "sha256",
    }
}

fn strongswan_dh(group: u8) -> &'static str {
    match group {
        19 => "ecp256",
        20 => "ecp384",
        24 => "modp2048s256",
        _ => "modp2048",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_in_each_vocabulary() {
        let policy = IpsecPolicy::default();
        let azure = policy.azure();
        assert_eq!(
            (
                azure.ike_encryption,
                azure.ike_integrity,
                azure.dh_group,
                azure.pfs_group
            ),
            ("AES256", "SHA256", "DHGroup14", "PFS2048")
        );
        assert!(
            azure.sa_life_time_seconds >= 300,
            "Azure's minimum SA lifetime"
        );
        assert_eq!(policy.strongswan_ike_proposal(), "aes256-sha256-modp2048");
        assert_eq!(policy.strongswan_esp_proposal(), "aes256-sha256-modp2048");
        assert!(
            (9..=3600).contains(&policy.dpd_timeout_seconds) && policy.dpd_timeout_seconds >= 30
        );
    }
}
