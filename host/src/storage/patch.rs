//! How updates change records, the same whatever the backend: a `PATCH`'s
//! shallow merges, an assistant's new or restored version, a cron's next
//! run when its schedule moves, what becomes of the row at a system
//! assistant's id.
//!
//! Each reads a record and says what to write back, so a backend calls it
//! **inside the transaction** that reads the record and writes the result
//! (two concurrent patches then do not lose each other's keys); the backend
//! only stores what it is given.

use serde_json::Value;

use super::{Assistant, AssistantVersion, Cron, Object, Thread};
use crate::schedule::{self, ScheduleError};
use crate::timestamp::now;

/// Shallow merge, as LangGraph's `{**old, **patch}`.
pub fn merge(into: &mut Object, patch: &Object) {
    for (k, v) in patch {
        into.insert(k.clone(), v.clone());
    }
}

/// `PATCH /threads/{id}`: merges `metadata` into the thread's, updated now.
pub fn patch_thread(thread: &mut Thread, metadata: &Object) {
    merge(&mut thread.metadata, metadata);
    thread.updated_at = now();
}

/// What `PATCH /assistants/{id}` changes; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct AssistantPatch {
    /// New graph.
    pub graph_id: Option<String>,
    /// New config.
    pub config: Option<Value>,
    /// New context.
    pub context: Option<Value>,
    /// Merged shallowly into the metadata.
    pub metadata: Option<Object>,
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
}

impl AssistantPatch {
    /// Applies the patch to `assistant`, which becomes its version
    /// `version` (the one after the latest it has had), updated now.
    pub fn apply(&self, assistant: &mut Assistant, version: i64) {
        if let Some(g) = &self.graph_id {
            assistant.graph_id = g.clone();
        }
        if let Some(c) = &self.config {
            assistant.config = c.clone();
        }
        if let Some(c) = &self.context {
            assistant.context = c.clone();
        }
        if let Some(m) = &self.metadata {
            merge(&mut assistant.metadata, m);
        }
        if let Some(n) = &self.name {
            assistant.name = n.clone();
        }
        if let Some(d) = &self.description {
            assistant.description = Some(d.clone());
        }
        assistant.version = version;
        assistant.updated_at = now();
    }
}

/// Makes `version` the assistant's current one: its graph, config,
/// context, metadata, name and description become that version's, updated
/// now.
pub fn restore_version(assistant: &mut Assistant, version: AssistantVersion) {
    assistant.graph_id = version.graph_id;
    assistant.config = version.config;
    assistant.context = version.context;
    assistant.metadata = version.metadata;
    assistant.name = version.name;
    assistant.description = version.description;
    assistant.version = version.version;
    assistant.updated_at = now();
}

/// What [`Storage::upsert_system_assistant`](super::Storage::upsert_system_assistant)
/// found at the system assistant's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemAssistant {
    /// Nothing: the assistant was created.
    Created,
    /// The server's own assistant, kept.
    Kept,
    /// A row from before the server marked its assistants, of the same graph
    /// and claiming to be the system's: marked the server's and kept.
    Adopted,
    /// A row the server did not create (squatting the id): replaced.
    Replaced,
}

impl SystemAssistant {
    /// What becomes of the row at the id of `graph_id`'s system assistant:
    /// `found` is `None` when there is none, else whether the server marked
    /// the row its own, and the row's graph and metadata.
    pub fn decide(found: Option<(bool, &str, &Object)>, graph_id: &str) -> Self {
        match found {
            None => Self::Created,
            Some((true, _, _)) => Self::Kept,
            Some((false, found_graph, metadata)) => {
                // Written before the marker existed, when only the server
                // could have made a row of this graph claiming to be the
                // system's.
                let claims_system = metadata.get("created_by") == Some(&Value::from("system"));
                if found_graph == graph_id && claims_system {
                    Self::Adopted
                } else {
                    Self::Replaced
                }
            }
        }
    }
}

/// What `PATCH /runs/crons/{id}` changes; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct CronPatch {
    /// New schedule; the next run date follows it.
    pub schedule: Option<String>,
    /// New IANA timezone for the schedule; the next run date follows it.
    pub timezone: Option<String>,
    /// New end time (`Some(None)` clears it).
    pub end_time: Option<Option<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// New `on_run_completed`.
    pub on_run_completed: Option<String>,
    /// Keys replaced in the run payload.
    pub payload: Option<Object>,
    /// Merged shallowly into the metadata.
    pub metadata: Option<Object>,
}

