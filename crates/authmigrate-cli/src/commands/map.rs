//! Turning neutral records into a target's JSON, shared by `convert`, `import` and `migrate`.

use std::str::FromStr;

use authmigrate_auth0::format::Auth0MapOptions;
use authmigrate_authgear::format::{AuthgearMapOptions, Identifier};
use authmigrate_core::UserRecord;
use authmigrate_core::backend::{Encoded, RecordFailure};
use authmigrate_core::format::Mapped;

use crate::cli::{ConvertTarget, MapArgs};
use crate::input::Native;

/// A target and its mapping options.
#[derive(Debug, Clone)]
pub(crate) enum Mapper {
    Neutral,
    Auth0(Auth0MapOptions),
    Authgear(AuthgearMapOptions),
}

impl Mapper {
    pub(crate) fn new(target: ConvertTarget, args: &MapArgs) -> anyhow::Result<Self> {
        Ok(match target {
            ConvertTarget::Neutral => Self::Neutral,
            ConvertTarget::Auth0 => Self::Auth0(Auth0MapOptions::default()),
            ConvertTarget::Authgear => Self::Authgear(authgear_options(args)?),
        })
    }

    pub(crate) fn map(&self, user: &UserRecord) -> Result<Mapped, RecordFailure> {
        match self {
            Self::Neutral => Ok(Mapped {
                json: serde_json::to_value(user)
                    .map_err(|e| RecordFailure::new("INVALID_RECORD", e.to_string()))?,
                warnings: Vec::new(),
            }),
            Self::Auth0(o) => authmigrate_auth0::format::to_bulk_user(user, o),
            Self::Authgear(o) => authmigrate_authgear::format::to_import_record(user, o),
        }
    }
}

impl Mapper {
    /// Which input format is this target's own, checked as written (see [`Native`]).
    pub(crate) fn native(&self) -> Native {
        match self {
            Self::Neutral => Native::None,
            Self::Auth0(_) => Native::Auth0,
            Self::Authgear(o) => Native::Authgear(o.identifier, o.reserved_usernames.clone()),
        }
    }

    /// The record's exact JSON bytes in the target's shape, with what was left out.
    pub(crate) fn encode(&self, user: &UserRecord) -> Result<Encoded, RecordFailure> {
        match self {
            Self::Authgear(o) => authmigrate_authgear::format::encode_import_record(user, o),
            _ => self.map(user)?.encode(),
        }
    }
}

/// Authgear mapping options from `--identifier` and `--custom-attribute SRC=DST`.
pub(crate) fn authgear_options(args: &MapArgs) -> anyhow::Result<AuthgearMapOptions> {
    let identifier = Identifier::from_str(&args.identifier)
        .map_err(|e| anyhow::anyhow!("`--identifier`: {e}"))?;
    let mut custom_attributes = Vec::new();
    let mut custom_attribute_types = Vec::new();
    for spec in &args.custom_attributes {
        let Some((src, dst)) = spec.split_once('=') else {
            anyhow::bail!(
                "`--custom-attribute {spec}`: expected `SRC=DST`, e.g. `user_metadata.plan=plan`"
            );
        };
        let (dst, ty) = match dst.split_once(':') {
            Some((d, t)) => (d, Some(t)),
            None => (dst, None),
        };
        if src.is_empty() || dst.is_empty() {
            anyhow::bail!("`--custom-attribute {spec}`: both SRC and DST must be non-empty");
        }
        if let Some(ty) = ty {
            let ty: authmigrate_authgear::custom_attrs::AttrType = ty
                .parse()
                .map_err(|e| anyhow::anyhow!("`--custom-attribute {spec}`: {e}"))?;
            custom_attribute_types.push((dst.to_owned(), ty));
        }
        custom_attributes.push((src.to_owned(), dst.to_owned()));
    }
    Ok(AuthgearMapOptions {
        identifier,
        custom_attributes,
        custom_attribute_types,
        reserved_usernames: reserved_usernames(args.reserved_usernames.as_deref())?,
    })
}

/// `--reserved-usernames FILE`: the project's list, or the built-in one.
pub(crate) fn reserved_usernames(
    file: Option<&std::path::Path>,
) -> anyhow::Result<authmigrate_authgear::username::ReservedUsernames> {
    use authmigrate_authgear::username::ReservedUsernames;
    let Some(path) = file else {
        return Ok(ReservedUsernames::default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "`--reserved-usernames {}`: cannot read: {e}",
            path.display()
        )
    })?;
    Ok(ReservedUsernames::from_list(&text))
}
