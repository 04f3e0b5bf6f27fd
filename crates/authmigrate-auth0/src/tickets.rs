//! Password-change tickets (`POST /api/v2/tickets/password-change`) for users who
//! arrive without a password (created with a random one, or migrated from Authgear,
//! which never exports hashes). The ticket links are written `email,ticket` to a file
//! created 0600: they let anyone set the user's password.

use std::io::Write;
use std::path::Path;

use authmigrate_core::backend::BackendError;
use authmigrate_core::io::create_output;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Auth0Client, api_message};
use crate::config::Auth0Settings;

/// Who a ticket is for: the API takes a user id, or a connection id and an e-mail.
#[derive(Debug, Clone, Copy)]
pub enum TicketFor<'a> {
    /// The user's Auth0 id (`auth0|...`).
    UserId(&'a str),
    /// A database connection's id (`con_...`) and the user's e-mail.
    Email {
        /// The connection id.
        connection_id: &'a str,
        /// The e-mail.
        email: &'a str,
    },
}

/// Creates one password-change ticket; the error is a one-line reason (never a
/// token or the ticket).
pub async fn create_ticket(client: &Auth0Client, who: TicketFor<'_>) -> Result<String, String> {
    let url = client.api_url(&["tickets", "password-change"]);
    let body = match who {
        TicketFor::UserId(user_id) => json!({ "user_id": user_id }),
        TicketFor::Email {
            connection_id,
            email,
        } => json!({ "connection_id": connection_id, "email": email }),
    };
    let reply = client
        .send("create a password-change ticket", |http| {
            http.request(Method::POST, url.clone()).json(&body)
        })
        .await
        .map_err(|e| format!("no ticket: {e}"))?;
    if !reply.status.is_success() {
        let hint = if reply.status.as_u16() == 403 {
            " (the token needs the create:user_tickets scope)"
        } else {
            ""
        };
        return Err(format!(
            "no ticket: auth0 answered HTTP {}: {}{hint}",
            reply.status.as_u16(),
            api_message(&reply)
        ));
    }
    reply
        .json::<Value>()
        .ok()
        .and_then(|v| v.get("ticket").and_then(Value::as_str).map(str::to_owned))
        .ok_or_else(|| "no ticket: auth0's answer has no `ticket`".to_owned())
}

/// Creates a ticket for each `(email, user_id)` and writes `email,ticket` lines to
/// `path` (mode 0600). Users whose id is unknown (bulk imports do not return ids)
/// get a ticket by `settings.connection` and e-mail. Tickets Auth0 refuses are logged
/// as warnings and skipped. Returns how many tickets were written.
pub async fn password_tickets(
    settings: &Auth0Settings,
    users: Vec<(String, Option<String>)>,
    path: &Path,
) -> Result<u64, BackendError> {
    let client = Auth0Client::new(settings)?;
    let fail = |e: authmigrate_core::Error| BackendError::fatal(e.to_string(), None);
    let mut file = create_output(path, true).map_err(fail)?;
    let mut written = 0u64;
    let mut connection_id = None;
    for (email, user_id) in users {
        let who = match &user_id {
            Some(id) => TicketFor::UserId(id),
            None => {
                if connection_id.is_none() {
                    connection_id = Some(
                        crate::backend::find_connection(&client, &settings.connection)
                            .await?
                            .id,
                    );
                }
                TicketFor::Email {
                    connection_id: connection_id.as_deref().unwrap_or_default(),
                    email: &email,
                }
            }
        };
        match create_ticket(&client, who).await {
            Ok(ticket) => {
                writeln!(file, "{email},{ticket}").map_err(|e| {
                    BackendError::fatal(format!("cannot write `{}`: {e}", path.display()), None)
                })?;
                written += 1;
            }
            Err(reason) => tracing::warn!(%email, "{reason}"),
        }
    }
    file.finish().map_err(fail)?;
    Ok(written)
}
