//! The operators' web UI, served by the master itself: server-rendered HTML (no CDN, no build
//! step), usable without JavaScript; a small script only adds live log updates over
//! Server-Sent Events. Also the JSON the admin CLI reads (`/api/ops/...`).
//!
//! Pages: `/ui/` queue and running jobs, `/ui/jobs` history and search, `/ui/jobs/<id>` one
//! job, `/ui/logs/<id>` one log (live), `/ui/workers` with pause/unpause/drain for an admin,
//! `/ui/repos` task mirrors. Layout and helpers are here; one file per page.

mod assets;
mod auth;
mod html;
mod job;
mod logs;
mod ops;
mod queue;
mod repos;
mod workers;

use std::sync::Arc;

use axum::response::Redirect;
use axum::routing::{get, post};
use axum::Router;

use crate::state::Master;

pub use html::fmt_time;
pub use workers::{worker_rows, WorkerRow};

pub fn router() -> Router<Arc<Master>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(queue::page))
        .route("/ui/jobs", get(queue::history))
        .route("/ui/jobs/{id}", get(job::page))
        .route("/ui/logs/{id}", get(logs::page))
        .route("/ui/logs/{id}/events", get(logs::events))
        .route("/ui/workers", get(workers::page))
        .route("/ui/workers/{name}/{action}", post(workers::action))
        .route("/ui/repos", get(repos::page))
        .route("/ui/login", get(auth::login_page).post(auth::login))
        .route("/ui/logout", post(auth::logout))
        .route("/ui/static/{file}", get(assets::serve))
        .route("/api/ops/jobs", get(ops::jobs))
        .route("/api/ops/jobs/{id}", get(ops::job))
        .route("/api/ops/workers", get(ops::workers))
}

/// Runs a database read off the async threads; a failure becomes a 500 page.
pub(crate) async fn db<T: Send + 'static>(
    m: &Arc<Master>,
    f: impl FnOnce(&Master) -> Result<T, crate::db::DbError> + Send + 'static,
) -> Result<T, axum::response::Response> {
    let m = m.clone();
    match tokio::task::spawn_blocking(move || f(&m)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::error!("ui: {e}");
            Err(html::error_page(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "database error",
            ))
        }
        Err(e) => {
            tracing::error!("ui: {e}");
            Err(html::error_page(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
            ))
        }
    }
}
