//! A small Management API client: base URL, bearer token (static or client
//! credentials, cached and refreshed), and every call through the shared
//! [`retry`](authmigrate_core::retry) policy and the client's one
//! [`Pacer`]: every Management API request of every task sharing the client
//! (imports, look-ups, deletes, tenant crawls) waits for its permit, and every answer's
//! `x-ratelimit-*` headers feed it, so a paced run is not refused with 429s.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use authmigrate_core::backend::BackendError;
use authmigrate_core::pace::Pacer;
use authmigrate_core::retry::{
    self, Call, HttpReply, Idempotency, RetryError, RetryPolicy, Verdict,
};
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::config::{Auth0Auth, Auth0Settings, base_text};

/// Scopes the import needs, for hints.
pub const NEEDED_SCOPES: &str = "create:users, read:users, read:connections";

/// Refresh a cached token when less than this is left...
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

struct CachedToken {
    token: SecretString,
    refresh_at: Instant,
}

/// A Management API client for one tenant.
pub struct Auth0Client {
    http: reqwest::Client,
    base: Url,
    base_text: String,
    auth: Auth0Auth,
    audience: String,
    policy: RetryPolicy,
    cache: tokio::sync::Mutex<Option<CachedToken>>,
    tokens_fetched: AtomicU64,
    pacer: Pacer,
}

impl fmt::Debug for Auth0Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth0Client")
            .field("base", &self.base_text)
            .field("auth", &self.auth)
            .field("audience", &self.audience)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Auth0Client {
    /// A client for the settings' tenant; checks the base URL (no request is sent).
    pub fn new(settings: &Auth0Settings) -> Result<Self, BackendError> {
        let base = settings.base_url()?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("authmigrate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BackendError::fatal(format!("cannot build the http client: {e}"), None))?;
        let base_text = base_text(&base);
        let audience = settings
            .audience
            .clone()
            .unwrap_or_else(|| format!("{base_text}/api/v2/"));
        Ok(Self {
            http,
            audience,
            base_text,
            base,
            auth: settings.auth.clone(),
            policy: settings.retry.clone(),
            cache: tokio::sync::Mutex::new(None),
            tokens_fetched: AtomicU64::new(0),
            pacer: Pacer::new(),
        })
    }

    /// The tenant's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_text
    }

    /// The retry policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The pacer every Management API request of this client goes through.
    pub fn pacer(&self) -> &Pacer {
        &self.pacer
    }

    /// How many access tokens were fetched with client credentials so far.
    pub fn tokens_fetched(&self) -> u64 {
        self.tokens_fetched.load(Ordering::Relaxed)
    }

    /// `{base}/api/v2/` followed by the given path segments (each percent-encoded).
    pub fn api_url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v2"]).extend(segments);
        }
        url
    }

    /// A valid access token (fetched or refreshed if needed; one refresh at a time).
    pub async fn token(&self) -> Result<SecretString, BackendError> {
        let (client_id, client_secret) = match &self.auth {
            Auth0Auth::Token(t) => return Ok(t.clone()),
            Auth0Auth::ClientCredentials {
                client_id,
                client_secret,
            } => (client_id, client_secret),
        };
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let fresh = self.fetch_token(client_id, client_secret).await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    /// Forgets `used` if it is still the cached token, so the next call refreshes.
    async fn invalidate(&self, used: &SecretString) {
        let mut cache = self.cache.lock().await;
        if cache
            .as_ref()
            .is_some_and(|c| c.token.expose_secret() == used.expose_secret())
        {
            *cache = None;
        }
    }

    async fn fetch_token(
        &self,
        client_id: &str,
        client_secret: &SecretString,
    ) -> Result<CachedToken, BackendError> {
        let url = format!("{}/oauth/token", self.base_text);
        let audience = self.audience.clone();
        let started = Instant::now();
        let reply = retry::send(&self.policy, "get an access token", || {
            self.http.post(&url).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", client_secret.expose_secret()),
                ("audience", audience.as_str()),
            ])
        })
        .await
        .map_err(retry_error)?;
        if !reply.status.is_success() {
            let detail = oauth_message(&reply);
            if audience_refused(&reply, &detail) {
                return Err(BackendError::fatal(
                    format!(
                        "auth0 refused the token request for the audience `{audience}` (HTTP {}): {detail}",
                        reply.status.as_u16()
                    ),
                    Some(format!(
                        "set AUTH0_AUDIENCE (or --auth0-audience) to the Management API of the canonical tenant domain, e.g. https://dev-x.us.auth0.com/api/v2/: with a custom domain the audience stays the tenant's own domain (now `{audience}`)"
                    )),
                ));
            }
            return Err(BackendError::fatal(
                format!(
                    "auth0 refused the client credentials (HTTP {}): {detail}",
                    reply.status.as_u16()
                ),
                Some(format!(
                    "check AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET, and that the application is authorized for the Management API ({audience}) with the scopes {NEEDED_SCOPES}"
                )),
            ));
        }
        let parsed: TokenReply = reply.json().map_err(|e| {
            BackendError::fatal(format!("invalid token response from auth0: {e}"), None)
        })?;
        self.tokens_fetched.fetch_add(1, Ordering::Relaxed);
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(86_400));
        let margin = REFRESH_MARGIN.min(lifetime / 10);
        let expires_at = started + lifetime;
        tracing::debug!(
            lifetime_s = lifetime.as_secs(),
            "fetched an auth0 access token"
        );
        Ok(CachedToken {
            token: SecretString::from(parsed.access_token),
            refresh_at: expires_at - margin,
        })
    }

    /// Sends an authenticated API request built by `make` (called afresh per attempt)
    /// through the retry policy with `classify`. With client credentials, a `401`
    /// refreshes the token once and sends again.
    pub async fn send_with(
        &self,
        what: &str,
        make: impl Fn(&reqwest::Client) -> RequestBuilder,
        classify: impl Fn(&HttpReply) -> Verdict + Copy,
    ) -> Result<HttpReply, BackendError> {
        self.send_mode(what, Idempotency::Idempotent, make, classify)
            .await
    }

    /// [`Auth0Client::send_with`] for a request that must not be sent twice (a job
    /// submission): it is sent again only when it certainly did not reach Auth0 (a
    /// connection error) or was refused unprocessed (429, 401); a timeout, a lost
    /// connection or a 5xx after sending is [`BackendError::InDoubt`].
    pub async fn send_submission(
        &self,
        what: &str,
        make: impl Fn(&reqwest::Client) -> RequestBuilder,
        classify: impl Fn(&HttpReply) -> Verdict + Copy,
    ) -> Result<HttpReply, BackendError> {
        self.send_mode(what, Idempotency::NotIdempotent, make, classify)
            .await
    }

    async fn send_mode(
        &self,
        what: &str,
        idempotency: Idempotency,
        make: impl Fn(&reqwest::Client) -> RequestBuilder,
        classify: impl Fn(&HttpReply) -> Verdict + Copy,
    ) -> Result<HttpReply, BackendError> {
        let call = Call {
            idempotency,
            pacer: Some(&self.pacer),
        };
        let token = self.token().await?;
        let reply = self.send_once(what, call, &make, classify, &token).await?;
        if reply.status == StatusCode::UNAUTHORIZED
            && matches!(self.auth, Auth0Auth::ClientCredentials { .. })
        {
            // A 401 is refused before anything is done: safe to send again.
            tracing::info!(what, "access token refused: refreshing it once");
            self.invalidate(&token).await;
            let token = self.token().await?;
            return self.send_once(what, call, &make, classify, &token).await;
        }
        Ok(reply)
    }

    /// [`Auth0Client::send_with`] with the default classifier.
    pub async fn send(
        &self,
        what: &str,
        make: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<HttpReply, BackendError> {
        self.send_with(what, make, retry::default_verdict).await
    }

    /// A GET of `url`.
    pub async fn get(&self, what: &str, url: &Url) -> Result<HttpReply, BackendError> {
        self.send(what, |http| http.request(Method::GET, url.clone()))
            .await
    }

    async fn send_once(
        &self,
        what: &str,
        call: Call<'_>,
        make: &impl Fn(&reqwest::Client) -> RequestBuilder,
        classify: impl Fn(&HttpReply) -> Verdict,
        token: &SecretString,
    ) -> Result<HttpReply, BackendError> {
        retry::send_call(
            &self.policy,
            what,
            call,
            || make(&self.http).bearer_auth(token.expose_secret()),
            classify,
        )
        .await
        .map_err(retry_error)
    }
}

