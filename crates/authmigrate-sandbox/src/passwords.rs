//! Verifying a plaintext password against a stored hash (bcrypt and the other
//! algorithms the emulators accept), so tests can prove an imported user logs in.
//!
//! [`StoredPassword::Custom`] takes the Auth0 bulk-import `custom_password_hash` object
//! as JSON (see `shared/docs/auth0-api.md` §3): `argon2`, `bcrypt`, `hmac`, `ldap`,
//! `md4`, `md5`, `sha1`, `sha256`, `sha512`, `pbkdf2` and `scrypt`. This is an
//! independent reading of the docs and does not depend on authmigrate-core.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{KeyInit, Mac};
use serde_json::Value;
use sha1::Digest;

/// A stored password, as an emulator keeps it.
#[derive(Clone, PartialEq)]
pub enum StoredPassword {
    /// A bcrypt hash (`$2a$`, `$2b$` or `$2y$`).
    Bcrypt(String),
    /// An Auth0 `custom_password_hash` object.
    Custom(Value),
}

impl std::fmt::Debug for StoredPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bcrypt(_) => f.write_str("StoredPassword::Bcrypt(<redacted>)"),
            Self::Custom(v) => write!(
                f,
                "StoredPassword::Custom({}, <redacted>)",
                v.get("algorithm").and_then(Value::as_str).unwrap_or("?")
            ),
        }
    }
}

/// Whether `password` matches `stored`. Malformed hashes never match.
pub fn verify(password: &str, stored: &StoredPassword) -> bool {
    match stored {
        StoredPassword::Bcrypt(hash) => verify_bcrypt(password.as_bytes(), hash),
        StoredPassword::Custom(v) => verify_custom(password, v).unwrap_or(false),
    }
}

fn verify_bcrypt(password: &[u8], hash: &str) -> bool {
    let supported = ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p));
    supported && bcrypt::verify(password, hash).unwrap_or(false)
}

