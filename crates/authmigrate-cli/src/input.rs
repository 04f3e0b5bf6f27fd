//! Reading user files of any supported format into neutral records.

use authmigrate_core::backend::RecordFailure;
use authmigrate_core::io::{InputFormat, from_object};
use authmigrate_core::UserRecord;
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
        InputFormat::Neutral => from_object::<UserRecord>(obj).map_err(|e| invalid(&e.field, &e.reason)),
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
