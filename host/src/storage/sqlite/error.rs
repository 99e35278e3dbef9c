//! SQLite's and the connection pool's errors, as the seam's
//! [`StorageError`]: a busy or locked database and an exhausted pool are
//! [`StorageError::Unavailable`], a constraint violated is
//! [`StorageError::Conflict`], anything else [`StorageError::Backend`].

use rusqlite::ErrorCode;

use crate::storage::StorageError;

impl From<rusqlite::Error> for StorageError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                Self::Unavailable(error.into())
            }
            Some(ErrorCode::ConstraintViolation) => Self::Conflict(error.into()),
            _ => Self::Backend(error.into()),
        }
    }
}

impl From<r2d2::Error> for StorageError {
    fn from(error: r2d2::Error) -> Self {
        Self::Unavailable(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_database_is_unavailable_and_a_constraint_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let holder = rusqlite::Connection::open(&path).unwrap();
        holder
            .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY); BEGIN EXCLUSIVE;")
            .unwrap();
        let other = rusqlite::Connection::open(&path).unwrap();
        other.busy_timeout(std::time::Duration::ZERO).unwrap();
        let busy = other.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
        assert!(matches!(
            StorageError::from(busy),
            StorageError::Unavailable(_)
        ));
        holder
            .execute_batch("INSERT INTO t VALUES (1); COMMIT;")
            .unwrap();
        let taken = other.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
        assert!(matches!(
            StorageError::from(taken),
            StorageError::Conflict(_)
        ));
        let unknown = other
            .query_row("SELECT nope FROM t", [], |_| Ok(()))
            .unwrap_err();
        assert!(matches!(
            StorageError::from(unknown),
            StorageError::Backend(_)
        ));
    }
}
