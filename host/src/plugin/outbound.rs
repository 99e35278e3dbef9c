//! Outbound HTTP for plugins and graphs (`wasi:http/outgoing-handler`). A
//! request leaves only for a host in the component's `allowed_hosts`; any
//! other is an `http-request-denied` error the guest sees (an empty list:
//! no network). A URL carrying credentials (`user:password@host`) is
//! denied, and logged without them. Each request runs under its own
//! timeout, cut to what is left of the call's deadline, and its response
//! body is capped. An auth plugin's response body is read whole before the
//! guest sees it; a graph's streams as it arrives (a model's tokens), its
//! bytes counted against the cap and its end bound to the same timeout. A
//! slow or endless response cannot hold a call past its deadline.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::allowlist::{HostPattern, Scheme, allowed, split_host_port};
use super::settings::HttpLimits;

/// What a plugin may reach, shared by its instances.
#[derive(Debug)]
pub(crate) struct EgressPolicy {
    /// The plugin or graph, for logs.
    pub(crate) plugin: Arc<str>,
    /// The setting that lists the allowed hosts, for logs
    /// (`auth.allowed_hosts`, `graphs.<id>.allowed_hosts`).
    pub(crate) setting: String,
    pub(crate) allowed_hosts: Vec<HostPattern>,
    pub(crate) limits: HttpLimits,
    /// How response bodies reach the guest.
    pub(crate) bodies: Bodies,
}

/// How a response body reaches the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bodies {
    /// Read whole first (auth plugins: short calls, small answers).
    Whole,
    /// Passed on as it arrives (graphs: streamed model answers).
    Streamed,
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
                setting = %self.policy.setting,
                "outbound request denied: the host is not in the allowed hosts"
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
        let bodies = self.policy.bodies;
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
            let end = tokio::time::Instant::now() + budget;
            if bodies == Bodies::Streamed {
                let sent = wasmtime_wasi_http::default_send_request(request, Some(options));
                return match tokio::time::timeout_at(end, sent).await {
                    Ok(Ok((response, io))) => {
                        let response = response
                            .map(|body| Bounded::new(body.boxed_unsync(), cap, end).boxed_unsync());
                        Ok((response, Box::new(io) as IoFuture))
                    }
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(Error::HttpResponseTimeout),
                };
            }
            match tokio::time::timeout_at(end, exchange(request, options, cap)).await {
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

/// A response body passed on as it arrives: at most `cap` bytes in all,
/// and ended with a timeout at `end`.
struct Bounded {
    inner: WasiBody,
    left: usize,
    cap: usize,
    end: Pin<Box<tokio::time::Sleep>>,
}

impl Bounded {
    fn new(inner: WasiBody, cap: usize, end: tokio::time::Instant) -> Self {
        Self {
            inner,
            left: cap,
            cap,
            end: Box::pin(tokio::time::sleep_until(end)),
        }
    }
}

impl Body for Bounded {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if self.end.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Error::HttpResponseTimeout)));
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        let size = frame.data_ref().map_or(0, Bytes::len);
        if size > self.left {
            self.left = 0;
            return Poll::Ready(Some(Err(Error::HttpResponseBodySize(
                u64::try_from(self.cap).ok(),
            ))));
        }
        self.left -= size;
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}
