//! A test hook for crash tests: `AUTHMIGRATE_TEST_ABORT_AT=<point>:<n>` makes the
//! process abort (as `kill -9` would stop it: no destructor, no flush) the `n`-th
//! time (1-based) it reaches `<point>`. Read once, by the driver and the CLI only;
//! without the variable a point costs one relaxed load.
//!
//! Points: `before-post` (the intent is journaled, the request not sent),
//! `after-post` (the provider accepted the job, the journal does not know it yet),
//! `after-journal` (the job id is journaled), `polling` (a job answered "running"),
//! `report` (the report is being written).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable.
pub const ABORT_AT: &str = "AUTHMIGRATE_TEST_ABORT_AT";

struct Target {
    point: String,
    n: u64,
    seen: AtomicU64,
}

fn target() -> Option<&'static Target> {
    static TARGET: OnceLock<Option<Target>> = OnceLock::new();
    TARGET
        .get_or_init(|| {
            let value = std::env::var(ABORT_AT).ok()?;
            let (point, n) = value.rsplit_once(':').unwrap_or((&value, "1"));
            Some(Target {
                point: point.to_owned(),
                n: n.parse().ok().filter(|&n| n > 0)?,
                seen: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Marks that the process reached `point`; aborts if the hook says so.
pub fn reached(point: &str) {
    if let Some(t) = target()
        && t.point == point
        && t.seen.fetch_add(1, Ordering::Relaxed) + 1 == t.n
    {
        eprintln!("{ABORT_AT}: aborting at {point}:{}", t.n);
        std::process::abort();
    }
}
