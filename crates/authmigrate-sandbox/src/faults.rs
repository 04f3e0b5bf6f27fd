//! Fault injection, latency and rate limiting shared by both emulators.
//! (Skeleton: helper H3 fills this in; the type names are the contract.)

use std::time::Duration;

/// What to inject. Everything is off by default; all randomness comes from `seed`.
#[derive(Debug, Clone, Default)]
pub struct FaultConfig {
    /// Seed of the deterministic RNG.
    pub seed: u64,
    /// How long an import/export job takes from creation to done.
    pub job_latency: Duration,
}

/// Live fault state, shared by the emulators' handlers.
#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
}

impl Faults {
    /// Builds the live state.
    pub fn new(config: FaultConfig) -> Self {
        Self { config }
    }

    /// The job latency.
    pub fn job_latency(&self) -> Duration {
        self.config.job_latency
    }
}
