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

use std::net::SocketAddr;
use std::sync::Arc;

pub use faults::FaultConfig;

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
