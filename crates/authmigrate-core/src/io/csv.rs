//! The few CSV lines authmigrate reads and writes (id maps: `migrate --id-map`, the
//! removed users of `migrate --delta`), RFC 4180 quoting.

/// Splits one CSV line: fields may be quoted, `""` inside quotes is a quote.
pub fn split_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// One field as written: quoted when it holds a comma, a quote or a line break.
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_through_quoting() {
        let fields = ["3", "auth0|x", "a,b\"c@example.com", "", "line\nbreak"];
        let line: Vec<String> = fields.iter().map(|f| field(f)).collect();
        assert_eq!(split_line(&line.join(",")), fields);
        assert_eq!(
            split_line(r#"3,auth0|x,"a,b""c"@example.com,inserted,u-1"#),
            ["3", "auth0|x", "a,b\"c@example.com", "inserted", "u-1"]
        );
    }
}
