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
//!
//! Auth0 → Authgear, the users' roles, groups and TOTP are expected as `migrate`
//! gives them: its tenant step ([`super::tenant::carry`], as a dry run into a store
//! in the work dir: nothing is written at the target) crawls the Auth0 roles and
//! organizations while the exports run, and [`super::tenant::annotate`] sets each
//! source user's role and group keys from it and its TOTP from `--mfa-secrets`,
//! before the target's mapping reads the user. `--skip` leaves a part uncompared.
//! `--login-check N` then logs N sampled matched users in (see [`login`]).
//!
//! Authgear → Auth0, roles and organizations are compared too: the Auth0 name each
//! source user's roles and groups get, and what every Auth0 user holds, are read
//! while the exports run (see [`members`]).

mod login;
mod members;

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use authmigrate_auth0::expect::Observable;
use authmigrate_auth0::format::Auth0MapOptions;
use authmigrate_authgear::format::AuthgearMapOptions;
use authmigrate_core::UserRecord;
use authmigrate_core::backend::RecordFailure;
use authmigrate_core::driver::InputRecord;
use authmigrate_core::io::{ReaderStatus, RecordReader};
use authmigrate_core::tenant::Plan;
use authmigrate_core::verify::{
    Difference, Expected, Field, Pairing, Rule, Sample, Summary, TargetRow, Verdict,
};
use authmigrate_core::workstore::WorkStore;
use rayon::prelude::*;
use serde_json::json;

use super::export::{export, name};
use super::map::authgear_options;
use super::tenant::{MfaJoined, Step, annotate, carry, load_mfa};
use crate::Status;
use crate::backends::{auth0_settings, authgear_settings};
use crate::cli::{Provider, Skip, VerifyArgs};
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
    if args.mfa_secrets.is_some() && args.from != Provider::Auth0 {
        anyhow::bail!(
            "`--mfa-secrets` is an Auth0 MFA export: it only applies with `--from auth0`"
        );
    }
    if args.login_check.is_some() && args.to != Provider::Authgear {
        anyhow::bail!(
            "`--login-check` logs users in at an Authgear target (the sandbox's login route): it only applies with `--to authgear` \
             (users moved from Authgear to Auth0 arrive without a password)"
        );
    }
    let expect = Expecter::new(&args)?;
    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("cannot create `{}`", args.work_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The tenant crawl runs while the export jobs do.
    let step = tenant_step(&args, out)?;
    let ((source, target), tenant, members) = runtime.block_on(async {
        let crawl = async {
            match step {
                Some(step) => carry(step).await.map(Some).context(
                    "cannot read the Auth0 tenant's roles and organizations, which verify compares \
                     (`--skip roles,groups` leaves them uncompared)",
                ),
                None => Ok(None),
            }
        };
        tokio::try_join!(exports(&args, out), crawl, members::read(&args, out))
    })?;
    let memberships = tenant.map(|(plan, memberships)| {
        say_tenant(&plan, out);
        memberships
    });
    let (translation, held) = match members {
        Some(m) => {
            m.say(out);
            (Some(m.translation), Some(m.held))
        }
        None => (None, None),
    };
    let mfa = match &args.mfa_secrets {
        Some(_) if args.skip.contains(&Skip::Mfa) => {
            out.say("note: `--skip mfa`: the MFA export is not read");
            None
        }
        Some(path) => Some(load_mfa(path, &args.work_dir, out)?),
        None => None,
    };

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
    // Authgear → Auth0: each Auth0 user with the roles and organizations it holds.
    let targets = match held {
        Some(held) => members::Members::targets(held, targets),
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
    // Each user's roles, groups and TOTP as `migrate` set them.
    let sources = annotate(
        sources,
        memberships,
        mfa,
        false,
        Arc::new(MfaJoined::default()),
    );
    // Authgear → Auth0: the source users' roles and groups as Auth0 names.
    let sources = match translation {
        Some(t) => members::Members::sources(t, sources),
        None => sources,
    };
    let mut sample = args
        .login_check
        .map(|n| Sample::new(usize::try_from(n).unwrap_or(usize::MAX)));
    let identifier = args.map.identifier.clone();
    let passwords_known = args.password_hashes.is_some();
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
                    Verdict::Matched => {
                        if let (Some(sample), Ok(e)) = (&mut sample, &e)
                            && let Some(c) =
                                login::candidate(index, &user, e, &identifier, passwords_known)
                        {
                            sample.offer(c);
                        }
                        Vec::new()
                    }
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

    let mut summary = pairing.summary();
    if let Some(sample) = sample {
        let endpoint = args.authgear.endpoint.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "`--login-check` needs the Authgear endpoint: `AUTHGEAR_ENDPOINT` (or `--authgear-endpoint`)"
            )
        })?;
        let (counts, diffs) =
            runtime.block_on(login::check(&endpoint, sample.into_items(), out))?;
        for d in diffs {
            out.say(&d);
            out.event("difference", &d);
            if let Some(r) = &mut report {
                r.add(&d)?;
            }
        }
        summary = summary.with_login(counts);
    }
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
    let mut v = json!({
        "from": name(args.from),
        "to": name(args.to),
        "source": s.source,
        "target": s.target,
        "matched": s.matched,
        "missing": s.missing,
        "different": s.different,
        "extra": s.extra,
        "passed": s.passed(),
    });
    if let Some(login) = s.login {
        v["login"] = json!(login);
    }
    v
}

