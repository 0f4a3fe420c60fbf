//! `ash-search serve`: the HTTP API and the web page.
//!
//! How it works: one [`App`] holds the opened index, the encoder (a pool
//! of ONNX Runtime sessions, so uploads encode in parallel) and the
//! configuration. Every request first passes the [`guard`] (Host, Origin,
//! token), before any body is read. Handlers do their work (decoding,
//! encoding, searching, ingesting) on tokio's blocking pool, so a slow
//! request never stalls the accept loop; image work takes a slot from a
//! fixed number, and a request that finds none is answered 503 with
//! `Retry-After` instead of queueing. A background task reloads the reader
//! every `reload_ms`, so commits by `POST /ingest` or by another process
//! become searchable while the server runs; a reload that fails is logged
//! and turns `/health` to `degraded`. Connections are served by hyper
//! with a header-read timeout (idle kept-alive connections included) and
//! a cap on how many are open. Every response to a bad request is a 4xx
//! JSON error ([`error`]); images are served only from inside the
//! configured roots ([`images`]). `docs/SECURITY.md` lists every limit.
//! The API is described by `schemas/openapi.json`.

pub mod budget;
pub mod config;
pub mod error;
pub mod guard;
mod handlers;
pub mod images;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::CorsLayer;

use crate::store::Store;
use ash_encoder::Encoder;
pub use config::{AuthScope, ServeConfig, ServeConfigError};
use error::ApiError;

/// What every handler shares.
pub struct App {
    pub store: Store,
    pub encoder: Option<Encoder>,
    pub config: ServeConfig,
    /// The token in force: the configured one, or one made at start.
    pub token: String,
    /// One ingest at a time (tantivy allows one writer per index).
    pub ingest_lock: tokio::sync::Mutex<()>,
    /// Slots for decoding and encoding images.
    image_slots: Arc<Semaphore>,
    /// Memory image work may hold at once.
    pub memory: budget::MemoryBudget,
    /// What filters kept per segment in earlier searches (plans, not hits).
    pub filter_stats: ash_tantivy::FilterStats,
    /// Why the index could not be reloaded, while it cannot.
    degraded: Mutex<Option<String>>,
}

impl App {
    /// An app over `store`; without a configured token one is made (see
    /// [`App::token_was_made`]).
    pub fn new(store: Store, encoder: Option<Encoder>, config: ServeConfig) -> Self {
        let token = config
            .token
            .clone()
            .unwrap_or_else(ServeConfig::random_token);
        Self {
            image_slots: Arc::new(Semaphore::new(config.max_concurrent_images)),
            memory: budget::MemoryBudget::new(config.image_memory_bytes),
            filter_stats: ash_tantivy::FilterStats::default(),
            store,
            encoder,
            token,
            config,
            ingest_lock: tokio::sync::Mutex::new(()),
            degraded: Mutex::new(None),
        }
    }

    /// Whether the token was made at start (so it must be shown).
    pub fn token_was_made(&self) -> bool {
        self.config.token.is_none()
    }

    /// A slot for image work, or 503 with `Retry-After` when all are taken.
    pub fn image_slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.image_slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| self.busy())
    }

    /// A slot for image work, waiting up to `image_queue_ms` for one to be
    /// freed; then 503 with `Retry-After`.
    pub async fn image_slot_queued(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        let wait = Duration::from_millis(self.config.image_queue_ms);
        match tokio::time::timeout(wait, self.image_slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(self.busy()),
        }
    }

    fn busy(&self) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "all {} image slots are busy; try again shortly",
                self.config.max_concurrent_images
            ),
        )
        .retry_after(1)
    }

    /// `None` when healthy, else why not.
    pub fn degraded(&self) -> Option<String> {
        self.degraded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reloads the reader, recording (and logging, once) a failure.
    pub fn reload(&self) {
        let result = self.store.index.reload();
        let mut state = self.degraded.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(()) => {
                if state.take().is_some() {
                    eprintln!("reload: the index reloads again");
                }
            }
            Err(e) => {
                let reason = format!("the index cannot be reloaded: {e}");
                if state.as_deref() != Some(reason.as_str()) {
                    eprintln!("reload: {reason}");
                }
                *state = Some(reason);
            }
        }
    }
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
        .layer(middleware::from_fn_with_state(app.clone(), guard::guard));
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
    router
        .layer(middleware::from_fn(json_errors))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("the server failed on this request").into_response()
        }))
        .with_state(app)
}

/// Makes every refusal the API's JSON error, whoever made it: axum's own
/// extractor rejections (a path that is not UTF-8, a query that does not
/// parse) and its fallbacks answer `text/plain`; their status and text are
/// kept, in the documented shape.
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let message = String::from_utf8_lossy(&text).trim().to_string();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "bad_request",
        s if s.is_server_error() => "internal",
        _ => "refused",
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("refused").to_string()
    } else {
        message
    };
    let mut json = ApiError::new(status, code, message).into_response();
    for name in [
        axum::http::header::RETRY_AFTER,
        axum::http::header::WWW_AUTHENTICATE,
    ] {
        if let Some(v) = parts.headers.get(&name) {
            json.headers_mut().insert(name, v.clone());
        }
    }
    json
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
/// `POST /ingest` keeps its own deadline instead: it must never answer a
/// failure for work that then commits.
async fn time_limit(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/ingest" {
        return next.run(req).await;
    }
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
        .retry_after(1)
        .into_response(),
    }
}

/// Serves until Ctrl-C or SIGTERM; prints `listening on http://ADDR` first,
/// then, when the token was made at start, `token: TOKEN` and the page's
/// address with it.
pub async fn serve(app: Arc<App>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(app.config.addr).await?;
    announce(&app, listener.local_addr()?);
    serve_on(listener, app).await
}

/// The start lines on stdout. A closed stdout is no reason to stop serving.
fn announce(app: &App, addr: std::net::SocketAddr) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on http://{addr}");
    if app.token_was_made() {
        let _ = writeln!(out, "token: {}", app.token);
        let _ = writeln!(
            out,
            "open http://{addr}/?token={} (POST /ingest needs Authorization: Bearer <token>)",
            app.token
        );
    }
    let _ = out.flush();
}

/// Serves on a bound listener (the benchmark binds its own).
pub async fn serve_on(listener: tokio::net::TcpListener, app: Arc<App>) -> std::io::Result<()> {
    let reloader = app.clone();
    let every = Duration::from_millis(app.config.reload_ms);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let app = reloader.clone();
            let _ = tokio::task::spawn_blocking(move || app.reload()).await;
        }
    });
    let service = router(app.clone());
    let slots = Arc::new(Semaphore::new(app.config.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let shutdown = shutdown();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let (stream, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of descriptors and the like: wait, then go on.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let hyper_service = TowerToHyperService::new(service.clone());
        let header_timeout = app.config.header_timeout();
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(64 << 10);
            let conn = builder.serve_connection(TokioIo::new(stream), hyper_service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    Ok(())
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
