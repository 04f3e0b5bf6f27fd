//! The Authgear Admin API emulator. (Skeleton: helper H4 fills this in.)

use std::sync::Arc;

use crate::faults::Faults;

/// The emulated project's settings.
#[derive(Debug, Clone, Default)]
pub struct AuthgearConfig {}

/// The emulated project's state.
#[derive(Debug)]
pub struct AuthgearState {}

impl AuthgearState {
    /// A fresh project (generates its RSA key pair unless the config gives one).
    pub fn new(_config: AuthgearConfig, _faults: Arc<Faults>) -> Result<Self, String> {
        Ok(Self {})
    }
}

/// The project's routes (`/_api/admin/...`, `/_sandbox/authgear/...`).
pub fn router(state: Arc<AuthgearState>) -> axum::Router {
    axum::Router::new().with_state(state)
}
