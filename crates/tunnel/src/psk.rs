//! Pre-shared keys: generated with the operating system's CSPRNG, checked against AWS's rules
//! (the stricter cloud), and never shown: `Debug` and `Display` print `[REDACTED]`.

use rand::seq::IndexedRandom;
use secrecy::{ExposeSecret, SecretString};

/// Characters AWS accepts in a tunnel pre-shared key; Azure accepts all of them too.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
/// Length of generated keys: well inside AWS's 8-64, and about 190 bits of entropy.
const GENERATED_LEN: usize = 32;

/// Why a pre-shared key would be refused by AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PskError {
    /// Length outside 8-64.
    #[error("the key has {0} characters; AWS needs 8 to 64")]
    Length(usize),
    /// A character other than letters, digits, `.` and `_` (the message never echoes the key).
    #[error(
        "the key has a character at position {position} that is not a letter, digit, '.' or '_'"
    )]
    Character {
        /// 1-based position of the first bad character.
        position: usize,
    },
    /// AWS refuses keys that start with `0`.
    #[error("the key starts with '0', which AWS refuses")]
    LeadingZero,
}

/// A tunnel pre-shared key. Cloning is allowed; printing is not.
#[derive(Clone)]
pub struct PresharedKey(SecretString);

impl PresharedKey {
    /// A new random key of 32 characters, first character never `0`.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut key = String::with_capacity(GENERATED_LEN);
        while key.len() < GENERATED_LEN {
            let c = char::from(*ALPHABET.choose(&mut rng).unwrap_or(&b'A'));
            if key.is_empty() && c == '0' {
                continue;
            }
            key.push(c);
        }
        PresharedKey(SecretString::from(key))
    }

    /// Checks `key` against AWS's rules and wraps it.
    pub fn parse(key: &str) -> Result<Self, PskError> {
        check(key)?;
        Ok(PresharedKey(SecretString::from(key.to_owned())))
    }

    /// The key itself, for the one place that must send it to a cloud or a daemon.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for PresharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PresharedKey([REDACTED])")
    }
}

impl std::fmt::Display for PresharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl PartialEq for PresharedKey {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

/// AWS: 8-64 characters of `[A-Za-z0-9._]`, not starting with `0`.
pub fn check(key: &str) -> Result<(), PskError> {
    let len = key.chars().count();
    if !(8..=64).contains(&len) {
        return Err(PskError::Length(len));
    }
    if let Some(position) = key
        .chars()
        .position(|c| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
    {
        return Err(PskError::Character {
            position: position + 1,
        });
    }
    if key.starts_with('0') {
        return Err(PskError::LeadingZero);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_pass_aws_rules_and_differ() {
        let keys: Vec<_> = (0..200).map(|_| PresharedKey::generate()).collect();
        for key in &keys {
            assert_eq!(check(key.expose()), Ok(()));
        }
        let distinct: std::collections::HashSet<_> = keys.iter().map(|k| k.expose()).collect();
        assert_eq!(distinct.len(), keys.len());
    }

    #[test]
    fn aws_rules() {
        assert_eq!(check("short"), Err(PskError::Length(5)));
        assert_eq!(check(&"a".repeat(65)), Err(PskError::Length(65)));
        assert_eq!(check("abc+defgh"), Err(PskError::Character { position: 4 }));
        assert_eq!(check("0abcdefgh"), Err(PskError::LeadingZero));
        assert_eq!(check("a0b.c_d9"), Ok(()));
    }

    #[test]
    fn key_is_redacted_in_debug_display_and_errors() {
        let key = PresharedKey::parse("Secret.Value_123").unwrap();
        for shown in [format!("{key:?}"), format!("{key}")] {
            assert!(!shown.contains("Secret.Value_123"), "{shown}");
        }
        let err = PresharedKey::parse("Secret+Value").unwrap_err().to_string();
        assert!(!err.contains("Secret"), "{err}");
    }

    proptest! {
        #[test]
        fn check_never_panics_and_accepts_only_the_alphabet(key in "\\PC{0,80}") {
            if check(&key).is_ok() {
                prop_assert!(key.bytes().all(|b| ALPHABET.contains(&b)));
                prop_assert!(!key.starts_with('0'));
            }
        }
    }
}
