//! The Prometheus metrics `GET /metrics` serves, through the Prometheus
//! organisation's own client (`prometheus-client`): one registry per
//! server, no global state.
//!
//! Counters and histograms are updated where things happen (requests,
//! plugin calls, runs, storage); what is a state rather than a count (open
//! streams, queue depths, the live plugin digests, swaps so far) is read
//! when the metrics are scraped ([`Live`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::decisions::LogCounters;

/// The `Content-Type` of what [`Metrics::render`] writes.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Latency buckets, in seconds: 50 µs to about 26 s, doubling.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(50e-6, 2.0, 20))
}

/// A histogram of waits for a database connection, which a storage
/// backend keeps and the metrics export.
pub fn pool_wait_histogram() -> Histogram {
    latency()
}

/// Run-duration buckets, in seconds: 10 ms to about 90 minutes.
fn run_duration() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 20))
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Labels of an HTTP response.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The method (`other` for a non-standard one).
    pub method: &'static str,
    /// The route template, `unmatched` when none matched.
    pub route: String,
    /// The status code.
    pub status: u16,
}

/// Labels of a request's latency.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The method.
    pub method: &'static str,
    /// The route template.
    pub route: String,
}

/// Labels of a plugin call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `auth`, or the graph's id.
    pub plugin: String,
    /// `authenticate`, an event (`threads.create`) or a graph's call.
    pub event: String,
    /// `allow`, `deny`, `filter`, `error` or `fault`.
    pub outcome: &'static str,
}

/// Labels of a plugin call's latency.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// `auth`, or the graph's id.
    pub plugin: String,
    /// As in [`CallLabels`].
    pub event: String,
}

/// Labels of a plugin fault.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FaultLabels {
    /// `auth`, or the graph's id.
    pub plugin: String,
    /// `timeout`, `memory limit`, `trap`, …
    pub kind: &'static str,
}

/// A plugin's name as a label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabel {
    /// `auth`, or the graph's id.
    pub plugin: String,
}

/// The live version of a plugin, as a label set.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginInfoLabels {
    /// `auth`, or the graph's id.
    pub plugin: String,
    /// SHA-256 of the component.
    pub digest: String,
    /// The contract version it was built for.
    pub contract: String,
}

/// Labels of a storage operation.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StorageLabels {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// What was done (a route's storage work: its template).
    pub operation: String,
}

/// A run's final status, as a label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    /// `success`, `error`, `interrupted`, …
    pub status: &'static str,
}

/// Plugin calls: the auth plugin's (by the server) and the graphs' (by
/// the run executor).
#[derive(Debug, Clone)]
pub struct PluginMetrics {
    /// Calls by plugin, event and outcome.
    pub calls: Family<CallLabels, Counter>,
    /// Call latency by plugin and event.
    pub duration: Histograms<EventLabels>,
    /// Faults by plugin and kind.
    pub faults: Family<FaultLabels, Counter>,
    /// Fresh instances made, by plugin.
    pub instantiations: Family<PluginLabel, Counter>,
}

impl Default for PluginMetrics {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            duration: Histograms::new_with_constructor(latency as fn() -> Histogram),
            faults: Family::default(),
            instantiations: Family::default(),
        }
    }
}

impl PluginMetrics {
    /// Counts one call of `plugin` (`auth`, or a graph's id).
    pub fn call(&self, plugin: &str, event: &str, outcome: &'static str, took: Duration) {
        self.duration
            .get_or_create(&EventLabels {
                plugin: plugin.to_owned(),
                event: event.to_owned(),
            })
            .observe(took.as_secs_f64());
        self.calls
            .get_or_create(&CallLabels {
                plugin: plugin.to_owned(),
                event: event.to_owned(),
                outcome,
            })
            .inc();
    }

    /// Counts one fault of `plugin`.
    pub fn fault(&self, plugin: &str, kind: &'static str) {
        self.faults
            .get_or_create(&FaultLabels {
                plugin: plugin.to_owned(),
                kind,
            })
            .inc();
    }
}

