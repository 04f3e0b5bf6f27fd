//! The auth0 backend of authmigrate.
//!
//! - [`format`]: Auth0's bulk-import, export and password-hash-export shapes, mapped
//!   to and from the neutral [`UserRecord`](authmigrate_core::UserRecord).
//! - [`validate`]: offline checks of a bulk-import file against Auth0's schema
//!   (`authmigrate validate --for auth0`).
//! - [`users`]: user look-ups and deletes (`authmigrate delete --from auth0`).
//! - [`expect`]: what Auth0 holds of an imported user (`authmigrate verify --to auth0`).
//! - [`tenant`]: roles, permissions and organizations as a tenant source.

pub mod backend;
pub mod client;
pub mod config;
pub mod create;
pub mod expect;
pub mod export;
pub mod format;
mod job_errors;
pub mod tenant;
pub mod tenant_target;
pub mod tickets;
pub mod users;
mod users_bulk;
pub mod validate;

pub use backend::Auth0Backend;
pub use config::{Auth0Auth, Auth0Settings};
