//! PostgreSQL's and the pool's errors, as the seam's [`StorageError`]: no
//! connection to be had (the server down, the pool exhausted, a connection
//! lost) is [`StorageError::Unavailable`]; a constraint violated or a
//! concurrent transaction (serialization failure, deadlock) a
//! [`StorageError::Conflict`]; a string JSONB cannot hold (U+0000) a
//! [`StorageError::BadQuery`]; anything else [`StorageError::Backend`].

use tokio_postgres::error::SqlState;

use crate::storage::StorageError;

impl From<tokio_postgres::Error> for StorageError {
    fn from(error: tokio_postgres::Error) -> Self {
        let Some(code) = error.code() else {
            // No answer from the server: the connection is closed or broke.
            return Self::Unavailable(error.into());
        };
        if *code == SqlState::UNTRANSLATABLE_CHARACTER {
            return Self::BadQuery(
                "Unsupported character in a JSON document: a string cannot contain U+0000"
                    .to_owned(),
            );
        }
        let class = &code.code()[..2];
        match class {
            // Integrity constraints; serialization failures and deadlocks.
            "23" | "40" => Self::Conflict(error.into()),
            // Connection exceptions, insufficient resources, shutdown.
            "08" | "53" | "57" => Self::Unavailable(error.into()),
            _ => Self::Backend(error.into()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StorageError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        match error {
            deadpool_postgres::PoolError::Backend(error) => error.into(),
            other => Self::Unavailable(other.into()),
        }
    }
}
