//! Helpers for downloading provider exports from short-lived, presigned URLs (the
//! Auth0 export `location`, the Authgear `download_url`), shared by both backends.
//! Nothing here ever puts the URL, its signature or a token in a message.

use std::fmt;
use std::io::{self, Write};
use std::time::Duration;

use crate::backend::BackendError;
use crate::retry::RetryPolicy;

/// Passes decompressed bytes to `out`, counting lines and skipping what an earlier,
/// interrupted attempt already wrote.
pub struct LineSink<'a> {
    out: &'a mut (dyn Write + Send),
    /// Bytes written to `out`.
    pub emitted: u64,
    /// Position in the current attempt's stream.
    pos: u64,
    /// Non-empty lines ended so far.
    pub lines: u64,
    /// Whether the current line has content.
    in_line: bool,
}

impl<'a> LineSink<'a> {
    /// A sink writing to `out`.
    pub fn new(out: &'a mut (dyn Write + Send)) -> Self {
        Self {
            out,
            emitted: 0,
            pos: 0,
            lines: 0,
            in_line: false,
        }
    }

    /// A new attempt starts from the beginning of the stream.
    pub fn restart(&mut self) {
        self.pos = 0;
    }

    /// Writes the bytes not yet written by an earlier attempt.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        let already = usize::try_from(self.emitted.saturating_sub(self.pos))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        self.pos += buf.len() as u64;
        let fresh = &buf[already..];
        if fresh.is_empty() {
            return Ok(());
        }
        self.out.write_all(fresh)?;
        self.emitted += fresh.len() as u64;
        for &b in fresh {
            if b == b'\n' {
                if self.in_line {
                    self.lines += 1;
                }
                self.in_line = false;
            } else if !b.is_ascii_whitespace() {
                self.in_line = true;
            }
        }
        Ok(())
    }

    /// Ends the last line with '\n' if it has none, and flushes.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.in_line {
            self.out.write_all(b"\n")?;
            self.emitted += 1;
            self.lines += 1;
            self.in_line = false;
        }
        self.out.flush()
    }
}

impl fmt::Debug for LineSink<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineSink")
            .field("emitted", &self.emitted)
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

/// A safe excerpt of an error body from the download host: S3's `<Message>` or a
/// short plain text, never anything that may echo a signature.
pub fn safe_detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if let Some(start) = text.find("<Message>") {
        let rest = &text[start + "<Message>".len()..];
        if let Some(end) = rest.find("</Message>") {
            return format!(": {}", rest[..end].trim());
        }
    }
    let lower = text.to_ascii_lowercase();
    if text.is_empty()
        || text.len() > 200
        || text.starts_with('<')
        || lower.contains("signature")
        || lower.contains("token")
        || text.contains("://")
    {
        return String::new();
    }
    format!(": {text}")
}

/// A transport error without the URL.
pub fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_owned()
    } else if e.is_connect() {
        "connection error".to_owned()
    } else if e.is_body() || e.is_decode() {
        "error reading the response body".to_owned()
    } else if e.is_redirect() {
        "redirect error".to_owned()
    } else {
        "request error".to_owned()
    }
}

/// The plain client for presigned downloads: no default headers, no token.
pub fn download_client() -> Result<reqwest::Client, BackendError> {
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

fn output_error(e: &io::Error) -> BackendError {
    BackendError::fatal(format!("cannot write the exported users: {e}"), None)
}

fn corrupt(e: io::Error) -> Failure {
    Failure::Retry(format!("the gzip file is damaged: {e}"))
}

/// What a download is, for messages: `the users export of job job_x`, and how long
/// its links stay valid (`60 seconds`).
#[derive(Debug, Clone, Copy)]
pub struct DownloadLabel<'a> {
    /// What is downloaded.
    pub what: &'a str,
    /// How long a link stays valid.
    pub valid_for: &'a str,
}

/// At least this many attempts, whatever the retry policy says.
pub const MIN_DOWNLOAD_ATTEMPTS: u32 = 3;

/// Downloads a presigned URL into `sink` (gzip detected by its magic bytes), with no
/// credentials. A refused or expired link (403/404/410) and a transient failure
/// (transport, 408/429/5xx, a body cut short) both call `refresh` for a fresh URL and
/// try again, up to the policy's attempts (at least [`MIN_DOWNLOAD_ATTEMPTS`]);
/// `refresh` receives the last failure's reason. Bytes written by a broken attempt
/// are not written twice.
pub async fn download<F, Fut>(
    http: &reqwest::Client,
    policy: &RetryPolicy,
    label: DownloadLabel<'_>,
    first: String,
    sink: &mut LineSink<'_>,
    mut refresh: F,
) -> Result<(), BackendError>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<String, BackendError>>,
{
    let DownloadLabel { what, valid_for } = label;
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
                    format!("download of {what}: {m}"),
                    None,
                ));
            }
            Err(Failure::Expired(m)) => {
                if attempt >= max {
                    return Err(BackendError::fatal(
                        format!(
                            "download of {what}: the link was refused {attempt} time(s), last: {m}"
                        ),
                        Some(format!(
                            "the download link is valid {valid_for}: check the network and the local clock, then run the export again"
                        )),
                    ));
                }
                tracing::warn!(what, attempt, reason = %m, "export download link refused (expired?): fetching a fresh one");
                m
            }
            Err(Failure::Retry(m)) => {
                if attempt >= max {
                    return Err(BackendError::Transient(format!(
                        "download of {what}: gave up after {attempt} attempt(s), last: {m}"
                    )));
                }
                let wait = policy.backoff(attempt - 1);
                tracing::warn!(what, attempt, wait_ms = wait.as_millis() as u64, reason = %m, "export download failed: retrying with a fresh link");
                tokio::time::sleep(wait).await;
                m
            }
        };
        url = refresh(last).await?;
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
#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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

    #[test]
    fn sink_counts_lines_ends_the_last_one_and_skips_on_restart() {
        let mut out = Vec::new();
        let mut sink = LineSink::new(&mut out);
        sink.write(b"{\"a\":1}\n{\"b\"").unwrap();
        // The first attempt broke off; the second one starts over.
        sink.restart();
        sink.write(b"{\"a\":1}\n").unwrap();
        sink.write(b"{\"b\":2}\n\n{\"c\":3}").unwrap();
        sink.finish().unwrap();
        let (lines, bytes) = (sink.lines, sink.emitted);
        assert_eq!(out, b"{\"a\":1}\n{\"b\":2}\n\n{\"c\":3}\n");
        assert_eq!(lines, 3);
        assert_eq!(bytes, out.len() as u64);
    }
}
