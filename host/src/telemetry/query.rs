//! Reading a decision log back (`warden decisions`): the records that match
//! a question (one identity's denials, one request's decisions), or the
//! decisions counted by plugin version, which shows what a swap changed.

use std::collections::BTreeMap;
use std::io::BufRead;

use serde_json::Value;

/// Which records to keep; every condition set must hold.
#[derive(Debug, Clone, Default)]
pub struct Question {
    /// The identity the record is about.
    pub identity: Option<String>,
    /// The request's id.
    pub request_id: Option<String>,
    /// `allow`, `deny`, `filter` or `fault`.
    pub outcome: Option<String>,
    /// The event (`threads.create`), or `authenticate` for authentications.
    pub event: Option<String>,
    /// A prefix of the deciding plugin's digest.
    pub digest: Option<String>,
}

impl Question {
    /// Whether `record` answers the question.
    pub fn matches(&self, record: &Value) -> bool {
        let text = |key: &str| record.get(key).and_then(Value::as_str);
        let event = text("event")
            .or_else(|| (text("kind") == Some("authenticate")).then_some("authenticate"));
        let digest = record
            .pointer("/plugin/digest")
            .and_then(Value::as_str)
            .unwrap_or("");
        self.identity
            .as_deref()
            .is_none_or(|i| text("identity") == Some(i))
            && self
                .request_id
                .as_deref()
                .is_none_or(|r| text("request_id") == Some(r))
            && self
                .outcome
                .as_deref()
                .is_none_or(|o| text("outcome") == Some(o))
            && self.event.as_deref().is_none_or(|e| event == Some(e))
            && self.digest.as_deref().is_none_or(|d| digest.starts_with(d))
    }
}

/// What reading a log found.
#[derive(Debug, Default)]
pub struct Read {
    /// The records that match, in the log's order.
    pub records: Vec<Value>,
    /// Lines that are not records (a line cut short by a crash, say).
    pub unreadable: usize,
}

/// The records of `log` that answer `question`.
pub fn read(log: impl BufRead, question: &Question) -> std::io::Result<Read> {
    let mut read = Read::default();
    for line in log.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(record) if record.is_object() => {
                if question.matches(&record) {
                    read.records.push(record);
                }
            }
            _ => read.unreadable += 1,
        }
    }
    Ok(read)
}

/// The decisions of one plugin version.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VersionSummary {
    /// The version's digest.
    pub digest: String,
    /// Its first and last decision's time.
    pub first: String,
    /// See `first`.
    pub last: String,
    /// Decisions by outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// Decisions by event (`authenticate` for authentications), then outcome.
    pub events: BTreeMap<String, BTreeMap<String, u64>>,
}

/// `records` counted by plugin version, in the order each version first
/// decided.
pub fn by_digest(records: &[Value]) -> Vec<VersionSummary> {
    let mut versions: Vec<VersionSummary> = Vec::new();
    for record in records {
        let text = |key: &str| record.get(key).and_then(Value::as_str).unwrap_or("");
        let digest = record
            .pointer("/plugin/digest")
            .and_then(Value::as_str)
            .unwrap_or("(none)");
        let index = match versions.iter().position(|v| v.digest == digest) {
            Some(index) => index,
            None => {
                versions.push(VersionSummary {
                    digest: digest.to_owned(),
                    first: text("time").to_owned(),
                    ..VersionSummary::default()
                });
                versions.len() - 1
            }
        };
        let version = &mut versions[index];
        version.last = text("time").to_owned();
        let outcome = text("outcome").to_owned();
        *version.outcomes.entry(outcome.clone()).or_default() += 1;
        let event = match text("kind") {
            "authenticate" => "authenticate",
            _ => text("event"),
        };
        *version
            .events
            .entry(event.to_owned())
            .or_default()
            .entry(outcome)
            .or_default() += 1;
    }
    versions
}

