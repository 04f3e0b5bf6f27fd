//! The authgear backend of authmigrate.
