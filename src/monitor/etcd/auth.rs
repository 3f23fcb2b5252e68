//! Authentication with an etcd user: the token sent with each request, and authenticating
//! again when etcd no longer takes it (see the parent module).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::{Etcd, EtcdError, parse};
use crate::monitor::lock;

/// What to send etcd to be authenticated.
#[derive(Clone)]
pub(super) enum Token {
    /// Not authenticated yet.
    Unknown,
    /// Authentication is not enabled on the cluster: nothing.
    NotEnabled,
    Issued(Arc<str>),
}

impl Etcd {
    /// Runs `call` with the token to send (none without a login), authenticating first
    /// when there is none yet; when etcd refuses the token, authenticates again and runs
    /// `call` once more.
    pub(super) async fn authorized<T, Fut>(
        &self,
        call: impl Fn(Option<Arc<str>>) -> Fut,
    ) -> Result<T, EtcdError>
    where
        Fut: Future<Output = Result<T, EtcdError>>,
    {
        if self.inner.login.is_none() {
            return call(None).await;
        }
        let token = self.token(false).await?;
        match call(token).await {
            Err(EtcdError::Status { ref message, .. }) if token_refused(message) => {
                tracing::info!("etcd: authenticating again: {message}");
                call(self.token(true).await?).await
            }
            result => result,
        }
    }

    /// The token to send: the last one issued, or (none yet, or `fresh`) a new one.
    async fn token(&self, fresh: bool) -> Result<Option<Arc<str>>, EtcdError> {
        let Some(login) = &self.inner.login else {
            return Ok(None);
        };
        let known = lock(&self.inner.token).clone();
        match known {
            Token::Issued(t) if !fresh => return Ok(Some(t)),
            Token::NotEnabled if !fresh => return Ok(None),
            _ => {}
        }
        let body = json!({ "name": login.user, "password": login.password })
            .to_string()
            .into_bytes();
        let parse = |bytes: &[u8]| {
            let r: AuthReply = parse(bytes)?;
            if r.token.is_empty() {
                return Err("authenticate answer without a token".to_string());
            }
            Ok(r.token)
        };
        let path = "/v3/auth/authenticate";
        let answer = self
            .first_answer(|i| self.attempt(&self.inner.endpoints[i], path, &body, None, &parse))
            .await;
        let token = match answer {
            Ok(t) => Token::Issued(Arc::from(t)),
            Err(EtcdError::Status { ref message, .. })
                if message.contains("authentication is not enabled") =>
            {
                if !matches!(known, Token::NotEnabled) {
                    tracing::warn!(
                        user = %login.user,
                        "etcd: authentication is not enabled on the cluster; requests go without a token"
                    );
                }
                Token::NotEnabled
            }
            Err(e) => return Err(e),
        };
        *lock(&self.inner.token) = token.clone();
        Ok(match token {
            Token::Issued(t) => Some(t),
            _ => None,
        })
    }
}

/// `request` carrying `token` (etcd's auth token) in the header the gateway passes on.
pub(super) fn with_token(
    request: reqwest::RequestBuilder,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    match token {
        Some(t) => request.header("authorization", t),
        None => request,
    }
}

/// Whether etcd's refusal says the token sent is not (or no longer) good: expired, issued
/// before a change to users, roles or permissions, or missing (authentication was enabled
/// after the client found it off). Authenticating again mends these.
fn token_refused(message: &str) -> bool {
    [
        "invalid auth token",
        "revision of auth store is old",
        "user name is empty",
    ]
    .iter()
    .any(|m| message.contains(m))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AuthReply {
    token: String,
}
