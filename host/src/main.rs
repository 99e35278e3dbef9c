//! The `warden` command: `serve` a `langgraph.json`, or `call` a plugin's
//! handlers from the command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::{Map, Value, json};
use warden::config::Config;
use warden::plugin::{
    ArtefactKeySource, AuthPlugin, GraphComponent, GraphSlot, Limits, PluginSlot, Reloadable,
    Runtime, RuntimeOptions, Watcher,
};
use warden::server::AppState;
use warden::storage::{PostgresStorage, SqliteStorage, Storage, redacted};
use warden::telemetry::DecisionLog;
use warden::telemetry::query::{self, Question};

/// mimalloc: every request allocates a plugin instance's store, WASI
/// context and buffers on one of many blocking-pool threads, where glibc's
/// per-thread arenas spend a tenth of the server's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use warden::types::{Action, Outcome, Request, Resource, User};

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "A LangGraph-compatible agent server with WebAssembly auth plugins"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load and validate every plugin of a langgraph.json, then serve.
    ///
    /// Plugin files are watched: a new version (renamed into place or
    /// written in place) is validated and swapped in without a restart;
    /// SIGHUP reloads too. A version that fails is refused and the old one
    /// keeps serving (`/info` says why).
    Serve(ServeArgs),
    /// Like `serve`, and a plugin named by its crate directory is rebuilt
    /// for wasm32-wasip2 when its sources change, then swapped in.
    Dev(ServeArgs),
    /// Call one handler of a plugin and print the result as JSON.
    ///
    /// Exit status: 0 on success, 1 when the plugin answers with an HTTP
    /// error (or denies), 2 on a fault or when the plugin cannot be loaded.
    Call(CallArgs),
    /// Build a plugin's sources into a component and print its path: a
    /// Rust crate directory (cargo), a Python policy (`auth.py[:auth]`, or
    /// a directory with `pyproject.toml` and `auth.py`; componentize-py)
    /// or an npm package (its `build` script). Unchanged Python and npm
    /// sources are not built again.
    Build(BuildArgs),
    /// Create a plugin crate (`--graph`: a graph crate) with native tests
    /// and a langgraph.json serving it, ready for `warden dev`.
    New(warden::scaffold::NewArgs),
    /// Answer questions from a decision log (`auth.decision_log`): the
    /// records that match, as JSON lines, or `--by-digest` the decisions
    /// counted by plugin version and what changed from one to the next.
    Decisions(DecisionsArgs),
}

#[derive(Args)]
struct BuildArgs {
    /// The sources: a directory, or `path/to/auth.py[:object]`.
    path: PathBuf,
}

#[derive(Args)]
struct DecisionsArgs {
    /// The decision log (JSON lines); `-` reads standard input.
    log: PathBuf,
    /// Only the decisions about this identity.
    #[arg(long)]
    identity: Option<String>,
    /// Only the decisions of this request (its `x-request-id`).
    #[arg(long)]
    request_id: Option<String>,
    /// Only this outcome: allow, deny, filter or fault.
    #[arg(long, value_parser = ["allow", "deny", "filter", "fault"])]
    outcome: Option<String>,
    /// Only this event (`threads.create`), or `authenticate`.
    #[arg(long)]
    event: Option<String>,
    /// Only the decisions of the plugin versions whose digest starts so.
    #[arg(long)]
    digest: Option<String>,
    /// Count the matching decisions by plugin version instead of listing
    /// them.
    #[arg(long)]
    by_digest: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// The langgraph.json to serve.
    #[arg(long, default_value = "langgraph.json")]
    config: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0: any free port; see `--port-file`).
    #[arg(long, default_value_t = 8123)]
    port: u16,
    /// Once listening, write the port to this file (written aside, then
    /// renamed into place): how a script that passes `--port 0` learns
    /// the port. A file left there by an earlier start is removed first.
    #[arg(long, value_name = "PATH")]
    port_file: Option<PathBuf>,
    /// Where Warden keeps its data (database, compiled plugins).
    #[arg(long, default_value = "./.warden")]
    data_dir: PathBuf,
    /// The PostgreSQL database to keep the records in
    /// (`postgres://user:password@host:port/database`), which several
    /// servers may share; default: `DATABASE_URI` if set, else SQLite in
    /// `--data-dir`.
    #[arg(long, value_name = "URI")]
    database_url: Option<String>,
    /// Do not watch plugin files: reload them on SIGHUP only.
    #[arg(long)]
    no_watch: bool,
    /// How many runs execute at once; more wait their turn.
    #[arg(long, default_value_t = warden::server::DEFAULT_WORKERS)]
    workers: usize,
}

