//! Structured logging into the host's log, tagged with the graph.
//!
//! Outside wasm (native unit tests) records go to standard error.

/// A log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected but handled.
    Warn,
    /// A failure.
    Error,
}

/// Writes one record with structured `fields`.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    crate::__private::log(level, message, fields);
}

/// Writes a trace record.
pub fn trace(message: &str) {
    log(Level::Trace, message, &[]);
}

/// Writes a debug record.
pub fn debug(message: &str) {
    log(Level::Debug, message, &[]);
}

/// Writes an info record.
pub fn info(message: &str) {
    log(Level::Info, message, &[]);
}

/// Writes a warning.
pub fn warn(message: &str) {
    log(Level::Warn, message, &[]);
}

/// Writes an error record.
pub fn error(message: &str) {
    log(Level::Error, message, &[]);
}
