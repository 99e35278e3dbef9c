//! A stand-in HTTP server for the tests (a model server, an identity
//! provider): an axum router served on a free port of 127.0.0.1 by a
//! runtime of its own, on a thread of its own, until dropped. Its own
//! runtime keeps it answering while a test blocks its runtime.

use std::net::SocketAddr;

use axum::serve::ListenerExt;

/// A router being served; it stops when dropped.
pub struct Background {
    /// Its address.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Background {
    /// Serves `app` on a free port of 127.0.0.1. Each response's bytes
    /// leave as they are written (`TCP_NODELAY`), as from a real server.
    pub fn serve(app: axum::Router) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound, addr) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                bound.send(listener.local_addr().unwrap()).unwrap();
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = stopped => {}
                }
            });
        });
        Self {
            addr: addr.recv().expect("the server binds"),
            stop: Some(stop),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