/// Retries ran out → transient; a request that cannot be built → fatal; a
/// submission whose answer was lost → in doubt.
pub(crate) fn retry_error(e: RetryError) -> BackendError {
    match e {
        RetryError::Build(m) => BackendError::fatal(m, None),
        e @ RetryError::InDoubt { .. } => BackendError::InDoubt(e.to_string()),
        other => BackendError::Transient(other.to_string()),
    }
}

/// The `message` of a Management API error body, else a short excerpt of the body.
pub fn api_message(reply: &HttpReply) -> String {
    #[derive(Deserialize)]
    struct ApiError {
        message: Option<String>,
        error: Option<String>,
    }
    if let Ok(e) = reply.json::<ApiError>()
        && let Some(m) = e.message.or(e.error)
    {
        return m;
    }
    excerpt(reply)
}

/// Whether a refused token request names its audience: a 403 `access_denied` (the
/// answer to a wrong audience, auth0-api.md §7 NEW; a bad secret is a 401), or a
/// description mentioning the audience or "Service not found" (the exact wording is not
/// in the sources read).
fn audience_refused(reply: &HttpReply, detail: &str) -> bool {
    let lower = detail.to_ascii_lowercase();
    let access_denied = reply
        .json::<serde_json::Value>()
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .is_some_and(|e| e == "access_denied");
    (reply.status == StatusCode::FORBIDDEN && access_denied)
        || lower.contains("audience")
        || lower.contains("service not found")
}

/// The `error_description` (or `error`) of an OAuth error body.
fn oauth_message(reply: &HttpReply) -> String {
    #[derive(Deserialize)]
    struct OauthError {
        error: Option<String>,
        error_description: Option<String>,
    }
    if let Ok(e) = reply.json::<OauthError>()
        && let Some(m) = e.error_description.or(e.error)
    {
        return m;
    }
    excerpt(reply)
}

fn excerpt(reply: &HttpReply) -> String {
    let text = reply.text_lossy();
    let text = text.trim();
    if text.is_empty() {
        return format!("empty body (HTTP {})", reply.status.as_u16());
    }
    let mut out: String = text.chars().take(200).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// The fatal error for a `401`/`403` from the Management API.
pub fn auth_error(what: &str, reply: &HttpReply) -> BackendError {
    let message = api_message(reply);
    let hint = if reply.status == StatusCode::FORBIDDEN {
        format!(
            "the token lacks a scope: grant the application {NEEDED_SCOPES} (plus create:user_tickets for tickets) on the Management API"
        )
    } else {
        format!(
            "the token is invalid or expired: check AUTH0_TOKEN (or AUTH0_CLIENT_ID/AUTH0_CLIENT_SECRET) and that it was issued for this tenant with the scopes {NEEDED_SCOPES}"
        )
    };
    BackendError::fatal(
        format!(
            "{what}: auth0 answered HTTP {}: {message}",
            reply.status.as_u16()
        ),
        Some(hint),
    )
}
