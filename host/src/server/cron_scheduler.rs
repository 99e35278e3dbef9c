//! Firing crons: every second the scheduler looks for enabled crons that
//! are due, and creates each one's run as its creator, the way LangGraph's
//! scheduler does: a user with only the creator's identity (no permissions,
//! no custom fields), whose `threads.create_run` handler runs as for any
//! run. A stateless cron's thread is deleted after the run unless its
//! `on_run_completed` is `keep`.

use crate::storage::wait;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::AppState;
use super::auth::Caller;
use super::routes::CREATE_RUN;
use crate::runs::{RunCreate, Target};
use crate::schedule::next_run;
use crate::storage::Cron;
use crate::timestamp::now;
use crate::types::User;

/// How often due crons are looked for.
pub const TICK: Duration = Duration::from_secs(1);

/// Fires due crons while the server runs.
pub struct CronScheduler {
    state: Arc<AppState>,
}

impl CronScheduler {
    /// A scheduler over the server's state.
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    /// Runs until the process ends.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            let state = self.state.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || fire_due(&state)).await {
                tracing::error!("the cron scheduler failed: {e}");
            }
        }
    }
}

/// Fires every cron due now; returns how many runs were created.
pub fn fire_due(state: &Arc<AppState>) -> usize {
    let due = match wait(state.storage.due_crons(&now())) {
        Ok(due) => due,
        Err(e) => {
            tracing::error!("cannot read the due crons: {e}");
            return 0;
        }
    };
    let mut fired = 0;
    for cron in due {
        // The next firing is recorded first: a cron whose run fails does
        // not fire again at every tick.
        let next = match next_run(&cron.schedule, cron.timezone.as_deref()) {
            Ok(next) => Some(next),
            Err(e) => {
                tracing::error!(cron_id = %cron.cron_id, "the cron will not fire again: {e}");
                None
            }
        };
        let Some(due) = cron.next_run_date.as_deref() else {
            continue;
        };
        match wait(state.storage.claim_cron(cron.cron_id, due, next.as_deref())) {
            Ok(true) => {}
            // Another server sharing the database fired it.
            Ok(false) => continue,
            Err(e) => {
                tracing::error!(cron_id = %cron.cron_id, "cannot schedule the cron's next run: {e}");
                continue;
            }
        }
        match fire(state, &cron) {
            Ok(run_id) => {
                fired += 1;
                tracing::info!(cron_id = %cron.cron_id, %run_id, "cron fired");
            }
            Err(e) => {
                tracing::warn!(cron_id = %cron.cron_id, status = %e.status, detail = %e.detail, "cron run refused");
            }
        }
    }
    fired
}

fn fire(state: &Arc<AppState>, cron: &Cron) -> Result<uuid::Uuid, super::ApiError> {
    let mut payload = cron.payload.clone();
    if cron.thread_id.is_none() {
        let keep = cron.on_run_completed.as_deref() == Some("keep");
        payload.insert(
            "on_completion".into(),
            Value::from(if keep { "keep" } else { "delete" }),
        );
    }
    let body: RunCreate = serde_json::from_value(Value::Object(payload))
        .map_err(|e| super::ApiError::unprocessable(format!("the cron's payload: {e}")))?;
    let user = User::new(cron.user_id.clone().unwrap_or_default());
    let mut caller = Caller::acting_as(state, user, CREATE_RUN, "cron");
    let target = match cron.thread_id {
        Some(id) => Target::Thread(id),
        None => Target::Stateless,
    };
    let created = state
        .runs
        .create(&state.run_graphs(), &mut caller, target, body, &["values"])?;
    Ok(created.run.run_id)
}
