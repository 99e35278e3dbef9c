//! Shared helpers: where the prebuilt guest components are, one shared
//! runtime, and a free-port server for the binary.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use warden::plugin::{AuthPlugin, Limits, Runtime, RuntimeOptions};
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
/// under the target directory so reruns skip compilation.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(RuntimeOptions {
            cache_dir: Some(root().join("target/warden-test-cache")),
            ..RuntimeOptions::default()
        })
        .expect("the runtime starts")
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
