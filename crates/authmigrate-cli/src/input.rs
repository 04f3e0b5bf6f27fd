//! Reading user files of any supported format into neutral records.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context;
use authmigrate_core::UserRecord;
use authmigrate_core::backend::RecordFailure;
use authmigrate_core::driver::InputRecord;
use authmigrate_core::io::{InputFormat, ReaderStatus, RecordReader, from_object};
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
        InputFormat::Auth0Bulk => {
            authmigrate_auth0::format::from_bulk_user(obj).map_err(|e| invalid(&e.field, &e.reason))
        }
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

/// The target whose own upload format is checked as written rather than repaired.
///
/// A file in the target's native format (an Authgear import body for Authgear, an
/// Auth0 bulk-import array for Auth0) is the user's own upload: each record is checked
/// with the target's validator (the one `validate --for` runs) and a record with an
/// error fails with its field and reason; it is not repaired. Records of any other
/// format are converted, and what the target cannot hold is left out with warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Native {
    /// No native check (e.g. `convert --to neutral`).
    #[default]
    None,
    /// Authgear import records, checked against the schema of this identifier,
    /// usernames against these reserved names.
    Authgear(
        authmigrate_authgear::format::Identifier,
        authmigrate_authgear::username::ReservedUsernames,
    ),
    /// Auth0 bulk-import users.
    Auth0,
}

impl Native {
    /// Checks one raw record of `format` as written when `format` is this target's
    /// own; the record's first errors, joined, as an `INVALID_RECORD` failure.
    pub(crate) fn check(
        &self,
        format: InputFormat,
        obj: &Map<String, Value>,
    ) -> Result<(), RecordFailure> {
        let problems = match (self, format) {
            (Self::Authgear(id, reserved), InputFormat::AuthgearBody) => {
                authmigrate_authgear::validate::check_record_with(obj, *id, reserved)
            }
            (Self::Auth0, InputFormat::Auth0Bulk) => authmigrate_auth0::validate::check_user(obj),
            _ => return Ok(()),
        };
        let errors: Vec<String> = problems
            .iter()
            .filter(|p| p.severity == authmigrate_core::format::Severity::Error)
            .map(|p| {
                if p.field.is_empty() {
                    p.reason.clone()
                } else {
                    format!("field `{}`: {}", p.field, p.reason)
                }
            })
            .collect();
        if errors.is_empty() {
            return Ok(());
        }
        Err(RecordFailure::new(
            "INVALID_RECORD",
            format!(
                "{} (a file in the target's own format is imported as written, not repaired)",
                errors.join("; ")
            ),
        ))
    }

    /// [`Native::check`], then [`to_user_record`].
    pub(crate) fn to_user_record(
        &self,
        format: InputFormat,
        obj: Map<String, Value>,
    ) -> Result<UserRecord, RecordFailure> {
        self.check(format, &obj)?;
        to_user_record(format, obj)
    }
}

/// Refuses an Auth0 password-hash export given where a user file is expected: it has
/// no profiles, only hashes, so each of its lines would fail the same way.
pub(crate) fn refuse_password_export(format: InputFormat, path: &Path) -> anyhow::Result<()> {
    if format == InputFormat::Auth0PasswordExport {
        return Err(crate::Hinted {
            message: format!("`{}` is an Auth0 password-hash export, not a user file", path.display()),
            hint: "export the users (`authmigrate export --from auth0`) and join this file to them with \
                   `--password-hashes` (convert, migrate)"
                .into(),
        }
        .into());
    }
    Ok(())
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
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        meta.len().hash(&mut h);
        let mut reader = RecordReader::open_auto(path)?;
        refuse_password_export(reader.format(), path)?;
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
    native: Native,
}

impl Inputs {
    pub(crate) fn new(files: Vec<PathBuf>) -> Self {
        Self {
            files: files.into_iter(),
            current: None,
            next_index: 0,
            errors: ReaderStatus::default(),
            status: Vec::new(),
            native: Native::None,
        }
    }

