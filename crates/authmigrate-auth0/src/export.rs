//! User export from Auth0: `POST /api/v2/jobs/users-exports` (format `json`), poll
//! `GET /api/v2/jobs/{id}` to the end, then download the job's `location` (a presigned
//! gzip NDJSON file, valid 60 s) and stream the decompressed lines to a writer.
//!
//! The presigned download goes through a separate plain HTTP client: it never carries
//! the Management API token, and its URL (whose query holds a signature) is never
//! logged or put in an error. An expired or refused link (403/404/410) is replaced by
//! a fresh one from `GET /jobs/{id}`, a bounded number of times.
//!
//! The API calls go through [`authmigrate_core::retry`]. The download cannot (that
//! module buffers whole bodies): it is streamed in bounded memory, with the same
//! policy's attempt count and backoff, and a download cut short resumes from a fresh
//! link while skipping the bytes already written.

use authmigrate_core::download::{LineSink, describe, safe_detail};
use std::io::{self, Write};
use std::time::Duration;

use authmigrate_core::backend::BackendError;
use authmigrate_core::retry::{HttpReply, RetryPolicy};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::client::{Auth0Client, api_message};
use crate::config::Auth0Settings;

/// Fields requested from the export, each as a whole value.
///
/// The docs do not say which fields an export without `fields` carries ("default
/// fields" means the normalized profile, which may leave out the metadata), so the
/// export asks for everything [`crate::format::from_export_user`] reads, with
/// `user_metadata`, `app_metadata` and `identities` as whole objects (allowed for the
/// JSON format only).
pub const DEFAULT_FIELDS: &[&str] = &[
    "user_id",
    "email",
    "email_verified",
    "username",
    "phone_number",
    "phone_verified",
    "name",
    "nickname",
    "given_name",
    "family_name",
    "picture",
    "blocked",
    "user_metadata",
    "app_metadata",
    "identities",
    "created_at",
    "updated_at",
    "last_login",
    "logins_count",
];

/// Longest field name Auth0 accepts in `fields[].name`.
pub const MAX_FIELD_NAME_LEN: usize = 100;
/// First wait between two polls of the export job.
pub const FIRST_POLL_DELAY: Duration = Duration::from_millis(250);
/// Longest wait between two polls of the export job.
pub const MAX_POLL_DELAY: Duration = Duration::from_secs(5);
/// Download attempts at least made (expired links included), whatever the policy says.
pub const MIN_DOWNLOAD_ATTEMPTS: u32 = 3;

/// Scopes the export needs, for hints.
pub const EXPORT_SCOPES: &str = "read:users, read:connections";

/// What to export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// A connection NAME; `None` exports the users of all connections.
    pub connection: Option<String>,
    /// Field names to export (each as a whole value); `None` means [`DEFAULT_FIELDS`].
    pub fields: Option<Vec<String>>,
}

pub use authmigrate_core::backend::ExportStats;

/// Runs a users-exports job (format json), polls it to the end, downloads
/// `location` at once (gzip NDJSON), and streams the DECOMPRESSED NDJSON lines into
/// `out` (each line ends with '\n'). Returns counts.
pub async fn export_users(
    settings: &Auth0Settings,
    options: &ExportOptions,
    out: &mut (dyn Write + Send),
) -> Result<ExportStats, BackendError> {
    let client = Auth0Client::new(settings)?;
    let body = request_body(&client, options).await?;
    let job = create_job(&client, &body).await?;
    tracing::info!(job = %job, "auth0 users export job created");
    let location = wait_for_location(&client, &job).await?;
    let http = download_client()?;
    let mut sink = LineSink::new(out);
    download(&http, &client, &job, location, &mut sink).await?;
    sink.finish().map_err(|e| output_error(&e))?;
    tracing::info!(job = %job, users = sink.lines, bytes = sink.emitted, "auth0 users export written");
    Ok(ExportStats {
        users: sink.lines,
        bytes: sink.emitted,
        job,
    })
}