/// Verifies `password` against an Auth0 `custom_password_hash` object. `Err` names
/// what is malformed in the object (never its secret values).
pub fn verify_custom(password: &str, chash: &Value) -> Result<bool, String> {
    let algorithm = chash
        .get("algorithm")
        .and_then(Value::as_str)
        .ok_or("custom_password_hash.algorithm is missing")?;
    let hash = chash
        .get("hash")
        .and_then(Value::as_object)
        .ok_or("custom_password_hash.hash is missing")?;
    let value = hash
        .get("value")
        .and_then(Value::as_str)
        .ok_or("custom_password_hash.hash.value is missing")?;
    let hash_encoding = hash
        .get("encoding")
        .and_then(Value::as_str)
        .unwrap_or("utf8");
    let pw = encode_password(password, chash)?;
    let salt = match chash.get("salt") {
        Some(s) => {
            let sv = s
                .get("value")
                .and_then(Value::as_str)
                .ok_or("custom_password_hash.salt.value is missing")?;
            let enc = s.get("encoding").and_then(Value::as_str).unwrap_or("utf8");
            let position = s
                .get("position")
                .and_then(Value::as_str)
                .unwrap_or("prefix");
            Some((decode(sv, enc)?, position == "suffix"))
        }
        None => None,
    };
    let salted = |pw: &[u8]| -> Vec<u8> {
        match &salt {
            Some((s, false)) => [s.as_slice(), pw].concat(),
            Some((s, true)) => [pw, s.as_slice()].concat(),
            None => pw.to_vec(),
        }
    };
    match algorithm {
        "bcrypt" => Ok(verify_bcrypt(&salted(&pw), value)),
        "md4" | "md5" | "sha1" | "sha256" | "sha512" => {
            let expected = decode(value, hash_encoding)?;
            let got = digest(algorithm, &salted(&pw)).ok_or("unsupported digest")?;
            Ok(ct_eq(&got, &expected))
        }
        "hmac" => {
            let digest_name = hash
                .get("digest")
                .and_then(Value::as_str)
                .ok_or("custom_password_hash.hash.digest is missing")?;
            let key = hash
                .get("key")
                .ok_or("custom_password_hash.hash.key is missing")?;
            let key_value = key
                .get("value")
                .and_then(Value::as_str)
                .ok_or("custom_password_hash.hash.key.value is missing")?;
            let key_enc = key
                .get("encoding")
                .and_then(Value::as_str)
                .unwrap_or("utf8");
            let key = decode(key_value, key_enc)?;
            let expected = decode(value, hash_encoding)?;
            let got = hmac(digest_name, &key, &salted(&pw))
                .ok_or_else(|| format!("unsupported hmac digest {digest_name}"))?;
            Ok(ct_eq(&got, &expected))
        }
        "ldap" => verify_ldap(&pw, value),
        "pbkdf2" => verify_pbkdf2(&pw, value),
        "argon2" => verify_argon2(&pw, value),
        "scrypt" => {
            let expected = decode(value, hash_encoding)?;
            let keylen = chash
                .get("keylen")
                .and_then(Value::as_u64)
                .ok_or("custom_password_hash.keylen is missing")?;
            let cost = chash.get("cost").and_then(Value::as_u64).unwrap_or(16384);
            let r = chash.get("blockSize").and_then(Value::as_u64).unwrap_or(8);
            let p = chash
                .get("parallelization")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            if cost < 2 || !cost.is_power_of_two() {
                return Err("custom_password_hash.cost must be a power of two".into());
            }
            let log_n = u8::try_from(cost.trailing_zeros()).map_err(|_| "cost too large")?;
            let r = u32::try_from(r).map_err(|_| "blockSize too large")?;
            let p = u32::try_from(p).map_err(|_| "parallelization too large")?;
            let params = scrypt::Params::new(log_n, r, p).map_err(|_| "invalid scrypt params")?;
            let keylen = usize::try_from(keylen).map_err(|_| "keylen too large")?;
            if keylen == 0 || keylen > 1024 {
                return Err("custom_password_hash.keylen out of range".into());
            }
            let salt_bytes = salt.map(|(s, _)| s).unwrap_or_default();
            let mut out = vec![0u8; keylen];
            scrypt::scrypt(&pw, &salt_bytes, &params, &mut out)
                .map_err(|_| "invalid scrypt output length")?;
            Ok(ct_eq(&out, &expected))
        }
        other => Err(format!("unsupported algorithm {other}")),
    }
}

/// The password bytes per `password.encoding` (utf8 by default).
fn encode_password(password: &str, chash: &Value) -> Result<Vec<u8>, String> {
    let enc = chash
        .get("password")
        .and_then(|p| p.get("encoding"))
        .and_then(Value::as_str)
        .unwrap_or("utf8");
    Ok(match enc {
        "utf8" => password.as_bytes().to_vec(),
        "utf16le" | "ucs2" => password.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        // Node's latin1/binary/ascii keep the low byte of each UTF-16 unit.
        "latin1" | "binary" | "ascii" => password.encode_utf16().map(|u| u as u8).collect(),
        other => return Err(format!("unsupported password.encoding {other}")),
    })
}

/// Decodes a value per an Auth0 encoding name (`hex` in either case, `base64` standard
/// or URL-safe, padded or not, `utf8`).
fn decode(value: &str, encoding: &str) -> Result<Vec<u8>, String> {
    match encoding {
        "utf8" => Ok(value.as_bytes().to_vec()),
        "hex" => hex::decode(value).map_err(|_| "value is not valid hex".to_owned()),
        "base64" => decode_b64(value).ok_or_else(|| "value is not valid base64".to_owned()),
        other => Err(format!("unsupported encoding {other}")),
    }
}

fn decode_b64(value: &str) -> Option<Vec<u8>> {
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(value).ok())
}

