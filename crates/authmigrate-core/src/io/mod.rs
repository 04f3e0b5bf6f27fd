//! Streaming readers and writers in bounded memory.
//!
//! Inputs of a million users are normal, so nothing here reads a whole file:
//!
//! - [`open_input`] opens a file or standard input (`-`), transparently gunzipping
//!   when the data starts with the gzip magic bytes.
//! - [`detect_format`] tells the six supported input formats apart from a bounded
//!   prefix of the data ([`InputFormat`]).
//! - [`RecordReader`] yields one [`RawRecord`] (a JSON object, or the reason it is
//!   unreadable) at a time from NDJSON, from a JSON array, or from the `records` array
//!   of an Authgear import body. Memory is O(largest record).
//! - [`from_object`] turns one raw object into a typed value, naming the failing field.
//! - [`create_output`], [`NdjsonWriter`] and [`JsonArrayWriter`] write buffered,
//!   optionally gzipped, optionally private (0600) output.

pub mod csv;
mod detect;
mod object;
mod output;
mod reader;
mod scan;

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::Path;
use std::str::FromStr;

use flate2::read::MultiGzDecoder;

use crate::error::{Error, Result};

pub use detect::{detect_format, detect_reader};
pub use object::{FieldError, from_object};
pub use output::{JsonArrayWriter, NdjsonWriter, OutputWriter, create_output};
pub use reader::{DEFAULT_MAX_RECORD_BYTES, RawRecord, ReaderStatus, RecordReader};

/// Size of the read buffer put in front of every input.
const READ_BUFFER: usize = 64 * 1024;

/// The input formats authmigrate reads. See [`detect_format`] for how each is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputFormat {
    /// Neutral NDJSON: one [`UserRecord`](crate::record::UserRecord) a line.
    Neutral,
    /// An Auth0 bulk-import file: one JSON array of users.
    Auth0Bulk,
    /// An Authgear import request body: `{"identifier":…,"upsert":…,"records":[…]}`.
    AuthgearBody,
    /// An Auth0 user export: NDJSON with `user_id` / `identities`.
    Auth0Export,
    /// An Authgear user export: NDJSON with `sub`.
    AuthgearExport,
    /// An Auth0 password-hash export: NDJSON with `_id` / `passwordHash`.
    Auth0PasswordExport,
}

impl InputFormat {
    /// Every format, in a stable order.
    pub const ALL: [InputFormat; 6] = [
        InputFormat::Neutral,
        InputFormat::Auth0Bulk,
        InputFormat::AuthgearBody,
        InputFormat::Auth0Export,
        InputFormat::AuthgearExport,
        InputFormat::Auth0PasswordExport,
    ];

    /// The name used in messages and accepted by `--format` (`auth0-bulk`, …).
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Neutral => "neutral",
            InputFormat::Auth0Bulk => "auth0-bulk",
            InputFormat::AuthgearBody => "authgear-body",
            InputFormat::Auth0Export => "auth0-export",
            InputFormat::AuthgearExport => "authgear-export",
            InputFormat::Auth0PasswordExport => "auth0-password-export",
        }
    }

    /// Whether the format is NDJSON (one object a line) rather than one JSON document.
    pub fn is_ndjson(self) -> bool {
        !matches!(self, InputFormat::Auth0Bulk | InputFormat::AuthgearBody)
    }
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for InputFormat {
    type Err = String;

    /// Parses a [`name`](InputFormat::name), case-insensitively; `auth0` and `authgear`
    /// are accepted for `auth0-bulk` and `authgear-body`, `_` for `-`.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        match wanted.as_str() {
            "auth0" => return Ok(InputFormat::Auth0Bulk),
            "authgear" => return Ok(InputFormat::AuthgearBody),
            _ => {}
        }
        InputFormat::ALL
            .into_iter()
            .find(|f| f.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<_> = InputFormat::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "unknown input format `{s}`: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// Whether `path` means standard input / output.
fn is_std(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Opens `path` for streaming reads: `-` is standard input; data that starts with the
/// gzip magic bytes `1f 8b` is decompressed (all members, whatever the file name).
///
/// Read errors later on (including corrupt gzip data) surface as `std::io::Error`s
/// from the returned reader.
pub fn open_input(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let raw: Box<dyn Read + Send> = if is_std(path) {
        Box::new(std::io::stdin())
    } else {
        Box::new(File::open(path).map_err(|e| Error::io("open", path, e))?)
    };
    let mut raw = raw;
    // Peek at the first two bytes without losing them.
    let mut magic = Vec::with_capacity(2);
    (&mut raw)
        .take(2)
        .read_to_end(&mut magic)
        .map_err(|e| Error::io("read", path, e))?;
    let gzip = magic == [0x1f, 0x8b];
    let rejoined = Cursor::new(magic).chain(raw);
    Ok(if gzip {
        Box::new(BufReader::with_capacity(
            READ_BUFFER,
            MultiGzDecoder::new(rejoined),
        ))
    } else {
        Box::new(BufReader::with_capacity(READ_BUFFER, rejoined))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn format_names_round_trip() {
        for f in InputFormat::ALL {
            assert_eq!(f.name().parse::<InputFormat>().unwrap(), f);
            assert_eq!(f.to_string(), f.name());
        }
        assert_eq!(
            "Auth0_Bulk".parse::<InputFormat>().unwrap(),
            InputFormat::Auth0Bulk
        );
        assert_eq!(
            "authgear".parse::<InputFormat>().unwrap(),
            InputFormat::AuthgearBody
        );
        let err = "csv".parse::<InputFormat>().unwrap_err();
        assert!(err.starts_with("unknown input format `csv`: expected one of neutral"));
    }

    #[test]
    fn gzip_is_detected_by_magic_not_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.ndjson"); // no .gz on purpose
        let mut enc = flate2::write::GzEncoder::new(
            File::create(&path).unwrap(),
            flate2::Compression::default(),
        );
        enc.write_all(b"{\"email\":\"a@example.com\"}\n").unwrap();
        enc.finish().unwrap();
        // A second gzip member appended: MultiGzDecoder reads both.
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap(),
            flate2::Compression::default(),
        );
        enc.write_all(b"{\"email\":\"b@example.com\"}\n").unwrap();
        enc.finish().unwrap();

        let mut text = String::new();
        open_input(&path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(
            text,
            "{\"email\":\"a@example.com\"}\n{\"email\":\"b@example.com\"}\n"
        );
    }

    #[test]
    fn plain_and_tiny_files_pass_through() {
        let dir = tempfile::tempdir().unwrap();
        for content in ["", "{", "[]", "\u{1f}x"] {
            let path = dir.path().join("f.json");
            std::fs::write(&path, content).unwrap();
            let mut text = String::new();
            open_input(&path)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            assert_eq!(text, content);
        }
    }

    #[test]
    fn missing_file_error_names_it() {
        let err = match open_input(Path::new("/nonexistent/users.json")) {
            Err(e) => e,
            Ok(_) => panic!("opened a missing file"),
        };
        assert!(matches!(err, Error::Io { action: "open", .. }));
        assert!(
            err.to_string()
                .starts_with("cannot open `/nonexistent/users.json`: ")
        );
    }
}