#[derive(Args)]
struct CallArgs {
    /// The plugin: a component .wasm, a plugin crate directory, a Python
    /// policy (`auth.py[:auth]`) or an npm package directory.
    plugin: PathBuf,
    #[command(subcommand)]
    handler: Handler,
    /// Where compiled plugins are cached.
    #[arg(long, global = true, default_value = "./.warden")]
    data_dir: PathBuf,
    /// Deadline of the call, in milliseconds.
    #[arg(long, global = true, default_value_t = warden::config::DEFAULT_TIMEOUT_MS)]
    timeout_ms: u64,
    /// Memory cap of the instance, in MiB.
    #[arg(long, global = true, default_value_t = warden::config::DEFAULT_MEMORY_MIB)]
    memory_mib: u64,
}

#[derive(Subcommand)]
enum Handler {
    /// Run `authenticate` on a request.
    Authenticate {
        /// A request header, `name: value` (repeatable).
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
        /// A query parameter, `key=value` (repeatable).
        #[arg(long = "query", short = 'q')]
        query: Vec<String>,
        /// The request method.
        #[arg(long, default_value = "GET")]
        method: String,
        /// The request path.
        #[arg(long, default_value = "/")]
        path: String,
    },
    /// Run the handler that covers an authorization event.
    Authorize {
        /// The resource: threads, assistants, crons or store.
        #[arg(long)]
        resource: String,
        /// The action: create, read, update, delete, search, create_run, put,
        /// get or list_namespaces.
        #[arg(long)]
        action: String,
        /// The user, as `authenticate` returns it: a JSON object with
        /// `identity` and optionally `display_name`, `is_authenticated`,
        /// `permissions` and other fields.
        #[arg(long)]
        user: String,
        /// The event's value, as JSON.
        #[arg(long, default_value = "{}")]
        value: String,
    },
}

fn main() -> ExitCode {
    // Before any runtime starts: the exporter's HTTP client runs its own.
    let traces = match warden::telemetry::Traces::from_env() {
        Ok(traces) => traces,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    {
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        // Colours only on a terminal: a log file or `docker logs` shows
        // none of their escape codes.
        let log = tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .with_filter(
                tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            );
        // Warden's own spans (requests at `info`, their auth and storage
        // work at `debug`), whatever WARDEN_LOG lets the log show.
        let spans = traces.as_ref().map(|traces| {
            traces.layer().with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("warden", tracing::Level::DEBUG),
            )
        });
        tracing_subscriber::registry().with(log).with(spans).init();
    }
    if let Some(traces) = &traces {
        tracing::info!(
            endpoint = traces.endpoint(),
            "exporting request spans over OTLP"
        );
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args, false).map(|()| ExitCode::SUCCESS),
        Command::Dev(args) => serve(args, true).map(|()| ExitCode::SUCCESS),
        Command::Call(args) => call(args),
        Command::Decisions(args) => decisions(args),
        Command::Build(args) => warden::plugin::locate_component(&args.path)
            .map(|wasm| println!("{}", wasm.display()))
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
        Command::New(args) => warden::scaffold::create(&args)
            .map(|created| print!("{created}"))
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::from(2)
    })
}

