//! The serving loop: the router on hyper's HTTP/1 connections, with what
//! `axum::serve` lacks.
//!
//! - A deadline for each request head (`limits.header_timeout_secs`): a
//!   client that sends its head slowly, or leaves a keep-alive connection
//!   idle, is disconnected. (Bodies have theirs in [`super::api::extract`].)
//! - A connection limit (`limits.max_connections`): past it, a connection
//!   is answered 503 with `Retry-After` and closed.
//! - A graceful shutdown: stop accepting, let connections finish the
//!   request they are on, stop the runs ([`crate::runs::Runs::shut_down`]:
//!   not started ones at once, running ones after
//!   `limits.shutdown_grace_secs`), then end the open streams; past
//!   [`CLOSE_CONNECTIONS`] more, the connections left are dropped.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::AppState;
use super::limits::too_many_connections;

/// How long connections have to close once the runs are settled and the
/// streams ended.
pub const CLOSE_CONNECTIONS: Duration = Duration::from_secs(5);

/// Refused connections being answered at once; past it, one is closed
/// without an answer.
const REFUSING: usize = 64;

/// How long answering a refused connection may take.
const REFUSAL_TIME: Duration = Duration::from_secs(2);

/// Serves `state`'s API on `listener` until `shutdown` completes, then
/// shuts down as the module docs say.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        state.replica.listening_on(address);
    }
    let app = super::router(state.clone());
    let limits = state.limits.clone();
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(REFUSING));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or the peer gave up: retry.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Streamed responses write head and body separately: without
        // TCP_NODELAY, Nagle's algorithm holds the body until the client's
        // delayed ACK, 40 ms later.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY");
        }
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            refuse(tcp, &refusing, limits.max_connections);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(tcp), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!(
        grace_secs = limits.shutdown_grace.as_secs(),
        "shutting down: settling runs in flight, then ending streams"
    );
    let closed = tokio::spawn(graceful.shutdown());
    state.runs.shut_down(limits.shutdown_grace).await;
    state.streams.close_all();
    if tokio::time::timeout(CLOSE_CONNECTIONS, closed)
        .await
        .is_err()
    {
        tracing::warn!("connections still open at the end of the shutdown: dropping them");
    }
    Ok(())
}

/// Answers a connection past the limit with a 503, then closes it once
/// the client has read it (closing with its request unread would reset
/// the connection before the answer arrives).
fn refuse(mut tcp: TcpStream, refusing: &Arc<Semaphore>, max: usize) {
    let Ok(permit) = refusing.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let answer = too_many_connections(max);
        let _ = tokio::time::timeout(REFUSAL_TIME, async {
            tcp.write_all(&answer).await?;
            tcp.shutdown().await?;
            let mut sink = [0u8; 1024];
            while tcp.read(&mut sink).await? > 0 {}
            Ok::<_, io::Error>(())
        })
        .await;
    });
}
