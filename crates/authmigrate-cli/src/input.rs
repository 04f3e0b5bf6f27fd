//! Reading user files of any supported format into neutral records.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context;
use authmigrate_core::UserRecord;
use authmigrate_core::backend::RecordFailure;
use authmigrate_core::driver::InputRecord;
use authmigrate_core::io::{InputFormat, RecordReader, ReaderStatus, from_object};
use serde_json::{Map, Value};

/// Turns one raw record of a detected input format into a neutral record, or says
/// (field and reason, never a value) why it cannot be read.
pub(crate) fn to_user_record(
    format: InputFormat,
    obj: Map<String, Value>,
) -> Result<UserRecord, RecordFailure> {
    let invalid = |field: &str, reason: &str| {
        let msg = if field.is_empty() {
            reason.to_owned()
        } else {
            format!("field `{field}`: {reason}")
        };
        RecordFailure::new("INVALID_RECORD", msg)
    };
    match format {
        InputFormat::Neutral => {
            from_object::<UserRecord>(obj).map_err(|e| invalid(&e.field, &e.reason))
        }
        InputFormat::Auth0Bulk => authmigrate_auth0::format::from_bulk_user(obj)
            .map_err(|e| invalid(&e.field, &e.reason)),
        InputFormat::Auth0Export => authmigrate_auth0::format::from_export_user(obj)
            .map_err(|e| invalid(&e.field, &e.reason)),
        InputFormat::AuthgearBody => authmigrate_authgear::format::from_import_record(obj)
            .map_err(|e| invalid(&e.field, &e.reason)),
        InputFormat::AuthgearExport => authmigrate_authgear::format::from_export_record(obj)
            .map_err(|e| invalid(&e.field, &e.reason)),
        InputFormat::Auth0PasswordExport => Err(RecordFailure::new(
            "NOT_A_USER_FILE",
            "this is an Auth0 password-hash export, not a user file: pass it with `--password-hashes`",
        )),
    }
}

/// What a first pass over the inputs found.
#[derive(Debug)]
pub(crate) struct Survey {
    /// Records in all files (None when an input is standard input, read once).
    pub(crate) records: Option<u64>,
    /// A fingerprint of the inputs (paths, sizes, formats, record count).
    pub(crate) fingerprint: u64,
}

/// Reads every input once, checking its framing (a truncated array is refused
/// before anything is sent) and counting records. Standard input is not surveyed.
pub(crate) fn survey(files: &[PathBuf]) -> anyhow::Result<Survey> {
    let mut h = DefaultHasher::new();
    let mut total = Some(0u64);
    for path in files {
        path.hash(&mut h);
        if path.as_os_str() == "-" {
            total = None;
            continue;
        }
        let meta = std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        meta.len().hash(&mut h);
        let mut reader = RecordReader::open_auto(path)?;
        reader.format().name().hash(&mut h);
        let mut n = 0u64;
        while reader.try_next()?.is_some() {
            n += 1;
        }
        n.hash(&mut h);
        total = total.map(|t| t + n);
    }
    Ok(Survey {
        records: total,
        fingerprint: h.finish(),
    })
}

/// The records of several files, one after the other, as driver input: `index` is
/// the 0-based position across all files.
pub(crate) struct Inputs {
    files: std::vec::IntoIter<PathBuf>,
    current: Option<RecordReader>,
    next_index: u64,
    /// Fatal errors (a file that cannot be opened or breaks mid-way).
    errors: ReaderStatus,
    status: Vec<ReaderStatus>,
}

impl Inputs {
    pub(crate) fn new(files: Vec<PathBuf>) -> Self {
        Self {
            files: files.into_iter(),
            current: None,
            next_index: 0,
            errors: ReaderStatus::default(),
            status: Vec::new(),
        }
    }

    /// Collects every fatal reading error, once the driver is done with the iterator.
    pub(crate) fn error_handles(&self) -> Vec<ReaderStatus> {
        let mut v = self.status.clone();
        v.push(self.errors.clone());
        v
    }
}

impl Iterator for Inputs {
    type Item = InputRecord;

    fn next(&mut self) -> Option<InputRecord> {
        loop {
            if self.current.is_none() {
                let path = self.files.next()?;
                match open(&path) {
                    Ok(reader) => {
                        self.status.push(reader.status());
                        self.current = Some(reader);
                    }
                    Err(e) => {
                        // Recorded, then the remaining files are skipped: the
                        // driver must not import a partial selection silently.
                        self.errors.set(e);
                        return None;
                    }
                }
            }
            let reader = self.current.as_mut()?;
            match reader.next() {
                Some(raw) => {
                    let format = reader.format();
                    let index = self.next_index;
                    self.next_index += 1;
                    let record = match raw.value {
                        Ok(obj) => to_user_record(format, obj),
                        Err(reason) => Err(RecordFailure::new("INVALID_RECORD", reason)),
                    };
                    return Some(InputRecord { index, record });
                }
                None => {
                    if reader.status().has_error() {
                        return None;
                    }
                    self.current = None;
                }
            }
        }
    }
}

fn open(path: &Path) -> authmigrate_core::Result<RecordReader> {
    RecordReader::open_auto(path)
}
