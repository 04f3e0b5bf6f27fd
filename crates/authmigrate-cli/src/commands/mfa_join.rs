//! `--mfa-secrets FILE` for `convert` and `import`: the Auth0 MFA export joined to the
//! users of an Auth0 user export by user id, through the same load and join as
//! `migrate` ([`super::tenant::load_mfa`], [`super::tenant::annotate`]).
//!
//! The secrets live in a scratch store under the system's temporary directory (mode
//! 0700, removed when the run ends); what is shown is counts only, never a secret.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use authmigrate_core::io::InputFormat;
use authmigrate_core::record::MfaFactor;
use authmigrate_core::tenant::mfa::MfaSecrets;

use super::tenant::{MfaJoined, annotate, load_mfa};
use crate::input::Records;
use crate::output::Output;

/// Refuses `--mfa-secrets` unless every input is an Auth0 user export: the export is
/// keyed by Auth0 user id (`auth0|…`), which only that format carries as the users'
/// `source_id` for sure (Authgear files carry Authgear ids; other files, whatever
/// their producer put).
pub(crate) fn check_inputs(files: &[PathBuf]) -> anyhow::Result<()> {
    for path in files {
        if path.as_os_str() == "-" {
            return Err(crate::Hinted {
                message:
                    "`--mfa-secrets` needs the Auth0 user export as a file, not standard input"
                        .into(),
                hint: "pass the file `authmigrate export --from auth0` wrote".into(),
            }
            .into());
        }
        let format = authmigrate_core::io::detect_format(path)?;
        if format != InputFormat::Auth0Export {
            return Err(crate::Hinted {
                message: format!(
                    "`--mfa-secrets` applies to an Auth0 user export only: `{}` reads as {}",
                    path.display(),
                    format.name()
                ),
                hint: "the MFA export is joined by Auth0 user id: give the file \
                       `authmigrate export --from auth0` wrote (or run `migrate --from auth0`)"
                    .into(),
            }
            .into());
        }
    }
    Ok(())
}

/// Loads the export at `path` and says what it holds (`mfa` counts in the summary).
/// A bad row is an error naming the file and the line.
pub(crate) fn load(path: &Path, out: &Output) -> anyhow::Result<MfaSecrets> {
    load_mfa(path, &std::env::temp_dir(), out)
}

/// The record indexes that carry a TOTP secret, one bit each (an eighth of a byte a
/// record), for the warning on users Authgear updated without it.
#[derive(Debug, Default)]
pub(crate) struct TotpMarks {
    bits: Mutex<Vec<u64>>,
    /// Updated users whose TOTP secret was not carried.
    pub(crate) ignored: AtomicU64,
}

impl TotpMarks {
    fn mark(&self, index: u64) {
        let mut bits = self.bits.lock().unwrap_or_else(|e| e.into_inner());
        let word = (index / 64) as usize;
        if bits.len() <= word {
            bits.resize(word + 1, 0);
        }
        bits[word] |= 1 << (index % 64);
    }

    /// Whether record `index` went out with a TOTP secret.
    pub(crate) fn contains(&self, index: u64) -> bool {
        let bits = self.bits.lock().unwrap_or_else(|e| e.into_inner());
        bits.get((index / 64) as usize)
            .is_some_and(|w| w & (1 << (index % 64)) != 0)
    }
}

/// What a run with `--mfa-secrets` counts.
#[derive(Debug, Clone)]
pub(crate) struct MfaTap {
    pub(crate) joined: Arc<MfaJoined>,
    /// Set when the target ignores TOTP secrets of users it updates (Authgear, `--upsert`).
    pub(crate) marks: Option<Arc<TotpMarks>>,
}

impl MfaTap {
    /// Users given their TOTP secret so far.
    pub(crate) fn count(&self) -> u64 {
        self.joined.joined.load(Ordering::Relaxed)
    }

    /// The `mfa` event (`{"totp_joined": N}`, as `migrate`'s) and `mfa_joined` in the
    /// `summary` event, which comes after it.
    pub(crate) fn events(&self, out: &Output) {
        let n = self.count();
        out.event("mfa", serde_json::json!({ "totp_joined": n }));
        out.add_to_summary("mfa_joined", serde_json::json!(n));
    }

    /// The line on stderr, as `migrate` prints it.
    pub(crate) fn say(&self, out: &Output) {
        out.say(format!(
            "mfa: {} users carry their TOTP secret",
            self.count()
        ));
    }
}

/// Joins the secrets to `records` by source id; with `marks`, remembers which records
/// carry a TOTP secret.
pub(crate) fn join(records: Records, secrets: MfaSecrets, marks: bool) -> (Records, MfaTap) {
    let tap = MfaTap {
        joined: Arc::default(),
        marks: marks.then(Arc::default),
    };
    let records = annotate(records, None, Some(secrets), false, tap.joined.clone());
    let records = match &tap.marks {
        Some(m) => {
            let m = m.clone();
            Box::new(records.inspect(move |r| {
                if let Ok(u) = &r.record
                    && u.mfa.iter().any(|f| matches!(f, MfaFactor::Totp { .. }))
                {
                    m.mark(r.index);
                }
            })) as Records
        }
        None => records,
    };
    (records, tap)
}

/// The note before an Authgear `--upsert` run with TOTP secrets.
pub(crate) const UPSERT_NOTE: &str = "note: with `--upsert`, Authgear ignores `mfa.totp` for users that exist already: \
     their TOTP secret is not carried (each one is listed with a warning)";

/// The warning on such a user's record.
pub(crate) const UPDATED_WARNING: &str =
    "`mfa.totp`: Authgear ignores it on update: the TOTP secret was not carried";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_one_bit_per_index() {
        let m = TotpMarks::default();
        for i in [0, 63, 64, 1_000] {
            m.mark(i);
        }
        for i in [0, 63, 64, 1_000] {
            assert!(m.contains(i), "{i}");
        }
        for i in [1, 62, 65, 999, 1_001, 100_000] {
            assert!(!m.contains(i), "{i}");
        }
    }
}