/// `serve`, or with `dev` also rebuilding plugin crates on source changes.
fn serve(args: ServeArgs, dev: bool) -> anyhow::Result<()> {
    if let Some(path) = &args.port_file {
        // Its appearance must mean that this server listens.
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing the old {}", path.display()));
            }
            _ => {}
        }
    }
    let config = Config::load(&args.config)?;
    let runtime = Arc::new(Runtime::new(RuntimeOptions {
        cache_dir: Some(args.data_dir.join("plugins")),
        artefact_key: ArtefactKeySource::Default,
        ..RuntimeOptions::default()
    })?);
    let auth = match &config.auth {
        Some(auth) => {
            let settings = auth.settings();
            let source = auth.resolved_path(&config);
            let plugin = AuthPlugin::load(&runtime, "auth", &source, settings)
                .with_context(|| format!("loading the auth plugin of {}", config.file.display()))?;
            let info = plugin.info();
            tracing::info!(
                plugin = %info.name,
                path = %info.path.display(),
                digest = %info.digest,
                contract = %info.contract,
                "auth plugin loaded"
            );
            if auth.studio_bypass() {
                tracing::warn!(
                    "STUDIO BYPASS ON (`auth.disable_studio_auth`: false): any request with \
                     the header `x-auth-scheme: langsmith` is served as `langgraph-studio-user` \
                     without calling `authenticate`, and Warden cannot verify LangSmith \
                     credentials. Never expose this server to anyone you do not trust; remove \
                     the key to turn the bypass off"
                );
            }
            Some(Arc::new(PluginSlot::new(runtime.clone(), &source, plugin)))
        }
        None => {
            tracing::warn!(
                "{} has no `auth` section: every request is served, unauthenticated",
                config.file.display()
            );
            None
        }
    };
    let mut graphs = std::collections::BTreeMap::new();
    for (graph_id, graph) in &config.graphs {
        let path = graph.resolved_path(&config);
        let component = GraphComponent::load(&runtime, graph_id, &path, graph.settings())
            .with_context(|| format!("loading graph `{graph_id}` of {}", config.file.display()))?;
        tracing::info!(
            graph = %graph_id,
            path = %component.path().display(),
            digest = %component.digest(),
            "graph loaded"
        );
        graphs.insert(
            graph_id.clone(),
            Arc::new(GraphSlot::new(runtime.clone(), &path, component)),
        );
    }
    let slots: Vec<Arc<dyn Reloadable>> = auth
        .iter()
        .map(|slot| slot.clone() as Arc<dyn Reloadable>)
        .chain(
            graphs
                .values()
                .map(|slot| slot.clone() as Arc<dyn Reloadable>),
        )
        .collect();
    let watcher = if args.no_watch {
        None
    } else {
        Some(Watcher::start(slots.clone(), dev)?)
    };
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .with_context(|| format!("invalid address {}:{}", args.host, args.port))?;
    let port_file = args.port_file;
    let decisions = match config.auth.as_ref().and_then(|a| a.decision_log.as_ref()) {
        Some(log) => Some(Arc::new(DecisionLog::open(log.settings(&config))?)),
        None => None,
    };
    let tokio = tokio::runtime::Runtime::new()?;
    tokio.block_on(async move {
        let storage = open_storage(args.database_url, &args.data_dir).await?;
        let queue = warden::runs::QueueSettings::from_env()?;
        let mut state =
            AppState::serving(&config, auth, storage, graphs, args.workers, queue).await?;
        state.decisions = decisions;
        let state = Arc::new(state);
        tokio::spawn(warden::server::CronScheduler::new(state.clone()).run());
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let bound = listener.local_addr()?;
        tracing::info!("warden listening on http://{bound}");
        if let Some(path) = &port_file {
            write_port_file(path, bound.port())?;
        }
        tokio::spawn(reload_on_sighup(slots));
        warden::server::serve(listener, state, shutdown_signal()).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    // A run stopped at shutdown but stuck in a host call does not hold
    // the exit: it is marked `error` at the next start.
    tokio.shutdown_timeout(std::time::Duration::from_secs(1));
    drop(watcher);
    drop(runtime);
    Ok(())
}

/// The records' database: PostgreSQL at `--database-url`, else at
/// `DATABASE_URI` (LangGraph's variable), else SQLite in `data_dir`.
async fn open_storage(flag: Option<String>, data_dir: &Path) -> anyhow::Result<Arc<dyn Storage>> {
    let env = std::env::var("DATABASE_URI").ok();
    let (uri, from) = match (flag, env) {
        (Some(uri), _) => (uri, "--database-url"),
        (None, Some(uri)) if !uri.trim().is_empty() => (uri, "DATABASE_URI"),
        _ => {
            let storage = SqliteStorage::open(data_dir)
                .with_context(|| format!("opening the database in {}", data_dir.display()))?;
            tracing::info!(path = %data_dir.join("warden.db").display(), "storage: SQLite");
            return Ok(Arc::new(storage));
        }
    };
    let shown = redacted(&uri);
    let storage = PostgresStorage::connect(&uri)
        .await
        .with_context(|| format!("opening the PostgreSQL database {shown} ({from})"))?;
    tracing::info!(database = %shown, "storage: PostgreSQL");
    Ok(Arc::new(storage))
}

/// Writes `port` to `path` atomically: to a file beside it, renamed over it,
/// so that a reader never sees it half written.
fn write_port_file(path: &Path, port: u16) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("--port-file {}: not a file name", path.display()))?;
    let mut aside = std::ffi::OsString::from(".");
    aside.push(name);
    aside.push(format!(".{}.tmp", std::process::id()));
    let aside = path.with_file_name(aside);
    std::fs::write(&aside, format!("{port}\n"))
        .and_then(|()| std::fs::rename(&aside, path))
        .with_context(|| format!("writing the port to {}", path.display()))
}

