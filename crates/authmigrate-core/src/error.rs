//! The core error type.

use std::path::PathBuf;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where in an input a problem is: the file, then a line (NDJSON) and/or a record
/// index, then a field path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The file (or `-` for standard input).
    pub file: Option<PathBuf>,
    /// 1-based line number.
    pub line: Option<u64>,
    /// 0-based record index.
    pub index: Option<u64>,
    /// Field path (`custom_password_hash.hash.value`).
    pub field: Option<String>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(file) = &self.file {
            parts.push(format!("`{}`", file.display()));
        }
        if let Some(line) = self.line {
            parts.push(format!("line {line}"));
        }
        if let Some(index) = self.index {
            parts.push(format!("record {index}"));
        }
        if let Some(field) = &self.field {
            parts.push(format!("field `{field}`"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// Errors from the core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad configuration or arguments.
    #[error("{0}")]
    Config(String),
    /// An input file that cannot be read as a whole (not a single bad record).
    #[error("{location}: {reason}")]
    Input {
        /// Where.
        location: Location,
        /// What is wrong (never a secret).
        reason: String,
    },
    /// I/O on a named path.
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        /// What we were doing (`read`, `write`, `create`).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A backend stopped the run.
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    /// The resume journal does not match this run.
    #[error("state file `{}`: {reason}", path.display())]
    State {
        /// The journal.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
}

impl Error {
    /// An I/O error on a path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
