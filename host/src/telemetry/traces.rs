//! Request tracing over OTLP: when an endpoint is configured with the
//! standard variables (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else
//! `OTEL_EXPORTER_OTLP_ENDPOINT`; OTLP over HTTP with protobuf), every
//! request's span (`request`, with its id) and its children
//! (`authenticate`, one `authorize` per event, `storage`) are exported in
//! batches from a thread of their own. Without an endpoint nothing is
//! exported and nothing is started.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The variables that turn export on, the signal's own first.
pub const ENDPOINT_VARIABLES: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// The exporter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot export traces to {endpoint}: {source}")]
pub struct TracesError {
    endpoint: String,
    source: opentelemetry_otlp::ExporterBuildError,
}

/// The span exporter: flushes what it holds when dropped.
pub struct Traces {
    provider: SdkTracerProvider,
    endpoint: String,
}

impl Traces {
    /// The exporter the environment configures, if any. Call it before
    /// the async runtime starts: the exporter's HTTP client runs its own.
    pub fn from_env() -> Result<Option<Self>, TracesError> {
        let Some(endpoint) = ENDPOINT_VARIABLES.iter().find_map(|name| {
            let value = std::env::var(name).ok()?;
            (!value.trim().is_empty()).then_some(value)
        }) else {
            return Ok(None);
        };
        // The exporter reads the same variables (and appends `/v1/traces`
        // to the generic one).
        let exporter = SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|source| TracesError {
                endpoint: endpoint.clone(),
                source,
            })?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name("warden").build())
            .build();
        Ok(Some(Self { provider, endpoint }))
    }

    /// Where the spans go.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The `tracing` layer that hands spans to the exporter.
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("warden"))
    }
}

impl Drop for Traces {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("warden: the last traces were not exported: {e}");
        }
    }
}
