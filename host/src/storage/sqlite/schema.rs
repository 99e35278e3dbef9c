//! The SQLite schema, in one place: the migrations, applied in order at
//! open. `PRAGMA user_version` counts those a database has applied.
//!
//! A released migration is never edited nor renumbered (databases out
//! there have applied it): a change is a new entry at the end. The test
//! below pins each released entry's text.

use super::Result;

/// The schema, one migration per entry; `PRAGMA user_version` counts those applied.
pub(super) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE threads (
    thread_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    state_updated_at TEXT NOT NULL,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    state_values TEXT,
    interrupts TEXT NOT NULL,
    error TEXT
);
CREATE INDEX threads_owner ON threads (json_extract(metadata, '$.owner'), updated_at);
CREATE INDEX threads_updated_at ON threads (updated_at);

CREATE TABLE assistants (
    assistant_id TEXT PRIMARY KEY,
    graph_id TEXT NOT NULL,
    config TEXT NOT NULL,
    context TEXT NOT NULL,
    metadata TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX assistants_owner ON assistants (json_extract(metadata, '$.owner'));
CREATE TABLE assistant_versions (
    assistant_id TEXT NOT NULL REFERENCES assistants (assistant_id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    graph_id TEXT NOT NULL,
    config TEXT NOT NULL,
    context TEXT NOT NULL,
    metadata TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (assistant_id, version)
);

CREATE TABLE crons (
    cron_id TEXT PRIMARY KEY,
    assistant_id TEXT NOT NULL,
    thread_id TEXT REFERENCES threads (thread_id) ON DELETE CASCADE,
    user_id TEXT,
    end_time TEXT,
    schedule TEXT NOT NULL,
    timezone TEXT,
    payload TEXT NOT NULL,
    next_run_date TEXT,
    metadata TEXT NOT NULL,
    on_run_completed TEXT,
    enabled INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX crons_owner ON crons (json_extract(metadata, '$.owner'));
CREATE INDEX crons_thread ON crons (thread_id);

CREATE TABLE store_items (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
);
"#,
    r#"
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    assistant_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    status TEXT NOT NULL,
    metadata TEXT NOT NULL,
    kwargs TEXT NOT NULL,
    multitask_strategy TEXT NOT NULL
);
CREATE INDEX runs_thread ON runs (thread_id, created_at);
CREATE INDEX runs_in_flight ON runs (status) WHERE status IN ('pending', 'running');

CREATE TABLE checkpoints (
    thread_id TEXT NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    checkpoint_id TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    run_id TEXT,
    state_values TEXT NOT NULL,
    next TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_id)
);
CREATE INDEX checkpoints_run ON checkpoints (run_id);
"#,
    // Which assistants the server created (a graph's system assistant):
    // a marker no client can write, unlike `metadata.created_by`.
    r#"
ALTER TABLE assistants ADD COLUMN server_owned INTEGER NOT NULL DEFAULT 0;
"#,
    // The `interrupt` calls a run paused on, with the checkpoint it paused
    // at (a JSON array; a checkpoint written before reads as none).
    r#"
ALTER TABLE checkpoints ADD COLUMN interrupts TEXT NOT NULL DEFAULT '[]';
"#,
    // The states of the tasks a `Send` made, the first of the checkpoint's
    // `next`, and what the tasks of a paused step that finished returned
    // (JSON arrays; a checkpoint written before has none).
    r#"
ALTER TABLE checkpoints ADD COLUMN sends TEXT NOT NULL DEFAULT '[]';
ALTER TABLE checkpoints ADD COLUMN finished TEXT NOT NULL DEFAULT '[]';
"#,
];

/// Applies the migrations `conn`'s database has not, each in its own
/// transaction with the version it brings.
pub(super) fn migrate(conn: &mut rusqlite::Connection) -> Result<()> {
    let applied: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    /// SHA-256 of each released migration, in order. A new migration adds
    /// its line; an existing line never changes.
    const RELEASED: &[&str] = &[
        "f782f253fe6753d8c370c082c17b505bbf1902b22fcb00241cae9f1ef56dbf6c",
        "6279f8146476a889ef83a400a5402c1430743fcd9cdf1ea55e8ed1833c78931e",
        "17c639abab0caa8a74af96f999d3767bdcf075fdce944edd3ff15de474a78067",
        "994af88ca4332f2952328c3744529846a0d5ad00f0cbe78e35331405c2d235a7",
        "811fe6c4fb1ec582e4fa3c3276c699a62513c4579a9f3c55ce47c8de9d4e93f3",
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

    #[test]
    fn a_database_is_migrated_once_from_where_it_stands() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        // A database of the release before the assistants' marker.
        for sql in &MIGRATIONS[..2] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 2).unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let version: usize = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
        let marker: i64 = conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info('assistants') WHERE name = 'server_owned'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(marker, 1);
    }

    #[test]
    fn a_checkpoint_written_before_the_interrupts_and_sends_columns_has_none() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        let thread = uuid::Uuid::now_v7();
        conn.execute(
            "INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at, metadata, \
             status, config, interrupts) VALUES (?1, '', '', '', '{}', 'idle', '{}', '{}')",
            [thread.to_string()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO checkpoints (thread_id, checkpoint_id, parent_checkpoint_id, run_id, \
             state_values, next, metadata, created_at) \
             VALUES (?1, 'c1', NULL, NULL, '{}', '[\"node\"]', '{}', '')",
            [thread.to_string()],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let read = super::super::runs::checkpoint(&conn, thread, "c1")
            .unwrap()
            .unwrap();
        assert_eq!(read.next, ["node"]);
        assert!(read.interrupts.is_empty());
        assert!(read.sends.is_empty());
        assert!(read.finished.is_empty());
    }
}
