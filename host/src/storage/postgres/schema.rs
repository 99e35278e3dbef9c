//! The PostgreSQL schema, in one place: the migrations, applied in order
//! at start-up, each recorded in `warden_schema` with its version.
//!
//! Several replicas may start at once: the migrations run in one
//! transaction holding an advisory lock ([`LOCK`]), so one replica applies
//! them and the others, once it commits, find nothing left to do.
//!
//! Documents are JSONB. A `jsonb_path_ops` GIN index on each filtered
//! document serves the plugins' filters (`metadata @> {"owner": ...}`,
//! `filter.rs`), without GIN's pending list (`fastupdate = off`): with it,
//! every search scans the entries inserted since the last vacuum (up to
//! 4 MB), which made an owner's search of 100 000 threads take 4 ms
//! instead of 0.3 ms; an insert updates the index at once instead. Timestamps are the RFC 3339 text the API serves, in a
//! fixed format whose byte order is time order: the ordered text columns
//! are `COLLATE "C"`, whatever the database's collation.
//!
//! The run queue (migration 2) keeps, beside each run, what executing it
//! needs (`job`: the full config, private user fields included, which the
//! API never serves), its lease and attempt, and a cancellation asked of
//! it; a unique index holds one running run per thread whatever the
//! replicas race for; `run_events` holds every run's stream, kept a while
//! after its run is deleted (a stateless run's followers read its end after
//! its thread is gone), then swept.
//!
//! A released migration is never edited nor renumbered (databases out
//! there have applied it): a change is a new entry at the end. The test
//! below pins each released entry's text.

use tokio_postgres::GenericClient;

use crate::storage::{Result, StorageError};

/// The advisory lock the migrations hold (`'warden:schema'` as a number).
pub(super) const LOCK: i64 = 0x7761_7264_656e_5f31;

/// The schema, one migration per entry; `warden_schema` lists those applied.
pub(super) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE threads (
    thread_id uuid PRIMARY KEY,
    created_at text COLLATE "C" NOT NULL,
    updated_at text COLLATE "C" NOT NULL,
    state_updated_at text COLLATE "C" NOT NULL,
    metadata jsonb NOT NULL,
    status text COLLATE "C" NOT NULL,
    config jsonb NOT NULL,
    state_values jsonb,
    interrupts jsonb NOT NULL,
    error jsonb
);
CREATE INDEX threads_metadata ON threads USING gin (metadata jsonb_path_ops)
    WITH (fastupdate = off);
CREATE INDEX threads_updated_at ON threads (updated_at);

CREATE TABLE assistants (
    assistant_id uuid PRIMARY KEY,
    graph_id text NOT NULL,
    config jsonb NOT NULL,
    context jsonb NOT NULL,
    metadata jsonb NOT NULL,
    name text NOT NULL,
    description text,
    version bigint NOT NULL,
    created_at text COLLATE "C" NOT NULL,
    updated_at text COLLATE "C" NOT NULL,
    server_owned boolean NOT NULL DEFAULT false
);
CREATE INDEX assistants_metadata ON assistants USING gin (metadata jsonb_path_ops)
    WITH (fastupdate = off);

CREATE TABLE assistant_versions (
    assistant_id uuid NOT NULL REFERENCES assistants (assistant_id) ON DELETE CASCADE,
    version bigint NOT NULL,
    graph_id text NOT NULL,
    config jsonb NOT NULL,
    context jsonb NOT NULL,
    metadata jsonb NOT NULL,
    name text NOT NULL,
    description text,
    created_at text COLLATE "C" NOT NULL,
    PRIMARY KEY (assistant_id, version)
);