/// The `users-exports` request body for the options (resolves the connection name).
async fn request_body(
    client: &Auth0Client,
    options: &ExportOptions,
) -> Result<Value, BackendError> {
    let names: Vec<&str> = match &options.fields {
        Some(f) => f.iter().map(String::as_str).collect(),
        None => DEFAULT_FIELDS.to_vec(),
    };
    if names.is_empty() {
        return Err(BackendError::fatal(
            "the export field list is empty",
            Some(
                "name at least one field, or leave the list out for the default fields".to_owned(),
            ),
        ));
    }
    for (i, name) in names.iter().enumerate() {
        let n = name.trim();
        if n.is_empty() || n.len() > MAX_FIELD_NAME_LEN {
            return Err(BackendError::fatal(
                format!(
                    "export field {i} (`{name}`): a field name must be 1 to {MAX_FIELD_NAME_LEN} characters"
                ),
                None,
            ));
        }
    }
    let fields: Vec<Value> = names.iter().map(|n| json!({ "name": n.trim() })).collect();
    let mut body = json!({ "format": "json", "fields": fields });
    if let Some(name) = &options.connection {
        let id = connection_id(client, name).await?;
        body["connection_id"] = Value::String(id);
    }
    Ok(body)
}

/// Resolves a connection NAME (any strategy: an export may read social users too) to
/// its id.
async fn connection_id(client: &Auth0Client, name: &str) -> Result<String, BackendError> {
    let what = "look up the connection to export";
    let mut url = client.api_url(&["connections"]);
    url.query_pairs_mut().append_pair("name", name);
    let reply = client.get(what, &url).await?;
    let list = match reply.status.as_u16() {
        200 => connections(&reply).map_err(|e| {
            BackendError::fatal(format!("invalid connections list from auth0: {e}"), None)
        })?,
        401 | 403 => return Err(export_auth_error(what, &reply)),
        code => {
            return Err(BackendError::fatal(
                format!(
                    "{what} `{name}`: auth0 answered HTTP {code}: {}",
                    api_message(&reply)
                ),
                None,
            ));
        }
    };
    if let Some(c) = list
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
        && let Some(id) = c.get("id").and_then(Value::as_str)
    {
        return Ok(id.to_owned());
    }
    let names = connection_names(client).await;
    let hint = if names.is_empty() {
        "pass the name of one of the tenant's connections (Dashboard > Authentication), or leave --connection out to export every connection".to_owned()
    } else {
        format!(
            "pass one of the tenant's connections: {}; or leave --connection out to export every connection",
            names.join(", ")
        )
    };
    Err(BackendError::fatal(
        format!("connection `{name}` not found"),
        Some(hint),
    ))
}

/// The connections of a `GET /connections` answer (bare array or wrapped).
fn connections(reply: &HttpReply) -> Result<Vec<Value>, serde_json::Error> {
    Ok(match reply.json::<Value>()? {
        Value::Array(a) => a,
        Value::Object(mut o) => match o.remove("connections") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    })
}

/// Names of the tenant's connections (first 1000), best effort: for a hint only.
async fn connection_names(client: &Auth0Client) -> Vec<String> {
    let mut names = Vec::new();
    for page in 0..10u32 {
        let mut url = client.api_url(&["connections"]);
        url.query_pairs_mut()
            .append_pair("per_page", "100")
            .append_pair("page", &page.to_string());
        let Ok(reply) = client.get("list connections", &url).await else {
            break;
        };
        if !reply.status.is_success() {
            break;
        }
        let list = connections(&reply).unwrap_or_default();
        names.extend(
            list.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .map(str::to_owned),
        );
        if list.len() < 100 {
            break;
        }
    }
    names
}

/// `POST /api/v2/jobs/users-exports`; returns the job id.
async fn create_job(client: &Auth0Client, body: &Value) -> Result<String, BackendError> {
    let what = "create the users export job";
    let url = client.api_url(&["jobs", "users-exports"]);
    let reply = client
        .send(what, |http| http.post(url.clone()).json(body))
        .await?;
    match reply.status.as_u16() {
        200..=299 => {
            let v: Value = reply.json().map_err(|e| {
                BackendError::fatal(format!("invalid export job answer from auth0: {e}"), None)
            })?;
            v.get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    BackendError::fatal("auth0 created the export job without an `id`", None)
                })
        }
        401 | 403 => Err(export_auth_error(what, &reply)),
        code => Err(BackendError::fatal(
            format!("{what}: auth0 answered HTTP {code}: {}", api_message(&reply)),
            (code == 400).then(|| {
                "check the connection and the field names (JSON exports take whole objects such as `app_metadata`)".to_owned()
            }),
        )),
    }
}

