//! The HTTP side of the Admin API: the import endpoints, every call through the
//! shared retry policy ([`authmigrate_core::retry`]), and Authgear's error shape.

use std::fmt;

use authmigrate_core::retry::{self, Call, HttpReply, RetryError, RetryPolicy, Verdict};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::auth::TokenSource;

/// Authgear's `APIError` (`{"error": {...}}`), the parts we read.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ApiError {
    /// The kind (`Invalid`, `Forbidden`, `TooManyRequest`...).
    #[serde(default)]
    pub name: String,
    /// The reason (`ValidationFailed`, `UsageLimitExceeded`, `TaskNotFound`...).
    #[serde(default)]
    pub reason: String,
    /// The message.
    #[serde(default)]
    pub message: String,
    /// The HTTP status the error maps to.
    #[serde(default)]
    pub code: Option<u16>,
    /// Extra details.
    #[serde(default)]
    pub info: Option<Map<String, Value>>,
}

impl ApiError {
    /// The error of a `{"error": {...}}` reply body, if it is one.
    pub fn from_reply(reply: &HttpReply) -> Option<Self> {
        #[derive(Deserialize)]
        struct Wrapper {
            error: ApiError,
        }
        reply.json::<Wrapper>().ok().map(|w| w.error)
    }

    /// `reason: message` plus what `info` says that is safe to show: validation
    /// causes (locations and kinds, never values), the cause kind, the period.
    pub fn describe(&self) -> String {
        let mut out = match (self.reason.is_empty(), self.message.is_empty()) {
            (false, false) => format!("{}: {}", self.reason, self.message),
            (false, true) => self.reason.clone(),
            (true, false) => self.message.clone(),
            (true, true) => self.name.clone(),
        };
        let extra = self.info_summary();
        if !extra.is_empty() {
            out.push_str(" (");
            out.push_str(&extra);
            out.push(')');
        }
        out
    }

    /// The safe parts of `info`: `causes` as `location kind` pairs, `cause.kind`,
    /// `period` and `limit`.
    pub fn info_summary(&self) -> String {
        let Some(info) = &self.info else {
            return String::new();
        };
        let mut parts = Vec::new();
        if let Some(causes) = info.get("causes").and_then(Value::as_array) {
            let list: Vec<String> = causes
                .iter()
                .map(|c| {
                    let loc = c.get("location").and_then(Value::as_str).unwrap_or("");
                    let loc = if loc.is_empty() { "/" } else { loc };
                    let kind = c.get("kind").and_then(Value::as_str).unwrap_or("invalid");
                    format!("{loc}: {kind}")
                })
                .collect();
            if !list.is_empty() {
                parts.push(format!("causes: {}", list.join(", ")));
            }
        }
        if let Some(kind) = info
            .get("cause")
            .and_then(|c| c.get("kind"))
            .and_then(Value::as_str)
        {
            parts.push(format!("cause: {kind}"));
        }
        // `RoleUnknownKeys`/`GroupUnknownKeys`: the keys are names, not secrets.
        if let Some(keys) = info.get("keys").and_then(Value::as_array) {
            let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
            parts.push(format!("keys: {}", keys.join(", ")));
        }
        if let Some(period) = info.get("period").and_then(Value::as_str) {
            parts.push(format!("period: {period}"));
        }
        if let Some(limit) = info.get("limit").and_then(Value::as_u64) {
            parts.push(format!("limit: {limit}"));
        }
        parts.join("; ")
    }
}

/// Why a call did not get an answer.
#[derive(Debug)]
pub enum CallError {
    /// No token could be made (a key that cannot sign).
    Token(String),
    /// The retries ran out, or the request could not be built.
    Retry(RetryError),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(e) => f.write_str(e),
            Self::Retry(e) => write!(f, "{e}"),
        }
    }
}

/// An Admin API client for the import endpoints.
pub struct AdminClient {
    http: reqwest::Client,
    base: Url,
    tokens: TokenSource,
    retry: RetryPolicy,
}

