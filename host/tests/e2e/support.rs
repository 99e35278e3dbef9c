//! Shared helpers: where the prebuilt guest components are, one shared
//! runtime, and a free-port server for the binary.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use warden::plugin::{ArtefactKeySource, AuthPlugin, Limits, PluginSlot, Runtime, RuntimeOptions};
use warden::types::{Request, User};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_owned()
}

/// The prebuilt component of a guest crate (`reference_auth`,
/// `fixture_hostile`, ...). `tests/run` builds them all once before
/// `cargo test`; building them here would rebuild guests in every test.
pub fn component(crate_name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let path = target
        .join("wasm32-wasip2/release")
        .join(format!("{crate_name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the guests first (tests/run does: \
         cargo build --release --target wasm32-wasip2 --workspace --exclude warden)",
        path.display()
    );
    path
}

/// One runtime for the whole test binary, caching compiled components
/// under the target directory so reruns skip compilation (their key is
/// there too, not in the user's home).
pub fn runtime() -> &'static Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Arc::new(
            Runtime::new(RuntimeOptions {
                cache_dir: Some(root().join("target/warden-test-cache")),
                artefact_key: ArtefactKeySource::File(
                    root().join("target/warden-test-state/warden/artefact.key"),
                ),
                ..RuntimeOptions::default()
            })
            .expect("the runtime starts"),
        )
    })
}

/// Loads a prebuilt guest with the default limits.
pub fn plugin(crate_name: &str) -> Arc<AuthPlugin> {
    plugin_with(crate_name, Limits::default())
}

/// Loads a prebuilt guest with these limits.
pub fn plugin_with(crate_name: &str, limits: Limits) -> Arc<AuthPlugin> {
    AuthPlugin::load(runtime(), crate_name, &component(crate_name), limits)
        .unwrap_or_else(|e| panic!("{crate_name} loads: {e}"))
}

/// A request with a bearer token.
pub fn bearer(token: &str) -> Request {
    Request::new("GET", "/threads").with_header("authorization", format!("Bearer {token}"))
}

/// Authenticates with a fresh session and expects a user.
pub fn login(plugin: &Arc<AuthPlugin>, request: &Request) -> User {
    plugin
        .session()
        .expect("instantiates")
        .authenticate(request)
        .expect("no fault")
        .expect("authenticated")
}

/// The API router over a fresh in-memory database, serving the graph
/// `agent`, with `plugin` as the auth plugin (none: LangGraph's noop auth).
pub fn app(plugin: Option<Arc<AuthPlugin>>) -> axum::Router {
    app_with(plugin, true)
}

/// [`app`], choosing `disable_studio_auth`.
pub fn app_with(plugin: Option<Arc<AuthPlugin>>, disable_studio_auth: bool) -> axum::Router {
    app_limited(plugin, disable_studio_auth, Default::default())
}

/// [`app_with`], with these `limits`.
pub fn app_limited(
    plugin: Option<Arc<AuthPlugin>>,
    disable_studio_auth: bool,
    limits: warden::config::LimitsConfig,
) -> axum::Router {
    let config = warden::config::Config {
        file: root().join("langgraph.json"),
        graphs: [("agent".to_owned(), "./agent".into())].into(),
        auth: None,
        limits,
    };
    let storage = Arc::new(warden::storage::SqliteStorage::in_memory().expect("in-memory db"));
    let slot = plugin.map(|plugin| {
        let source = plugin.info().path.clone();
        Arc::new(PluginSlot::new(Arc::clone(runtime()), &source, plugin))
    });
    let mut state = warden::server::AppState::new(&config, slot, storage).expect("state");
    state.disable_studio_auth = disable_studio_auth;
    warden::server::router(Arc::new(state))
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Its status.
    pub status: axum::http::StatusCode,
    /// Its headers.
    pub headers: axum::http::HeaderMap,
    /// Its body as JSON (`Null` when empty or not JSON).
    pub json: serde_json::Value,
    /// Its body as text.
    pub text: String,
}

/// Sends one request through the router, socket-free: `token` as a
/// bearer token (none when empty), `body` as JSON (none when `Null`).
pub async fn send(
    app: &axum::Router,
    method: &str,
    path: &str,
    token: &str,
    body: serde_json::Value,
) -> Reply {
    let authorization = format!("Bearer {token}");
    let headers: &[(&str, &str)] = if token.is_empty() {
        &[]
    } else {
        &[("authorization", &authorization)]
    };
    send_with(app, method, path, headers, body).await
}

/// [`send`] with explicit headers.
pub async fn send_with(
    app: &axum::Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: serde_json::Value,
) -> Reply {
    let body = (!body.is_null()).then(|| body.to_string());
    send_raw(app, method, path, headers, body).await
}

