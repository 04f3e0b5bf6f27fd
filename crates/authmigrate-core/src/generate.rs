//! Reproducible test users, usable for either provider.
//!
//! User `i` (from `start` to `start + count - 1`) is `{prefix}_{i:02}` at `domain`,
//! its password defaults to its username, and the password is hashed with bcrypt
//! `$2b$` at `cost` — once per user, on every core (rayon). The same hash then goes
//! into the neutral, Auth0 and Authgear outputs, so the two providers get identical
//! users.
//!
//! With a seed, each user's 16-byte bcrypt salt comes from a ChaCha20 stream keyed by
//! the seed and the user number, so reruns are byte-identical whatever the thread
//! count or chunking. Without a seed, salts come from the OS random generator.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::record::{PasswordHash, UserRecord};
use crate::secret::Secret;

/// Users are hashed in blocks of this many, in parallel, then handed out in order.
/// Keeps memory bounded whatever the count.
const BLOCK: u64 = 1024;

/// bcrypt reads at most this many bytes of a password.
pub const BCRYPT_MAX_PASSWORD_BYTES: usize = 72;

/// What to generate.
#[derive(Clone)]
pub struct GenerateOptions {
    /// How many users.
    pub count: u64,
    /// Username prefix.
    pub prefix: String,
    /// E-mail domain.
    pub domain: String,
    /// Number of the first user.
    pub start: u64,
    /// One password for every user; `None` means each user's username.
    pub password: Option<Secret>,
    /// bcrypt cost (4..=31).
    pub cost: u32,
    /// Seed for reproducible salts.
    pub seed: Option<u64>,
}

impl std::fmt::Debug for GenerateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerateOptions")
            .field("count", &self.count)
            .field("prefix", &self.prefix)
            .field("domain", &self.domain)
            .field("start", &self.start)
            .field(
                "password",
                &self.password.as_ref().map(|_| crate::secret::REDACTED),
            )
            .field("cost", &self.cost)
            .field("seed", &self.seed)
            .finish()
    }
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            count: 0,
            prefix: "user".into(),
            domain: "example.com".into(),
            start: 1,
            password: None,
            cost: 10,
            seed: None,
        }
    }
}

impl GenerateOptions {
    /// Checks the options before any work starts.
    pub fn validate(&self) -> Result<()> {
        if !(4..=31).contains(&self.cost) {
            return Err(Error::Config(format!(
                "`--cost` must be between 4 and 31 (bcrypt's range), got {}",
                self.cost
            )));
        }
        if self.prefix.is_empty() || self.prefix.chars().any(|c| c.is_whitespace() || c == '@') {
            return Err(Error::Config(
                "`--prefix` must be non-empty, without spaces or `@`".into(),
            ));
        }
        if self.domain.is_empty()
            || !self.domain.contains('.')
            || self.domain.chars().any(|c| c.is_whitespace() || c == '@')
        {
            return Err(Error::Config(format!(
                "`--domain` must be a domain name such as `example.com`, got `{}`",
                self.domain
            )));
        }
        if self.start.checked_add(self.count).is_none() {
            return Err(Error::Config("`--start` + `--count` overflows".into()));
        }
        if let Some(pw) = &self.password {
            if pw.is_empty() {
                return Err(Error::Config("`--password` must not be empty".into()));
            }
            if pw.len() > BCRYPT_MAX_PASSWORD_BYTES {
                return Err(Error::Config(format!(
                    "`--password` is {} bytes; bcrypt uses only the first {BCRYPT_MAX_PASSWORD_BYTES}, so it would not log in as typed",
                    pw.len()
                )));
            }
        }
        let longest = self.username(self.start + self.count.saturating_sub(1));
        if self.password.is_none() && longest.len() > BCRYPT_MAX_PASSWORD_BYTES {
            return Err(Error::Config(format!(
                "usernames (the default passwords) would exceed bcrypt's {BCRYPT_MAX_PASSWORD_BYTES}-byte limit: shorten `--prefix`"
            )));
        }
        Ok(())
    }

    /// Username of user number `i`: `{prefix}_{i:02}`.
    pub fn username(&self, i: u64) -> String {
        format!("{}_{i:02}", self.prefix)
    }

    /// The bcrypt salt of user number `i`.
    fn salt(&self, i: u64) -> [u8; 16] {
        let mut salt = [0u8; 16];
        match self.seed {
            Some(seed) => {
                let mut rng = ChaCha20Rng::seed_from_u64(seed);
                rng.set_stream(i);
                rng.fill_bytes(&mut salt);
            }
            None => rand::rngs::OsRng.fill_bytes(&mut salt),
        }
        salt
    }

