//! Everything the CLI shows: `--json` events on stdout, human messages and progress
//! bars on stderr.
//!
//! `--json` prints JSON Lines, one `{"type": ..., "data": {...}}` object per line,
//! the last one of type `summary` (see `docs/cli.md`). Progress bars are drawn only
//! when stderr is a terminal and neither `--json`, `--no-progress` nor `-q` is given.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// How the user asked us to talk.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    json: bool,
    quiet: bool,
    progress: bool,
    /// Fields added to the command's `summary` event by the steps before it (e.g.
    /// `migrate`'s tenant step: `roles`, `groups`, `mfa`).
    summary_extra: Arc<Mutex<serde_json::Map<String, serde_json::Value>>>,
}

impl Output {
    /// From the global flags.
    pub(crate) fn new(json: bool, quiet: u8, no_progress: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        Self {
            json,
            quiet: quiet > 0,
            progress: tty && !json && !no_progress && quiet == 0,
            summary_extra: Arc::default(),
        }
    }

    /// Adds (or replaces) `key` in the `summary` event this command emits last.
    pub(crate) fn add_to_summary(&self, key: &str, value: serde_json::Value) {
        self.summary_extra
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_owned(), value);
    }

    /// Whether `--json` is on.
    pub(crate) fn json(&self) -> bool {
        self.json
    }

    /// Emits one JSON Lines event on stdout (only with `--json`).
    pub(crate) fn event(&self, kind: &str, data: impl Serialize) {
        if !self.json {
            return;
        }
        #[derive(Serialize)]
        struct Envelope<'a, T> {
            #[serde(rename = "type")]
            kind: &'a str,
            data: T,
        }
        let mut data = serde_json::to_value(data).unwrap_or_default();
        if kind == "summary"
            && let serde_json::Value::Object(o) = &mut data
        {
            for (k, v) in self
                .summary_extra
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
            {
                o.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let line = serde_json::to_string(&Envelope { kind, data }).unwrap_or_else(|e| {
            format!(r#"{{"type":"error","data":{{"message":"cannot encode event: {e}"}}}}"#)
        });
        let mut out = std::io::stdout().lock();
        // A closed stdout (`| head`) is not worth a panic.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// A human message on stderr, unless `-q`.
    pub(crate) fn say(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// A progress bar over `len` items (hidden when progress is off).
    pub(crate) fn bar(&self, len: u64, what: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} ({{per_sec}}, eta {{eta}}) {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// A progress counter when the total is not known in advance.
    pub(crate) fn counter(&self, what: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(&format!(
            "{{spinner}} {what} {{pos}} ({{per_sec}}) {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}
