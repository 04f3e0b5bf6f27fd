//! TOTP codes (RFC 6238 over RFC 4226): HMAC-SHA-1, 30-second steps, 6 digits, the
//! step before and after accepted. Secrets are RFC 4648 base32 (as in `otpauth://` URIs
//! and Authgear's `mfa.totp.secret`), case-insensitive, padding optional.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Decodes RFC 4648 base32 (spaces and `=` ignored); `None` on another character.
pub(super) fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.chars().filter(|c| *c != '=' && *c != ' ') {
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u32 - 'A' as u32,
            c @ '2'..='7' => c as u32 - '2' as u32 + 26,
            _ => return None,
        };
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The 6-digit HOTP value of `key` at `counter`.
pub(super) fn hotp(key: &[u8], counter: u64) -> u32 {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else {
        return u32::MAX;
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let bin = (u32::from(digest[offset] & 0x7f) << 24)
        | (u32::from(digest[offset + 1]) << 16)
        | (u32::from(digest[offset + 2]) << 8)
        | u32::from(digest[offset + 3]);
    bin % 1_000_000
}

/// Whether `code` is the TOTP of `secret` (base32) at `now`, ±1 step.
pub(super) fn verify(secret: &str, code: &str, now: jiff::Timestamp) -> bool {
    let Some(key) = base32_decode(secret).filter(|k| !k.is_empty()) else {
        return false;
    };
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Ok(code) = code.parse::<u32>() else {
        return false;
    };
    let Ok(step) = u64::try_from(now.as_second().div_euclid(30)) else {
        return false;
    };
    [step.checked_sub(1), Some(step), step.checked_add(1)]
        .into_iter()
        .flatten()
        .any(|c| hotp(&key, c) == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_vectors() {
        // RFC 4226 appendix D: secret "12345678901234567890".
        let key = b"12345678901234567890";
        assert_eq!(hotp(key, 0), 755_224);
        assert_eq!(hotp(key, 1), 287_082);
        // RFC 6238: T = 59 s is step 1, 94287082 in 8 digits.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(base32_decode(secret).unwrap(), key);
        let t = jiff::Timestamp::from_second(59).unwrap();
        assert!(verify(secret, "287082", t));
        assert!(!verify(secret, "287083", t));
        assert!(!verify(
            secret,
            "755224",
            jiff::Timestamp::from_second(120).unwrap()
        ));
    }
}