/// A completed job's state, or why it is not usable.
enum Poll {
    Running,
    Completed(Option<String>),
}

/// One `GET /jobs/{id}`.
async fn read_job(client: &Auth0Client, job: &str) -> Result<Poll, BackendError> {
    let what = "read the users export job";
    let url = client.api_url(&["jobs", job]);
    let reply = client.get(what, &url).await?;
    let v: Value = match reply.status.as_u16() {
        200 => reply.json().map_err(|e| {
            BackendError::Transient(format!("job {job}: invalid job status from auth0: {e}"))
        })?,
        404 => {
            return Err(BackendError::fatal(
                format!("users export job {job} not found: {}", api_message(&reply)),
                Some("export results are kept 24 hours; run the export again".to_owned()),
            ));
        }
        401 | 403 => return Err(export_auth_error(what, &reply)),
        code => {
            return Err(BackendError::Transient(format!(
                "job {job}: auth0 answered HTTP {code}: {}",
                api_message(&reply)
            )));
        }
    };
    let status = v.get("status").and_then(Value::as_str).unwrap_or_default();
    match status {
        "completed" => Ok(Poll::Completed(
            v.get("location")
                .and_then(Value::as_str)
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        )),
        "failed" | "expired" => {
            let details = v
                .get("status_details")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or("auth0 gave no details");
            Err(BackendError::fatal(
                format!("users export job {job} {status}: {details}"),
                Some(
                    "run the export again; if it keeps failing, check the tenant's logs".to_owned(),
                ),
            ))
        }
        _ => Ok(Poll::Running),
    }
}

/// Polls the job (250 ms, ×1.5, at most 5 s apart) until it completes; returns its
/// download link.
async fn wait_for_location(client: &Auth0Client, job: &str) -> Result<String, BackendError> {
    let mut delay = FIRST_POLL_DELAY;
    loop {
        if let Poll::Completed(location) = read_job(client, job).await? {
            return location.ok_or_else(|| {
                BackendError::fatal(
                    format!("users export job {job} completed without a download location"),
                    None,
                )
            });
        }
        tokio::time::sleep(delay).await;
        delay = delay.mul_f64(1.5).min(MAX_POLL_DELAY);
    }
}

/// A fresh download link for a completed job.
async fn fresh_location(client: &Auth0Client, job: &str) -> Result<String, BackendError> {
    match read_job(client, job).await? {
        Poll::Completed(Some(l)) => Ok(l),
        _ => Err(BackendError::fatal(
            format!("users export job {job} gave no fresh download location"),
            None,
        )),
    }
}

/// The fatal error for a 401/403 while exporting.
fn export_auth_error(what: &str, reply: &HttpReply) -> BackendError {
    let hint = if reply.status == StatusCode::FORBIDDEN {
        format!(
            "the token lacks a scope: grant the application {EXPORT_SCOPES} on the Management API"
        )
    } else {
        format!(
            "the token is invalid or expired: check AUTH0_TOKEN (or AUTH0_CLIENT_ID/AUTH0_CLIENT_SECRET) and that it was issued for this tenant with the scopes {EXPORT_SCOPES}"
        )
    };
    BackendError::fatal(
        format!(
            "{what}: auth0 answered HTTP {}: {}",
            reply.status.as_u16(),
            api_message(reply)
        ),
        Some(hint),
    )
}

fn output_error(e: &io::Error) -> BackendError {
    BackendError::fatal(format!("cannot write the exported users: {e}"), None)
}

