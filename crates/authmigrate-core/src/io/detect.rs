//! Input format detection from a bounded prefix of the data.

use std::io::{BufRead, Cursor, Read};
use std::path::Path;

use super::scan::{Header, ScanError, Scanner};
use super::{InputFormat, open_input};
use crate::error::{Error, Location, Result};

/// How much is read first to decide; the prefix grows ×4 up to [`MAX_PREFIX`] when the
/// first top-level object is still open.
const FIRST_PREFIX: usize = 64 * 1024;
/// The most detection ever holds in memory.
const MAX_PREFIX: usize = 4 * 1024 * 1024;

/// Detects the format of the input at `path` (see [`detect_reader`] for the rules).
///
/// This opens the input on its own and reads at most a few MiB of it. For standard input
/// (`-`), which cannot be read twice, use
/// [`RecordReader::open_auto`](super::RecordReader::open_auto) instead.
pub fn detect_format(path: &Path) -> Result<InputFormat> {
    let reader = open_input(path)?;
    detect_reader(reader, path).map(|(format, _)| format)
}

/// Detects the format of already opened (and gunzipped) input, returning it with a
/// reader that yields the very same bytes from the start (nothing is lost).
///
/// Rules, after an optional UTF-8 BOM and whitespace:
/// - `[` → [`InputFormat::Auth0Bulk`];
/// - `{` whose top-level object has a `records` key with an array value →
///   [`InputFormat::AuthgearBody`];
/// - otherwise NDJSON, classified by the keys of the first object: `_id` or
///   `passwordHash` → [`InputFormat::Auth0PasswordExport`]; `sub` →
///   [`InputFormat::AuthgearExport`]; `user_id` or `identities` →
///   [`InputFormat::Auth0Export`]; anything else → [`InputFormat::Neutral`]. If the first
///   line is not a JSON object, the first line that is decides.
///
/// Empty input (or only whitespace) is an [`Error::Input`] naming `name`.
pub fn detect_reader(
    mut reader: Box<dyn BufRead + Send>,
    name: &Path,
) -> Result<(InputFormat, Box<dyn BufRead + Send>)> {
    let mut prefix = Vec::new();
    let mut want = FIRST_PREFIX;
    loop {
        let missing = (want - prefix.len()) as u64;
        (&mut reader)
            .take(missing)
            .read_to_end(&mut prefix)
            .map_err(|e| Error::io("read", name, e))?;
        let complete = prefix.len() < want || want >= MAX_PREFIX;
        match classify(&prefix, complete) {
            Decision::Format(format) => {
                let replay: Box<dyn BufRead + Send> = Box::new(Cursor::new(prefix).chain(reader));
                return Ok((format, replay));
            }
            Decision::Empty => {
                return Err(Error::Input {
                    location: Location {
                        file: Some(name.to_path_buf()),
                        ..Location::default()
                    },
                    reason: "the file is empty".into(),
                });
            }
            Decision::NeedMore => want = (want * 4).min(MAX_PREFIX),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Format(InputFormat),
    Empty,
    NeedMore,
}

/// Decides from a prefix; `complete` = there is no more data (or no more will be read).
fn classify(bytes: &[u8], complete: bool) -> Decision {
    let mut s = Scanner::new(bytes);
    // Reading a slice cannot fail.
    let first = s.skip_bom().and_then(|()| s.peek_non_ws()).ok().flatten();
    match first {
        None if complete => Decision::Empty,
        None => Decision::NeedMore,
        Some(b'[') => Decision::Format(InputFormat::Auth0Bulk),
        Some(b'{') => {
            s.bump();
            let mut keys = Vec::new();
            let mut scratch = Vec::new();
            let walked = s.walk_members(&mut scratch, MAX_PREFIX, |key, _| {
                keys.push(key.to_owned());
                Ok(())
            });
            match walked {
                Ok(Header::Records) => Decision::Format(InputFormat::AuthgearBody),
                Ok(Header::Closed) => {
                    Decision::Format(classify_keys(keys.iter().map(String::as_str)))
                }
                Err(ScanError::Eof(_)) if !complete => Decision::NeedMore,
                Err(_) => Decision::Format(classify_lines(bytes)),
            }
        }
        Some(_) => Decision::Format(classify_lines(bytes)),
    }
}

/// NDJSON: the keys of the first line that is a JSON object decide.
fn classify_lines(bytes: &[u8]) -> InputFormat {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| match serde_json::from_slice(line) {
            Ok(serde_json::Value::Object(map)) => Some(map),
            _ => None,
        })
        .next()
        .map_or(InputFormat::Neutral, |map| {
            classify_keys(map.keys().map(String::as_str))
        })
}

fn classify_keys<'a>(keys: impl Iterator<Item = &'a str> + Clone) -> InputFormat {
    let has = |wanted: &[&str]| keys.clone().any(|k| wanted.contains(&k));
    if has(&["_id", "passwordHash"]) {
        InputFormat::Auth0PasswordExport
    } else if has(&["sub"]) {
        InputFormat::AuthgearExport
    } else if has(&["user_id", "identities"]) {
        InputFormat::Auth0Export
    } else {
        InputFormat::Neutral
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect_str(content: &str) -> Result<InputFormat> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("input.json");
        std::fs::write(&path, content).unwrap();
        detect_format(&path)
    }

    #[test]
    fn detects_all_six_formats() {
        let cases = [
            (
                "{\"email\":\"a@example.com\",\"password\":{\"algorithm\":\"bcrypt\",\"hash\":{\"value\":\"x\"}}}\n",
                InputFormat::Neutral,
            ),
            (
                "  \n[{\"email\":\"a@example.com\",\"password_hash\":\"$2b$10$x\"}]",
                InputFormat::Auth0Bulk,
            ),
            (
                "{\n  \"identifier\": \"email\",\n  \"upsert\": false,\n  \"records\": [\n    {\"email\": \"a@example.com\"}\n  ]\n}\n",
                InputFormat::AuthgearBody,
            ),
            (
                "{\"user_id\":\"auth0|1\",\"email\":\"a@example.com\"}\n{\"user_id\":\"auth0|2\"}\n",
                InputFormat::Auth0Export,
            ),
            (
                "{\"email\":\"a@example.com\",\"identities\":[]}\n",
                InputFormat::Auth0Export,
            ),
            (
                "{\"sub\":\"c3b3\",\"email\":\"a@example.com\"}\n",
                InputFormat::AuthgearExport,
            ),
            (
                "{\"_id\":{\"$oid\":\"60425dc43519d90068f82973\"},\"email\":\"a@example.com\",\"passwordHash\":\"$2b$10$x\"}\n",
                InputFormat::Auth0PasswordExport,
            ),
            (
                "{\"email\":\"a@example.com\",\"passwordHash\":\"$2b$10$x\"}\n",
                InputFormat::Auth0PasswordExport,
            ),
        ];
        for (content, want) in cases {
            assert_eq!(detect_str(content).unwrap(), want, "for {content}");
        }
    }

    #[test]
    fn single_line_object_is_ndjson_unless_records_is_an_array() {
        // One NDJSON line with a `records` key that is not an array: NDJSON.
        assert_eq!(
            detect_str("{\"email\":\"a@example.com\",\"records\":3}").unwrap(),
            InputFormat::Neutral
        );
        // A compact Authgear body on one line: AuthgearBody.
        assert_eq!(
            detect_str("{\"identifier\":\"email\",\"records\":[{\"email\":\"a@example.com\"}]}")
                .unwrap(),
            InputFormat::AuthgearBody
        );
        // Keys of the FIRST object decide even if later lines differ.
        assert_eq!(
            detect_str("{\"email\":\"a@example.com\"}\n{\"sub\":\"x\"}\n").unwrap(),
            InputFormat::Neutral
        );
    }

    #[test]
    fn a_broken_first_line_does_not_hide_the_format() {
        assert_eq!(
            detect_str("{\"sub\": oops\n{\"sub\":\"x\",\"email\":\"a@example.com\"}\n").unwrap(),
            InputFormat::AuthgearExport
        );
    }

    #[test]
    fn gzip_input_is_detected_after_decompression() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(b"{\"sub\":\"x\"}\n").unwrap();
        enc.finish().unwrap();
        assert_eq!(detect_format(&path).unwrap(), InputFormat::AuthgearExport);
    }

    #[test]
    fn empty_input_is_an_error_naming_the_file() {
        for content in ["", " \n\t\n"] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("users.json");
            std::fs::write(&path, content).unwrap();
            let err = detect_format(&path).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("`{}`: the file is empty", path.display())
            );
        }
    }

    #[test]
    fn records_after_a_large_member_needs_a_longer_prefix() {
        let big = "x".repeat(FIRST_PREFIX * 2);
        let content = format!("{{\"note\":\"{big}\",\"records\":[{{}}]}}");
        assert_eq!(detect_str(&content).unwrap(), InputFormat::AuthgearBody);
    }

    #[test]
    fn the_replayed_reader_yields_every_byte() {
        let data = "{\"sub\":\"x\"}\n".repeat(20_000); // larger than the first prefix
        let reader: Box<dyn BufRead + Send> = Box::new(Cursor::new(data.clone().into_bytes()));
        let (format, mut replay) = detect_reader(reader, Path::new("-")).unwrap();
        assert_eq!(format, InputFormat::AuthgearExport);
        let mut back = String::new();
        replay.read_to_string(&mut back).unwrap();
        assert_eq!(back, data);
    }
}