/// SIGHUP reloads every plugin (a crate directory is rebuilt first), off
/// the request path.
async fn reload_on_sighup(slots: Vec<Arc<dyn Reloadable>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot handle SIGHUP: reload by replacing the plugin files");
        return;
    };
    while hangup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading plugins");
        for slot in &slots {
            let slot = Arc::clone(slot);
            // Swaps and refusals are logged by the slot.
            let _ = tokio::task::spawn_blocking(move || match slot.source_dir() {
                Some(_) => slot.rebuild(),
                None => slot.reload(),
            })
            .await;
        }
    }
}

fn call(args: CallArgs) -> anyhow::Result<ExitCode> {
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: Some(args.data_dir.join("plugins")),
        artefact_key: ArtefactKeySource::Default,
        ..RuntimeOptions::default()
    })?;
    let limits = Limits {
        timeout: std::time::Duration::from_millis(args.timeout_ms),
        memory_bytes: usize::try_from(args.memory_mib << 20)?,
    };
    let plugin = AuthPlugin::load(&runtime, &plugin_name(&args.plugin), &args.plugin, limits)?;
    let mut session = match plugin.session() {
        Ok(session) => session,
        Err(fault) => return Ok(print_fault(&fault)),
    };
    match args.handler {
        Handler::Authenticate {
            headers,
            query,
            method,
            path,
        } => {
            let mut request = Request::new(method.to_ascii_uppercase(), path);
            for header in headers {
                let Some((name, value)) = header.split_once(':') else {
                    bail!("--header {header:?}: expected `name: value`");
                };
                request = request.with_header(name.trim(), value.trim());
            }
            for pair in query {
                let (key, value) = pair.split_once('=').unwrap_or((&pair, ""));
                request = request.with_query(key, value);
            }
            match session.authenticate(&request) {
                Ok(Ok(user)) => Ok(print(&user_json(&user), ExitCode::SUCCESS)),
                Ok(Err(error)) => Ok(print(
                    &error_json(error.status, error.detail.as_deref(), &error.headers),
                    ExitCode::from(1),
                )),
                Err(fault) => Ok(print_fault(&fault)),
            }
        }
        Handler::Authorize {
            resource,
            action,
            user,
            value,
        } => {
            let resource = parse_name(&resource, Resource::ALL, "resource")?;
            let action = parse_name(&action, Action::ALL, "action")?;
            let Some(event) = warden::types::Event::new(resource, action) else {
                bail!("{resource} has no action {action}");
            };
            let user = parse_user(&user)?;
            let value: Value = serde_json::from_str(&value).context("--value is not JSON")?;
            match session.authorize(&user, event, &value) {
                Ok(Ok(verdict)) => {
                    let handler = verdict.handler.map(warden::server::handler_name);
                    let value = verdict.value.unwrap_or(value);
                    let (decision, filter, code) = match verdict.outcome {
                        Outcome::Allow => ("allow", Value::Null, ExitCode::SUCCESS),
                        Outcome::Deny => ("deny", Value::Null, ExitCode::from(1)),
                        Outcome::Filter(f) => ("filter", f.to_json(), ExitCode::SUCCESS),
                    };
                    let mut out = json!({"event": format!("{resource}.{action}"), "handler": handler, "decision": decision});
                    if decision == "deny" {
                        out["status"] = json!(403);
                        out["detail"] = json!("Forbidden");
                    }
                    if !filter.is_null() {
                        out["filter"] = filter;
                    }
                    out["value"] = value;
                    Ok(print(&out, code))
                }
                Ok(Err(error)) => Ok(print(
                    &error_json(error.status, error.detail.as_deref(), &error.headers),
                    ExitCode::from(1),
                )),
                Err(fault) => Ok(print_fault(&fault)),
            }
        }
    }
}

