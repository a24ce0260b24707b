//! Connections: the listening socket, HTTP/1.1 on each connection (hyper), a cap on open
//! connections (more wait in the kernel's backlog), a time limit on request headers, and
//! graceful shutdown on SIGTERM or Ctrl-C: the socket is closed at once (new connections are
//! refused), requests in flight finish, idle connections close, and the process exits once
//! they are done or a grace period has passed.
//!
//! Not here: what a request does (`routes.rs`).

use super::routes::{self, State};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

pub struct Config {
    pub max_connections: usize,
    /// Longest wait for a request's headers (also how long an idle connection stays open).
    pub header_timeout: Duration,
    /// Longest wait for requests in flight at shutdown.
    pub drain: Duration,
}

/// Serves until SIGTERM or Ctrl-C, then drains. Prints the bound address on stdout.
pub async fn serve(addr: SocketAddr, state: Arc<State>, cfg: Config) -> Result<(), String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "clip serve: listening on http://{local} (model {}, {} dimensions)",
            state.model_name, state.dim
        );
        let _ = out.flush();
    }
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown_signal());
    loop {
        let permit = match first(shutdown.as_mut(), pin!(slots.clone().acquire_owned())).await {
            Either::Left(()) | Either::Right(Err(_)) => break,
            Either::Right(Ok(p)) => p,
        };
        let stream = match first(shutdown.as_mut(), pin!(listener.accept())).await {
            Either::Left(()) => break,
            Either::Right(Ok((s, _))) => s,
            Either::Right(Err(_)) => {
                // Out of file descriptors, or a connection reset before accept: wait a
                // little rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let mut stop = stop_rx.clone();
        let header_timeout = cfg.header_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            state.metrics.connections.fetch_add(1, Ordering::Relaxed);
            let metrics = state.metrics.clone();
            let svc = service_fn(move |req| routes::handle(state.clone(), req));
            let mut conn = pin!(http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), svc));
            let stopped = pin!(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Either::Right(_) = first(conn.as_mut(), stopped).await {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
            metrics.connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(listener);
    eprintln!("clip serve: shutting down; finishing the requests in flight");
    let _ = stop_tx.send(true);
    let all = u32::try_from(cfg.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(cfg.drain, slots.acquire_many(all))
        .await
        .is_err()
    {
        eprintln!(
            "clip serve: {} connection(s) still open after {} s; closing them",
            state.metrics.connections.load(Ordering::Relaxed),
            cfg.drain.as_secs()
        );
    }
    eprintln!("clip serve: stopped");
    Ok(())
}

/// SIGTERM (Unix) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    let _ = first(pin!(tokio::signal::ctrl_c()), pin!(term)).await;
}

pub enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Whichever of `a` and `b` finishes first (`a` when both are ready); the other is left
/// as it is. (tokio's `select!` would bring in its proc-macro crate for three uses.)
async fn first<A: Future, B: Future>(
    mut a: Pin<&mut A>,
    mut b: Pin<&mut B>,
) -> Either<A::Output, B::Output> {
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        b.as_mut().poll(cx).map(Either::Right)
    })
    .await
}
