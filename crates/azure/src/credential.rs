//! A fixed bearer token, for the lab's Azure twin (which accepts any).

use azure_core::auth::{AccessToken, Secret, TokenCredential};

/// A credential that always hands out the same token, valid for an hour from each request.
#[derive(Clone)]
pub struct StaticToken {
    token: Secret,
}

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticToken([REDACTED])")
    }
}

impl StaticToken {
    /// A credential handing out `token`.
    pub fn new(token: &str) -> Self {
        StaticToken {
            token: Secret::new(token.to_owned()),
        }
    }
}

#[async_trait::async_trait]
impl TokenCredential for StaticToken {
    async fn get_token(&self, _scopes: &[&str]) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.token.clone(),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }

    async fn clear_cache(&self) -> azure_core::Result<()> {
        Ok(())
    }
}
