//! The auth0 backend of authmigrate.
//!
//! - [`format`]: Auth0's bulk-import, export and password-hash-export shapes, mapped
//!   to and from the neutral [`UserRecord`](authmigrate_core::UserRecord).
//! - [`validate`]: offline checks of a bulk-import file against Auth0's schema
//!   (`authmigrate validate --for auth0`).
//! - [`users`]: user look-ups and deletes (`authmigrate delete --from auth0`).

pub mod backend;
pub mod client;
pub mod config;
pub mod create;
pub mod export;
pub mod format;
pub mod tickets;
pub mod users;
pub mod validate;

pub use backend::Auth0Backend;
pub use config::{Auth0Auth, Auth0Settings};
