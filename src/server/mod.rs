//! `ash-search serve`: the HTTP API and the web page.
//!
//! How it works: one [`App`] holds the opened index, the encoder (a pool
//! of ONNX Runtime sessions, so uploads encode in parallel) and the
//! configuration. Handlers do their work (encoding, searching, ingesting)
//! on tokio's blocking pool, so a slow request never stalls the accept
//! loop. A background task reloads the reader every `reload_ms`, so commits
//! by `POST /ingest` or by another process become searchable while the
//! server runs. Every response to a bad request is a 4xx JSON error
//! ([`error`]); requests have a body limit and a time limit; images are
//! served only from inside the configured roots ([`images`]). The API is
//! described by `schemas/openapi.json`.

pub mod config;
pub mod error;
mod handlers;
pub mod images;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::CorsLayer;

use crate::encoder::Encoder;
use crate::store::Store;
pub use config::ServeConfig;
use error::ApiError;

/// What every handler shares.
pub struct App {
    pub store: Store,
    pub encoder: Option<Encoder>,
    pub config: ServeConfig,
    /// One ingest at a time (tantivy allows one writer per index).
    pub ingest_lock: tokio::sync::Mutex<()>,
}

/// The router with its limits, for [`serve`] and for tests.
pub fn router(app: Arc<App>) -> Router {
    let mut router = Router::new()
        .route("/", get(handlers::page_html))
        .route("/app.js", get(handlers::page_js))
        .route("/style.css", get(handlers::page_css))
        .route("/openapi.json", get(handlers::openapi))
        .route("/health", get(handlers::health))
        .route("/stats", get(handlers::stats))
        .route("/search", post(handlers::search))
        .route("/documents/{id}", get(handlers::document))
        .route("/documents/{id}/image", get(handlers::document_image))
        .route(
            "/documents/{id}/thumbnail",
            get(handlers::document_thumbnail),
        )
        .route("/ingest", post(handlers::ingest))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(app.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(app.clone(), time_limit))
        .layer(middleware::from_fn_with_state(app.clone(), declared_size))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("the server failed on this request").into_response()
        }));
    if !app.config.cors_origins.is_empty() {
        let origins: Vec<HeaderValue> = app
            .config
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        router = router.layer(
            CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
                .allow_headers([
                    axum::http::header::CONTENT_TYPE,
                    axum::http::header::AUTHORIZATION,
                ]),
        );
    }
    router.with_state(app)
}

/// Refuses a body whose declared length is over the limit before reading
/// any of it (bodies without a length are cut at the limit as they stream).
async fn declared_size(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > app.config.max_body_bytes as u64 => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the body of {n} bytes is over the limit of {} bytes",
                app.config.max_body_bytes
            ),
        )
        .into_response(),
        _ => next.run(req).await,
    }
}

/// Answers 503 with a JSON error when a request runs past the limit.
async fn time_limit(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(app.config.timeout(), next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request took longer than {} ms",
                app.config.request_timeout_ms
            ),
        )
        .into_response(),
    }
}

/// Serves until Ctrl-C or SIGTERM; prints `listening on http://ADDR` first.
pub async fn serve(app: Arc<App>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(app.config.addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    serve_on(listener, app).await
}

/// Serves on a bound listener (the benchmark binds its own).
pub async fn serve_on(listener: tokio::net::TcpListener, app: Arc<App>) -> std::io::Result<()> {
    let reloader = app.clone();
    let every = Duration::from_millis(app.config.reload_ms.max(10));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let app = reloader.clone();
            let _ = tokio::task::spawn_blocking(move || app.store.index.reload()).await;
        }
    });
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown())
        .await
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