impl fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminClient")
            .field("base", &self.base.as_str())
            .field("tokens", &self.tokens)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl AdminClient {
    /// A client for the endpoint `base` (already checked by
    /// [`parse_endpoint`](crate::config::parse_endpoint)).
    pub fn new(base: Url, tokens: TokenSource, retry: RetryPolicy) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("authmigrate/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the http client: {e}"))?;
        Ok(Self {
            http,
            base,
            tokens,
            retry,
        })
    }

    /// Whether tokens are minted from a key.
    pub fn uses_key(&self) -> bool {
        self.tokens.is_key()
    }

    /// The URL of `/_api/admin/users/import[/{id}]`.
    pub fn import_url(&self, id: Option<&str>) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty()
                .extend(["_api", "admin", "users", "import"]);
            if let Some(id) = id {
                segs.push(id);
            }
        }
        url
    }

    /// `POST /_api/admin/users/import` with a JSON body. `classify` decides which
    /// replies are retried. Not idempotent: once the request may have reached the
    /// server (a timeout, a lost connection, a 5xx after sending) it is not sent again
    /// and the answer is [`RetryError::InDoubt`]: the job may exist and its tasks run
    /// (authgear-api.md §1: "the tasks already enqueued still run").
    pub async fn create_import(
        &self,
        body: Vec<u8>,
        classify: impl Fn(&HttpReply) -> Verdict,
    ) -> Result<HttpReply, CallError> {
        let url = self.import_url(None);
        let body = bytes::Bytes::from(body);
        let mut token_error = None;
        let reply = retry::send_call(
            &self.retry,
            "create authgear import job",
            Call::submission(),
            || {
                let mut req = self
                    .http
                    .post(url.clone())
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
                match self.tokens.bearer() {
                    Ok(t) => {
                        req = req.header(AUTHORIZATION, format!("Bearer {}", t.expose_secret()))
                    }
                    Err(e) => token_error = Some(e),
                }
                req
            },
            classify,
        )
        .await;
        if let Some(e) = token_error {
            return Err(CallError::Token(e));
        }
        reply.map_err(CallError::Retry)
    }

    /// `GET /_api/admin/users/import/{id}`.
    pub async fn get_import(&self, id: &str) -> Result<HttpReply, CallError> {
        let url = self.import_url(Some(id));
        let mut token_error = None;
        let reply = retry::send(&self.retry, "read authgear import job", || {
            let mut req = self.http.get(url.clone());
            match self.tokens.bearer() {
                Ok(t) => req = req.header(AUTHORIZATION, format!("Bearer {}", t.expose_secret())),
                Err(e) => token_error = Some(e),
            }
            req
        })
        .await;
        if let Some(e) = token_error {
            return Err(CallError::Token(e));
        }
        reply.map_err(CallError::Retry)
    }
}

impl AdminClient {
    /// The URL of `{base}/{segments...}` (each segment percent-encoded).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty().extend(segments);
        }
        url
    }

    /// An authenticated `POST` of a JSON body to `url` (the admin JWT, through the
    /// retry policy with `classify`). Used by the Admin GraphQL client.
    pub async fn post_json(
        &self,
        what: &str,
        url: &Url,
        body: bytes::Bytes,
        classify: impl Fn(&HttpReply) -> Verdict,
    ) -> Result<HttpReply, CallError> {
        let mut token_error = None;
        let reply = retry::send_with(
            &self.retry,
            what,
            || {
                let mut req = self
                    .http
                    .post(url.clone())
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
                match self.tokens.bearer() {
                    Ok(t) => {
                        req = req.header(AUTHORIZATION, format!("Bearer {}", t.expose_secret()))
                    }
                    Err(e) => token_error = Some(e),
                }
                req
            },
            classify,
        )
        .await;
        if let Some(e) = token_error {
            return Err(CallError::Token(e));
        }
        reply.map_err(CallError::Retry)
    }
}

/// Whether a reply is Authgear's quota refusal (429 `UsageLimitExceeded`), which no
/// retry can fix.
pub fn is_usage_limit(reply: &HttpReply) -> bool {
    reply.status == StatusCode::TOO_MANY_REQUESTS
        && ApiError::from_reply(reply).is_some_and(|e| e.reason == "UsageLimitExceeded")
}