fn digest(name: &str, data: &[u8]) -> Option<Vec<u8>> {
    Some(match name {
        "md4" => md4::Md4::digest(data).to_vec(),
        "md5" => md5::Md5::digest(data).to_vec(),
        "sha1" => sha1::Sha1::digest(data).to_vec(),
        "sha224" => sha2::Sha224::digest(data).to_vec(),
        "sha256" => sha2::Sha256::digest(data).to_vec(),
        "sha384" => sha2::Sha384::digest(data).to_vec(),
        "sha512" => sha2::Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

fn hmac(name: &str, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    fn run<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        let mut mac = <M as KeyInit>::new_from_slice(key).ok()?;
        mac.update(data);
        Some(mac.finalize().into_bytes().to_vec())
    }
    match name {
        "md4" => run::<hmac::Hmac<md4::Md4>>(key, data),
        "md5" => run::<hmac::Hmac<md5::Md5>>(key, data),
        "sha1" => run::<hmac::Hmac<sha1::Sha1>>(key, data),
        "sha224" => run::<hmac::Hmac<sha2::Sha224>>(key, data),
        "sha256" => run::<hmac::Hmac<sha2::Sha256>>(key, data),
        "sha384" => run::<hmac::Hmac<sha2::Sha384>>(key, data),
        "sha512" => run::<hmac::Hmac<sha2::Sha512>>(key, data),
        _ => None,
    }
}

/// RFC 2307 `{SCHEME}base64(digest || salt)`.
fn verify_ldap(pw: &[u8], value: &str) -> Result<bool, String> {
    let rest = value
        .strip_prefix('{')
        .ok_or("ldap hash must start with {SCHEME}")?;
    let (scheme, b64) = rest
        .split_once('}')
        .ok_or("ldap hash must start with {SCHEME}")?;
    let scheme = scheme.to_ascii_lowercase();
    let (salted, alg) = match scheme.strip_prefix('s') {
        Some(alg) if alg.starts_with("sha") || alg == "md5" => (true, alg.to_owned()),
        _ => (false, scheme.clone()),
    };
    let alg = if alg == "sha" { "sha1".to_owned() } else { alg };
    let raw = decode_b64(b64).ok_or("ldap hash is not valid base64")?;
    let len = digest(&alg, b"")
        .ok_or_else(|| format!("unsupported ldap scheme {scheme}"))?
        .len();
    if raw.len() < len || (!salted && raw.len() != len) {
        return Ok(false);
    }
    let (expected, salt) = raw.split_at(len);
    let got = digest(&alg, &[pw, salt].concat()).unwrap_or_default();
    Ok(ct_eq(&got, expected))
}

/// `$pbkdf2-<digest>$i=<iter>,l=<keylen>$<b64 salt>$<b64 hash>`.
fn verify_pbkdf2(pw: &[u8], value: &str) -> Result<bool, String> {
    let parts: Vec<&str> = value.split('$').collect();
    let [empty, id, params, salt, hash] = parts.as_slice() else {
        return Err("pbkdf2 hash is not a phc string".into());
    };
    if !empty.is_empty() {
        return Err("pbkdf2 hash is not a phc string".into());
    }
    let digest_name = id
        .strip_prefix("pbkdf2-")
        .ok_or("pbkdf2 hash id must be pbkdf2-<digest>")?;
    let digest_name = digest_name
        .trim_start_matches("RSA-")
        .trim_end_matches("WithRSAEncryption")
        .to_ascii_lowercase();
    let (mut iterations, mut keylen) = (100_000u32, 64usize);
    for kv in params.split(',').filter(|s| !s.is_empty()) {
        match kv.split_once('=') {
            Some(("i", v)) => iterations = v.parse().map_err(|_| "bad pbkdf2 i")?,
            Some(("l", v)) => keylen = v.parse().map_err(|_| "bad pbkdf2 l")?,
            _ => return Err("unknown pbkdf2 parameter".into()),
        }
    }
    let salt = decode_b64(salt).ok_or("pbkdf2 salt is not valid base64")?;
    let expected = decode_b64(hash).ok_or("pbkdf2 hash is not valid base64")?;
    if keylen == 0 || keylen > 1024 || iterations == 0 {
        return Err("pbkdf2 parameters out of range".into());
    }
    let mut out = vec![0u8; keylen];
    match digest_name.as_str() {
        "md5" => pbkdf2::pbkdf2_hmac::<md5::Md5>(pw, &salt, iterations, &mut out),
        "sha1" => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(pw, &salt, iterations, &mut out),
        "sha224" => pbkdf2::pbkdf2_hmac::<sha2::Sha224>(pw, &salt, iterations, &mut out),
        "sha256" => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pw, &salt, iterations, &mut out),
        "sha384" => pbkdf2::pbkdf2_hmac::<sha2::Sha384>(pw, &salt, iterations, &mut out),
        "sha512" => pbkdf2::pbkdf2_hmac::<sha2::Sha512>(pw, &salt, iterations, &mut out),
        other => return Err(format!("unsupported pbkdf2 digest {other}")),
    }
    Ok(ct_eq(&out, &expected))
}

/// `$argon2<type>$v=<ver>$m=<m>,t=<t>,p=<p>$<b64 salt>$<b64 hash>`.
fn verify_argon2(pw: &[u8], value: &str) -> Result<bool, String> {
    let parts: Vec<&str> = value.split('$').collect();
    let (id, version, params, salt, hash) = match parts.as_slice() {
        ["", id, v, params, salt, hash] => (*id, Some(*v), *params, *salt, *hash),
        ["", id, params, salt, hash] => (*id, None, *params, *salt, *hash),
        _ => return Err("argon2 hash is not a phc string".into()),
    };
    let algorithm = match id {
        "argon2i" => argon2::Algorithm::Argon2i,
        "argon2d" => argon2::Algorithm::Argon2d,
        "argon2id" => argon2::Algorithm::Argon2id,
        _ => return Err("unsupported argon2 variant".into()),
    };
    let version = match version {
        None | Some("v=16") => argon2::Version::V0x10,
        Some("v=19") => argon2::Version::V0x13,
        Some(_) => return Err("unsupported argon2 version".into()),
    };
    let (mut m, mut t, mut p) = (None, None, None);
    for kv in params.split(',') {
        match kv.split_once('=') {
            Some(("m", v)) => m = v.parse::<u32>().ok(),
            Some(("t", v)) => t = v.parse::<u32>().ok(),
            Some(("p", v)) => p = v.parse::<u32>().ok(),
            _ => {}
        }
    }
    let (Some(m), Some(t), Some(p)) = (m, t, p) else {
        return Err("argon2 parameters m, t and p are required".into());
    };
    let salt = decode_b64(salt).ok_or("argon2 salt is not valid base64")?;
    let expected = decode_b64(hash).ok_or("argon2 hash is not valid base64")?;
    let params = argon2::Params::new(m, t, p, Some(expected.len()))
        .map_err(|_| "invalid argon2 parameters")?;
    let mut out = vec![0u8; expected.len()];
    argon2::Argon2::new(algorithm, version, params)
        .hash_password_into(pw, &salt, &mut out)
        .map_err(|_| "argon2 hashing failed")?;
    Ok(ct_eq(&out, &expected))
}

/// Constant-time comparison of two byte strings.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn custom(v: Value) -> StoredPassword {
        StoredPassword::Custom(v)
    }

    #[test]
    fn bcrypt_doc_vector_cost_10() {
        let s = StoredPassword::Bcrypt(
            "$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K".into(),
        );
        assert!(verify("hello", &s));
        assert!(!verify("hell0", &s));
    }

    #[test]
    fn bcrypt_rejects_unsupported_prefixes() {
        let h = bcrypt::hash_with_result("pw", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoX);
        assert!(!verify("pw", &StoredPassword::Bcrypt(h.clone())));
        let b = h.replacen("$2x$", "$2b$", 1);
        assert!(verify("pw", &StoredPassword::Bcrypt(b)));
    }

    #[test]
    fn sha256_salt_prefix_hex_and_suffix_base64() {
        let expected = hex::encode(sha2::Sha256::digest(b"abc123hello"));
        let s = custom(json!({"algorithm":"sha256",
            "hash":{"value": expected, "encoding":"hex"},
            "salt":{"value":"abc123"}}));
        assert!(verify("hello", &s));
        assert!(!verify("hell0", &s));
        let upper = custom(json!({"algorithm":"sha256",
            "hash":{"value": expected.to_uppercase(), "encoding":"hex"},
            "salt":{"value":"abc123","position":"prefix"}}));
        assert!(verify("hello", &upper));
        let b64 = STANDARD.encode(sha2::Sha512::digest(b"hello\x01\x02"));
        let s = custom(json!({"algorithm":"sha512",
            "hash":{"value": b64, "encoding":"base64"},
            "salt":{"value":"AQI=","encoding":"base64","position":"suffix"}}));
        assert!(verify("hello", &s));
        assert!(!verify("hello2", &s));
    }

    #[test]
    fn md5_sha1_md4_unsalted() {
        for (alg, d) in [
            ("md5", md5::Md5::digest(b"pw").to_vec()),
            ("sha1", sha1::Sha1::digest(b"pw").to_vec()),
            ("md4", md4::Md4::digest(b"pw").to_vec()),
        ] {
            let s =
                custom(json!({"algorithm":alg,"hash":{"value":hex::encode(d),"encoding":"hex"}}));
            assert!(verify("pw", &s), "{alg}");
            assert!(!verify("pw2", &s), "{alg}");
        }
    }

    #[test]
    fn hmac_sha1_doc_example() {
        let s = custom(json!({"algorithm":"hmac",
            "hash":{"value":"cg7f42jH39/2EaAU4wNd4s2lKIk=","encoding":"base64","digest":"sha1",
                    "key":{"value":"736868","encoding":"hex"}}}));
        // The doc example is HMAC-SHA1 of `test` under the key "shh".
        assert!(verify("test", &s));
        assert!(!verify("tesT", &s));
    }

    #[test]
    fn ldap_ssha() {
        let salt = b"saltsalt";
        let mut raw = sha1::Sha1::digest([b"secret".as_slice(), salt].concat()).to_vec();
        raw.extend_from_slice(salt);
        let s = custom(json!({"algorithm":"ldap",
            "hash":{"value": format!("{{SSHA}}{}", STANDARD.encode(raw))}}));
        assert!(verify("secret", &s));
        assert!(!verify("secreT", &s));
        let plain = format!(
            "{{SHA256}}{}",
            STANDARD.encode(sha2::Sha256::digest(b"secret"))
        );
        let s = custom(json!({"algorithm":"ldap","hash":{"value": plain}}));
        assert!(verify("secret", &s));
    }

    #[test]
    fn pbkdf2_phc() {
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"pw", b"NaClNaCl", 1000, &mut out);
        let v = format!(
            "$pbkdf2-sha256$i=1000,l=32${}${}",
            STANDARD_NO_PAD.encode(b"NaClNaCl"),
            STANDARD_NO_PAD.encode(out)
        );
        let s = custom(json!({"algorithm":"pbkdf2","hash":{"value":v}}));
        assert!(verify("pw", &s));
        assert!(!verify("pw!", &s));
    }

    #[test]
    fn argon2_phc() {
        let params = argon2::Params::new(64, 1, 1, Some(32)).unwrap();
        let mut out = [0u8; 32];
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password_into(b"pw", b"somesaltsomesalt", &mut out)
            .unwrap();
        let v = format!(
            "$argon2id$v=19$m=64,t=1,p=1${}${}",
            STANDARD_NO_PAD.encode(b"somesaltsomesalt"),
            STANDARD_NO_PAD.encode(out)
        );
        let s = custom(json!({"algorithm":"argon2","hash":{"value":v}}));
        assert!(verify("pw", &s));
        assert!(!verify("pw!", &s));
    }

    #[test]
    fn scrypt_with_salt() {
        let params = scrypt::Params::new(10, 8, 1).unwrap();
        let mut out = [0u8; 32];
        scrypt::scrypt(b"hello", b"abc123", &params, &mut out).unwrap();
        let s = custom(json!({"algorithm":"scrypt",
            "hash":{"value":hex::encode(out),"encoding":"hex"},
            "salt":{"value":"abc123","encoding":"utf8"}, "keylen":32, "cost":1024}));
        assert!(verify("hello", &s));
        assert!(!verify("hell0", &s));
    }

    #[test]
    fn malformed_never_verifies_and_debug_redacts() {
        let s = custom(json!({"algorithm":"sha256","hash":{"value":"zz","encoding":"hex"}}));
        assert!(!verify("x", &s));
        let b = StoredPassword::Bcrypt("$2b$04$secretsecret".into());
        assert!(!format!("{b:?}").contains("secret"));
    }
}
