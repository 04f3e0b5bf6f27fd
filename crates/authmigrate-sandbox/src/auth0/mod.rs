//! The Auth0 Management API emulator. (Skeleton: helper H3 fills this in.)

use std::sync::Arc;

use crate::faults::Faults;

/// The emulated tenant's settings.
#[derive(Debug, Clone, Default)]
pub struct Auth0Config {}

/// The emulated tenant's state.
#[derive(Debug)]
pub struct Auth0State {}

impl Auth0State {
    /// A fresh tenant.
    pub fn new(_config: Auth0Config, _faults: Arc<Faults>) -> Self {
        Self {}
    }
}

/// The tenant's routes (`/oauth/token`, `/api/v2/...`).
pub fn router(state: Arc<Auth0State>) -> axum::Router {
    axum::Router::new().with_state(state)
}
