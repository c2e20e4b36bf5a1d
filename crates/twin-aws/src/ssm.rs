//! Systems Manager Parameter Store, the one call a forwarder host needs: GetParameter of the
//! public parameters that name the newest Amazon Linux images (awsJson1_1,
//! `X-Amz-Target: AmazonSSM.GetParameter`, API 2014-11-06).
//!
//! The names are those the EC2 user guide lists ("Query for the latest Amazon Linux AMI IDs
//! using Systems Manager Parameter Store"); each twin draws its own AMI ids, so a client that
//! hard-codes one fails here as it would in another region.

use serde_json::{Value, json};

use crate::ec2::Ec2;

/// The public parameters the twin serves.
pub(crate) const PUBLIC_IMAGE_PARAMETERS: &[&str] = &[
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
    "/aws/service/ami-amazon-linux-latest/al2023-ami-minimal-kernel-default-x86_64",
    "/aws/service/ami-amazon-linux-latest/al2023-ami-minimal-kernel-default-arm64",
];

/// An SSM error: its `__type` and message (every one a 400, as the SSM API reference lists them).
#[derive(Debug)]
pub(crate) struct SsmError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

/// Runs one SSM action.
pub(crate) fn handle(action: &str, body: &Value, ec2: &Ec2) -> Result<Value, SsmError> {
    match action {
        "GetParameter" => {
            let name = body["Name"].as_str().ok_or_else(|| SsmError {
                code: "ValidationException",
                message: "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null".into(),
            })?;
            let ami = ec2.images.get(name).ok_or_else(|| SsmError {
                code: "ParameterNotFound",
                message: String::new(),
            })?;
            Ok(json!({"Parameter": {
                "Name": name,
                "Type": "String",
                "Value": ami,
                "Version": 1,
                "DataType": "aws:ec2:image",
                "ARN": format!("arn:aws:ssm:{}::parameter{name}", ec2.region()),
                "LastModifiedDate": 1_764_000_000.0,
            }}))
        }
        other => Err(SsmError {
            code: "UnknownOperationException",
            message: format!("AmazonSSM.{other} is not served by the dxvpn AWS twin"),
        }),
    }
}