/// The runs' counters, updated by the run executor.
#[derive(Debug, Clone)]
pub struct RunMetrics {
    /// Runs created (accepted for execution) on this server.
    pub created: Counter,
    /// Runs this server ended, by final status.
    pub finished: Family<StatusLabel, Counter>,
    /// How long the runs this server ended took, from creation.
    pub duration: Histogram,
    /// Attempts started again after a replica was lost.
    pub retries: Counter,
    /// The graphs' calls (and, shared with the server, the auth plugin's).
    pub plugins: PluginMetrics,
}

impl Default for RunMetrics {
    fn default() -> Self {
        Self {
            created: Counter::default(),
            finished: Family::default(),
            duration: run_duration(),
            retries: Counter::default(),
            plugins: PluginMetrics::default(),
        }
    }
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Responses by method, route and status.
    pub requests: Family<HttpLabels, Counter>,
    /// Latency by method and route.
    pub request_duration: Histograms<RouteLabels>,
    /// Requests being answered now.
    pub in_flight: Gauge,
    /// The auth plugin's and the graphs' calls.
    pub plugins: PluginMetrics,
    /// `auth.cache` answers.
    pub auth_cache_hits: Counter,
    /// `auth.cache` lookups that had to call `authenticate`.
    pub auth_cache_misses: Counter,
    /// Storage work by backend and operation.
    pub storage_operation: Histograms<StorageLabels>,
    /// The run executor's counters.
    pub runs: RunMetrics,
}

/// What is read when the metrics are scraped.
#[derive(Debug, Default)]
pub struct Live {
    /// Streamed responses open (SSE, wait, join).
    pub open_streams: usize,
    /// Requests' jobs waiting for a work-pool thread.
    pub work_pool_queue: usize,
    /// Work-pool threads alive.
    pub work_pool_threads: usize,
    /// Runs pending or running on this server.
    pub runs_in_flight: usize,
    /// Runs waiting to start (on a shared queue: across replicas).
    pub run_queue_depth: usize,
    /// Stream events kept in memory.
    pub events_retained: usize,
    /// Bytes of stream events kept in memory.
    pub events_retained_bytes: usize,
    /// The live plugins.
    pub plugins: Vec<LivePlugin>,
    /// `auth.cache` entries evicted (by size or age), all versions.
    pub auth_cache_evictions: u64,
    /// The decision log's counters, when it is on.
    pub decision_log: Option<LogCounters>,
}

/// A live plugin, as scraped.
#[derive(Debug)]
pub struct LivePlugin {
    /// `auth`, or the graph's id.
    pub plugin: String,
    /// The live version's digest.
    pub digest: String,
    /// Its contract version.
    pub contract: String,
    /// Versions swapped in since start-up.
    pub swaps: u64,
    /// Reloads refused since start-up.
    pub refused: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry holding every counter and histogram.
    pub fn new() -> Self {
        Self::with(RunMetrics::default(), "sqlite", pool_wait_histogram())
    }

