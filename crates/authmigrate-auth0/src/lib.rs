//! The auth0 backend of authmigrate.
