//! The per-instance sandbox: what a plugin instance can reach, its memory
//! cap, and where its output goes.
//!
//! WASI is linked because a `std` guest imports it, but the context grants
//! almost nothing: no preopened directories, no environment, no arguments,
//! no sockets, a monotonic clock frozen at zero, and standard output and
//! error captured into the host's log, tagged with the plugin; its waits in
//! WASI calls end at the call's deadline ([`super::waits`]). What it does
//! grant: the wall clock (for token expiry), outbound HTTP to the plugin's
//! `allowed_hosts` only ([`super::outbound`]), and the plugin's own
//! [`Capabilities`]: its config values, its secrets, its cache.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::busy::BusyClock;
use super::component::{Output, Source, emit};
use super::outbound::{Egress, EgressPolicy};
use super::plugin_cache::PluginCache;
use super::settings::Secrets;
use super::waits::{BoundedIo, BoundedWaits, WaitLimit};

/// What one loaded plugin grants its instances, shared by them all.
#[derive(Debug)]
pub(crate) struct Capabilities {
    /// The plugin's name, for logs.
    pub(crate) plugin: Arc<str>,
    /// `auth.config`.
    pub(crate) config: BTreeMap<String, String>,
    /// `auth.secrets`, resolved.
    pub(crate) secrets: Secrets,
    /// The `warden:auth/cache` store.
    pub(crate) cache: PluginCache,
    /// Where outbound HTTP may go.
    pub(crate) egress: Arc<EgressPolicy>,
}

/// Outbound requests end this share (1/n) of a call's timeout (at most
/// 50 ms) before its deadline: the guest's time to answer with the error.
const EGRESS_RESERVE: u32 = 10;

/// The store data of one plugin instance.
pub(crate) struct Sandbox {
    /// Made on the guest's first WASI call: most calls make none, and a
    /// fresh instance per request should not pay for what it does not use.
    wasi: Option<Box<Wasi>>,
    http: WasiHttpCtx,
    egress: Egress,
    table: ResourceTable,
    pub(crate) memory: MemoryCap,
    grants: Arc<Capabilities>,
    /// The current call's deadline, for the guest's waits.
    waits: WaitLimit,
    /// How long the current call has computed, waits not counted.
    busy: BusyClock,
}

/// The WASI context of an instance, and its captured output.
struct Wasi {
    ctx: WasiCtx,
    output: Output,
}

impl Wasi {
    fn new() -> Self {
        let output = Output::new();
        // The default wall clock is the host's real one.
        let ctx = output.wasi().build();
        Self { ctx, output }
    }
}

impl Sandbox {
    pub(crate) fn new(grants: Arc<Capabilities>, memory_bytes: usize) -> Self {
        Self {
            wasi: None,
            http: WasiHttpCtx::new(),
            egress: Egress::new(grants.egress.clone()),
            table: ResourceTable::new(),
            memory: MemoryCap {
                max_bytes: memory_bytes,
                exceeded: false,
            },
            grants,
            waits: WaitLimit::default(),
            busy: BusyClock::start(),
        }
    }

    /// Starts a call that must end within `timeout`: its waits end at the
    /// deadline, and outbound requests made during it a little before
    /// ([`EGRESS_RESERVE`]), so that the guest hears of their timeout and
    /// can answer with it.
    pub(crate) fn start_call(&mut self, timeout: Duration) {
        let now = Instant::now();
        let reserve = (timeout / EGRESS_RESERVE).min(Duration::from_millis(50));
        self.egress.set_deadline(now + timeout - reserve);
        self.waits.set_deadline(now + timeout);
        self.busy = BusyClock::start();
    }

    /// At an epoch check: how long the guest may compute until its next
    /// check, or `None` once the call's deadline has passed. A call that
    /// computes long is throttled here ([`super::busy`]).
    pub(crate) fn next_check(&mut self) -> Option<Duration> {
        let deadline = self.waits.deadline()?;
        self.busy.check(deadline)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let Some(wasi) = &self.wasi else { return };
        let secrets = &self.grants.secrets;
        wasi.output
            .log(Source::Plugin(&self.grants.plugin), |text| {
                secrets.redact(text).into_owned()
            });
    }
}

impl WasiHttpView for Sandbox {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }
}

impl BoundedWaits for Sandbox {
    fn bounded_io(&mut self) -> BoundedIo<'_> {
        BoundedIo {
            table: &mut self.table,
            limit: &self.waits,
        }
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi.get_or_insert_with(|| Box::new(Wasi::new())).ctx,
            table: &mut self.table,
        }
    }
}

/// The memory cap of one instance; remembers whether the guest hit it, so
/// the trap that follows is reported as a memory fault.
pub(crate) struct MemoryCap {
    max_bytes: usize,
    pub(crate) exceeded: bool,
}

impl MemoryCap {
    /// A cap of `max_bytes`.
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            exceeded: false,
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_bytes;
        self.exceeded |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl Sandbox {
    /// Writes one of the guest's log records into the host's log, its
    /// secrets blanked out.
    pub(super) fn write_log(
        &self,
        level: tracing::Level,
        message: &str,
        fields: &[(String, String)],
    ) {
        let secrets = &self.grants.secrets;
        let message = secrets.redact(message);
        let fields = fields
            .iter()
            .map(|(k, v)| secrets.redact(&format!("{k}={v}")).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        emit(
            Source::Plugin(&self.grants.plugin),
            level,
            &message,
            "log",
            &fields,
        );
    }

    /// `config.<key>`.
    pub(super) fn config_value(&self, key: &str) -> Option<String> {
        self.grants.config.get(key).cloned()
    }

    /// The secret `secrets.<name>`.
    pub(super) fn secret_value(&self, name: &str) -> Option<String> {
        self.grants.secrets.get(name).map(|s| s.expose().to_owned())
    }

    /// The plugin's cache.
    pub(super) fn cache(&self) -> &PluginCache {
        &self.grants.cache
    }
}

/// The host side of the imports every `warden:auth` version has (`log`,
/// `config`, `cache`), for the version whose interfaces are in scope under
/// those names.
macro_rules! plugin_imports {
    () => {
        impl log::Host for $crate::plugin::sandbox::Sandbox {
            fn log(&mut self, level: log::Level, message: String, fields: Vec<(String, String)>) {
                let level = match level {
                    log::Level::Trace => tracing::Level::TRACE,
                    log::Level::Debug => tracing::Level::DEBUG,
                    log::Level::Info => tracing::Level::INFO,
                    log::Level::Warn => tracing::Level::WARN,
                    log::Level::Error => tracing::Level::ERROR,
                };
                self.write_log(level, &message, &fields);
            }
        }

        impl config::Host for $crate::plugin::sandbox::Sandbox {
            fn get(&mut self, key: String) -> Option<String> {
                self.config_value(&key)
            }

            fn secret(&mut self, name: String) -> Option<String> {
                self.secret_value(&name)
            }
        }

        impl cache::Host for $crate::plugin::sandbox::Sandbox {
            fn get(&mut self, key: String) -> Option<Vec<u8>> {
                self.cache().get(&key)
            }

            fn set(
                &mut self,
                key: String,
                value: Vec<u8>,
                ttl_seconds: u32,
            ) -> Result<(), cache::CacheError> {
                self.cache()
                    .set(
                        &key,
                        value,
                        std::time::Duration::from_secs(ttl_seconds.into()),
                    )
                    .map_err(|_| cache::CacheError::TooLarge)
            }

            fn delete(&mut self, key: String) {
                self.cache().delete(&key);
            }
        }
    };
}
pub(super) use plugin_imports;
