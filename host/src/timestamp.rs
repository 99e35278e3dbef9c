//! Timestamps as the API writes them: RFC 3339 in UTC, microseconds,
//! `+00:00` (`2026-07-01T13:00:00.000000+00:00`). Stored as text, they sort
//! as they happen.

use chrono::{DateTime, SecondsFormat, Utc};

/// The current time, as the API writes it.
pub fn now() -> String {
    format(Utc::now())
}

/// `at`, as the API writes it.
pub fn format(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microseconds_and_an_explicit_offset() {
        let at = DateTime::parse_from_rfc3339("2026-07-01T13:00:00.5Z").unwrap();
        assert_eq!(format(at.to_utc()), "2026-07-01T13:00:00.500000+00:00");
    }
}