    /// [`Metrics::new`], with the run executor's counters and the storage
    /// `backend`'s waits for a connection.
    pub fn with(runs: RunMetrics, backend: &'static str, pool_waits: Histogram) -> Self {
        let requests = Family::default();
        let request_duration = Histograms::new_with_constructor(latency as fn() -> Histogram);
        let in_flight = Gauge::default();
        let plugins = runs.plugins.clone();
        let auth_cache_hits = Counter::default();
        let auth_cache_misses = Counter::default();
        let storage_operation = Histograms::new_with_constructor(latency as fn() -> Histogram);

        let mut registry = Registry::default();
        registry.register(
            "warden_http_requests",
            "HTTP responses by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "warden_http_request_duration_seconds",
            "Time to answer, by method and route template",
            request_duration.clone(),
        );
        registry.register(
            "warden_http_requests_in_flight",
            "Requests being answered",
            in_flight.clone(),
        );
        registry.register(
            "warden_plugin_calls",
            "Plugin calls by plugin, event and outcome (allow, deny, filter, error, fault)",
            plugins.calls.clone(),
        );
        registry.register(
            "warden_plugin_call_duration_seconds",
            "Plugin call latency by plugin and event",
            plugins.duration.clone(),
        );
        registry.register(
            "warden_plugin_faults",
            "Plugin faults by plugin and kind",
            plugins.faults.clone(),
        );
        registry.register(
            "warden_plugin_instantiations",
            "Fresh plugin instances made",
            plugins.instantiations.clone(),
        );
        registry.register(
            "warden_auth_cache_hits",
            "Requests authenticated from auth.cache (no plugin call)",
            auth_cache_hits.clone(),
        );
        registry.register(
            "warden_auth_cache_misses",
            "Requests auth.cache could not answer (authenticate ran)",
            auth_cache_misses.clone(),
        );
        registry.register(
            "warden_storage_operation_duration_seconds",
            "A route's storage work, by backend and route template",
            storage_operation.clone(),
        );
        registry.register(
            "warden_runs_created",
            "Runs created on this server",
            runs.created.clone(),
        );
        registry.register(
            "warden_runs_finished",
            "Runs this server ended, by final status",
            runs.finished.clone(),
        );
        registry.register(
            "warden_run_duration_seconds",
            "Time from a run's creation to its end",
            runs.duration.clone(),
        );
        registry.register(
            "warden_run_retries",
            "Run attempts started again after their replica was lost",
            runs.retries.clone(),
        );
        registry
            .sub_registry_with_label(("backend".into(), backend.into()))
            .register(
                "warden_storage_pool_wait_seconds",
                "Waits for a database connection",
                pool_waits,
            );
        Self {
            registry,
            requests,
            request_duration,
            in_flight,
            plugins,
            auth_cache_hits,
            auth_cache_misses,
            storage_operation,
            runs,
        }
    }