    /// Builds (and hashes) user number `i`.
    pub fn user(&self, i: u64) -> Result<UserRecord> {
        let username = self.username(i);
        let email = format!("{username}@{}", self.domain);
        let hash = {
            let password = match &self.password {
                Some(pw) => pw.expose(),
                None => username.as_str(),
            };
            bcrypt::hash_with_salt(password, self.cost, self.salt(i))
                .map_err(|e| Error::Config(format!("bcrypt failed for user {i}: {e}")))?
                .format_for_version(bcrypt::Version::TwoB)
        };
        Ok(UserRecord {
            email: Some(email.clone()),
            email_verified: Some(true),
            username: Some(username.clone()),
            name: Some(email),
            nickname: Some(username),
            password: Some(PasswordHash::bcrypt(hash)),
            ..Default::default()
        })
    }
}

/// Generates every user in order, hashing on all cores, and hands each to `sink`
/// (in order, from the calling thread). `sink` may stop the run by returning an error.
pub fn generate<F>(options: &GenerateOptions, mut sink: F) -> Result<()>
where
    F: FnMut(UserRecord) -> Result<()>,
{
    options.validate()?;
    let end = options.start + options.count;
    let mut block_start = options.start;
    while block_start < end {
        let block_end = (block_start + BLOCK).min(end);
        let users: Vec<Result<UserRecord>> = (block_start..block_end)
            .into_par_iter()
            .map(|i| options.user(i))
            .collect();
        for user in users {
            sink(user?)?;
        }
        block_start = block_end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(count: u64) -> GenerateOptions {
        GenerateOptions {
            count,
            cost: 4,
            seed: Some(7),
            ..Default::default()
        }
    }

    fn collect(o: &GenerateOptions) -> Vec<UserRecord> {
        let mut out = Vec::new();
        generate(o, |u| {
            out.push(u);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn names_follow_the_seed_notebook() {
        let mut o = opts(3);
        o.start = 9;
        let users = collect(&o);
        let names: Vec<_> = users.iter().map(|u| u.username.clone().unwrap()).collect();
        assert_eq!(names, ["user_09", "user_10", "user_11"]);
        let u = &users[0];
        assert_eq!(u.email.as_deref(), Some("user_09@example.com"));
        assert_eq!(u.name.as_deref(), Some("user_09@example.com"));
        assert_eq!(u.nickname.as_deref(), Some("user_09"));
        assert_eq!(u.email_verified, Some(true));
        o.start = 100;
        o.count = 1;
        assert_eq!(collect(&o)[0].username.as_deref(), Some("user_100"));
    }

    #[test]
    fn passwords_default_to_the_username_and_verify() {
        let users = collect(&opts(2));
        for u in &users {
            let hash = u
                .password
                .as_ref()
                .unwrap()
                .as_plain_bcrypt()
                .unwrap()
                .expose();
            assert!(hash.starts_with("$2b$04$"), "{hash}");
            assert!(bcrypt::verify(u.username.as_deref().unwrap(), hash).unwrap());
            assert!(!bcrypt::verify("wrong", hash).unwrap());
        }
        let mut o = opts(1);
        o.password = Some(Secret::new("s3cret!"));
        let u = &collect(&o)[0];
        let hash = u
            .password
            .as_ref()
            .unwrap()
            .as_plain_bcrypt()
            .unwrap()
            .expose();
        assert!(bcrypt::verify("s3cret!", hash).unwrap());
    }

    #[test]
    fn same_seed_same_hashes_other_seed_other_hashes() {
        let a = collect(&opts(5));
        let b = collect(&opts(5));
        assert_eq!(a, b);
        let mut o = opts(5);
        o.seed = Some(8);
        let c = collect(&o);
        assert_ne!(a[0].password, c[0].password);
        // Salts differ between users even with the same password.
        let mut same_pw = opts(2);
        same_pw.password = Some(Secret::new("pw"));
        let d = collect(&same_pw);
        assert_ne!(d[0].password, d[1].password);
    }

    #[test]
    fn a_users_hash_does_not_depend_on_where_the_run_starts() {
        let all = collect(&opts(4));
        let mut o = opts(2);
        o.start = 3;
        let tail = collect(&o);
        assert_eq!(&all[2..], &tail[..]);
    }

    #[test]
    fn more_users_than_one_block_stay_in_order() {
        let mut o = opts(BLOCK + 3);
        o.password = Some(Secret::new("pw"));
        let users = collect(&o);
        assert_eq!(users.len() as u64, BLOCK + 3);
        assert_eq!(users.last().unwrap().username.as_deref(), Some("user_1027"));
    }

    #[test]
    fn bad_options_are_refused_with_the_flag_named() {
        let mut o = opts(1);
        o.cost = 3;
        assert!(o.validate().unwrap_err().to_string().contains("--cost"));
        let mut o = opts(1);
        o.domain = "nodot".into();
        assert!(o.validate().unwrap_err().to_string().contains("--domain"));
        let mut o = opts(1);
        o.password = Some(Secret::new("x".repeat(73)));
        let err = o.validate().unwrap_err().to_string();
        assert!(err.contains("72") && !err.contains("xxxx"), "{err}");
    }

    #[test]
    fn debug_of_options_hides_the_password() {
        let mut o = opts(1);
        o.password = Some(Secret::new("hunter2"));
        assert!(!format!("{o:?}").contains("hunter2"));
    }
}