fn plugin_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".to_owned())
}

fn parse_name<T: Copy + std::fmt::Display>(text: &str, all: &[T], what: &str) -> anyhow::Result<T> {
    let wanted = text.replace('-', "_");
    all.iter()
        .copied()
        .find(|v| v.to_string() == wanted)
        .with_context(|| {
            let names: Vec<String> = all.iter().map(ToString::to_string).collect();
            format!(
                "unknown {what} {text:?}; expected one of {}",
                names.join(", ")
            )
        })
}

fn parse_user(text: &str) -> anyhow::Result<User> {
    let Value::Object(mut fields) = serde_json::from_str(text).context("--user is not JSON")?
    else {
        bail!("--user must be a JSON object");
    };
    let Some(Value::String(identity)) = fields.remove("identity") else {
        bail!("--user needs a string `identity`");
    };
    let mut user = User::new(identity);
    if let Some(name) = fields.remove("display_name") {
        user.display_name = Some(
            name.as_str()
                .context("`display_name` must be a string")?
                .to_owned(),
        );
    }
    if let Some(flag) = fields.remove("is_authenticated") {
        user.is_authenticated = flag
            .as_bool()
            .context("`is_authenticated` must be a boolean")?;
    }
    if let Some(permissions) = fields.remove("permissions") {
        user.permissions = serde_json::from_value(permissions)
            .context("`permissions` must be a list of strings")?;
    }
    user.extra = fields;
    Ok(user)
}

/// The user as LangGraph's mapping view shows it.
fn user_json(user: &User) -> Value {
    let mut out = Map::new();
    out.insert("identity".into(), json!(user.identity));
    out.insert("display_name".into(), json!(user.name()));
    out.insert("is_authenticated".into(), json!(user.is_authenticated));
    out.insert("permissions".into(), json!(user.permissions));
    for (k, v) in &user.extra {
        out.insert(k.clone(), v.clone());
    }
    if !user.private_fields.is_empty() {
        out.insert("private_fields".into(), json!(user.private_fields));
    }
    Value::Object(out)
}

fn error_json(status: u16, detail: Option<&str>, headers: &[(String, String)]) -> Value {
    let mut out = json!({"status": status, "detail": detail});
    if !headers.is_empty() {
        out["headers"] = json!(headers);
    }
    out
}

fn print(value: &Value, code: ExitCode) -> ExitCode {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
    code
}

fn print_fault(fault: &warden::plugin::Fault) -> ExitCode {
    eprintln!("fault ({}): {fault}", fault.kind());
    ExitCode::from(2)
}

/// Ctrl-C or SIGTERM (what process managers and `docker stop` send): stop
/// accepting, settle the runs in flight, end the streams (see
/// `warden::server::serve`).
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

/// `warden decisions`: the records of a decision log that answer the
/// question, or their count by plugin version.
fn decisions(args: DecisionsArgs) -> anyhow::Result<ExitCode> {
    let question = Question {
        identity: args.identity,
        request_id: args.request_id,
        outcome: args.outcome,
        event: args.event,
        digest: args.digest,
    };
    let read = if args.log.as_os_str() == "-" {
        query::read(std::io::stdin().lock(), &question)?
    } else {
        let file = std::fs::File::open(&args.log)
            .with_context(|| format!("cannot open {}", args.log.display()))?;
        query::read(std::io::BufReader::new(file), &question)?
    };
    if read.unreadable > 0 {
        eprintln!(
            "warning: {} line(s) of {} are not decision records (skipped)",
            read.unreadable,
            args.log.display()
        );
    }
    if args.by_digest {
        print!(
            "{}",
            query::render_by_digest(&query::by_digest(&read.records))
        );
    } else {
        let mut out = std::io::stdout().lock();
        for record in &read.records {
            use std::io::Write as _;
            writeln!(out, "{record}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
