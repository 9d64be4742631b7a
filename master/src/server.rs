//! `taskotron-master run`: open everything, serve both listeners, stop gracefully on SIGTERM.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

use crate::config::Config;
use crate::db::Db;
use crate::mirror::Mirrors;
use crate::state::Master;

pub fn run(config_path: &Path) -> anyhow::Result<()> {
    let cfg = Config::load(config_path)?;
    let rt = tokio::runtime::Runtime::new().context("start tokio")?;
    rt.block_on(serve(cfg))
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("create data_dir {}", cfg.data_dir.display()))?;
    std::fs::create_dir_all(cfg.artifacts_dir())
        .with_context(|| format!("create {}", cfg.artifacts_dir().display()))?;
    let db = Db::open(&cfg.db_path())?;
    db.reset_workers()?;
    let closed = db.close_abandoned_logs()?;
    if closed > 0 {
        tracing::warn!(
            logs = closed,
            "closed step logs left open by the previous master process"
        );
    }
    for (brid, what) in db.recover(cfg.retry.max_attempts)? {
        tracing::warn!(brid, outcome = ?what, "build interrupted by the previous master process: RETRY");
    }
    db.ensure_builder("all")?;
    for w in &cfg.workers {
        db.ensure_worker(&w.name)?;
        for b in crate::workers::builders_for_arch(&w.arch) {
            db.ensure_builder(&b)?;
        }
    }
    // This process owns the mirror while it runs (see mirror::owner); an offline
    // `mirror refresh` may hold it for a moment.
    let data_dir = cfg.data_dir.clone();
    let _mirror_owner = tokio::task::spawn_blocking(move || {
        crate::mirror::owner::lock_waiting(&data_dir, "master", Duration::from_secs(60))
    })
    .await??;
    let mirrors = Mirrors::open(
        &cfg.data_dir,
        cfg.mirror.clone(),
        crate::cli::task_sources(&cfg),
    )
    .context("open task mirrors")?;
    for o in mirrors.refresh_all().await {
        if let Some(e) = o.error {
            tracing::warn!(task = %o.name, "mirror refresh failed: {e}");
        }
    }
    mirrors.spawn_background();

    let worker_tls = match &cfg.worker_tls {
        Some(t) => Some(crate::workers::tls::acceptor(t)?),
        None => None,
    };
    let worker_listener = TcpListener::bind((cfg.worker_host.as_str(), cfg.worker_port))
        .await
        .with_context(|| format!("bind worker port {}:{}", cfg.worker_host, cfg.worker_port))?;
    let http_listener = TcpListener::bind(cfg.http.listen)
        .await
        .with_context(|| format!("bind http {}", cfg.http.listen))?;
    tracing::info!(addr = %worker_listener.local_addr()?, tls = worker_tls.is_some(), "worker port listening");
    tracing::info!(addr = %http_listener.local_addr()?, "http listening");

    let grace = Duration::from_secs(cfg.build.shutdown_grace);
    let master = Arc::new(Master::new(cfg, db, mirrors));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sched = tokio::spawn(crate::scheduler::run(master.clone()));
    crate::janitor::spawn(master.clone());

    let mut rx1 = stop_rx.clone();
    let worker_app = crate::workers::server::router(master.clone());
    let worker_srv = tokio::spawn(async move {
        // Small request/response frames: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms
        // to every round trip with the worker.
        let stop = async move {
            let _ = rx1.wait_for(|s| *s).await;
        };
        match worker_tls {
            Some(acceptor) => {
                let listener = crate::workers::tls::TlsListener::new(worker_listener, acceptor)?;
                axum::serve(listener, worker_app)
                    .with_graceful_shutdown(stop)
                    .await
            }
            None => {
                let listener = worker_listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, worker_app)
                    .with_graceful_shutdown(stop)
                    .await
            }
        }
    });
    let mut rx2 = stop_rx.clone();
    let http_app = crate::http::router(master.clone());
    let http_srv = tokio::spawn(async move {
        let listener = http_listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, http_app)
            .with_graceful_shutdown(async move {
                let _ = rx2.wait_for(|s| *s).await;
            })
            .await
    });

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stopping: no new builds; waiting up to {grace:?} for running builds");
    master.begin_shutdown();
    master.wake.notify_one();
    let deadline = Instant::now() + grace;
    loop {
        let n = master.running_builds().len();
        if n == 0 {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::warn!(
                running = n,
                "grace period over; these builds will be retried after restart"
            );
            break;
        }
        let _ = tokio::time::timeout(
            left.min(Duration::from_secs(1)),
            master.build_ended.notified(),
        )
        .await;
    }
    let _ = stop_tx.send(true);
    // Close worker connections so the HTTP servers' graceful shutdown does not wait on them.
    for c in master.workers.all_conns() {
        c.close();
    }
    sched.abort();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = worker_srv.await;
        let _ = http_srv.await;
    })
    .await;
    tracing::info!("stopped");
    Ok(())
}
