//! Roles, permissions, role members and resource servers (auth0-rbac-orgs-mfa.md §1).

use std::sync::Arc;

use super::Auth0State;

/// Roles, resource servers and organizations of the tenant.
#[derive(Debug, Default)]
pub(crate) struct Rbac {}

impl Rbac {
    /// Drops a deleted user from every role and organization.
    pub(crate) fn forget_user(&mut self, _user_id: &str) {}
}

pub(super) fn routes() -> axum::Router<Arc<Auth0State>> {
    axum::Router::new()
}
