//! Building the providers' backends from flags and environment variables.

use std::sync::Arc;

use authmigrate_auth0::{Auth0Auth, Auth0Backend, Auth0Settings};
use authmigrate_authgear::{AuthgearAuth, AuthgearBackend, AuthgearSettings};
use authmigrate_core::backend::{BackendError, ImportBackend};
use secrecy::SecretString;

use crate::Hinted;
use crate::cli::{Auth0Creds, AuthgearCreds, ImportArgs, MapArgs, Provider};

fn missing(what: &str, hint: &str) -> anyhow::Error {
    Hinted {
        message: format!("missing {what}"),
        hint: hint.to_owned(),
    }
    .into()
}

/// Turns a backend error into a CLI error, keeping its hint.
pub(crate) fn backend_error(e: BackendError) -> anyhow::Error {
    match e {
        BackendError::Fatal {
            message,
            hint: Some(hint),
        } => Hinted { message, hint }.into(),
        other => anyhow::Error::new(other),
    }
}

/// Auth0 settings from `--auth0-*` flags / `AUTH0_*` variables.
pub(crate) fn auth0_settings(creds: &Auth0Creds) -> anyhow::Result<Auth0Settings> {
    let domain = creds.domain.clone().ok_or_else(|| {
        missing(
            "the Auth0 tenant: `AUTH0_DOMAIN` (or `--auth0-domain`)",
            "set AUTH0_DOMAIN to your tenant host (dev-x.us.auth0.com), or run `authmigrate sandbox` to rehearse locally",
        )
    })?;
    let auth = match (&creds.token, &creds.client_id, &creds.client_secret) {
        (Some(token), _, _) => Auth0Auth::Token(SecretString::from(token.expose().to_owned())),
        (None, Some(id), Some(secret)) => Auth0Auth::ClientCredentials {
            client_id: id.clone(),
            client_secret: SecretString::from(secret.expose().to_owned()),
        },
        _ => {
            return Err(missing(
                "Auth0 credentials: `AUTH0_TOKEN`, or `AUTH0_CLIENT_ID` and `AUTH0_CLIENT_SECRET`",
                "create a machine-to-machine application authorized for the Management API with the scopes \
                 create:users, read:users, read:connections (and create:user_tickets for password tickets)",
            ));
        }
    };
    let mut settings = Auth0Settings::new(domain, auth);
    settings.audience = creds.audience.clone();
    Ok(settings)
}

/// Authgear settings from `--authgear-*` flags / `AUTHGEAR_*` variables.
pub(crate) fn authgear_settings(
    creds: &AuthgearCreds,
    map: &MapArgs,
) -> anyhow::Result<AuthgearSettings> {
    let endpoint = creds.endpoint.clone().ok_or_else(|| {
        missing(
            "the Authgear endpoint: `AUTHGEAR_ENDPOINT` (or `--authgear-endpoint`)",
            "set AUTHGEAR_ENDPOINT to your project's URL (https://myapp.authgear.cloud), or run `authmigrate sandbox` to rehearse locally",
        )
    })?;
    let auth = match (
        &creds.admin_token,
        &creds.project_id,
        &creds.key_id,
        &creds.private_key_file,
    ) {
        (Some(token), _, _, _) => {
            AuthgearAuth::Token(SecretString::from(token.expose().to_owned()))
        }
        (None, Some(project), Some(kid), Some(path)) => {
            AuthgearAuth::key_from_file(project.clone(), kid.clone(), path)
                .map_err(anyhow::Error::msg)?
        }
        _ => {
            return Err(missing(
                "Authgear Admin API credentials: `AUTHGEAR_PROJECT_ID`, `AUTHGEAR_KEY_ID` and `AUTHGEAR_PRIVATE_KEY_FILE` (or `AUTHGEAR_ADMIN_TOKEN`)",
                "download the private key and copy the key id from the portal: Advanced -> Admin API",
            ));
        }
    };
    let mut settings = AuthgearSettings::new(endpoint, auth);
    settings.map = crate::commands::authgear_options(map)?;
    Ok(settings)
}

/// The backend `import --to X` runs.
pub(crate) fn import_backend(args: &ImportArgs) -> anyhow::Result<Arc<dyn ImportBackend>> {
    Ok(match args.to {
        Provider::Auth0 => {
            let mut s = auth0_settings(&args.auth0)?;
            s.connection = args.connection.clone();
            s.upsert = args.run.upsert;
            s.send_completion_email = args.send_completion_email;
            s.external_id = args.external_id.clone();
            Arc::new(Auth0Backend::new(s).map_err(backend_error)?)
        }
        Provider::Authgear => {
            let mut s = authgear_settings(&args.authgear, &args.map)?;
            s.upsert = args.run.upsert;
            Arc::new(AuthgearBackend::new(s).map_err(backend_error)?)
        }
    })
}
