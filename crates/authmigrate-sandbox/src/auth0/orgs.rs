//! Organizations, members and member roles (auth0-rbac-orgs-mfa.md §2).

use std::sync::Arc;

use super::Auth0State;

pub(super) fn routes() -> axum::Router<Arc<Auth0State>> {
    axum::Router::new()
}
