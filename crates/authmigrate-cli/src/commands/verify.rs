//! `authmigrate verify --from X --to Y`: does the target hold every source user as
//! the mapping says it should?
//!
//! Both sides are exported (concurrently) into `--work-dir`, or read from
//! `--source-file` / `--target-file`. The target's users go into a scratch
//! [`WorkStore`] (keys and a secret-free copy); the source then streams past, each
//! user's expected target view computed by the target crate's `expect` module (the
//! import mapping, read back) on every core, paired and compared by the core engine
//! ([`authmigrate_core::verify`]). Memory is bounded by the blocks in flight and the
//! store's page cache, whatever the number of users.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use authmigrate_auth0::format::Auth0MapOptions;
use authmigrate_authgear::format::AuthgearMapOptions;
use authmigrate_core::UserRecord;
use authmigrate_core::backend::RecordFailure;
use authmigrate_core::driver::InputRecord;
use authmigrate_core::io::{ReaderStatus, RecordReader};
use authmigrate_core::verify::{Difference, Expected, Pairing, Summary, TargetRow, Verdict};
use authmigrate_core::workstore::WorkStore;
use rayon::prelude::*;
use serde_json::json;

use super::export::{export, name};
use super::map::authgear_options;
use crate::Status;
use crate::cli::{Provider, VerifyArgs};
use crate::input::{parallel_ndjson, refuse_password_export, to_user_record};
use crate::output::Output;

/// Users handled per parallel block (and per store transaction).
const BLOCK: usize = 2048;

pub(crate) fn run(args: VerifyArgs, out: &Output) -> anyhow::Result<Status> {
    if args.password_hashes.is_some() && args.from != Provider::Auth0 {
        anyhow::bail!(
            "`--password-hashes` is an Auth0 password-hash export: it only applies with `--from auth0`"
        );
    }
    if args.target_password_hashes.is_some() && args.to != Provider::Auth0 {
        anyhow::bail!(
            "`--target-password-hashes` is an Auth0 password-hash export: it only applies with `--to auth0`"
        );
    }
    if args.from == args.to && (args.source_file.is_none() || args.target_file.is_none()) {
        anyhow::bail!(
            "`--from` and `--to` are both {}: give `--source-file` and `--target-file` to compare two exports of it",
            name(args.from)
        );
    }
    let expect = Expecter::new(&args)?;
    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("cannot create `{}`", args.work_dir.display()))?;
    let (source, target) = exports(&args, out)?;

    let store = WorkStore::temporary(Some(&args.work_dir))?;
    let mut pairing = Pairing::new(store)?;
    if let Some(path) = &args.id_map {
        let n = pairing.add_id_map(read_id_map(path)?)?;
        out.say(format!(
            "id map: {n} users paired by id (`{}`)",
            path.display()
        ));
    }

    // The target first: every user into the store.
    let started = std::time::Instant::now();
    let (targets, mut status) = records(&target)?;
    let targets: Box<dyn Iterator<Item = InputRecord> + Send> = match &args.target_password_hashes {
        Some(path) => {
            let joined = super::hashes::join_checked(targets, path, out)?;
            status.push(joined.status());
            Box::new(joined)
        }
        None => targets,
    };
    pipelined(
        |send| {
            for_blocks(targets, &target, |block| {
                send(
                    block
                        .into_par_iter()
                        .map(|(_, u)| TargetRow::new(u))
                        .collect(),
                )
            })
        },
        |rows: Vec<TargetRow>| Ok(pairing.add_targets(rows)?),
    )?;
    check_status(&status)?;
    tracing::info!(
        users = pairing.summary().target,
        seconds = started.elapsed().as_secs_f64(),
        "verify: target users stored"
    );
    let started = std::time::Instant::now();

    // Then the source, paired and compared block by block.
    let (sources, mut status) = records(&source)?;
    let sources: Box<dyn Iterator<Item = InputRecord> + Send> = match &args.password_hashes {
        Some(path) => {
            let joined = super::hashes::join_checked(sources, path, out)?;
            status.push(joined.status());
            Box::new(joined)
        }
        None => sources,
    };
    let mut report = match &args.report {
        Some(path) => Some(ReportWriter::new(path)?),
        None => None,
    };
    let expect = &expect;
    pipelined(
        |send| {
            for_blocks(sources, &source, |block| {
                send(
                    block
                        .into_par_iter()
                        .map(|(i, u)| {
                            let e = expect.expected(&u);
                            (i, u, e)
                        })
                        .collect(),
                )
            })
        },
        |expected: Vec<(u64, UserRecord, Result<Expected, RecordFailure>)>| {
            for (index, user, e) in expected {
                let diffs = match pairing.check(index, &user, e.as_ref())? {
                    Verdict::Matched => Vec::new(),
                    Verdict::Missing(d) => vec![*d],
                    Verdict::Different(d) => d,
                };
                for d in diffs {
                    out.say(&d);
                    out.event("difference", &d);
                    if let Some(r) = &mut report {
                        r.add(&d)?;
                    }
                }
            }
            Ok(())
        },
    )?;
    check_status(&status)?;

    let summary = pairing.summary();
    tracing::info!(
        users = summary.source,
        seconds = started.elapsed().as_secs_f64(),
        "verify: source users paired and compared"
    );
    if let Some(r) = report {
        r.finish(&summary)?;
    }
    out.event("summary", summary_json(&args, &summary));
    out.say(format!(
        "verify {} -> {}: {} source users, {} target users: {} matched, {} missing, {} different, {} extra at the target",
        name(args.from),
        name(args.to),
        summary.source,
        summary.target,
        summary.matched,
        summary.missing,
        summary.different,
        summary.extra
    ));
    if let Some(path) = &args.report {
        out.say(format!("wrote the report to `{}`", path.display()));
    }
    Ok(if summary.passed() {
        out.say("every source user is at the target as expected");
        Status::Ok
    } else {
        Status::SomeFailed
    })
}

