//! What goes wrong with plugins: loading errors and call faults.

use std::path::PathBuf;

/// A plugin that cannot be loaded. Start-up stops with it: Warden never
/// serves without the auth plugin it was configured with.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The path does not exist.
    #[error("{}: no such file or directory", path.display())]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// The file cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Building the plugin's sources failed.
    #[error("{}: building the plugin failed: {reason}", dir.display())]
    Build {
        /// The sources' directory.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file is not a WebAssembly component.
    #[error("{}: {what}, not a WebAssembly component: build the plugin for wasm32-wasip2", path.display())]
    NotAComponent {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        what: &'static str,
    },
    /// The component does not compile.
    #[error("{}: invalid component: {reason}", path.display())]
    Compile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The component was built for a contract version this host does not speak.
    #[error(
        "{}: built for contract warden:auth@{found}, but this warden speaks {supported}: rebuild it with a warden-sdk for one of those",
        path.display()
    )]
    Contract {
        /// The file.
        path: PathBuf,
        /// The version the plugin was built for.
        found: String,
        /// The contracts this host speaks (`warden:auth@0.1.0, ...`).
        supported: String,
    },
    /// The component is not a Warden auth plugin.
    #[error("{}: does not export warden:auth/handlers: is it a Warden auth plugin?", path.display())]
    NotAPlugin {
        /// The file.
        path: PathBuf,
    },
    /// The component was built for a graph contract version this host does
    /// not speak.
    #[error(
        "{}: built for contract warden:graph@{found}, but this warden speaks warden:graph@{supported}: rebuild it with a warden-graph for {supported}",
        path.display()
    )]
    GraphContract {
        /// The file.
        path: PathBuf,
        /// The version the graph was built for.
        found: String,
        /// The version this host speaks.
        supported: String,
    },
    /// The component is not a Warden graph.
    #[error("{}: does not export warden:graph/graph: is it a Warden graph?", path.display())]
    NotAGraph {
        /// The file.
        path: PathBuf,
    },
    /// The component imports something the sandbox does not grant.
    #[error("{}: cannot be linked: {reason}", path.display())]
    Link {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Asking the plugin for its handlers failed.
    #[error("{}: handler registration failed: {fault}", path.display())]
    Registration {
        /// The file.
        path: PathBuf,
        /// The fault.
        fault: Fault,
    },
    /// A secret the configuration declares is missing from its source.
    #[error("secret `{name}` is not set: its source {from} is missing or empty")]
    MissingSecret {
        /// The secret's name in `auth.secrets`.
        name: String,
        /// Its source, e.g. `env:JWT_SECRET`.
        from: String,
    },
    /// A secret too short to be redacted: blanking it wherever it occurs
    /// would mangle ordinary text, and it is guessed in no time.
    #[error(
        "secret `{name}` (from {from}) is too short: secrets must be at least {min} bytes, so that redaction can find them"
    )]
    ShortSecret {
        /// The secret's name in `auth.secrets`.
        name: String,
        /// Its source, e.g. `env:JWT_SECRET`.
        from: String,
        /// The shortest length accepted, in bytes.
        min: usize,
    },
    /// The engine could not be set up.
    #[error("cannot start the plugin runtime: {0}")]
    Runtime(String),
}

/// A plugin call that failed. The request is refused (fail closed) with a
/// 500 whose detail names only the [`kind`](Fault::kind).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Fault {
    /// The call ran past its deadline.
    #[error("timeout: the call ran past its {0} ms deadline")]
    Timeout(u64),
    /// The instance tried to grow past its memory cap.
    #[error("memory: the instance tried to grow past its {0} MiB cap")]
    Memory(u64),
    /// The guest trapped (a panic, an `unreachable`, ...).
    #[error("trap: {0}")]
    Trap(String),
    /// The guest returned output the host cannot accept.
    #[error("bad output: {0}")]
    BadOutput(String),
    /// A fresh instance could not be created.
    #[error("instantiation: {0}")]
    Instantiate(String),
}

impl Fault {
    /// Every [`Fault::kind`].
    pub const KINDS: [&'static str; 5] = [
        "timeout",
        "memory limit",
        "trap",
        "invalid output",
        "instantiation failure",
    ];

    /// A short name of the kind of fault, for responses and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Timeout(_) => Self::KINDS[0],
            Fault::Memory(_) => Self::KINDS[1],
            Fault::Trap(_) => Self::KINDS[2],
            Fault::BadOutput(_) => Self::KINDS[3],
            Fault::Instantiate(_) => Self::KINDS[4],
        }
    }
}
