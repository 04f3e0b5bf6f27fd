//! Authgear as a [`TenantTarget`]: roles and groups over the Admin GraphQL API
//! ([`crate::graphql`]). Users get their roles and groups in their import records
//! (`roles`, `groups`), so assignment costs no request here.

use async_trait::async_trait;
use authmigrate_core::backend::BackendError;
use authmigrate_core::tenant::{NewEntry, TenantTarget};

use crate::auth::TokenSource;
use crate::client::AdminClient;
use crate::config::{AuthgearSettings, parse_endpoint};
use crate::graphql::{Directory, Graphql, MAX_MUTATIONS, NewKey};

/// The Authgear [`TenantTarget`].
#[derive(Debug)]
pub struct AuthgearTenant {
    client: AdminClient,
}

impl AuthgearTenant {
    /// A target for the settings' project (no request is sent).
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

fn keys(entries: &[NewEntry]) -> Vec<NewKey> {
    entries
        .iter()
        .map(|e| NewKey {
            key: e.key.clone(),
            name: Some(e.name.clone()),
            description: e.description.clone(),
        })
        .collect()
}

#[async_trait]
impl TenantTarget for AuthgearTenant {
    async fn role_keys(&self) -> Result<Vec<String>, BackendError> {
        self.graphql().keys(Directory::Roles).await
    }

    async fn group_keys(&self) -> Result<Vec<String>, BackendError> {
        self.graphql().keys(Directory::Groups).await
    }

    async fn create_roles(&self, roles: &[NewEntry]) -> Result<(), BackendError> {
        self.graphql()
            .create_entries(Directory::Roles, &keys(roles))
            .await
    }

    async fn create_groups(&self, groups: &[NewEntry]) -> Result<(), BackendError> {
        self.graphql()
            .create_entries(Directory::Groups, &keys(groups))
            .await
    }

    fn batch(&self) -> usize {
        MAX_MUTATIONS
    }
}
