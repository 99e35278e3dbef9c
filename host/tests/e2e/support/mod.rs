//! Shared helpers: where the prebuilt guest components are, one shared
//! runtime, the servers (in this process or the binary), the one HTTP
//! client with its typed calls, and polling that ends on the event.

mod background;
mod client;
mod postgres;
mod resources;
mod server;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use warden::plugin::{ArtefactKeySource, AuthPlugin, Limits, Runtime, RuntimeOptions};
use warden::types::{Request, User};

pub use background::Background;
pub use client::{Client, Event, HttpRequest, Reply, Stream, events};
pub use postgres::TestDatabase;
pub use resources::{Assistant, Cron, Run, Thread};
pub use server::{ServerProcess, TestServer};

/// How long a test waits for something that must happen: a ceiling for a
/// hang, never a claim about how fast it happens (a poll ends on the event).
pub const CEILING: Duration = Duration::from_secs(600);

/// Polls `probe` until it returns `Some`, every 20 ms: its value. Panics
/// naming `what` past [`CEILING`].
pub async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    // Wall-clock, not tokio, time: under paused time the ceiling must not
    // jump ahead while the probe waits on another thread.
    let deadline = Instant::now() + CEILING;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

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

/// Loads a prebuilt guest with a deadline no loaded test machine reaches
/// (30 s): for tests about answers, not time.
pub fn unhurried_plugin(crate_name: &str) -> Arc<AuthPlugin> {
    let limits = Limits {
        timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    plugin_with(crate_name, limits)
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

/// Loads a prebuilt guest with the settings of an `auth` section (given as
/// JSON, without `path`), parsed as `langgraph.json` would be.
pub fn plugin_from_config(
    crate_name: &str,
    auth: serde_json::Value,
) -> Result<Arc<AuthPlugin>, warden::plugin::LoadError> {
    component_from_config(crate_name, &component(crate_name), auth)
}

/// Loads the component at `path` with the settings of an `auth` section
/// (given as JSON, without `path`), parsed as `langgraph.json` would be.
pub fn component_from_config(
    name: &str,
    path: &std::path::Path,
    auth: serde_json::Value,
) -> Result<Arc<AuthPlugin>, warden::plugin::LoadError> {
    let mut auth = auth;
    auth["path"] = "./auth".into();
    let text = serde_json::json!({ "auth": auth }).to_string();
    let config = warden::config::Config::parse(&root().join("langgraph.json"), &text)
        .unwrap_or_else(|e| panic!("the auth section parses: {e}"));
    let settings = config.auth.as_ref().unwrap().settings();
    AuthPlugin::load(runtime(), name, path, settings)
}
