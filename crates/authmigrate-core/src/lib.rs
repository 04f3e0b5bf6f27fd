//! Provider-neutral core of authmigrate.
//!
//! - [`record`]: the neutral [`UserRecord`](record::UserRecord) and its typed password hash.
//! - [`backend`]: the [`ImportBackend`](backend::ImportBackend) trait every provider implements.
//! - [`driver`]: the one generic import driver (chunking by exact size, jobs in flight,
//!   polling, retries, resume journal) that runs any backend.
//! - [`io`]: streaming readers and writers (JSON arrays, NDJSON, gzip) in bounded memory.
//! - [`retry`]: the shared HTTP retry policy (feature `http`).
//! - [`delete`]: the provider-neutral delete engine (`authmigrate delete`).
//! - [`generate`]: reproducible test users, hashed on every core.
//! - [`memory`]: an in-memory backend that proves the driver.
//! - [`workstore`]: the one embedded store (SQLite) for a run's keyed working data.

pub mod backend;
pub mod delete;
#[cfg(feature = "http")]
pub mod download;
pub mod driver;
pub mod error;
pub mod format;
pub mod generate;
pub mod io;
pub mod join;
pub mod memory;
pub mod record;
pub mod report;
#[cfg(feature = "http")]
pub mod retry;
pub mod secret;
pub mod workstore;

pub use backend::{ImportBackend, Outcome, RecordOutcome};
pub use error::{Error, Result};
pub use record::UserRecord;
pub use secret::Secret;
