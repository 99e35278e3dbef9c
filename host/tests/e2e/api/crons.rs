//! Crons: owned by their creator, scoped by the reference policy on the
//! cron and on its thread, and read in their timezone.

use axum::http::StatusCode;
use serde_json::json;

use super::{AGENT, reference};
use crate::support::{Client, Cron};

/// A cron's `next_run_date` as UTC (hour, minute), checked to fall within
/// the next day.
fn next_firing(cron: &Cron) -> (u32, u32) {
    use chrono::Timelike;
    let text = cron.next_run_date.as_deref().expect("a next_run_date");
    let next = chrono::DateTime::parse_from_rfc3339(text).expect("RFC 3339");
    let ahead = next.to_utc() - chrono::Utc::now();
    assert!(
        ahead > chrono::TimeDelta::zero() && ahead <= chrono::TimeDelta::days(1),
        "{text}"
    );
    (next.hour(), next.minute())
}

/// A cron firing at 09:30 in Kolkata (UTC+5:30, no daylight saving): at
/// 04:00 UTC.
async fn kolkata(user1: &Client) -> Cron {
    user1
        .create_cron(
            json!({"assistant_id": "agent", "schedule": "30 9 * * *", "timezone": "Asia/Kolkata"}),
        )
        .await
}

#[tokio::test]
async fn a_schedule_is_read_in_the_crons_timezone() {
    let server = reference();
    let cron = kolkata(&server.user("user1-token")).await;
    assert_eq!(cron.timezone.as_deref(), Some("Asia/Kolkata"));
    assert_eq!(next_firing(&cron), (4, 0));
}

#[tokio::test]
async fn a_new_timezone_alone_moves_the_next_firing_and_is_not_run_payload() {
    let server = reference();
    let user1 = server.user("user1-token");
    let id = kolkata(&user1).await.cron_id;
    let utc = user1.update_cron(&id, json!({"timezone": "UTC"})).await;
    assert_eq!(utc.timezone.as_deref(), Some("UTC"));
    assert_eq!(next_firing(&utc), (9, 30));
    assert_eq!(utc.payload.get("timezone"), None);
    let back = user1
        .update_cron(&id, json!({"timezone": "Asia/Kolkata"}))
        .await;
    assert_eq!(next_firing(&back), (4, 0));
}

#[tokio::test]
async fn a_new_schedule_alone_is_read_in_the_crons_timezone() {
    let server = reference();
    let user1 = server.user("user1-token");
    let id = kolkata(&user1).await.cron_id;
    let noon = user1
        .update_cron(&id, json!({"schedule": "0 12 * * *"}))
        .await;
    assert_eq!(next_firing(&noon), (6, 30));
    let stored = user1.cron(&id).await;
    assert_eq!(
        (stored.timezone.as_deref(), next_firing(&stored)),
        (Some("Asia/Kolkata"), (6, 30))
    );
}

