//! `import --to auth0 --mode create`: one `POST /api/v2/users` per user (small sets).

use authmigrate_core::driver::Summary;
use authmigrate_core::report::{ReportRecord, ReportWriter};
use serde_json::json;

use crate::Status;
use crate::cli::ImportArgs;
use crate::input::Inputs;
use crate::output::Output;

pub(crate) async fn run(args: &ImportArgs, out: &Output) -> anyhow::Result<Status> {
    if args.run.dry_run || args.run.state.is_some() {
        anyhow::bail!(
            "`--mode create` takes neither `--dry-run` nor `--state`: use the default bulk mode for those"
        );
    }
    let mut settings = crate::backends::auth0_settings(&args.auth0)?;
    settings.connection = args.connection.clone();
    let mut records = Vec::new();
    let mut failed_input = Vec::new();
    // Each record's e-mail, for the report (create mode takes at most 1000 users).
    let mut emails: std::collections::HashMap<u64, String> = std::collections::HashMap::new();
    for input in Inputs::new(args.files.clone()).native(crate::input::Native::Auth0) {
        match input.record {
            Ok(user) => {
                if let Some(e) = &user.email {
                    emails.insert(input.index, e.clone());
                }
                records.push((input.index, user));
            }
            Err(f) => failed_input.push((input.index, f)),
        }
    }
    let report = authmigrate_auth0::create::create_users(
        &settings,
        records,
        args.password_tickets.as_deref(),
    )
    .await
    .map_err(crate::backends::backend_error)?;
    let mut summary = Summary::default();
    let mut writer = match &args.run.report {
        Some(p) => Some(ReportWriter::create(p.clone())?),
        None => None,
    };
    let failed_input = failed_input
        .into_iter()
        .map(|(i, f)| (i, authmigrate_core::RecordOutcome::failed(f)));
    for (index, outcome) in report.outcomes.into_iter().chain(failed_input) {
        summary.add(outcome.outcome);
        let email = emails.get(&index).map(String::as_str);
        out.event("record", ReportRecord::new(index, email, &outcome));
        if let Some(w) = &mut writer {
            w.record(index, email, &outcome)?;
        }
    }
    if let Some(w) = writer {
        w.finish(&summary)?;
    }
    out.event(
        "summary",
        json!({ "target": "auth0", "mode": "create", "summary": summary }),
    );
    out.say(format!(
        "created in auth0: {} records: {} inserted, {} skipped, {} failed",
        summary.total, summary.inserted, summary.skipped, summary.failed
    ));
    if let Some(e) = report.stopped {
        return Err(crate::backends::backend_error(e));
    }
    Ok(if summary.failed > 0 {
        Status::SomeFailed
    } else {
        Status::Ok
    })
}
