//! The servers the tests talk to: [`TestServer`], the API in this process
//! (a router over a fresh database, with graph slots: no socket, no
//! process), and [`ServerProcess`], the `warden` binary on a free port for
//! what only a process has (the command line, signals, file watching, the
//! bytes on the wire).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use warden::config::{Config, GraphConfig, LimitsConfig};
use warden::plugin::{AuthPlugin, GraphComponent, GraphLimits, GraphSlot, PluginSlot};
use warden::server::{AppState, router};
use warden::storage::SqliteStorage;

use super::{CEILING, Client, component, root, runtime};

/// The API served in this process; see [`TestServer::builder`].
pub struct TestServer {
    app: axum::Router,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A server with `auth` as its auth plugin (none: LangGraph's noop
    /// auth), the graph `agent` declared without a component (its system
    /// assistant exists; its runs fail) and an in-memory database.
    pub fn new(auth: Option<Arc<AuthPlugin>>) -> Self {
        let mut builder = Self::builder().declare("agent");
        if let Some(auth) = auth {
            builder = builder.auth(auth);
        }
        builder.build()
    }

    /// A server to configure.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder {
            auth: None,
            graphs: BTreeMap::new(),
            limits: LimitsConfig::default(),
            disable_studio_auth: true,
            on_disk: false,
        }
    }

    /// A client without credentials.
    pub fn client(&self) -> Client {
        Client::router(self.app.clone())
    }

    /// A client sending `token` as its bearer token.
    pub fn user(&self, token: &str) -> Client {
        self.client().as_user(token)
    }

    /// The router itself, for a request the client cannot make: a body
    /// that counts what is read of it, or one that never comes.
    pub fn router(&self) -> axum::Router {
        self.app.clone()
    }
}

/// How a [`TestServer`] is made.
pub struct TestServerBuilder {
    auth: Option<Arc<AuthPlugin>>,
    graphs: BTreeMap<String, Option<Arc<GraphComponent>>>,
    limits: LimitsConfig,
    disable_studio_auth: bool,
    on_disk: bool,
}

impl TestServerBuilder {
    /// With this auth plugin.
    pub fn auth(mut self, plugin: Arc<AuthPlugin>) -> Self {
        self.auth = Some(plugin);
        self
    }

    /// Serving the prebuilt graph `crate_name` as `graph_id`, with the
    /// default deadline (10 minutes) and memory cap.
    pub fn graph(self, graph_id: &str, crate_name: &str) -> Self {
        let limits = GraphConfig::from("./unused").limits();
        self.graph_with(graph_id, crate_name, limits)
    }

    /// Serving the prebuilt graph `crate_name` as `graph_id` with these
    /// limits.
    pub fn graph_with(self, graph_id: &str, crate_name: &str, limits: GraphLimits) -> Self {
        let graph = GraphComponent::load(runtime(), graph_id, &component(crate_name), limits)
            .unwrap_or_else(|e| panic!("{crate_name} loads: {e}"));
        self.graph_component(graph_id, graph)
    }

    /// Serving this loaded graph as `graph_id`.
    pub fn graph_component(mut self, graph_id: &str, graph: Arc<GraphComponent>) -> Self {
        self.graphs.insert(graph_id.to_owned(), Some(graph));
        self
    }

    /// With `graph_id` in the configuration but no component loaded.
    pub fn declare(mut self, graph_id: &str) -> Self {
        self.graphs.insert(graph_id.to_owned(), None);
        self
    }

    /// With this `limits` section.
    pub fn limits(mut self, limits: LimitsConfig) -> Self {
        self.limits = limits;
        self
    }

    /// With Studio's bypass on (`auth.disable_studio_auth: false`).
    pub fn studio_bypass(mut self) -> Self {
        self.disable_studio_auth = false;
        self
    }

    /// Over a database in a temporary directory rather than in memory.
    pub fn on_disk(mut self) -> Self {
        self.on_disk = true;
        self
    }

