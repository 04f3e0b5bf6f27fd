//! The authgear backend of authmigrate.
//!
//! - [`format`]: Authgear's import-body and export shapes, mapped to and from the
//!   neutral [`UserRecord`](authmigrate_core::UserRecord).
//! - [`validate`]: offline checks of an import body against Authgear's schema
//!   (`authmigrate validate --for authgear`).

pub mod format;
pub mod validate;