fn summary_json(args: &VerifyArgs, s: &Summary) -> serde_json::Value {
    json!({
        "from": name(args.from),
        "to": name(args.to),
        "source": s.source,
        "target": s.target,
        "matched": s.matched,
        "missing": s.missing,
        "different": s.different,
        "extra": s.extra,
        "passed": s.passed(),
    })
}

/// The target's expectation of a source user, by the target crate's mapping.
enum Expecter {
    /// The options, and whether the target's passwords are observable.
    Auth0(Auth0MapOptions, bool),
    Authgear(AuthgearMapOptions),
}

impl Expecter {
    fn new(args: &VerifyArgs) -> anyhow::Result<Self> {
        Ok(match args.to {
            Provider::Auth0 => Self::Auth0(
                Auth0MapOptions::default(),
                args.target_password_hashes.is_some(),
            ),
            Provider::Authgear => Self::Authgear(authgear_options(&args.map)?),
        })
    }

    fn expected(&self, user: &UserRecord) -> Result<Expected, RecordFailure> {
        match self {
            // No user export tells whether an Auth0 user has a password: only its
            // password-hash export (`--target-password-hashes`) does.
            Self::Auth0(o, passwords) => authmigrate_auth0::expect::expected(user, o, *passwords),
            Self::Authgear(o) => authmigrate_authgear::expect::expected(user, o),
        }
    }
}

/// The source and target files: given, or exported now (both jobs at once).
fn exports(args: &VerifyArgs, out: &Output) -> anyhow::Result<(PathBuf, PathBuf)> {
    let path = |side: &str, p: Provider| {
        args.work_dir
            .join(format!("verify-{side}-{}.ndjson.gz", name(p)))
    };
    let source = args
        .source_file
        .clone()
        .unwrap_or_else(|| path("source", args.from));
    let target = args
        .target_file
        .clone()
        .unwrap_or_else(|| path("target", args.to));
    if args.source_file.is_some() && args.target_file.is_some() {
        return Ok((source, target));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let connection = |p: Provider| (p == Provider::Auth0).then(|| args.connection.clone());
    runtime.block_on(async {
        let s = async {
            match &args.source_file {
                Some(_) => Ok(0),
                None => {
                    export(
                        args.from,
                        &args.auth0,
                        &args.authgear,
                        connection(args.from),
                        args.export_timeout,
                        &source,
                        out,
                    )
                    .await
                }
            }
        };
        let t = async {
            match &args.target_file {
                Some(_) => Ok(0),
                None => {
                    export(
                        args.to,
                        &args.auth0,
                        &args.authgear,
                        connection(args.to),
                        args.export_timeout,
                        &target,
                        out,
                    )
                    .await
                }
            }
        };
        tokio::try_join!(s, t)
    })?;
    Ok((source, target))
}

/// The records of one user file: NDJSON parsed on every core, other formats read
/// in order.
fn records(
    path: &Path,
) -> anyhow::Result<(
    Box<dyn Iterator<Item = InputRecord> + Send>,
    Vec<ReaderStatus>,
)> {
    if let Some((records, status)) = parallel_ndjson(path, crate::input::Native::None)? {
        return Ok((records, vec![status]));
    }
    let mut reader = RecordReader::open_auto(path)?;
    refuse_password_export(reader.format(), path)?;
    let status = reader.status();
    let format = reader.format();
    let iter = std::iter::from_fn(move || {
        let raw = reader.next()?;
        let record = match raw.value {
            Ok(obj) => to_user_record(format, obj),
            Err(reason) => Err(RecordFailure::new("INVALID_RECORD", reason)),
        };
        Some(InputRecord {
            index: raw.index,
            record,
        })
    });
    Ok((Box::new(iter), vec![status]))
}

/// Calls `f` with blocks of [`BLOCK`] users (with their 0-based index in the file);
/// a record that cannot be read stops the
/// run with an error naming the file, the record and the field (a verify that skips
/// users would prove nothing).
fn for_blocks(
    records: impl Iterator<Item = InputRecord>,
    path: &Path,
    mut f: impl FnMut(Vec<(u64, UserRecord)>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut block = Vec::with_capacity(BLOCK);
    for r in records {
        match r.record {
            Ok(u) => block.push((r.index, u)),
            Err(e) => anyhow::bail!(
                "`{}`, record {}: {} ({}): fix or remove it and run verify again",
                path.display(),
                r.index,
                e.message,
                e.code
            ),
        }
        if block.len() == BLOCK {
            f(std::mem::replace(&mut block, Vec::with_capacity(BLOCK)))?;
        }
    }
    if !block.is_empty() {
        f(block)?;
    }
    Ok(())
}

/// Runs `produce` (reading and parsing, on every core) on a thread of its own while
/// `consume` (the store, one connection) takes its blocks in order on this one, so
/// that the two overlap. At most two blocks wait between them.
fn pipelined<T: Send>(
    produce: impl FnOnce(&dyn Fn(T) -> anyhow::Result<()>) -> anyhow::Result<()> + Send,
    mut consume: impl FnMut(T) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<T>(2);
        let producer = s.spawn(move || {
            let send = |item: T| {
                tx.send(item)
                    .map_err(|_| anyhow::anyhow!("verify stopped reading"))
            };
            produce(&send)
        });
        let mut consumed = Ok(());
        for item in rx.iter() {
            if let Err(e) = consume(item) {
                consumed = Err(e);
                break;
            }
        }
        // Unblocks a producer waiting to send, after an error here.
        drop(rx);
        let produced = producer
            .join()
            .map_err(|_| anyhow::anyhow!("the reading thread panicked"))?;
        consumed.and(produced)
    })
}