    /// The server.
    pub fn build(self) -> TestServer {
        let config = Config {
            file: root().join("langgraph.json"),
            graphs: self
                .graphs
                .keys()
                .map(|id| (id.clone(), GraphConfig::from("./unused")))
                .collect(),
            auth: None,
            limits: self.limits,
        };
        let (storage, dir) = if self.on_disk {
            let dir = tempfile::tempdir().unwrap();
            let storage = SqliteStorage::open(dir.path()).expect("the database opens");
            (storage, Some(dir))
        } else {
            (SqliteStorage::in_memory().expect("in-memory db"), None)
        };
        let slot = self.auth.map(|plugin| {
            let source = plugin.info().path.clone();
            Arc::new(PluginSlot::new(Arc::clone(runtime()), &source, plugin))
        });
        let graphs = self
            .graphs
            .into_iter()
            .filter_map(|(id, graph)| {
                let graph = graph?;
                let path = graph.path().to_owned();
                let slot = GraphSlot::new(Arc::clone(runtime()), &path, graph);
                Some((id, Arc::new(slot)))
            })
            .collect();
        // SQLite's operations are done when first polled: no runtime needed.
        let serving = AppState::serving(
            &config,
            slot,
            Arc::new(storage),
            graphs,
            4,
            warden::runs::QueueSettings::default(),
        );
        let mut state = warden::storage::wait(serving).expect("state");
        state.disable_studio_auth = self.disable_studio_auth;
        TestServer {
            app: router(Arc::new(state)),
            _dir: dir,
        }
    }
}

/// A `warden` process (`serve` or `dev`) on a free port, killed on drop.
/// It reports its port through `--port-file`; its log goes to a file,
/// read with [`ServerProcess::log`].
pub struct ServerProcess {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    /// Holds the log and the port file.
    dir: tempfile::TempDir,
}

impl ServerProcess {
    /// `warden serve --config <config> --data-dir <data_dir>`; the log when
    /// it exits instead of listening.
    pub fn start(config: &Path, data_dir: &Path) -> Result<Self, String> {
        Self::start_with(&["serve"], config, data_dir, &[])
    }

    /// `warden <args…> --config <config> --data-dir <data_dir>`, with extra
    /// environment variables; the log when it exits instead of listening.
    pub fn start_with(
        args: &[&str],
        config: &Path,
        data_dir: &Path,
        env: &[(&str, &Path)],
    ) -> Result<Self, String> {
        Self::launch(args, config, data_dir, env).map_err(|(_, log)| log)
    }

    /// `warden serve --database-url <uri> --config <config> --data-dir
    /// <data_dir>`: its records in that PostgreSQL database; the log when
    /// it exits instead of listening.
    pub fn start_on_database(config: &Path, data_dir: &Path, uri: &str) -> Result<Self, String> {
        Self::start_with(&["serve", "--database-url", uri], config, data_dir, &[])
    }

    /// Runs `warden serve --no-watch` on `config`, expecting it to refuse
    /// to start: its exit code and log.
    pub fn refused(config: &Path, data_dir: &Path, env: &[(&str, &Path)]) -> (i32, String) {
        match Self::launch(&["serve", "--no-watch"], config, data_dir, env) {
            Ok(server) => panic!("warden started instead of refusing:\n{}", server.log()),
            Err((status, log)) => (status.code().unwrap_or(-1), log),
        }
    }

    #[allow(
        clippy::zombie_processes,
        reason = "Drop waits for the child; so does a failed start"
    )]
    fn launch(
        args: &[&str],
        config: &Path,
        data_dir: &Path,
        env: &[(&str, &Path)],
    ) -> Result<Self, (ExitStatus, String)> {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let port_file = dir.path().join("port");
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            // Port 0: the server picks a free port, so that tests running
            // side by side never race for one, and writes it to the file.
            .args(["--port", "0", "--port-file"])
            .arg(&port_file)
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            // The artefact key goes under target/, not the user's home.
            .env("XDG_STATE_HOME", root().join("target/warden-test-state"))
            // SQLite under `data_dir` unless the test names a database.
            .env_remove("DATABASE_URI")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        // Starting may compile every component: the poll ends when the
        // port is written or the process exits; the ceiling is for a hang.
        let deadline = Instant::now() + CEILING;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err((status, read(&log)));
            }
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let port = text.trim().parse().expect("a port in the port file");
                return Ok(Self { child, port, dir });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("warden neither listened nor exited:\n{}", read(&log));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit by itself: its status, or `None` if
    /// it is still running after `within`.
    pub fn wait_for_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        read(&self.dir.path().join("log"))
    }

    /// A client without credentials.
    pub fn client(&self) -> Client {
        Client::http(self.port)
    }

    /// A client sending `token` as its bearer token.
    pub fn user(&self, token: &str) -> Client {
        self.client().as_user(token)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    text
}