#[tokio::test]
async fn an_unknown_timezone_is_the_references_422_and_changes_nothing() {
    let server = reference();
    let user1 = server.user("user1-token");
    let id = kolkata(&user1).await.cron_id;
    let stored = user1.cron(&id).await;
    let detail = json!(
        "Invalid timezone: 'Mars/Olympus_Mons'. Use IANA timezone format (e.g. 'America/New_York')."
    );
    let bad = user1
        .post(
            "/runs/crons",
            json!({"assistant_id": "agent", "schedule": "* * * * *", "timezone": "Mars/Olympus_Mons"}),
        )
        .await;
    assert_eq!(
        (bad.status, bad.json["detail"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, detail.clone())
    );
    let bad = user1
        .patch(
            &format!("/runs/crons/{id}"),
            json!({"timezone": "Mars/Olympus_Mons", "schedule": "* * * * *"}),
        )
        .await;
    assert_eq!(
        (bad.status, bad.json["detail"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, detail)
    );
    assert_eq!(user1.cron(&id).await, stored);
}

/// user1's stateless cron, every five minutes.
async fn every_five_minutes(user1: &Client) -> Cron {
    user1
        .create_cron(
            json!({"assistant_id": "agent", "schedule": "*/5 * * * *", "input": {"messages": []}}),
        )
        .await
}

#[tokio::test]
async fn a_cron_is_stamped_with_its_creator() {
    let server = reference();
    let cron = every_five_minutes(&server.user("user1-token")).await;
    assert_eq!(cron.assistant_id, AGENT);
    assert_eq!(cron.metadata, json!({"owner": "user1"}));
    assert_eq!(cron.user_id.as_deref(), Some("user1"));
    assert_eq!(cron.on_run_completed.as_deref(), Some("delete"));
}

#[tokio::test]
async fn a_cron_on_a_thread_needs_access_to_the_thread() {
    let server = reference();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    let body = json!({"assistant_id": AGENT, "schedule": "0 9 * * 1"});
    let on_thread = user1.create_thread_cron(&thread, body.clone()).await;
    assert_eq!(on_thread.thread_id.as_deref(), Some(thread.as_str()));
    assert_eq!(on_thread.on_run_completed, None);
    let foreign = server
        .user("user2-token")
        .post(&format!("/threads/{thread}/runs/crons"), body)
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn search_and_count_see_only_the_callers_crons() {
    let server = reference();
    let user1 = server.user("user1-token");
    every_five_minutes(&user1).await;
    let thread = user1.create_thread(json!({})).await.thread_id;
    user1
        .create_thread_cron(
            &thread,
            json!({"assistant_id": AGENT, "schedule": "0 9 * * 1"}),
        )
        .await;
    let mine = user1.post("/runs/crons/search", json!({})).await;
    assert_eq!(mine.json.as_array().unwrap().len(), 2);
    let user2 = server.user("user2-token");
    let theirs = user2.post("/runs/crons/search", json!({})).await;
    assert_eq!(theirs.json, json!([]));
    assert_eq!(user2.count_crons(json!({})).await, 0);
    assert_eq!(user1.count_crons(json!({})).await, 2);
}

#[tokio::test]
async fn a_bad_schedule_or_an_unknown_assistant_is_a_422() {
    let server = reference();
    let user1 = server.user("user1-token");
    let bad = user1
        .post(
            "/runs/crons",
            json!({"assistant_id": "agent", "schedule": "bad"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.detail().starts_with("Invalid cron schedule: 'bad'."),
        "{}",
        bad.text
    );
    let bad = user1
        .post(
            "/runs/crons",
            json!({"assistant_id": "nope", "schedule": "* * * * *"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// A cron whose runs would ask for a pause (`interrupt_before`, ...) is
/// refused when it is created or patched, not when it fires.
#[tokio::test]
async fn a_cron_whose_runs_would_ask_for_a_pause_is_refused() {
    let server = reference();
    let user1 = server.user("user1-token");
    let refused = user1
        .post(
            "/runs/crons",
            json!({"assistant_id": "agent", "schedule": "*/5 * * * *",
                "interrupt_before": ["echo"]}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    assert!(
        refused
            .detail()
            .starts_with("interrupt_before is not supported"),
        "{}",
        refused.text
    );
    assert_eq!(user1.count_crons(json!({})).await, 0);

    let id = every_five_minutes(&user1).await.cron_id;
    let refused = user1
        .patch(
            &format!("/runs/crons/{id}"),
            json!({"command": {"resume": "approved"}}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    assert!(
        refused.detail().starts_with("command is not supported"),
        "{}",
        refused.text
    );
    let kept = user1.get(&format!("/runs/crons/{id}")).await;
    assert!(
        kept.json["payload"].get("command").is_none(),
        "{}",
        kept.text
    );
}

#[tokio::test]
async fn another_users_cron_is_not_found() {
    let server = reference();
    let id = every_five_minutes(&server.user("user1-token"))
        .await
        .cron_id;
    let user2 = server.user("user2-token");
    let path = format!("/runs/crons/{id}");
    assert_eq!(user2.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(user2.delete(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(server.user("user1-token").count_crons(json!({})).await, 1);
}

#[tokio::test]
async fn a_patch_changes_what_it_names_and_must_name_something() {
    let server = reference();
    let user1 = server.user("user1-token");
    let id = every_five_minutes(&user1).await.cron_id;
    let patched = user1
        .update_cron(&id, json!({"enabled": false, "schedule": "0 * * * *"}))
        .await;
    assert_eq!(
        (patched.enabled, patched.schedule.as_str()),
        (false, "0 * * * *")
    );
    let empty = user1.patch(&format!("/runs/crons/{id}"), json!({})).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_owner_deletes_a_cron() {
    let server = reference();
    let user1 = server.user("user1-token");
    let id = every_five_minutes(&user1).await.cron_id;
    let deleted = user1.delete(&format!("/runs/crons/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(user1.count_crons(json!({})).await, 0);
}

#[tokio::test]
async fn deleting_a_thread_deletes_its_crons() {
    let server = reference();
    let user1 = server.user("user1-token");
    let thread = user1.create_thread(json!({})).await.thread_id;
    user1
        .create_thread_cron(
            &thread,
            json!({"assistant_id": AGENT, "schedule": "0 9 * * 1"}),
        )
        .await;
    assert_eq!(user1.count_crons(json!({})).await, 1);
    user1.delete_thread(&thread).await;
    assert_eq!(user1.count_crons(json!({})).await, 0);
}