/// The tenant step `migrate` runs, Auth0 → Authgear, as a dry run into a store of
/// verify's own; `None` when roles and groups are both skipped, or in another direction
/// (Authgear → Auth0: [`members`]).
fn tenant_step(args: &VerifyArgs, out: &Output) -> anyhow::Result<Option<Step>> {
    let roles = !args.skip.contains(&Skip::Roles);
    let groups = !args.skip.contains(&Skip::Groups);
    if !roles && !groups || args.from != Provider::Auth0 || args.to != Provider::Authgear {
        return Ok(None);
    }
    let context = "verify compares the users' roles and groups from the Auth0 tenant's roles and \
                   organizations (`--skip roles,groups` leaves them uncompared)";
    let step = Step {
        auth0: auth0_settings(&args.auth0).context(context)?,
        authgear: authgear_settings(&args.authgear, &args.map).context(context)?,
        roles,
        groups,
        role_map: args.role_map.clone(),
        dry_run: true,
        store: args.work_dir.join("verify-tenant.sqlite"),
        resume: false,
        after_batch: None,
    };
    out.say("reading the Auth0 roles and organizations (what each user should hold at Authgear)");
    Ok(Some(step))
}

/// The target keys of the roles and of the groups a dry-run plan would create: what
/// the target lacks.
fn lacking(plan: &Plan) -> (Vec<String>, Vec<String>) {
    let keys = |list: &[authmigrate_core::tenant::engine::PlannedEntry]| -> Vec<String> {
        list.iter()
            .filter(|e| e.action == "create")
            .map(|e| e.key.clone())
            .collect()
    };
    (keys(&plan.roles), keys(&plan.groups))
}

/// Says what the crawl found, and which roles and groups the target lacks (a dry
/// run's `create`: `migrate` would create them).
fn say_tenant(plan: &Plan, out: &Output) {
    let s = &plan.summary;
    let (roles, groups) = lacking(plan);
    out.say(format!(
        "roles: {} at the source ({} user role assignments), {} of them at the target; \
         groups (Auth0 organizations): {} at the source ({} memberships), {} of them at the target",
        s.roles.source,
        s.roles.assignments,
        s.roles.source - roles.len() as u64,
        s.groups.source,
        s.groups.assignments,
        s.groups.source - groups.len() as u64,
    ));
    let counts = (s.roles.assignments, s.groups.assignments);
    say_lacking(
        plan,
        counts,
        ("group", "the target"),
        (&roles, &groups),
        out,
    );
}

/// Warns of each role and group the target lacks (`labels`: what a group is called
/// and what the target is), and sends the `tenant` event with the source's counts and
/// `assignments` (role assignments, memberships).
fn say_lacking(
    plan: &Plan,
    assignments: (u64, u64),
    labels: (&str, &str),
    (roles, groups): (&[String], &[String]),
    out: &Output,
) {
    let (group, target) = labels;
    for (kind, keys) in [("role", roles), (group, groups)] {
        for key in keys {
            out.say(format!(
                "warning: the {kind} `{key}` is not at {target} (its users are listed as different)"
            ));
        }
    }
    let s = &plan.summary;
    out.event(
        "tenant",
        json!({ "roles": s.roles.source, "groups": s.groups.source,
                "role_assignments": assignments.0, "memberships": assignments.1,
                "roles_not_at_target": roles, "groups_not_at_target": groups }),
    );
}

/// The target's expectation of a source user, by the target crate's mapping, with
/// the `--skip`ped fields left uncompared.
struct Expecter {
    mapping: Mapping,
    skipped: Vec<Field>,
}

enum Mapping {
    /// The options, and what of the target is observable.
    Auth0(Auth0MapOptions, Observable),
    Authgear(AuthgearMapOptions),
}

impl Expecter {
    fn new(args: &VerifyArgs) -> anyhow::Result<Self> {
        let mapping = match args.to {
            Provider::Auth0 => {
                let (roles, groups) = members::compared(args);
                Mapping::Auth0(
                    Auth0MapOptions::default(),
                    Observable {
                        passwords: args.target_password_hashes.is_some(),
                        roles,
                        groups,
                    },
                )
            }
            Provider::Authgear => Mapping::Authgear(authgear_options(&args.map)?),
        };
        let skipped = args
            .skip
            .iter()
            .map(|s| match s {
                Skip::Roles => Field::Roles,
                Skip::Groups => Field::Groups,
                Skip::Mfa => Field::Mfa,
            })
            .collect();
        Ok(Self { mapping, skipped })
    }

    fn expected(&self, user: &UserRecord) -> Result<Expected, RecordFailure> {
        let mut e = match &self.mapping {
            // No user export tells whether an Auth0 user has a password: only its
            // password-hash export (`--target-password-hashes`) does.
            Mapping::Auth0(o, observe) => authmigrate_auth0::expect::expected(user, o, *observe),
            Mapping::Authgear(o) => authmigrate_authgear::expect::expected(user, o),
        }?;
        for f in &self.skipped {
            e.set(*f, Rule::NotObservable);
        }
        Ok(e)
    }
}

/// The source and target files: given, or exported now (both jobs at once).
async fn exports(args: &VerifyArgs, out: &Output) -> anyhow::Result<(PathBuf, PathBuf)> {
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
    let connection = |p: Provider| (p == Provider::Auth0).then(|| args.connection.clone());
    {
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
    }?;
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
