//! What auth plugins and graph components share as components: how a file
//! is recognised and identified, which contract version it exports, the
//! clocks a sandbox gives, and how a failed call is classified.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};

use super::error::{Fault, LoadError};

/// What identifies a loaded plugin (shown by `/info` and in logs).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginInfo {
    /// The plugin's name in the configuration (`auth`).
    pub name: String,
    /// The component file.
    pub path: PathBuf,
    /// SHA-256 of the component, hex.
    pub digest: String,
    /// The `warden:auth` contract version it was built for.
    pub contract: String,
}

/// Refuses files that are not components, with a message that says what they are.
pub(super) fn check_header(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    let not = |what| {
        Err(LoadError::NotAComponent {
            path: path.to_owned(),
            what,
        })
    };
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => not("a core WebAssembly module"),
        Some([0, b'a', b's', b'm', 0x0d, 0, 1, 0]) => Ok(()),
        Some([0, b'a', b's', b'm', ..]) => not("a WebAssembly binary of an unknown version"),
        _ => not("not a WebAssembly binary"),
    }
}

/// The digest plugins are identified and cached by: SHA-256, hex.
pub(crate) fn digest(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The version of `interface` the component exports: one of `supported`,
/// or `Err(Some(other))` for another version, `Err(None)` when it exports
/// none.
pub(super) fn exported_version(
    engine: &Engine,
    component: &Component,
    interface: &str,
    supported: &[&str],
) -> Result<String, Option<String>> {
    let prefix = format!("{interface}@");
    let mut found = None;
    for (name, _) in component.component_type().exports(engine) {
        if let Some(version) = name.strip_prefix(&prefix) {
            if supported.contains(&version) {
                return Ok(version.to_owned());
            }
            found = Some(version.to_owned());
        }
    }
    Err(found)
}

/// Classifies a failed call: past the memory cap, past the deadline
/// (epoch interruption, or a wait ended at it), or another trap.
pub(super) fn classify_fault(
    error: &wasmtime::Error,
    memory_exceeded: bool,
    timeout: Duration,
    memory_bytes: usize,
) -> Fault {
    if memory_exceeded {
        return Fault::Memory((memory_bytes >> 20) as u64);
    }
    if let Some(fault) = error.downcast_ref::<Fault>() {
        return fault.clone();
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Fault::Timeout(timeout.as_millis() as u64),
        Some(trap) => Fault::Trap(trap.to_string()),
        None => Fault::Trap(error.root_cause().to_string()),
    }
}

/// Clocks that read zero: a sandbox measures no durations (no timing side
/// channel). Auth plugins get the real wall clock (token expiry); graphs
/// get this one too (the same input gives the same output).
pub(super) struct FrozenClock;

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

/// How much of a guest's standard output (and error) one instance may write.
const CAPTURE_BYTES: usize = 64 * 1024;

/// A guest's standard output and error, captured for the host's log.
pub(super) struct Output {
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl Output {
    pub(super) fn new() -> Self {
        Self {
            stdout: MemoryOutputPipe::new(CAPTURE_BYTES),
            stderr: MemoryOutputPipe::new(CAPTURE_BYTES),
        }
    }

    /// A WASI context writing into this capture, with a frozen monotonic
    /// clock, that may block its thread (its waits are bounded:
    /// [`super::waits`]).
    pub(super) fn wasi(&self) -> WasiCtxBuilder {
        let mut builder = WasiCtxBuilder::new();
        builder
            .stdout(self.stdout.clone())
            .stderr(self.stderr.clone())
            .monotonic_clock(FrozenClock)
            .allow_blocking_current_thread(true);
        builder
    }

    /// Logs what the guest wrote, a line per entry, each passed through
    /// `redact` first.
    pub(super) fn log(&self, source: Source<'_>, redact: impl Fn(&str) -> String) {
        for (stream, pipe) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let bytes = pipe.contents();
            if bytes.is_empty() {
                continue;
            }
            let text = redact(&String::from_utf8_lossy(&bytes));
            for line in text.lines() {
                emit(source, tracing::Level::INFO, line, stream, "");
            }
        }
    }
}

/// Whose log line it is.
#[derive(Clone, Copy)]
pub(super) enum Source<'a> {
    /// An auth plugin's, by its name in the configuration.
    Plugin(&'a str),
    /// A graph's, by its id.
    Graph(&'a str),
}

/// Logs a guest's line at `level`, tagged with its source (`plugin=` or
/// `graph=`), the stream it came from (`stdout`, `stderr`, or `log` for the
/// `log` import) and its fields.
pub(super) fn emit(
    source: Source<'_>,
    level: tracing::Level,
    message: &str,
    stream: &str,
    fields: &str,
) {
    macro_rules! at {
        ($level:expr) => {
            match source {
                Source::Plugin(plugin) => {
                    tracing::event!($level, plugin, stream, fields, "{message}")
                }
                Source::Graph(graph) => tracing::event!($level, graph, stream, fields, "{message}"),
            }
        };
    }
    match level {
        tracing::Level::TRACE => at!(tracing::Level::TRACE),
        tracing::Level::DEBUG => at!(tracing::Level::DEBUG),
        tracing::Level::INFO => at!(tracing::Level::INFO),
        tracing::Level::WARN => at!(tracing::Level::WARN),
        _ => at!(tracing::Level::ERROR),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn digests_are_lower_case_hex_sha256() {
        assert_eq!(
            super::digest(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
