//! What a storage operation fails with, whatever the backend: each backend
//! maps its own errors into [`StorageError`] (SQLite's: `sqlite/error.rs`).

use crate::schedule::ScheduleError;

/// A backend's own error, boxed: the source of [`StorageError::Unavailable`],
/// [`StorageError::Conflict`] and [`StorageError::Backend`].
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A storage failure. The routes answer [`StorageError::BadQuery`] and
/// [`StorageError::Schedule`] with a 422 and their text, anything else
/// with a 500, logged.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database is busy or out of reach (no connection to be had, a
    /// lock held past the busy timeout): a later attempt may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] BackendError),
    /// A write conflicts with what is stored (a constraint, a concurrent
    /// transaction).
    #[error("database conflict: {0}")]
    Conflict(#[source] BackendError),
    /// Any other failure of the database.
    #[error("database: {0}")]
    Backend(#[source] BackendError),
    /// A stored document is not the JSON it should be.
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The auth plugin's filter, which the backend cannot express.
    #[error("unsupported filter: {0}")]
    Filter(String),
    /// A client's query or document that the backend cannot express (a
    /// key it cannot name exactly, a filter too large): the routes answer
    /// it with a 422 and this text.
    #[error("{0}")]
    BadQuery(String),
    /// A cron's schedule or timezone cannot be read (e.g. a timezone stored
    /// before timezones were checked).
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}
