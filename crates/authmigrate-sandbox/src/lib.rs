//! Local emulators of the parts of the Auth0 Management API and the Authgear Admin API
//! that authmigrate uses, served by one axum server on 127.0.0.1.
//!
//! The emulators follow the providers' *documented* behaviour (`shared/docs/auth0-api.md`,
//! `shared/docs/authgear-api.md`): status codes, error bodies, limits and per-user
//! outcomes. Where the emulator and the docs differ, the emulator is wrong.
//!
//! Both providers share one port: Auth0 routes live under `/oauth/token` and `/api/v2/`,
//! Authgear routes under `/_api/admin/`, and sandbox-only helpers (downloads, logins,
//! the password-hash export that Auth0 only gives through a support ticket) under
//! `/_sandbox/`.

pub mod auth0;
pub mod authgear;
pub mod faults;
pub mod passwords;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use faults::{FaultConfig, Faults, RateLimit};

/// How to start a sandbox.
#[derive(Debug, Clone, Default)]
pub struct SandboxConfig {
    /// Port to bind on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Faults, latency and rate limits, deterministic for a given seed.
    pub faults: FaultConfig,
    /// The emulated Auth0 tenant.
    pub auth0: auth0::Auth0Config,
    /// The emulated Authgear project.
    pub authgear: authgear::AuthgearConfig,
}

/// A running sandbox. Dropping it stops the server.
#[derive(Debug)]
pub struct Sandbox {
    addr: SocketAddr,
    auth0: Arc<auth0::Auth0State>,
    authgear: Arc<authgear::AuthgearState>,
    faults: Arc<faults::Faults>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Why a sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The listening socket could not be bound.
    #[error("cannot bind sandbox to 127.0.0.1:{port}: {source}")]
    Bind {
        /// The requested port.
        port: u16,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The Authgear emulator refused its configuration.
    #[error("cannot start the authgear emulator: {0}")]
    Authgear(String),
}

impl Sandbox {
    /// Binds `127.0.0.1:config.port` (0 picks a free port) and serves both emulators
    /// until [`Sandbox::shutdown`] or drop. Must be called inside a tokio runtime.
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, config.port))
            .await
            .map_err(|source| SandboxError::Bind {
                port: config.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
            port: config.port,
            source,
        })?;
        let base_url = format!("http://{addr}");
        let faults = Arc::new(Faults::new(config.faults));
        let auth0 = Arc::new(auth0::Auth0State::new(
            config.auth0,
            faults.clone(),
            base_url,
        ));
        let authgear = Arc::new(
            authgear::AuthgearState::new(config.authgear, faults.clone())
                .map_err(SandboxError::Authgear)?,
        );
        // The middleware itself skips `/_sandbox/*`, so it can wrap everything.
        let app = axum::Router::new()
            .merge(auth0::router(auth0.clone()))
            .merge(authgear::router(authgear.clone()))
            .layer(axum::middleware::from_fn_with_state(
                faults.clone(),
                faults::inject,
            ));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "sandbox server stopped with an error");
            }
        });
        Ok(Sandbox {
            addr,
            auth0,
            authgear,
            faults,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// The base URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Auth0 emulator's state.
    pub fn auth0(&self) -> &Arc<auth0::Auth0State> {
        &self.auth0
    }

    /// The Authgear emulator's state.
    pub fn authgear(&self) -> &Arc<authgear::AuthgearState> {
        &self.authgear
    }

    /// The live fault configuration (call [`Faults::set`] to change it mid-run).
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// Environment variables that point the CLI at this sandbox: `AUTH0_DOMAIN` (the base
    /// URL), `AUTH0_CLIENT_ID`, `AUTH0_CLIENT_SECRET`, `AUTHGEAR_ENDPOINT`,
    /// `AUTHGEAR_PROJECT_ID` and `AUTHGEAR_KEY_ID` (plus `AUTH0_AUDIENCE` when the Auth0
    /// tenant has a canonical domain). `AUTHGEAR_PRIVATE_KEY_FILE` is not
    /// included: the caller writes the PEM to a file itself.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        let base = self.base_url();
        let mut vars = vec![
            ("AUTH0_DOMAIN".to_owned(), base.clone()),
            (
                "AUTH0_CLIENT_ID".to_owned(),
                self.auth0.client_id().to_owned(),
            ),
            (
                "AUTH0_CLIENT_SECRET".to_owned(),
                self.auth0.client_secret().to_owned(),
            ),
            ("AUTHGEAR_ENDPOINT".to_owned(), base),
        ];
        // A tenant behind a custom domain wants the canonical audience.
        if self.auth0.config().canonical_domain.is_some() {
            vars.push(("AUTH0_AUDIENCE".to_owned(), self.auth0.audience()));
        }
        vars.push((
            "AUTHGEAR_PROJECT_ID".to_owned(),
            self.authgear.project_id().to_owned(),
        ));
        vars.push((
            "AUTHGEAR_KEY_ID".to_owned(),
            self.authgear.key_id().to_owned(),
        ));
        vars
    }

    /// Stops the server gracefully (waits up to 5 s for in-flight requests, then aborts).
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
