//! The last step of the log pipeline: every line is scrubbed of keys and tokens before it
//! reaches stderr, whatever `RUST_LOG` lets through. Filters alone do not hold: a more specific
//! directive (`azure_core::policies::transport=debug`) beats the CLI's cap on its parent, and
//! the SDKs' Debug output prints request bodies (`sharedKey`) and headers (`Authorization`)
//! whole.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// What stands in for a secret.
pub(crate) const REDACTED: &str = "<redacted>";

/// Field names whose values are secrets, in JSON, escaped JSON (a body printed as bytes), EC2's
/// query strings (`Options.TunnelOptions.1.PreSharedKey=...`) and `key=value` log fields.
const SECRET_NAMES: &str = r"pre_?shared_?key|shared_?key|psk|access_?token|refresh_?token|id_?token|client_?secret|x-amz-security-token|security_?token";

static RULES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // name, separator (quotes maybe escaped), value
        format!(r#"(?i)((?:{SECRET_NAMES})\\*"?\s*[:=]\s*\\*"?)[^"\\&<\s,}}]+"#),
        // <preSharedKey>...</preSharedKey> in EC2's XML and a customer gateway configuration
        format!(r"(?i)(<(?:{SECRET_NAMES})>)[^<]+"),
        // Authorization: Bearer ..., as a header line or a Debug of a HeaderValue
        r#"(?i)(bearer\s+)[^\s"'\\,)]+"#.to_owned(),
        // A header printed by Debug: `"authorization",\n ): HeaderValue(\n "...",`
        r#"(?i)("(?:authorization|x-amz-security-token|x-ms-authorization-auxiliary)",\s*\):\s*HeaderValue\(\s*")[^"]+"#
            .to_owned(),
        // SigV4's Authorization: the access key id and the signature
        r"(?i)((?:credential|signature)=)[^\s,/&]+".to_owned(),
    ]
    .iter()
    .filter_map(|rule| Regex::new(rule).ok())
    .collect()
});

/// The `value` of the body of a `sharedkey` call: a key under a name that says nothing.
static SHARED_KEY_VALUE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#"(\\*"value\\*"\s*:\s*\\*")[^"\\]+"#).ok());

/// `text` with every secret value replaced by [`REDACTED`].
pub(crate) fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for rule in RULES.iter() {
        if rule.is_match(&out) {
            let replaced = rule
                .replace_all(&out, |c: &Captures| format!("{}{REDACTED}", &c[1]))
                .into_owned();
            out = Cow::Owned(replaced);
        }
    }
    if out.to_ascii_lowercase().contains("sharedkey")
        && let Some(rule) = SHARED_KEY_VALUE.as_ref()
    {
        let replaced = rule
            .replace_all(&out, |c: &Captures| format!("{}{REDACTED}", &c[1]))
            .into_owned();
        out = Cow::Owned(replaced);
    }
    out
}

/// stderr through [`redact`]. The fmt layer writes each event whole, in one `write_all`.
pub(crate) struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_a_secret_is_logged_in_is_scrubbed() {
        let lines = [
            r#"{"properties":{"sharedKey":"Key.One_1234","routingWeight":0}}"#,
            r#"b"{\"properties\":{\"sharedKey\":\"Key.One_1234\"}}""#,
            "Action=CreateVpnConnection&Options.TunnelOptions.1.PreSharedKey=Key.One_1234&Version=2016-11-15",
            "<preSharedKey>Key.One_1234</preSharedKey>",
            "<pre_shared_key>Key.One_1234</pre_shared_key>",
            "authorization: Bearer Key.One_1234",
            "HeaderValue(\n            \"Bearer Key.One_1234\",\n        )",
            r#"{"access_token":"Key.One_1234","expires_in":3599}"#,
            "psk=Key.One_1234 tunnel=c1t1",
            "PUT https://management.azure.com/.../connections/c1t1/sharedkey {\"value\":\"Key.One_1234\"}",
            "HeaderName(\n \"x-amz-security-token\",\n ): HeaderValue(\n \"Key.One_1234\",\n )",
            "AWS4-HMAC-SHA256 Credential=AKIAKEYONE1234/20261202/eu-south-1/ec2/aws4_request, SignedHeaders=host, Signature=Key.One_1234",
        ];
        for line in lines {
            let scrubbed = redact(line);
            assert!(!scrubbed.contains("Key.One_1234"), "{line} -> {scrubbed}");
            assert!(!scrubbed.contains("AKIAKEYONE1234"), "{line} -> {scrubbed}");
            assert!(scrubbed.contains(REDACTED), "{line} -> {scrubbed}");
        }
        // The control: lines without secrets pass unchanged.
        for line in [
            "creating VPN connection role=aws.vpn_connection.0 vgw=vgw-1",
            r#"{"properties":{"routingWeight":0,"value":"kept"}}"#,
        ] {
            assert_eq!(redact(line), line);
        }
    }
}