/// Sends `body` as is (JSON content type), or no body.
pub async fn send_raw(
    app: &axum::Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Reply {
    use tower::ServiceExt;
    let mut request = axum::http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = match body {
        None => axum::body::Body::empty(),
        Some(text) => {
            request = request.header("content-type", "application/json");
            axum::body::Body::from(text)
        }
    };
    let response = app
        .clone()
        .oneshot(request.body(body).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Reply {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        text,
    }
}

/// A `warden` process (`serve` or `dev`) on a free port, killed on drop.
/// Its log goes to a file, read with [`ServerProcess::log`].
pub struct ServerProcess {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    log: tempfile::NamedTempFile,
}

impl ServerProcess {
    /// `warden serve --config <config> --data-dir <data_dir>`; the log when
    /// it exits instead of listening.
    pub fn start(config: &Path, data_dir: &Path) -> Result<Self, String> {
        Self::start_with(&["serve"], config, data_dir, &[])
    }

    /// `warden <args…> --config <config> --data-dir <data_dir>`, with extra
    /// environment variables.
    #[allow(
        clippy::zombie_processes,
        reason = "Drop kills and waits for the child"
    )]
    pub fn start_with(
        args: &[&str],
        config: &Path,
        data_dir: &Path,
        env: &[(&str, &Path)],
    ) -> Result<Self, String> {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            .args(["--port", "0", "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            // The artefact key goes under target/, not the user's home.
            .env("XDG_STATE_HOME", root().join("target/warden-test-state"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let read_log = |log: &tempfile::NamedTempFile| {
            let mut text = String::new();
            let _ = log.reopen().unwrap().read_to_string(&mut text);
            text
        };
        // Port 0: the server picks a free port and logs it, so that tests
        // running side by side never race for one.
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return Err(read_log(&log));
            }
            let text = read_log(&log);
            if let Some((_, rest)) = text.split_once("warden listening on http://127.0.0.1:") {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let port = digits.parse().expect("a port in the log");
                return Ok(Self { child, port, log });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        panic!("warden did not start listening:\n{}", read_log(&log));
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit by itself, polling up to `within`:
    /// its status, or `None` if it is still running then.
    pub fn wait_for_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        let _ = self.log.reopen().unwrap().read_to_string(&mut text);
        text
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Status and JSON body of a GET.
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.get_with(path, "")
    }

    /// A GET with extra header lines (each ending in `\r\n`).
    pub fn get_with(&self, path: &str, headers: &str) -> (u16, Value) {
        let (status, _, body) = self.raw_get(path, headers);
        (status, body)
    }

    /// Status, lower-cased head and JSON body of a GET.
    pub fn raw_get(&self, path: &str, headers: &str) -> (u16, String, Value) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response[9..12].parse().unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let body = serde_json::from_str(body).unwrap_or(Value::Null);
        (status, head.to_ascii_lowercase(), body)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client with keep-alive, as a user's program holds one.
pub struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    /// A client of `server`.
    pub fn new(server: &ServerProcess) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        Self {
            agent: config.into(),
            base: server.url(""),
        }
    }

    /// Sends `method path` with `token` as bearer token (none when empty)
    /// and `body` as JSON (none when `Null`): the status and JSON body, or
    /// the transport error.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: &Value,
    ) -> Result<(u16, Value), ureq::Error> {
        let (status, text) = self.send_text(method, path, token, body)?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// [`Client::send`], with the body as text (an SSE stream, read to its end).
    pub fn send_text(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: &Value,
    ) -> Result<(u16, String), ureq::Error> {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if !token.is_empty() {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let mut response = if body.is_null() {
            self.agent.run(request.body(())?)?
        } else {
            let request = request
                .header("content-type", "application/json")
                .body(body.to_string())?;
            self.agent.run(request)?
        };
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string()?;
        Ok((status, text))
    }
}

/// Loads a prebuilt guest with the settings of an `auth` section (given as
/// JSON, without `path`), parsed as `langgraph.json` would be.
pub fn plugin_from_config(
    crate_name: &str,
    auth: serde_json::Value,
) -> Result<Arc<AuthPlugin>, warden::plugin::LoadError> {
    let mut auth = auth;
    auth["path"] = "./auth".into();
    let text = serde_json::json!({ "auth": auth }).to_string();
    let config = warden::config::Config::parse(&root().join("langgraph.json"), &text)
        .unwrap_or_else(|e| panic!("the auth section parses: {e}"));
    let settings = config.auth.as_ref().unwrap().settings();
    AuthPlugin::load(runtime(), crate_name, &component(crate_name), settings)
}