fn check_status(status: &[ReaderStatus]) -> anyhow::Result<()> {
    match status.iter().find_map(ReaderStatus::take_error) {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// The `source_id → target_id` pairs of a `migrate --id-map` CSV
/// (`index,source_id,email,outcome,target_id`); rows without a target id (failed
/// records) are skipped.
fn read_id_map(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read the id map `{}`", path.display()))?;
    let mut lines = BufReader::new(file).lines();
    let header = lines
        .next()
        .transpose()?
        .ok_or_else(|| anyhow::anyhow!("the id map `{}` is empty", path.display()))?;
    let columns = authmigrate_core::io::csv::split_line(&header);
    let col = |n: &str| {
        columns.iter().position(|c| c == n).ok_or_else(|| {
            anyhow::anyhow!(
                "the id map `{}` has no `{n}` column (expected the CSV `migrate --id-map` writes: index,source_id,email,outcome,target_id)",
                path.display()
            )
        })
    };
    let (s, t) = (col("source_id")?, col("target_id")?);
    let mut pairs = Vec::new();
    for (i, line) in lines.enumerate() {
        let line = line.with_context(|| format!("cannot read `{}`", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let fields = authmigrate_core::io::csv::split_line(&line);
        match (fields.get(s), fields.get(t)) {
            (Some(src), Some(tgt)) if !src.is_empty() && !tgt.is_empty() => {
                pairs.push((src.clone(), tgt.clone()))
            }
            (Some(_), Some(_)) => {}
            _ => anyhow::bail!(
                "the id map `{}`, line {}: expected {} columns",
                path.display(),
                i + 2,
                columns.len()
            ),
        }
    }
    Ok(pairs)
}

/// The `--report` file: differences are spooled next to it as they come, and the
/// report (`{"summary":...,"differences":[...]}`) is written at the end, in bounded
/// memory however many differences there are.
struct ReportWriter {
    path: PathBuf,
    spool: BufWriter<tempfile::NamedTempFile>,
    count: u64,
}

impl ReportWriter {
    fn new(path: &Path) -> anyhow::Result<Self> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let spool = tempfile::NamedTempFile::new_in(&dir)
            .with_context(|| format!("cannot write next to `{}`", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            spool: BufWriter::new(spool),
            count: 0,
        })
    }

    fn add(&mut self, d: &Difference) -> anyhow::Result<()> {
        if self.count > 0 {
            self.spool.write_all(b",\n")?;
        }
        serde_json::to_writer(&mut self.spool, d)?;
        self.count += 1;
        Ok(())
    }

    fn finish(self, summary: &Summary) -> anyhow::Result<()> {
        let mut spool = self
            .spool
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write the report: {}", e.error()))?;
        spool.flush()?;
        let mut w = authmigrate_core::io::create_output(&self.path, false)?;
        write!(
            w,
            "{{\"summary\":{},\"differences\":[",
            serde_json::to_string(summary)?
        )?;
        if self.count > 0 {
            w.write_all(b"\n")?;
            let mut r = spool.reopen()?;
            std::io::copy(&mut r, &mut w)?;
            w.write_all(b"\n")?;
        }
        w.write_all(b"]}\n")?;
        w.finish()?;
        Ok(())
    }
}