    /// Counts one response.
    pub fn request(&self, method: &'static str, route: &str, status: u16, took: Duration) {
        let route = route.to_owned();
        self.request_duration
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(took.as_secs_f64());
        self.requests
            .get_or_create(&HttpLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    /// Counts one plugin call.
    pub fn plugin_call(&self, plugin: &str, event: &str, outcome: &'static str, took: Duration) {
        self.plugins.call(plugin, event, outcome, took);
    }

    /// Counts one plugin fault.
    pub fn plugin_fault(&self, plugin: &str, kind: &'static str) {
        self.plugins.fault(plugin, kind);
    }

    /// Shows `plugin`'s faults of `kind` before any happens (at 0).
    pub fn plugin_faults_at_zero(&self, plugin: &str, kind: &'static str) {
        let _ = self.plugins.faults.get_or_create(&FaultLabels {
            plugin: plugin.to_owned(),
            kind,
        });
    }

    /// Counts one fresh instance of `plugin`.
    pub fn instantiated(&self, plugin: &str) {
        self.plugins
            .instantiations
            .get_or_create(&PluginLabel {
                plugin: plugin.to_owned(),
            })
            .inc();
    }

    /// Times a route's storage work.
    pub fn storage(&self, backend: &'static str, operation: &str, took: Duration) {
        self.storage_operation
            .get_or_create(&StorageLabels {
                backend,
                operation: operation.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// The metrics in Prometheus' text format, with `live`'s.
    pub fn render(&self, live: &Live) -> String {
        let mut text = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        let _ = prometheus_text::encode(&mut text, &live.registry());
        text
    }
}

impl Live {
    fn registry(&self) -> Registry {
        let mut registry = Registry::default();
        let gauge = |v: usize| {
            let gauge: Gauge = Gauge::default();
            gauge.set(i64::try_from(v).unwrap_or(i64::MAX));
            gauge
        };
        let counter = |v: u64| {
            let counter: Counter = Counter::default();
            counter.inc_by(v);
            counter
        };
        registry.register(
            "warden_http_open_streams",
            "Streamed responses open (SSE, wait, join)",
            gauge(self.open_streams),
        );
        registry.register(
            "warden_work_pool_queue_depth",
            "Requests' jobs waiting for a work-pool thread",
            gauge(self.work_pool_queue),
        );
        registry.register(
            "warden_work_pool_threads",
            "Work-pool threads alive",
            gauge(self.work_pool_threads),
        );
        registry.register(
            "warden_runs_in_flight",
            "Runs pending or running on this server",
            gauge(self.runs_in_flight),
        );
        registry.register(
            "warden_run_queue_depth",
            "Runs waiting to start (on PostgreSQL: across replicas)",
            gauge(self.run_queue_depth),
        );
        registry.register(
            "warden_run_events_retained",
            "Stream events kept in memory",
            gauge(self.events_retained),
        );
        registry.register(
            "warden_run_events_retained_bytes",
            "Bytes of stream events kept in memory",
            gauge(self.events_retained_bytes),
        );
        registry.register(
            "warden_auth_cache_evictions",
            "auth.cache entries evicted by size or age",
            counter(self.auth_cache_evictions),
        );
        let info: Family<PluginInfoLabels, Gauge> = Family::default();
        let swaps: Family<PluginLabel, Counter> = Family::default();
        let refused: Family<PluginLabel, Counter> = Family::default();
        for plugin in &self.plugins {
            info.get_or_create(&PluginInfoLabels {
                plugin: plugin.plugin.clone(),
                digest: plugin.digest.clone(),
                contract: plugin.contract.clone(),
            })
            .set(1);
            let label = PluginLabel {
                plugin: plugin.plugin.clone(),
            };
            swaps.get_or_create(&label).inc_by(plugin.swaps);
            refused.get_or_create(&label).inc_by(plugin.refused);
        }
        registry.register(
            "warden_plugin_info",
            "The live version of each plugin (value 1)",
            info,
        );
        registry.register(
            "warden_plugin_swaps",
            "New versions swapped in since start-up",
            swaps,
        );
        registry.register(
            "warden_plugin_reloads_refused",
            "Reloads refused since start-up (the old version kept serving)",
            refused,
        );
        let log = self.decision_log.clone().unwrap_or_default();
        registry.register(
            "warden_decision_log_records",
            "Decision records handed to the writer",
            log.records,
        );
        registry.register(
            "warden_decision_log_dropped",
            "Decision records dropped: the buffer was full",
            log.dropped,
        );
        registry.register(
            "warden_decision_log_blocked",
            "Decision records that waited for room in the buffer",
            log.blocked,
        );
        registry
    }
}

/// The totals of `/metrics?format=json` (LangGraph's summary).
#[derive(Debug, Default)]
pub struct HttpTotals {
    /// Responses by status class: 1xx .. 5xx.
    by_class: [AtomicU64; 5],
    /// Time spent answering, in microseconds.
    micros: AtomicU64,
    /// Requests being answered now.
    in_flight: AtomicU64,
}

impl HttpTotals {
    /// A request is being answered.
    pub fn entered(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// It was answered, or its client left.
    pub fn left(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts a response of `status` that took `took`.
    pub fn answered(&self, status: u16, took: Duration) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Responses by status class, seconds spent answering, requests in
    /// flight.
    pub fn snapshot(&self) -> ([u64; 5], f64, u64) {
        let classes = std::array::from_fn(|i| self.by_class[i].load(Ordering::Relaxed));
        let seconds = self.micros.load(Ordering::Relaxed) as f64 / 1e6;
        (classes, seconds, self.in_flight.load(Ordering::Relaxed))
    }
}

/// The method as a label: standard methods by name, else `other` (a
/// client must not be able to add label values at will).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_as_prometheus_text_with_their_labels() {
        let metrics = Metrics::new();
        metrics.request(
            "GET",
            "/threads/{thread_id}",
            200,
            Duration::from_micros(300),
        );
        metrics.plugin_call("auth", "threads.read", "filter", Duration::from_micros(12));
        metrics.plugin_fault("auth", "timeout");
        let text = metrics.render(&Live::default());
        assert!(text.contains(
            "warden_http_requests_total{method=\"GET\",route=\"/threads/{thread_id}\",status=\"200\"} 1"
        ), "{text}");
        assert!(text.contains(
            "warden_plugin_calls_total{plugin=\"auth\",event=\"threads.read\",outcome=\"filter\"} 1"
        ));
        assert!(text.contains("warden_plugin_faults_total{plugin=\"auth\",kind=\"timeout\"} 1"));
        assert!(text.contains("# TYPE warden_http_request_duration_seconds histogram"));
    }
}
