//! The authgear backend of authmigrate.
//!
//! - [`format`]: Authgear's import-body and export shapes, mapped to and from the
//!   neutral [`UserRecord`](authmigrate_core::UserRecord).
//! - [`validate`]: offline checks of an import body against Authgear's schema
//!   (`authmigrate validate --for authgear`).
//! - [`config`]: the backend's settings ([`AuthgearSettings`], [`AuthgearAuth`]).
//! - [`auth`]: Admin API tokens (RS256 JWTs minted with the admin key, cached).
//! - [`client`]: the import endpoints over HTTP, through the shared retry policy.
//! - [`export`]: user export over HTTP (`export_users`).
//! - [`graphql`]: the Admin API GraphQL client (look-ups, `deleteUser`).
//! - [`delete`]: user look-ups and deletes (`authmigrate delete --from authgear`).
//! - [`expect`]: what Authgear holds of an imported user (`authmigrate verify --to authgear`).
//! - [`tenant`]: roles and groups as a tenant target (Admin GraphQL).
//! - [`backend`]: [`AuthgearBackend`], the import backend the core driver runs.

pub mod auth;
pub mod backend;
pub mod client;
pub mod config;
pub mod custom_attrs;
pub mod delete;
pub mod expect;
pub mod export;
pub mod format;
pub mod graphql;
pub mod tenant;
pub mod username;
pub mod validate;

pub use backend::AuthgearBackend;
pub use config::{AuthgearAuth, AuthgearSettings};
