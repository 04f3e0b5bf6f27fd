//! Shared helpers for the Authgear emulator tests: a sandbox with one cached key, and a
//! plain-HTTP client carrying an admin JWT minted by the sandbox.
#![allow(dead_code, unreachable_pub)]

use std::sync::OnceLock;
use std::time::Duration;

use authmigrate_sandbox::authgear::AuthgearConfig;
use authmigrate_sandbox::{Sandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// One RSA key for every sandbox (key generation is the slow part).
pub fn project_key() -> String {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("rsa key");
        key.to_pkcs8_pem(LineEnding::LF).expect("pem").to_string()
    })
    .clone()
}

pub fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).expect("bcrypt")
}

pub struct Api {
    pub sb: Sandbox,
    pub http: reqwest::Client,
    pub token: String,
}

impl Api {
    pub async fn new(mut authgear: AuthgearConfig) -> Self {
        authgear.private_key_pem = Some(project_key());
        let sb = Sandbox::start(SandboxConfig {
            authgear,
            ..SandboxConfig::default()
        })
        .await
        .expect("sandbox starts");
        let token = sb.authgear().mint_admin_token(Duration::from_secs(300));
        Self {
            sb,
            http: reqwest::Client::builder()
                .tls_built_in_root_certs(false)
                .build()
                .expect("client"),
            token,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sb.base_url())
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let resp = self
            .post_raw(path, "application/json", body.to_string().into_bytes())
            .await;
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("json body: {text}")),
        )
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        (status, resp.json().await.expect("json body"))
    }

    /// Polls until the job is completed (bounds the wait; asserts no time).
    pub async fn wait(&self, kind: &str, id: &str) -> Value {
        for _ in 0..4000 {
            let (status, body) = self.get(&format!("/_api/admin/users/{kind}/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if body["result"]["status"] == "completed" {
                return body["result"].clone();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("job {id} never completed");
    }

    /// Imports `records` (identifier email) and returns the completed job.
    pub async fn import(&self, records: Value) -> Value {
        let body = json!({"identifier": "email", "records": records});
        let (status, resp) = self.post("/_api/admin/users/import", &body).await;
        assert_eq!(status, StatusCode::OK, "{resp}");
        let id = resp["result"]["id"].as_str().expect("id").to_owned();
        self.wait("import", &id).await
    }

    /// Exports NDJSON and returns the parsed lines.
    pub async fn export(&self) -> Vec<Value> {
        let (status, resp) = self
            .post("/_api/admin/users/export", &json!({"format": "ndjson"}))
            .await;
        assert_eq!(status, StatusCode::OK, "{resp}");
        let id = resp["result"]["id"].as_str().expect("id").to_owned();
        let done = self.wait("export", &id).await;
        let url = done["download_url"].as_str().expect("url");
        let text = self
            .http
            .get(url)
            .send()
            .await
            .expect("download")
            .text()
            .await
            .expect("text");
        text.lines()
            .map(|l| serde_json::from_str(l).expect("line"))
            .collect()
    }

    pub async fn login(&self, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(self.url("/_sandbox/authgear/login"))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        (status, resp.json().await.expect("json body"))
    }

    /// Moves the project's clock through the sandbox control route.
    pub async fn clock(&self, body: Value) -> Value {
        let resp = self
            .http
            .post(self.url("/_sandbox/authgear/clock"))
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.expect("json")
    }

    /// `POST /_api/admin/graphql` with a JSON body.
    pub async fn gql(&self, query: &str, variables: Value) -> (StatusCode, Value) {
        self.post(
            "/_api/admin/graphql",
            &json!({"query": query, "variables": variables}),
        )
        .await
    }
}
