//! Blanking a plugin's secrets out of what leaves its sandbox: the text of
//! its logs and errors, and the JSON of its users and event values (which
//! are stored and returned to clients). A secret is looked for as written
//! and as it appears escaped inside a string: by JSON (`\"`, `\\`), by
//! ASCII-only JSON (`\u00e4`, either case) and by Rust's `Debug`. Log text
//! also loses the credentials of any URL in it (`https://user:pass@host`).
//!
//! This catches a plugin's mistakes, not its malice: a plugin can always
//! encode a secret it holds so that no search finds it.

use std::borrow::Cow;

use serde_json::Value;

/// What a secret (or a URL's credentials) is replaced with.
pub(crate) const REDACTED: &str = "[secret]";

/// The shortest secret accepted, in bytes: a shorter one is guessed in no
/// time, and blanking it wherever it occurs would mangle ordinary text and
/// data.
pub(crate) const MIN_SECRET_BYTES: usize = 8;

/// The forms `secret` may take in text, each at least as long as the
/// secret, without repeats.
pub(crate) fn forms(secret: &str) -> Vec<String> {
    let quoted = Value::from(secret).to_string();
    let json = quoted[1..quoted.len() - 1].to_owned();
    let ascii = |upper: bool| -> String {
        json.chars()
            .map(|c| {
                if c.is_ascii() {
                    return c.to_string();
                }
                c.encode_utf16(&mut [0; 2])
                    .iter()
                    .map(|unit| match upper {
                        true => format!("\\u{unit:04X}"),
                        false => format!("\\u{unit:04x}"),
                    })
                    .collect()
            })
            .collect()
    };
    let debug = format!("{secret:?}");
    let debug = debug[1..debug.len() - 1].to_owned();
    let mut forms = vec![secret.to_owned(), ascii(false), ascii(true), debug, json];
    forms.sort();
    forms.dedup();
    forms
}

/// `text` with every occurrence of each of `needles` replaced by
/// [`REDACTED`]; `needles` are tried longest first, so a secret inside a
/// longer one cannot leave part of the longer one behind.
pub(crate) fn replace<'a>(text: &'a str, needles: &[&str]) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for needle in needles {
        if !needle.is_empty() && out.contains(needle) {
            out = Cow::Owned(out.replace(needle, REDACTED));
        }
    }
    out
}

/// Applies [`replace`] to every string and object key in `value`.
pub(crate) fn replace_in_json(value: &mut Value, needles: &[&str]) {
    let replaced = |text: &mut String| {
        if let Cow::Owned(clean) = replace(text, needles) {
            *text = clean;
        }
    };
    match value {
        Value::String(text) => replaced(text),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| replace_in_json(item, needles)),
        Value::Object(map) => {
            let dirty = map
                .keys()
                .any(|key| matches!(replace(key, needles), Cow::Owned(_)));
            if dirty {
                let entries = std::mem::take(map);
                for (mut key, item) in entries {
                    replaced(&mut key);
                    map.insert(key, item);
                }
            }
            map.values_mut()
                .for_each(|item| replace_in_json(item, needles));
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `text` with the credentials of every URL in it replaced:
/// `https://user:pass@host/path` becomes `https://[secret]@host/path`.
pub(crate) fn url_credentials(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority ends where the path, query or fragment starts, or
        // where the URL ends in the surrounding text.
        let end = after
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`' | '\\')
                    || c.is_whitespace()
            })
            .unwrap_or(after.len());
        let (authority, tail) = after.split_at(end);
        match authority.rfind('@') {
            Some(userinfo_end) => {
                out.push_str(REDACTED);
                out.push_str(&authority[userinfo_end..]);
            }
            None => out.push_str(authority),
        }
        rest = tail;
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_secret_is_looked_for_as_written_and_as_escaped() {
        assert_eq!(forms("plain-secret"), ["plain-secret"]);
        let forms = forms("pä55\"w0rd\\x");
        for form in [
            "pä55\"w0rd\\x",
            r#"pä55\"w0rd\\x"#,
            r#"p\u00e455\"w0rd\\x"#,
            r#"p\u00E455\"w0rd\\x"#,
        ] {
            assert!(forms.iter().any(|f| f == form), "{form}: {forms:?}");
        }
        let astral = super::forms("key-🦀-key");
        assert!(
            astral.iter().any(|f| f == r"key-\ud83e\udd80-key"),
            "{astral:?}"
        );
    }

    #[test]
    fn every_string_and_key_of_a_value_is_blanked() {
        let mut value = json!({
            "metadata": {"owner": "hunter22", "list": ["a hunter22 b", 1, null]},
            "hunter22": {"nested": "x"},
        });
        replace_in_json(&mut value, &["hunter22"]);
        assert_eq!(
            value,
            json!({
                "metadata": {"owner": "[secret]", "list": ["a [secret] b", 1, null]},
                "[secret]": {"nested": "x"},
            })
        );
    }

    #[test]
    fn a_longer_secret_is_blanked_whole_before_a_shorter_one_inside_it() {
        assert_eq!(
            replace("key=abcdefgh-ijkl", &["abcdefgh-ijkl", "abcdefgh"]),
            "key=[secret]"
        );
    }

    #[test]
    fn url_credentials_are_blanked_and_the_rest_kept() {
        for (text, clean) in [
            (
                "GET https://user:pass@idp.example.com/jwks?x=1",
                "GET https://[secret]@idp.example.com/jwks?x=1",
            ),
            ("http://u:p@ss@h:8080", "http://[secret]@h:8080"),
            (
                "a http://token@a.b and \"https://c:d@e\" end",
                "a http://[secret]@a.b and \"https://[secret]@e\" end",
            ),
            (
                "https://idp.example.com/users/me@example.com",
                "https://idp.example.com/users/me@example.com",
            ),
            ("mail alice@example.com", "mail alice@example.com"),
            ("no url", "no url"),
        ] {
            assert_eq!(url_credentials(text), clean, "{text}");
        }
    }
}
