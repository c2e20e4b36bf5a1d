//! BGP autonomous system numbers: what each cloud accepts on which side.
//!
//! The AWS virtual private gateway takes a private ASN (its "Amazon side ASN"). The Azure VPN
//! gateway takes almost any ASN but a reserved list, and the same number becomes the AWS customer
//! gateway's ASN, where AWS reserves a few more. The two sides must differ: eBGP between equal
//! ASNs never establishes (AWS answers `AsnConflict`).

/// Why an ASN cannot be used where it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AsnError {
    /// The AWS gateway only takes private ASNs.
    #[error(
        "ASN {0} is not a private ASN AWS accepts for a VPN gateway (64512-65534 or 4200000000-4294967294)"
    )]
    NotAwsPrivate(u32),
    /// Azure reserves this ASN for its own networks or it is reserved by IANA.
    #[error("ASN {0} is reserved by Azure or IANA and cannot be used on an Azure VPN gateway")]
    AzureReserved(u32),
    /// AWS reserves this ASN and refuses it for customer gateways.
    #[error("ASN {0} is reserved by AWS and cannot be a customer gateway's ASN")]
    AwsCustomerGatewayReserved(u32),
    /// 0 and 4294967295 are not usable ASNs anywhere.
    #[error("ASN {0} is not a usable ASN")]
    Unusable(u32),
    /// Both sides use the same ASN.
    #[error("the AWS and Azure ASNs are both {0}; eBGP needs two different ASNs")]
    Equal(u32),
}

/// The Amazon-side ASN AWS uses when none is given.
pub const DEFAULT_AWS_ASN: u32 = 64512;
/// The Azure gateway ASN dxvpn uses when none is given (Microsoft's AWS tutorial value).
pub const DEFAULT_AZURE_ASN: u32 = 65000;

/// Ranges reserved by Azure (its public and private ASNs) or by IANA (AS_TRANS, documentation,
/// last 16-bit, and the 65536-65551 documentation block). 65515 is allowed: it is Azure's own
/// default for a VPN gateway.
const AZURE_RESERVED: &[(u32, u32)] = &[
    (8074, 8075),
    (12076, 12076),
    (23456, 23456),
    (64496, 64511),
    (65517, 65520),
    (65535, 65551),
];

/// ASNs AWS refuses for customer gateways.
const AWS_CUSTOMER_GATEWAY_RESERVED: &[u32] = &[7224, 9059, 10124, 17943];

/// Checks the Amazon-side ASN of a virtual private gateway.
pub fn check_aws_gateway_asn(asn: u32) -> Result<(), AsnError> {
    match asn {
        64512..=65534 | 4_200_000_000..=4_294_967_294 => Ok(()),
        _ => Err(AsnError::NotAwsPrivate(asn)),
    }
}

/// Whether Azure (or IANA) reserves `asn`, so that no Azure gateway or local network gateway may
/// use it. 65515 is not in the list: it is the Azure VPN gateway's own default.
pub fn is_azure_reserved(asn: u32) -> bool {
    AZURE_RESERVED
        .iter()
        .any(|(lo, hi)| (*lo..=*hi).contains(&asn))
}

/// Checks the Azure gateway ASN, which is also the ASN of every AWS customer gateway.
pub fn check_azure_gateway_asn(asn: u32) -> Result<(), AsnError> {
    if asn == 0 || asn == u32::MAX {
        return Err(AsnError::Unusable(asn));
    }
    if is_azure_reserved(asn) {
        return Err(AsnError::AzureReserved(asn));
    }
    if AWS_CUSTOMER_GATEWAY_RESERVED.contains(&asn) {
        return Err(AsnError::AwsCustomerGatewayReserved(asn));
    }
    Ok(())
}

/// Checks that the two sides can peer over eBGP.
pub fn check_asn_pair(aws_asn: u32, azure_asn: u32) -> Result<(), AsnError> {
    if aws_asn == azure_asn {
        return Err(AsnError::Equal(aws_asn));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_gateway_takes_only_private_ranges() {
        for ok in [64512, 65534, 4_200_000_000, 4_294_967_294] {
            assert_eq!(check_aws_gateway_asn(ok), Ok(()), "{ok}");
        }
        for bad in [0, 65000 - 1000, 64511, 65535, 4_199_999_999, u32::MAX] {
            assert_eq!(
                check_aws_gateway_asn(bad),
                Err(AsnError::NotAwsPrivate(bad))
            );
        }
    }

    #[test]
    fn azure_gateway_rejects_reserved_numbers() {
        for bad in [
            8074, 8075, 12076, 23456, 64496, 64511, 65517, 65520, 65535, 65551,
        ] {
            assert_eq!(
                check_azure_gateway_asn(bad),
                Err(AsnError::AzureReserved(bad))
            );
        }
        assert_eq!(
            check_azure_gateway_asn(7224),
            Err(AsnError::AwsCustomerGatewayReserved(7224))
        );
        assert_eq!(check_azure_gateway_asn(0), Err(AsnError::Unusable(0)));
        for ok in [65000, 65515, 65516, 65521, 65552, 64512, 1] {
            assert_eq!(check_azure_gateway_asn(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn equal_asns_cannot_peer() {
        assert_eq!(check_asn_pair(65000, 65000), Err(AsnError::Equal(65000)));
        assert_eq!(check_asn_pair(64512, 65000), Ok(()));
    }
}