/// The summaries as a table a person reads: one line per version, then
/// the events whose outcomes differ between consecutive versions.
pub fn render_by_digest(versions: &[VersionSummary]) -> String {
    let mut out = String::new();
    let count = |v: &VersionSummary, o: &str| v.outcomes.get(o).copied().unwrap_or(0);
    out.push_str("digest        first decision                    last decision                     allow   deny filter  fault\n");
    for v in versions {
        out.push_str(&format!(
            "{:<13} {:<33} {:<33} {:>5} {:>6} {:>6} {:>6}\n",
            v.digest.get(..12).unwrap_or(&v.digest),
            v.first,
            v.last,
            count(v, "allow"),
            count(v, "deny"),
            count(v, "filter"),
            count(v, "fault"),
        ));
    }
    for pair in versions.windows(2) {
        let (old, new) = (&pair[0], &pair[1]);
        let share = |v: &VersionSummary, event: &str| -> BTreeMap<String, f64> {
            let Some(outcomes) = v.events.get(event) else {
                return BTreeMap::new();
            };
            let total: u64 = outcomes.values().sum();
            outcomes
                .iter()
                .map(|(o, n)| (o.clone(), *n as f64 / total as f64))
                .collect()
        };
        let mut events: Vec<&String> = old.events.keys().chain(new.events.keys()).collect();
        events.sort();
        events.dedup();
        let changed: Vec<String> = events
            .into_iter()
            .filter(|e| {
                let (a, b) = (share(old, e), share(new, e));
                !a.is_empty()
                    && !b.is_empty()
                    && a.keys().chain(b.keys()).any(|o| {
                        (a.get(o).copied().unwrap_or(0.0) - b.get(o).copied().unwrap_or(0.0)).abs()
                            > 0.001
                    })
            })
            .map(|e| {
                let outcomes = |v: &VersionSummary| {
                    v.events[e]
                        .iter()
                        .map(|(o, n)| format!("{o} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                format!("  {e}: {} -> {}", outcomes(old), outcomes(new))
            })
            .collect();
        let (a, b) = (
            old.digest.get(..12).unwrap_or(&old.digest),
            new.digest.get(..12).unwrap_or(&new.digest),
        );
        if changed.is_empty() {
            out.push_str(&format!("\n{a} -> {b}: no event's outcomes changed\n"));
        } else {
            out.push_str(&format!("\n{a} -> {b}: outcomes changed for\n"));
            for line in changed {
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn log() -> String {
        [
            json!({"time": "t1", "request_id": "r1", "kind": "authenticate", "identity": "user1", "handler": null, "outcome": "allow", "plugin": {"digest": "aaaa1111aaaa1111", "contract": "0.2.0"}}),
            json!({"time": "t2", "request_id": "r1", "kind": "authorize", "identity": "user1", "event": "threads.create", "handler": "threads.create", "outcome": "deny", "status": 403, "plugin": {"digest": "aaaa1111aaaa1111", "contract": "0.2.0"}}),
            json!({"time": "t3", "request_id": "r2", "kind": "authenticate", "handler": null, "outcome": "deny", "status": 401, "plugin": {"digest": "aaaa1111aaaa1111", "contract": "0.2.0"}}),
            json!({"time": "t4", "request_id": "r3", "kind": "authorize", "identity": "user1", "event": "threads.create", "handler": "threads.create", "outcome": "allow", "plugin": {"digest": "bbbb2222bbbb2222", "contract": "0.2.0"}}),
        ]
        .iter()
        .map(|r| r.to_string() + "\n")
        .collect::<String>()
            + "{\"time\": \"t5\", \"cut sho\n"
    }

    #[test]
    fn one_identitys_denials_and_one_requests_decisions() {
        let denials = Question {
            identity: Some("user1".into()),
            outcome: Some("deny".into()),
            ..Question::default()
        };
        let read = read(log().as_bytes(), &denials).unwrap();
        assert_eq!(read.unreadable, 1);
        let times: Vec<&str> = read
            .records
            .iter()
            .map(|r| r["time"].as_str().unwrap())
            .collect();
        assert_eq!(times, ["t2"]);

        let request = Question {
            request_id: Some("r1".into()),
            ..Question::default()
        };
        let read = super::read(log().as_bytes(), &request).unwrap();
        assert_eq!(read.records.len(), 2);

        let authentications = Question {
            event: Some("authenticate".into()),
            digest: Some("aaaa".into()),
            ..Question::default()
        };
        assert_eq!(
            super::read(log().as_bytes(), &authentications)
                .unwrap()
                .records
                .len(),
            2
        );
    }

    #[test]
    fn decisions_by_version_show_what_a_swap_changed() {
        let records = read(log().as_bytes(), &Question::default())
            .unwrap()
            .records;
        let versions = by_digest(&records);
        assert_eq!(versions.len(), 2);
        assert_eq!(
            versions[0].outcomes,
            BTreeMap::from([("allow".into(), 1), ("deny".into(), 2)])
        );
        assert_eq!(
            (versions[0].first.as_str(), versions[0].last.as_str()),
            ("t1", "t3")
        );
        let table = render_by_digest(&versions);
        assert!(
            table.contains("aaaa1111aaaa -> bbbb2222bbbb: outcomes changed for"),
            "{table}"
        );
        assert!(
            table.contains("threads.create: deny 1 -> allow 1"),
            "{table}"
        );
    }
}
