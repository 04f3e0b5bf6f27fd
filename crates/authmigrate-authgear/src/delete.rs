//! Looking Authgear users up and deleting them: the [`UserDirectory`] of
//! `authmigrate delete --from authgear`, over the Admin GraphQL API
//! ([`crate::graphql`]).
//!
//! - E-mail: `getUsersByStandardAttribute(attributeName: "email")`, which reads the
//!   database (immediately consistent), unlike the `users(searchKeyword:)` index.
//! - Username: `getUserByLoginID(loginIDKey: "username")` (the default key of the
//!   username login ID).
//! - Id: a `User` node ID as it is, or a raw user id (what the import API reports as
//!   `user_id`) turned into one; `node(id:)`.
//! - Delete: `deleteUser`, up to five per request (the server's limit).
//!
//! `lastLoginAt` tells whether a user has logged in.

use async_trait::async_trait;
use authmigrate_core::backend::BackendError;
use authmigrate_core::delete::{Deleted, FoundUser, Key, UserDirectory};

use crate::auth::TokenSource;
use crate::client::AdminClient;
use crate::config::{AuthgearSettings, parse_endpoint};
use crate::graphql::{Graphql, MAX_MUTATIONS, User, raw_user_id, user_node_id};

/// The Authgear [`UserDirectory`].
#[derive(Debug)]
pub struct AuthgearUsers {
    client: AdminClient,
}

impl AuthgearUsers {
    /// A directory for the settings' project (no request is sent).
    pub fn new(settings: &AuthgearSettings) -> Result<Self, BackendError> {
        let base = parse_endpoint(&settings.endpoint).map_err(|e| BackendError::fatal(e, None))?;
        let tokens = TokenSource::new(&settings.auth).map_err(|e| BackendError::fatal(e, None))?;
        let client = AdminClient::new(base, tokens, settings.retry.clone())
            .map_err(|e| BackendError::fatal(e, None))?;
        Ok(Self { client })
    }

    fn graphql(&self) -> Graphql<'_> {
        Graphql::new(&self.client)
    }
}

fn found(u: User) -> FoundUser {
    FoundUser {
        id: u.id,
        email: u.email,
        username: u.preferred_username,
        logins: None,
        last_login: u.last_login_at,
    }
}

#[async_trait]
impl UserDirectory for AuthgearUsers {
    fn name(&self) -> &'static str {
        "authgear"
    }

    fn max_per_request(&self) -> usize {
        MAX_MUTATIONS
    }

    async fn lookup(&self, key: &Key) -> Result<Vec<FoundUser>, BackendError> {
        let g = self.graphql();
        Ok(match key {
            Key::Email(e) => g
                .users_by_standard_attribute("email", e)
                .await?
                .into_iter()
                .map(found)
                .collect(),
            Key::Username(u) => g
                .user_by_login_id("username", u)
                .await?
                .into_iter()
                .map(found)
                .collect(),
            Key::Id(id) => {
                let node = if raw_user_id(id).is_some() {
                    id.clone()
                } else {
                    user_node_id(id)
                };
                g.user(&node).await?.into_iter().map(found).collect()
            }
        })
    }

    async fn delete(&self, ids: &[String]) -> Result<Vec<Deleted>, BackendError> {
        self.graphql().delete_users(ids).await
    }
}