CREATE TABLE crons (
    cron_id uuid PRIMARY KEY,
    assistant_id uuid NOT NULL,
    thread_id uuid REFERENCES threads (thread_id) ON DELETE CASCADE,
    user_id text,
    end_time text COLLATE "C",
    schedule text NOT NULL,
    timezone text,
    payload jsonb NOT NULL,
    next_run_date text COLLATE "C",
    metadata jsonb NOT NULL,
    on_run_completed text,
    enabled boolean NOT NULL,
    created_at text COLLATE "C" NOT NULL,
    updated_at text COLLATE "C" NOT NULL
);
CREATE INDEX crons_metadata ON crons USING gin (metadata jsonb_path_ops)
    WITH (fastupdate = off);
CREATE INDEX crons_thread ON crons (thread_id);
CREATE INDEX crons_assistant ON crons (assistant_id);
CREATE INDEX crons_user ON crons (user_id);
CREATE INDEX crons_due ON crons (next_run_date) WHERE enabled;

CREATE TABLE store_items (
    namespace text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    value jsonb NOT NULL,
    created_at text COLLATE "C" NOT NULL,
    updated_at text COLLATE "C" NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX store_items_value ON store_items USING gin (value jsonb_path_ops)
    WITH (fastupdate = off);

CREATE TABLE runs (
    run_id uuid PRIMARY KEY,
    thread_id uuid NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    assistant_id uuid NOT NULL,
    created_at text COLLATE "C" NOT NULL,
    updated_at text COLLATE "C" NOT NULL,
    status text COLLATE "C" NOT NULL,
    metadata jsonb NOT NULL,
    kwargs jsonb NOT NULL,
    multitask_strategy text NOT NULL
);
CREATE INDEX runs_thread ON runs (thread_id, created_at);
CREATE INDEX runs_in_flight ON runs (status) WHERE status IN ('pending', 'running');

CREATE TABLE checkpoints (
    thread_id uuid NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    checkpoint_id text COLLATE "C" NOT NULL,
    parent_checkpoint_id text,
    run_id uuid,
    state_values jsonb NOT NULL,
    next jsonb NOT NULL,
    metadata jsonb NOT NULL,
    created_at text COLLATE "C" NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_id)
);
CREATE INDEX checkpoints_run ON checkpoints (run_id);
"#,
    r#"
ALTER TABLE runs
    ADD COLUMN job jsonb,
    ADD COLUMN not_before timestamptz,
    ADD COLUMN attempt integer NOT NULL DEFAULT 0,
    ADD COLUMN lease_owner text,
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN cancel text;
CREATE UNIQUE INDEX runs_one_running_per_thread ON runs (thread_id) WHERE status = 'running';
CREATE INDEX runs_leases ON runs (lease_owner) WHERE status = 'running';

CREATE TABLE run_events (
    run_id uuid NOT NULL,
    seq bigint NOT NULL,
    id text NOT NULL,
    event text NOT NULL,
    data text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);
"#,
    // The claim's indexes: pending runs in queue order, a thread's pending
    // runs, and the leases that may lapse. Partial and walked in order, so
    // an index scan marks the entries of runs that moved on as dead (a
    // bitmap scan of `runs_in_flight` visited every one until a vacuum).
    // The queue's tables change fast: vacuumed sooner than by default.
    r#"
CREATE INDEX runs_pending ON runs (created_at, run_id) WHERE status = 'pending';
CREATE INDEX runs_pending_on_thread ON runs (thread_id, created_at, run_id)
    WHERE status = 'pending';
CREATE INDEX runs_lapsing ON runs (lease_until) WHERE status = 'running';
ALTER TABLE runs SET (autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE run_events SET (autovacuum_vacuum_scale_factor = 0.02);
"#,
    // The `interrupt` calls a run paused on, with the checkpoint it paused
    // at (a checkpoint written before reads as none).
    r#"
ALTER TABLE checkpoints ADD COLUMN interrupts jsonb NOT NULL DEFAULT '[]';
"#,
    // The states of the tasks a `Send` made, the first of the checkpoint's
    // `next`, and what the tasks of a paused step that finished returned
    // (a checkpoint written before has none).
    r#"
ALTER TABLE checkpoints ADD COLUMN sends jsonb NOT NULL DEFAULT '[]';
ALTER TABLE checkpoints ADD COLUMN finished jsonb NOT NULL DEFAULT '[]';
"#,
];