impl CronPatch {
    /// Applies the patch to `cron`, updated now. A new schedule or timezone
    /// moves its next run to the next firing after now: an error when the
    /// schedule and timezone it ends up with cannot be read together (a
    /// timezone stored before timezones were checked).
    pub fn apply(&self, cron: &mut Cron) -> Result<(), ScheduleError> {
        if let Some(schedule) = &self.schedule {
            cron.schedule = schedule.clone();
        }
        if let Some(timezone) = &self.timezone {
            cron.timezone = Some(timezone.clone());
        }
        if self.schedule.is_some() || self.timezone.is_some() {
            cron.next_run_date = Some(schedule::next_run(
                &cron.schedule,
                cron.timezone.as_deref(),
            )?);
        }
        if let Some(end) = &self.end_time {
            cron.end_time = end.clone();
        }
        if let Some(enabled) = self.enabled {
            cron.enabled = enabled;
        }
        if let Some(o) = &self.on_run_completed {
            cron.on_run_completed = Some(o.clone());
        }
        if let Some(p) = &self.payload {
            merge(&mut cron.payload, p);
        }
        if let Some(m) = &self.metadata {
            merge(&mut cron.metadata, m);
        }
        cron.updated_at = now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    fn object(value: Value) -> Object {
        value.as_object().cloned().unwrap()
    }

    fn cron() -> Cron {
        Cron {
            cron_id: Uuid::nil(),
            assistant_id: Uuid::nil(),
            thread_id: None,
            user_id: None,
            end_time: None,
            schedule: "0 9 * * *".into(),
            timezone: None,
            payload: object(json!({"input": 1, "config": {}})),
            next_run_date: Some("2000-01-01T00:00:00.000000+00:00".into()),
            metadata: object(json!({"owner": "u1"})),
            on_run_completed: Some("delete".into()),
            enabled: true,
            created_at: "2000-01-01T00:00:00.000000+00:00".into(),
            updated_at: "2000-01-01T00:00:00.000000+00:00".into(),
        }
    }

    #[test]
    fn a_merge_is_shallow() {
        let mut into = object(json!({"a": {"x": 1}, "b": 2}));
        merge(&mut into, &object(json!({"a": {"y": 1}, "c": 3})));
        assert_eq!(Value::Object(into), json!({"a": {"y": 1}, "b": 2, "c": 3}));
    }

    #[test]
    fn a_cron_moves_its_next_run_only_with_its_schedule_or_timezone() {
        let mut c = cron();
        let enable = CronPatch {
            enabled: Some(false),
            payload: Some(object(json!({"input": 2}))),
            ..CronPatch::default()
        };
        enable.apply(&mut c).unwrap();
        assert_eq!(
            c.next_run_date.as_deref(),
            Some("2000-01-01T00:00:00.000000+00:00")
        );
        assert!(!c.enabled);
        assert_eq!(
            Value::Object(c.payload.clone()),
            json!({"input": 2, "config": {}})
        );
        assert!(c.updated_at > c.created_at);

        let moved = CronPatch {
            timezone: Some("Asia/Kolkata".into()),
            ..CronPatch::default()
        };
        moved.apply(&mut c).unwrap();
        let next = c.next_run_date.clone().unwrap();
        assert!(next > now(), "{next}");
        // 09:00 in Kolkata is 03:30 UTC.
        assert!(next.contains("T03:30:00.000000+00:00"), "{next}");
    }

    #[test]
    fn a_cron_whose_stored_timezone_cannot_be_read_refuses_a_new_schedule() {
        let mut c = cron();
        c.timezone = Some("Mars/Olympus_Mons".into());
        let patch = CronPatch {
            schedule: Some("0 10 * * *".into()),
            ..CronPatch::default()
        };
        assert!(matches!(
            patch.apply(&mut c),
            Err(ScheduleError::Timezone(_))
        ));
    }

    #[test]
    fn only_an_unmarked_row_of_the_same_graph_claiming_the_system_is_adopted() {
        let system = object(json!({"created_by": "system"}));
        let user = object(json!({"created_by": "u1"}));
        let decide = SystemAssistant::decide;
        assert_eq!(decide(None, "agent"), SystemAssistant::Created);
        assert_eq!(
            decide(Some((true, "other", &user)), "agent"),
            SystemAssistant::Kept
        );
        assert_eq!(
            decide(Some((false, "agent", &system)), "agent"),
            SystemAssistant::Adopted
        );
        assert_eq!(
            decide(Some((false, "other", &system)), "agent"),
            SystemAssistant::Replaced
        );
        assert_eq!(
            decide(Some((false, "agent", &user)), "agent"),
            SystemAssistant::Replaced
        );
    }
}
