//! `verify`: does the target hold every source user as the mapping says it should?
//!
//! Three parts:
//! - [`Expected`]: what the target should hold of one source user, as a neutral record
//!   plus per-field [`Rule`]s. Each provider crate computes it from its own mapping
//!   (`authmigrate_auth0::expect`, `authmigrate_authgear::expect`), so there is one
//!   definition of "what the target holds": the import mapping, read back.
//! - [`compare`]: field by field over the neutral record ([`Field`]), giving
//!   [`FieldDiff`]s. Fields left out by design are not differences; booleans that
//!   are absent count as `false`; empty objects and lists count as absent.
//! - [`Pairing`]: the target's users in the run's [`WorkStore`](crate::workstore)
//!   (keyed by id, e-mail and username), each source user looked up there by the
//!   run's id map, else by e-mail, else by username, in bounded memory.
//!
//! - [`Sample`]: a fixed-size, evenly drawn and reproducible sample of the matched
//!   users (the CLI's sampled login check).
//!
//! Secrets never reach a difference: passwords are compared as carried / not carried,
//! TOTP factors by kind only.

#[cfg(test)]
mod bench;
mod compare;
mod pair;
mod sample;

pub use compare::{Field, FieldDiff, Rule, compare, field_value};
pub use pair::{PairKeys, Pairing, TargetRow, Verdict};
pub use sample::Sample;

use serde::Serialize;
use serde_json::Value;

use crate::UserRecord;
use crate::backend::RecordFailure;

/// What the target should hold of one source user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expected {
    /// The user as the target's export should read (neutral form).
    pub record: UserRecord,
    /// Per-field rules; a field not listed compares exactly ([`Rule::Exact`]).
    pub rules: Vec<(Field, Rule)>,
}

impl Expected {
    /// Exact comparison of every field of `record`.
    pub fn exact(record: UserRecord) -> Self {
        Self {
            record,
            rules: Vec::new(),
        }
    }

    /// Sets the rule of `field` (the last one set wins).
    pub fn with(mut self, field: Field, rule: Rule) -> Self {
        self.set(field, rule);
        self
    }

    /// Sets the rule of `field` (the last one set wins).
    pub fn set(&mut self, field: Field, rule: Rule) {
        self.rules.retain(|(f, _)| *f != field);
        self.rules.push((field, rule));
    }

    /// The rule of `field`.
    pub fn rule(&self, field: Field) -> &Rule {
        self.rules
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, r)| r)
            .unwrap_or(&Rule::Exact)
    }
}

/// Computes what a target holds of a source user: `Err` when the mapping refuses the
/// user (it was never sent, so it is missing at the target, with this reason).
pub type ExpectFn<'a> = dyn Fn(&UserRecord) -> Result<Expected, RecordFailure> + Send + Sync + 'a;

/// The counts of a verify run (contract v2 `summary`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Users read from the source.
    pub source: u64,
    /// Users read from the target.
    pub target: u64,
    /// Source users found at the target as expected.
    pub matched: u64,
    /// Source users not found at the target.
    pub missing: u64,
    /// Source users found at the target with at least one field not as expected.
    pub different: u64,
    /// Target users no source user paired with (counted, not a failure).
    pub extra: u64,
    /// The sampled login check, when one ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<LoginCounts>,
}

/// The counts of a sampled login check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LoginCounts {
    /// Matched users who tried to log in at the target.
    pub checked: u64,
    /// Of them, the ones the target refused.
    pub failed: u64,
}

impl Summary {
    /// Whether every source user is at the target as expected.
    pub fn passed(&self) -> bool {
        self.missing == 0 && self.different == 0
    }

    /// The summary after a login check: a matched user the target refused to log in
    /// counts as different (its `login` is a [`Difference`]), no longer as matched.
    pub fn with_login(mut self, login: LoginCounts) -> Self {
        let failed = login.failed.min(self.matched);
        self.matched -= failed;
        self.different += failed;
        self.login = Some(login);
        self
    }
}

/// What kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffKind {
    /// The source user is not at the target.
    Missing,
    /// A field of the paired target user is not as expected.
    Different,
}

/// One difference of a verify run (a report entry, a `--json` event, a line on stderr).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// The source user's 0-based position in the source.
    pub index: u64,
    /// A non-secret label of the source user (e-mail, else username, phone, id).
    pub user: String,
    /// The source user's id, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// The paired target user's id, when paired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// Missing or different.
    pub kind: DiffKind,
    /// The field (`Different` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// What the target should hold (`null`: nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Value>,
    /// What it holds (`null`: nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub got: Option<Value>,
    /// Why the user is missing, when known (the mapping refused it, a duplicate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Difference {
    /// A matched user the target refused to log in (`verify --login-check`): field
    /// `login`, expected `"logs in"`, got the target's answer (never the password).
    pub fn login(index: u64, user: String, source_id: Option<String>, answer: String) -> Self {
        Self {
            index,
            user,
            source_id,
            target_id: None,
            kind: DiffKind::Different,
            field: Some("login"),
            expected: Some(Value::String("logs in".into())),
            got: Some(Value::String(answer)),
            reason: None,
        }
    }
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            DiffKind::Missing => {
                write!(f, "{}: missing at the target", self.user)?;
                if let Some(r) = &self.reason {
                    write!(f, " ({r})")?;
                }
                Ok(())
            }
            DiffKind::Different => write!(
                f,
                "{}, {}: expected {}, got {}",
                self.user,
                self.field.unwrap_or("?"),
                show(self.expected.as_ref()),
                show(self.got.as_ref())
            ),
        }
    }
}

fn show(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "(none)".into(),
        Some(Value::String(s)) => format!("\"{s}\""),
        Some(other) => other.to_string(),
    }
}

/// A source user's label for messages (never a secret).
pub fn label(record: &UserRecord, index: u64) -> String {
    record
        .label()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("record {index}"))
}