    /// Checks records in `native`'s own format as written (see [`Native`]).
    pub(crate) fn native(mut self, native: Native) -> Self {
        self.native = native;
        self
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
                        Ok(obj) => self.native.to_user_record(format, obj),
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

/// The non-blank lines of a file, each turned into a `T` by `parse` on every core,
/// yielded in input order. Lines are read in blocks of [`PAR_BLOCK`], so memory is
/// O(block). `parse` gets the 0-based index among non-blank lines, the 1-based line
/// number and the line's text.
pub(crate) struct ParallelLines<T, F> {
    reader: Box<dyn std::io::BufRead + Send>,
    parse: F,
    ready: std::vec::IntoIter<T>,
    next_index: u64,
    line: u64,
    path: PathBuf,
    error: ReaderStatus,
}

/// Lines parsed per parallel block.
pub(crate) const PAR_BLOCK: usize = 1024;

impl<T: Send, F: Fn(u64, u64, &str) -> T + Sync> ParallelLines<T, F> {
    /// Opens `path` (gzip detected by content).
    pub(crate) fn open(path: &Path, parse: F) -> anyhow::Result<Self> {
        Ok(Self {
            reader: authmigrate_core::io::open_input(path)?,
            parse,
            ready: Vec::new().into_iter(),
            next_index: 0,
            line: 0,
            path: path.to_owned(),
            error: ReaderStatus::default(),
        })
    }

    /// Where a fatal read error (not a bad line) is reported.
    pub(crate) fn status(&self) -> ReaderStatus {
        self.error.clone()
    }

    fn fill(&mut self) -> bool {
        use rayon::prelude::*;
        let mut lines: Vec<(u64, u64, String)> = Vec::with_capacity(PAR_BLOCK);
        while lines.len() < PAR_BLOCK {
            let mut buf = String::new();
            match self.reader.read_line(&mut buf) {
                Ok(0) => break,
                Ok(_) => {
                    self.line += 1;
                    if buf.trim().is_empty() {
                        continue;
                    }
                    lines.push((self.next_index, self.line, buf));
                    self.next_index += 1;
                }
                Err(e) => {
                    self.error
                        .set(authmigrate_core::Error::io("read", &self.path, e));
                    break;
                }
            }
        }
        if lines.is_empty() {
            return false;
        }
        let parse = &self.parse;
        let parsed: Vec<T> = lines
            .into_par_iter()
            .map(|(index, line, text)| parse(index, line, &text))
            .collect();
        self.ready = parsed.into_iter();
        true
    }
}

impl<T: Send, F: Fn(u64, u64, &str) -> T + Sync> Iterator for ParallelLines<T, F> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        loop {
            if let Some(r) = self.ready.next() {
                return Some(r);
            }
            if self.error.has_error() || !self.fill() {
                return None;
            }
        }
    }
}

/// Parses one NDJSON line into a JSON object, or says why not (position only, never
/// the content: serde_json's syntax errors carry no text of the input).
pub(crate) fn parse_object(line: u64, text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(other) => Err(format!(
            "line {line}: expected a JSON object, found {}",
            authmigrate_core::format::kind(&other)
        )),
        Err(e) => Err(format!("line {line}: invalid JSON: {e}")),
    }
}

/// Reads one NDJSON line of a user file of `format` into a neutral record. Auth0
/// export lines take a typed fast path; anything it declines (and every other format)
/// goes through a JSON object, which says precisely what is wrong.
pub(crate) fn parse_line(
    format: InputFormat,
    native: &Native,
    line: u64,
    text: &str,
) -> Result<UserRecord, RecordFailure> {
    if format == InputFormat::Auth0Export
        && let Some(user) = authmigrate_auth0::format::from_export_str(text)
    {
        return Ok(user);
    }
    parse_object(line, text)
        .map_err(|reason| RecordFailure::new("INVALID_RECORD", reason))
        .and_then(|obj| native.to_user_record(format, obj))
}

/// A stream of input records.
pub(crate) type Records = Box<dyn Iterator<Item = InputRecord> + Send>;

/// The records of one NDJSON user file, parsed and mapped to neutral records on every
/// core, in input order; `Ok(None)` when the file is not NDJSON (or is stdin).
pub(crate) fn parallel_ndjson(
    path: &Path,
    native: Native,
) -> anyhow::Result<Option<(Records, ReaderStatus)>> {
    if path.as_os_str() == "-" {
        return Ok(None);
    }
    let format = authmigrate_core::io::detect_format(path)?;
    refuse_password_export(format, path)?;
    if !format.is_ndjson() {
        return Ok(None);
    }
    let parse = move |index: u64, line: u64, text: &str| InputRecord {
        index,
        record: parse_line(format, &native, line, text),
    };
    let lines = ParallelLines::open(path, parse)?;
    let status = lines.status();
    Ok(Some((Box::new(lines), status)))
}