/// Applies the migrations the database has not, in one transaction under
/// the advisory lock [`LOCK`]. A database migrated by a newer Warden (more
/// versions than this one knows) is refused.
pub(super) async fn migrate(client: &mut tokio_postgres::Client) -> Result<()> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS warden_schema (\
         version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let applied = applied(&tx).await?;
    if applied > MIGRATIONS.len() {
        return Err(StorageError::Backend(
            format!(
                "the database's schema is at version {applied}, newer than this Warden's \
                 ({}): upgrade Warden",
                MIGRATIONS.len()
            )
            .into(),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.batch_execute(sql).await?;
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO warden_schema (version) VALUES ($1)",
            &[&version],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// How many migrations the database has applied.
pub(super) async fn applied(c: &impl GenericClient) -> Result<usize> {
    let row = c
        .query_one("SELECT coalesce(max(version), 0) FROM warden_schema", &[])
        .await?;
    let version: i32 = row.try_get(0)?;
    Ok(usize::try_from(version).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    /// SHA-256 of each released migration, in order. A new migration adds
    /// its line; an existing line never changes.
    const RELEASED: &[&str] = &[
        "dc9f382b45317ed941741917fa67822fd67dff97199af6ab379189fed5fbf30b",
        "1d0a7dd46182bb12cb890057d280186dbeb39e7bb9593a27b6c4e0acfd58f2c4",
        "4c2a052189e46420cb89b621f0d7dc2db03ba66942747f6708255c11cd4b5437",
        "96367cf02b9400933671eb4bc59fe4c0ee41e7f9ada9a276f6bd4afbeadf6f53",
        "d7e607a2ae3d20a6d84f24246b89cd93f8d0f5de56c08ce1924362a5384b2b32",
    ];

    #[test]
    fn released_migrations_are_never_edited() {
        let hashes: Vec<String> = MIGRATIONS
            .iter()
            .map(|sql| {
                Sha256::digest(sql.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            })
            .collect();
        assert_eq!(&hashes[..RELEASED.len()], RELEASED);
    }

    #[tokio::test]
    async fn a_checkpoint_written_before_the_interrupts_and_sends_columns_has_none() {
        use crate::storage::Storage;
        use crate::storage::conformance::TestDatabase;

        let database = TestDatabase::create().await;
        let (client, connection) = tokio_postgres::connect(&database.uri(), tokio_postgres::NoTls)
            .await
            .unwrap();
        let connection = tokio::spawn(connection);
        client
            .batch_execute("CREATE TABLE warden_schema (version integer PRIMARY KEY)")
            .await
            .unwrap();
        for (i, sql) in MIGRATIONS[..3].iter().enumerate() {
            client.batch_execute(sql).await.unwrap();
            let version = i32::try_from(i + 1).unwrap();
            client
                .execute(
                    "INSERT INTO warden_schema (version) VALUES ($1)",
                    &[&version],
                )
                .await
                .unwrap();
        }
        let thread = uuid::Uuid::now_v7();
        client
            .execute(
                "INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at, \
                 metadata, status, config, interrupts) VALUES ($1, '', '', '', '{}', 'idle', \
                 '{}', '{}')",
                &[&thread],
            )
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO checkpoints (thread_id, checkpoint_id, state_values, next, \
                 metadata, created_at) VALUES ($1, 'c1', '{}', '[\"node\"]', '{}', '')",
                &[&thread],
            )
            .await
            .unwrap();
        drop(client);
        let _ = connection.await;
        let storage = database.storage().await;
        let read = storage.checkpoint(thread, "c1").await.unwrap().unwrap();
        assert_eq!(read.next, ["node"]);
        assert!(read.interrupts.is_empty());
        assert!(read.sends.is_empty());
        assert!(read.finished.is_empty());
    }
}