/// The plain client for presigned downloads: no default headers, no token.
fn download_client() -> Result<reqwest::Client, BackendError> {
    reqwest::Client::builder()
        .user_agent(concat!("authmigrate/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| BackendError::fatal(format!("cannot build the http client: {e}"), None))
}

/// Why one download attempt failed.
enum Failure {
    /// 403/404/410: the link expired or was refused; get a fresh one.
    Expired(String),
    /// A transport error, a 5xx/429/408, a body cut short: try again.
    Retry(String),
    /// Anything else: stop.
    Fatal(String),
    /// Writing to `out` failed.
    Output(io::Error),
}

/// Downloads the file, refreshing the link and retrying up to the policy's attempt
/// count (at least [`MIN_DOWNLOAD_ATTEMPTS`]).
async fn download(
    http: &reqwest::Client,
    client: &Auth0Client,
    job: &str,
    first: String,
    sink: &mut LineSink<'_>,
) -> Result<(), BackendError> {
    let policy: &RetryPolicy = client.policy();
    let max = policy.max_attempts.max(MIN_DOWNLOAD_ATTEMPTS);
    let mut url = first;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let last = match fetch_once(http, &url, policy.request_timeout, sink).await {
            Ok(()) => return Ok(()),
            Err(Failure::Output(e)) => return Err(output_error(&e)),
            Err(Failure::Fatal(m)) => {
                return Err(BackendError::fatal(
                    format!("download of the users export of job {job}: {m}"),
                    None,
                ));
            }
            Err(Failure::Expired(m)) => {
                if attempt >= max {
                    return Err(BackendError::fatal(
                        format!(
                            "download of the users export of job {job}: the link was refused {attempt} time(s), last: {m}"
                        ),
                        Some("the download link is valid 60 seconds: check the network and the local clock, then run the export again".to_owned()),
                    ));
                }
                tracing::warn!(job, attempt, reason = %m, "export download link refused (expired?): fetching a fresh one");
                m
            }
            Err(Failure::Retry(m)) => {
                if attempt >= max {
                    return Err(BackendError::Transient(format!(
                        "download of the users export of job {job}: gave up after {attempt} attempt(s), last: {m}"
                    )));
                }
                let wait = policy.backoff(attempt - 1);
                tracing::warn!(job, attempt, wait_ms = wait.as_millis() as u64, reason = %m, "export download failed: retrying with a fresh link");
                tokio::time::sleep(wait).await;
                m
            }
        };
        url = fresh_location(client, job).await.map_err(|e| match e {
            BackendError::Fatal { message, hint } => BackendError::Fatal {
                message: format!("{message} (after a failed download: {last})"),
                hint,
            },
            other => other,
        })?;
    }
}

/// One download attempt: GET without credentials, stream the body into `sink`.
async fn fetch_once(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
    sink: &mut LineSink<'_>,
) -> Result<(), Failure> {
    sink.restart();
    let sent = tokio::time::timeout(timeout, http.get(url).send()).await;
    let mut response = match sent {
        Err(_) => return Err(Failure::Retry("timeout".to_owned())),
        Ok(Err(e)) if e.is_builder() => {
            return Err(Failure::Fatal(
                "the download location is not a valid url".to_owned(),
            ));
        }
        Ok(Err(e)) => return Err(Failure::Retry(describe(&e))),
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    if !status.is_success() {
        let body = tokio::time::timeout(timeout, response.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let m = format!("HTTP {}{}", status.as_u16(), safe_detail(&body));
        return Err(match status.as_u16() {
            403 | 404 | 410 => Failure::Expired(m),
            408 | 429 | 500..=599 => Failure::Retry(m),
            _ => Failure::Fatal(m),
        });
    }
    let mut decoder = Decoder::Sniffing(Vec::new());
    loop {
        let chunk = match tokio::time::timeout(timeout, response.chunk()).await {
            Err(_) => return Err(Failure::Retry("timeout reading the body".to_owned())),
            Ok(Err(e)) => return Err(Failure::Retry(describe(&e))),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(c))) => c,
        };
        decoder.write(&chunk, sink)?;
    }
    decoder.finish(sink)
}

/// Gzip or, if the file does not start with the gzip magic, plain NDJSON.
enum Decoder {
    /// Fewer than two bytes seen.
    Sniffing(Vec<u8>),
    Gzip(Box<flate2::write::MultiGzDecoder<Vec<u8>>>),
    Plain,
}

/// Decompressed bytes buffered before they are passed to the sink.
const FLUSH_AT: usize = 64 * 1024;

impl Decoder {
    fn write(&mut self, data: &[u8], sink: &mut LineSink<'_>) -> Result<(), Failure> {
        if let Self::Sniffing(seen) = self {
            seen.extend_from_slice(data);
            if seen.len() < 2 {
                return Ok(());
            }
            let seen = std::mem::take(seen);
            *self = if seen[..2] == [0x1f, 0x8b] {
                Self::Gzip(Box::new(flate2::write::MultiGzDecoder::new(Vec::new())))
            } else {
                Self::Plain
            };
            return self.write(&seen, sink);
        }
        match self {
            Self::Gzip(d) => {
                d.write_all(data).map_err(corrupt)?;
                if d.get_ref().len() >= FLUSH_AT {
                    let buf = std::mem::take(d.get_mut());
                    sink.write(&buf).map_err(Failure::Output)?;
                }
                Ok(())
            }
            Self::Plain => sink.write(data).map_err(Failure::Output),
            Self::Sniffing(_) => Ok(()),
        }
    }

    fn finish(self, sink: &mut LineSink<'_>) -> Result<(), Failure> {
        match self {
            Self::Sniffing(seen) => sink.write(&seen).map_err(Failure::Output),
            Self::Plain => Ok(()),
            Self::Gzip(mut d) => {
                d.try_finish().map_err(|e| {
                    Failure::Retry(format!("the gzip file ended early or is damaged: {e}"))
                })?;
                let buf = std::mem::take(d.get_mut());
                sink.write(&buf).map_err(Failure::Output)
            }
        }
    }
}

fn corrupt(e: io::Error) -> Failure {
    Failure::Retry(format!("the gzip file is damaged: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode_in_pieces(file: &[u8], piece: usize) -> (Vec<u8>, u64) {
        let mut out = Vec::new();
        let mut sink = LineSink::new(&mut out);
        let mut d = Decoder::Sniffing(Vec::new());
        for c in file.chunks(piece) {
            d.write(c, &mut sink).map_err(|_| ()).unwrap();
        }
        d.finish(&mut sink).map_err(|_| ()).unwrap();
        sink.finish().unwrap();
        let lines = sink.lines;
        (out, lines)
    }

    #[test]
    fn gzip_and_plain_are_decoded_in_any_pieces_and_the_last_line_is_ended() {
        let text = b"{\"a\":1}\n{\"b\":2}\n\n{\"c\":3}";
        for piece in [1, 2, 7, 4096] {
            let (out, lines) = decode_in_pieces(&gzip(text), piece);
            assert_eq!(out, b"{\"a\":1}\n{\"b\":2}\n\n{\"c\":3}\n");
            assert_eq!(lines, 3);
            let (out, lines) = decode_in_pieces(text, piece);
            assert_eq!(out, b"{\"a\":1}\n{\"b\":2}\n\n{\"c\":3}\n");
            assert_eq!(lines, 3);
        }
        let (out, lines) = decode_in_pieces(&gzip(b""), 3);
        assert!(out.is_empty());
        assert_eq!(lines, 0);
    }

    #[test]
    fn truncated_gzip_is_a_retry_and_a_restart_skips_what_was_written() {
        let text: Vec<u8> = (0..5000)
            .flat_map(|i| format!("{{\"user\":{i}}}\n").into_bytes())
            .collect();
        let mut rng_bytes = Vec::new();
        // Incompressible-ish data so the cut falls mid-stream.
        for i in 0..20000u32 {
            rng_bytes.extend_from_slice(format!("{:x}", i.wrapping_mul(2654435761)).as_bytes());
        }
        let text = [text, rng_bytes, b"\n".to_vec()].concat();
        let file = gzip(&text);
        let mut out = Vec::new();
        let mut sink = LineSink::new(&mut out);
        let mut d = Decoder::Sniffing(Vec::new());
        d.write(&file[..file.len() / 2], &mut sink)
            .map_err(|_| ())
            .unwrap();
        assert!(matches!(d.finish(&mut sink), Err(Failure::Retry(_))));
        let written = sink.emitted;
        sink.restart();
        let mut d = Decoder::Sniffing(Vec::new());
        for c in file.chunks(1000) {
            d.write(c, &mut sink).map_err(|_| ()).unwrap();
        }
        d.finish(&mut sink).map_err(|_| ()).unwrap();
        sink.finish().unwrap();
        assert!(written > 0);
        assert_eq!(sink.lines, 5001);
        assert_eq!(out, text);
    }

    #[test]
    fn error_details_never_echo_signatures() {
        assert_eq!(safe_detail(b"Request has expired"), ": Request has expired");
        assert_eq!(
            safe_detail(b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message><Expires>x</Expires></Error>"),
            ": Request has expired"
        );
        assert_eq!(
            safe_detail(b"<Error><Code>SignatureDoesNotMatch</Code><SignatureProvided>abc</SignatureProvided></Error>"),
            ""
        );
        assert_eq!(safe_detail(b"bad Signature=abcdef"), "");
        assert_eq!(safe_detail(b""), "");
    }
}
