//! Outbound HTTP for plugins (`wasi:http/outgoing-handler`). A request
//! leaves only for a host in the plugin's `allowed_hosts`; any other is an
//! `http-request-denied` error the guest sees (an empty list: no network).
//! A URL carrying credentials (`user:password@host`) is denied, and logged
//! without them. Each request runs under its own timeout, cut to what is
//! left of the call's deadline, and its response body is read whole, up to
//! a cap, before the guest sees it: a slow or endless response cannot hold
//! the call past its deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::allowlist::{HostPattern, Scheme, allowed, split_host_port};
use super::settings::HttpLimits;

/// What a plugin may reach, shared by its instances.
#[derive(Debug)]
pub(crate) struct EgressPolicy {
    pub(crate) plugin: Arc<str>,
    pub(crate) allowed_hosts: Vec<HostPattern>,
    pub(crate) limits: HttpLimits,
}

/// The `wasi:http` hooks of one instance: the policy, and the deadline of
/// the call in progress.
pub(crate) struct Egress {
    policy: Arc<EgressPolicy>,
    deadline: Instant,
}

type SendResult = Result<(http::Response<WasiBody>, IoFuture), Error>;
type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

impl Egress {
    pub(crate) fn new(policy: Arc<EgressPolicy>) -> Self {
        Self {
            policy,
            deadline: Instant::now(),
        }
    }

    /// Sets the deadline of the call about to run.
    pub(crate) fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// The destination of `uri`, when the policy allows it.
    fn check(&self, uri: &http::Uri) -> Result<(), Error> {
        let scheme = uri.scheme_str().and_then(Scheme::parse);
        let Some((scheme, authority)) = scheme.zip(uri.authority()) else {
            return Err(Error::HttpRequestUriInvalid);
        };
        if let Some((_, host)) = authority.as_str().rsplit_once('@') {
            // Never logged, never sent: credentials go in a header.
            tracing::warn!(
                plugin = %self.policy.plugin,
                destination = %format_args!("{}://[secret]@{host}", uri.scheme_str().unwrap_or("")),
                "outbound request denied: a URL may not carry credentials (user:password@); \
                 send them in a header"
            );
            return Err(Error::HttpRequestDenied);
        }
        let (host, port) = split_host_port(authority.as_str());
        let port = match port {
            Some(p) => p.parse().map_err(|_| Error::HttpRequestUriInvalid)?,
            None if scheme == Scheme::Https => 443,
            None => 80,
        };
        if allowed(&self.policy.allowed_hosts, scheme, host, port) {
            Ok(())
        } else {
            tracing::warn!(
                plugin = %self.policy.plugin,
                destination = %format_args!("{}://{}", uri.scheme_str().unwrap_or(""), authority),
                "outbound request denied: the host is not in auth.allowed_hosts"
            );
            Err(Error::HttpRequestDenied)
        }
    }
}

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let verdict = self.check(request.uri());
        let budget = self
            .policy
            .limits
            .timeout
            .min(self.deadline.saturating_duration_since(Instant::now()));
        let cap = self.policy.limits.max_response_bytes;
        Box::new(async move {
            verdict?;
            if budget.is_zero() {
                return Err(Error::ConnectionTimeout);
            }
            let within = |t: Option<Duration>| Some(t.map_or(budget, |t| t.min(budget)));
            let options = RequestOptions {
                connect_timeout: within(options.and_then(|o| o.connect_timeout)),
                first_byte_timeout: within(options.and_then(|o| o.first_byte_timeout)),
                between_bytes_timeout: within(options.and_then(|o| o.between_bytes_timeout)),
            };
            match tokio::time::timeout(budget, exchange(request, options, cap)).await {
                Ok(response) => Ok((response?, Box::new(async { Ok(()) }) as IoFuture)),
                Err(_) => Err(Error::HttpResponseTimeout),
            }
        })
    }
}

/// Sends `request` and reads the whole response body, refusing one larger
/// than `cap` bytes.
async fn exchange(
    request: http::Request<WasiBody>,
    options: RequestOptions,
    cap: usize,
) -> Result<http::Response<WasiBody>, Error> {
    let (response, io) = wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
    // The connection is driven beside the body's reads, and dropped with it.
    let connection = tokio::spawn(io);
    let too_large = Error::HttpResponseBodySize(u64::try_from(cap).ok());
    let declared = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (parts, body) = response.into_parts();
    let body = if declared.is_some_and(|n| n > cap as u64) {
        Err(too_large)
    } else {
        match Limited::new(body, cap).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) => Err(match e.downcast::<Error>() {
                Ok(e) => *e,
                Err(_) => too_large,
            }),
        }
    };
    connection.abort();
    let body = Full::<Bytes>::new(body?)
        .map_err(|never| match never {})
        .boxed_unsync();
    Ok(http::Response::from_parts(parts, body))
}
