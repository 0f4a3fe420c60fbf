//! The endpoints. Each parses and checks its input, then runs its work on
//! the blocking pool.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path as UrlPath, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::images::{
    bad_image, inside_roots, media_type, render_png, thumbnail, unreadable, within_budget,
};
use super::{guard, App};
use crate::config::{FRAME_FIELD, IMAGE_FIELD};
use crate::ingest::{self, IngestError, IngestOptions, RecordError, Source};
use crate::search::request::{RequestLimits, SearchRequest};
use crate::search::{self, HitJson};
use ash_encoder::Encoded;
use ash_image::untrusted::{open_regular, read_capped, FileError};
use ash_image::ImageLimits;
use ash_mih::code::BinaryCode;

const PAGE_HTML: &str = include_str!("page/index.html");
const PAGE_JS: &str = include_str!("page/app.js");
const PAGE_CSS: &str = include_str!("page/style.css");
const OPENAPI: &str = include_str!("../../schemas/openapi.json");

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    token: Option<String>,
}

/// The page. `/?token=…` (the address `serve` prints) sets the token
/// cookie and redirects to `/`, so the token leaves the address bar.
pub async fn page_html(
    State(app): State<Arc<App>>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if let Some(token) = query.token {
        if !guard::token_matches(&app, &token) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorised",
                "the token in the address is not this server's",
            ));
        }
        let cookie = format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Strict",
            guard::TOKEN_COOKIE
        );
        return Ok((
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/".to_string()),
                (header::SET_COOKIE, cookie),
                (header::CACHE_CONTROL, "no-store".to_string()),
            ],
        )
            .into_response());
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'",
            ),
        ],
        PAGE_HTML,
    )
        .into_response())
}

pub async fn page_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        PAGE_JS,
    )
        .into_response()
}

pub async fn page_css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        PAGE_CSS,
    )
        .into_response()
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint (see /openapi.json)")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take this method (see /openapi.json)",
    )
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::internal("the request's worker failed"))?
}

/// `ok`, or `degraded` (503) with the reason while the index cannot be
/// reloaded: a server never serves a stale index without saying so.
pub async fn health(State(app): State<Arc<App>>) -> Response {
    let documents = app.store.index.reader().searcher().num_docs();
    match app.degraded() {
        None => Json(json!({"status": "ok", "documents": documents})).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded", "reason": reason, "documents": documents})),
        )
            .into_response(),
    }
}

pub async fn stats(State(app): State<Arc<App>>) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let searcher = app.store.index.reader().searcher();
        let bytes: u64 = app.store.bytes_by_extension()?.values().sum();
        Ok(Json(json!({
            "documents": searcher.num_docs(),
            "segments": searcher.segment_readers().len(),
            "bits": app.store.config.hash.bits,
            // The pin without its directory: server paths stay private.
            "encoder": app.store.encoder_pin().map(|p| json!({
                "name": p.name,
                "version": p.version,
                "bits": p.bits,
                "manifest_sha256": p.manifest_sha256,
            })),
            "execution_provider": app.encoder.as_ref().map(|e| e.provider().name()),
            "index_bytes": bytes,
        })))
    })
    .await
}

/// `POST /search`: a [`SearchRequest`] as JSON, or as a multipart form
/// whose `image` part is a file to search with.
pub async fn search(State(app): State<Arc<App>>, req: Request) -> Result<Json<Value>, ApiError> {
    let started = Instant::now();
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    // An upload takes an image slot before its body is read: the slot
    // bounds memory as well as CPU.
    let (request, image, slot) = if is_multipart {
        let slot = app.image_slot()?;
        let form = Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::new(e.status(), "bad_multipart", e.body_text()))?;
        let (request, image) = read_multipart(form).await?;
        (request, image, Some(slot))
    } else {
        let bytes = axum::body::to_bytes(req.into_body(), app.config.max_json_bytes)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!(
                        "a JSON search request is at most {} bytes",
                        app.config.max_json_bytes
                    ),
                )
            })?;
        (SearchRequest::from_json(&bytes)?, None, None)
    };
    let result = blocking(move || {
        let _slot = slot;
        run_search(&app, request, image)
    })
    .await?;
    let mut result = result;
    result["took_ms"] = json!(started.elapsed().as_secs_f64() * 1e3);
    Ok(Json(result))
}

/// A form's text fields as a [`SearchRequest`], and its `image` part.
async fn read_multipart(mut form: Multipart) -> Result<(SearchRequest, Option<Bytes>), ApiError> {
    let mut fields = Vec::new();
    let mut image = None;
    while let Some(field) = form.next_field().await? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "image" {
            let bytes = field.bytes().await?;
            if !bytes.is_empty() {
                image = Some(bytes);
            }
        } else {
            fields.push((name, field.text().await?));
        }
    }
    let request = SearchRequest::from_form(fields.iter().map(|(n, t)| (n.as_str(), t.as_str())))?;
    Ok((request, image))
}

fn run_search(app: &App, request: SearchRequest, image: Option<Bytes>) -> Result<Value, ApiError> {
    let limits = RequestLimits {
        max_k: app.config.max_k,
        max_depth: app.config.max_k.saturating_mul(10),
    };
    let checked = request.check(image.is_some(), &limits)?;
    let (image_code, attention) = match &image {
        Some(bytes) => {
            let encoded = encode_upload(app, bytes)?;
            (Some(encoded.code), encoded.attention)
        }
        None => (None, None),
    };
    let searcher = app.store.index.reader().searcher();
    let query = checked.resolve(&app.store, &searcher, image_code)?;
    let (hits, explain) =
        search::search_explained(&app.store, &searcher, &query, Some(&app.filter_stats))?;
    let hits: Vec<Value> = hits.into_iter().map(hit_with_image_urls).collect();
    let mut out = json!({
        "hits": hits,
        "query": {
            "code": query.code.map(|c| c.to_hex()),
            "bits": app.store.config.hash.bits,
            "attention": attention.map(|a| json!({"height": a.height, "width": a.width, "values": a.values})),
        },
    });
    if checked.explain {
        out["explain"] = serde_json::to_value(&explain).expect("plans serialise");
    }
    Ok(out)
}

/// An uploaded image's encoding, decoded within the upload limits and the
/// server's image memory budget.
fn encode_upload(app: &App, bytes: &Bytes) -> Result<Encoded, ApiError> {
    let encoder = app.encoder.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_encoder",
            "this index has no encoder, so it cannot search by image",
        )
    })?;
    let limits = app.config.upload_limits();
    let tensor = within_budget(app, bytes, &limits, || {
        encoder
            .preprocessor()
            .with_limits(limits)
            .tensor(bytes)
            .map_err(bad_image)
    })?;
    let mut encoded = encoder.encode(&tensor, 1)?;
    Ok(encoded.pop().expect("one image in, one code out"))
}

/// A hit as the API shows it: its stored image path replaced by the URLs
/// that serve the image.
fn hit_with_image_urls(mut hit: HitJson) -> Value {
    let had_image = hit.fields.remove(IMAGE_FIELD).is_some();
    let mut v = serde_json::to_value(&hit).expect("hits serialise");
    if let Some(id) = hit.id.as_str() {
        add_image_urls(&mut v, id, had_image);
    }
    v
}

/// The URLs that serve a document's image, which stand in for its stored
/// path (the server's file layout stays private).
fn add_image_urls(value: &mut Value, id: &str, had_image: bool) {
    if had_image {
        value["image_url"] = json!(format!("/documents/{}/image", url_escape(id)));
        value["thumbnail_url"] = json!(format!("/documents/{}/thumbnail", url_escape(id)));
    }
}

/// Percent-encodes an id for a URL path segment.
fn url_escape(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The stored fields, code and image path of the document with this id.
fn lookup(app: &App, id: &str) -> Result<(BTreeMap<String, Value>, Option<BinaryCode>), ApiError> {
    let searcher = app.store.index.reader().searcher();
    let address = search::find(&app.store, &searcher, id)?
        .ok_or_else(|| ApiError::not_found(format!("no document has id {id:?}")))?;
    let fields = search::fields_json(&app.store, &searcher, address)?;
    let code = app
        .store
        .index
        .codes(searcher.segment_reader(address.segment_ord))?
        .code(address.doc_id);
    Ok((fields, code))
}

pub async fn document(
    State(app): State<Arc<App>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let (mut fields, code) = lookup(&app, &id)?;
        fields.remove(crate::config::ID_FIELD);
        let had_image = fields.remove(IMAGE_FIELD).is_some();
        let mut v = json!({"id": id, "fields": fields, "code": code.map(|c| c.to_hex())});
        add_image_urls(&mut v, &id, had_image);
        Ok(Json(v))
    })
    .await
}

/// The image file of a document, checked against the roots, and the frame
/// (from 0) the document stands for.
fn image_path(app: &App, id: &str) -> Result<(PathBuf, u32), ApiError> {
    let (fields, _) = lookup(app, id)?;
    let path = fields
        .get(IMAGE_FIELD)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::not_found(format!("document {id:?} has no image")))?;
    let frame = fields
        .get(FRAME_FIELD)
        .and_then(Value::as_u64)
        .map_or(0, |n| {
            u32::try_from(n.saturating_sub(1)).unwrap_or(u32::MAX)
        });
    Ok((
        inside_roots(Path::new(path), &app.config.image_roots)?,
        frame,
    ))
}

/// A document's image file, opened and checked against the size limit.
enum OpenedImage {
    /// A DICOM file (rendered before it is sent), its length and the frame.
    Dicom(std::fs::File, u64, u32),
    /// Any other file, its length and its first bytes (for the media type).
    Plain(std::fs::File, u64, Vec<u8>),
}

fn open_image(app: &App, id: &str, limit: u64) -> Result<OpenedImage, ApiError> {
    use std::io::{Read, Seek};
    let (path, frame) = image_path(app, id)?;
    let mut file = open_regular(&path).map_err(unreadable)?;
    let io = |e: std::io::Error| unreadable(FileError::Io(e));
    let len = file.metadata().map_err(io)?.len();
    if len > limit {
        return Err(unreadable(FileError::TooLarge { limit }));
    }
    let mut head = [0u8; 132];
    let n = file.read(&mut head).map_err(io)?;
    file.rewind().map_err(io)?;
    if ash_image::dicom::is_dicom(&head[..n]) {
        Ok(OpenedImage::Dicom(file, len, frame))
    } else {
        Ok(OpenedImage::Plain(file, len, head[..n].to_vec()))
    }
}

/// The image file, streamed in pieces (never read whole into memory), up
/// to `max_image_bytes`. A DICOM file is rendered as a PNG of its first
/// frame (LUTs and window applied), since browsers do not show DICOM.
pub async fn document_image(
    State(app): State<Arc<App>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let limit = app.config.max_image_bytes;
    let opened = {
        let app = app.clone();
        blocking(move || open_image(&app, &id, limit)).await?
    };
    let (file, len, head) = match opened {
        OpenedImage::Dicom(file, len, frame) => {
            let slot = app.image_slot_queued().await?;
            let png = blocking(move || {
                use std::io::Read;
                let _slot = slot;
                let mut bytes = Vec::with_capacity(len as usize);
                file.take(limit.saturating_add(1))
                    .read_to_end(&mut bytes)
                    .map_err(|e| unreadable(FileError::Io(e)))?;
                if bytes.len() as u64 > limit {
                    return Err(unreadable(FileError::TooLarge { limit }));
                }
                let limits = ImageLimits {
                    max_file_bytes: limit,
                    ..ImageLimits::default()
                };
                within_budget(&app, &bytes, &limits, || render_png(&bytes, &limits, frame))
            })
            .await?;
            return Ok((
                [
                    (header::CONTENT_TYPE, "image/png"),
                    (header::CACHE_CONTROL, "private, max-age=3600"),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                ],
                png,
            )
                .into_response());
        }
        OpenedImage::Plain(file, len, head) => (file, len, head),
    };
    let file = tokio::fs::File::from_std(file);
    let stream = futures_util::stream::unfold((file, 0u64), move |(mut file, sent)| async move {
        use tokio::io::AsyncReadExt;
        if sent >= len {
            return None;
        }
        let mut buf = vec![0u8; (64 << 10).min((len - sent) as usize)];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((
                    Ok::<_, std::io::Error>(Bytes::from(buf)),
                    (file, sent + n as u64),
                ))
            }
            Err(e) => Some((Err(e), (file, len))),
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, media_type(&head).to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (header::CACHE_CONTROL, "private, max-age=3600".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThumbnailQuery {
    size: Option<u32>,
}

pub async fn document_thumbnail(
    State(app): State<Arc<App>>,
    UrlPath(id): UrlPath<String>,
    query: Result<Query<ThumbnailQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let size = query.size.unwrap_or(256);
    if !(16..=1024).contains(&size) {
        return Err(ApiError::bad_request(format!(
            "size must be 16 to 1024, got {size}"
        )));
    }
    let slot = app.image_slot_queued().await?;
    blocking(move || {
        let _slot = slot;
        let (path, frame) = image_path(&app, &id)?;
        let limits = ImageLimits {
            max_file_bytes: app.config.max_image_bytes,
            ..ImageLimits::default()
        };
        let bytes = read_capped(&path, limits.max_file_bytes).map_err(unreadable)?;
        let jpeg = within_budget(&app, &bytes, &limits, || {
            thumbnail(&bytes, size, &limits, frame)
        })?;
        Ok((
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "private, max-age=3600"),
            ],
            jpeg,
        )
            .into_response())
    })
    .await
}

/// `POST /ingest`: the guard has checked the token before the body is
/// read. The records are indexed all together in one commit, or not at all:
/// when the ingest cannot finish within `ingest_timeout_ms` it is rolled
/// back and the answer says that nothing was indexed.
pub async fn ingest(State(app): State<Arc<App>>, req: Request) -> Result<Json<Value>, ApiError> {
    let deadline = Instant::now() + app.config.ingest_timeout();
    let read = axum::body::to_bytes(req.into_body(), app.config.max_body_bytes);
    let body = match tokio::time::timeout_at(deadline.into(), read).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "the body is over the limit of {} bytes, or broke off",
                    app.config.max_body_bytes
                ),
            ))
        }
        Err(_) => return Err(deadline_error(&app)),
    };
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad_request("the body is not UTF-8 JSONL"))?;
    let _guard = match tokio::time::timeout_at(deadline.into(), app.ingest_lock.lock()).await {
        Ok(g) => g,
        Err(_) => return Err(deadline_error(&app)),
    };
    let app2 = app.clone();
    blocking(move || run_ingest(&app2, &text, deadline))
        .await
        .map(Json)
}

fn deadline_error(app: &App) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "timeout",
        format!(
            "the ingest could not finish within {} ms; nothing was indexed",
            app.config.ingest_timeout_ms
        ),
    )
    .retry_after(1)
}

/// Records whose image lies outside the roots are refused before the
/// ingest; relative image paths are taken from the first root.
fn run_ingest(app: &App, text: &str, deadline: Instant) -> Result<Value, ApiError> {
    let mut errors: Vec<RecordError> = Vec::new();
    let mut lines = String::with_capacity(text.len());
    for (i, line) in text.lines().enumerate() {
        let mut kept = line.to_string();
        if let Ok(mut v) = serde_json::from_str::<Value>(line) {
            if let Some(image) = v.get(IMAGE_FIELD).and_then(Value::as_str) {
                let path = match app.config.image_roots.first() {
                    Some(root) => root.join(image),
                    None => PathBuf::from(image),
                };
                match inside_roots(&path, &app.config.image_roots) {
                    Ok(real) => {
                        v[IMAGE_FIELD] = json!(real.to_string_lossy());
                        kept = v.to_string();
                    }
                    Err(e) => {
                        errors.push(RecordError {
                            line: i + 1,
                            id: v.get("id").and_then(Value::as_str).map(short_id),
                            input: short_id(image),
                            reason: e.message,
                        });
                        kept = String::new();
                    }
                }
            }
        }
        // One line out for every line in, so line numbers still match.
        lines.push_str(&kept);
        lines.push('\n');
    }
    let options = IngestOptions {
        progress: false,
        // One commit at the end: all or nothing.
        commit_every: usize::MAX,
        deadline: Some(deadline),
        ..IngestOptions::default()
    };
    let source = Source::Reader {
        reader: Box::new(std::io::Cursor::new(lines.into_bytes())),
        input: "request body".into(),
        base: app.config.image_roots.first().cloned().unwrap_or_default(),
    };
    let report = ingest::ingest(
        &app.store,
        source,
        app.encoder.as_ref(),
        &options,
        &mut |e| errors.push(e),
    )
    .map_err(|e| match e {
        IngestError::DeadlineExceeded => deadline_error(app),
        IngestError::Store(e) => e.into(),
        other => ApiError::of_kind(other.kind(), other.to_string()),
    })?;
    app.reload();
    errors.sort_by_key(|e| e.line);
    Ok(json!({
        "indexed": report.indexed,
        "failed": errors.len(),
        "skipped": report.skipped,
        "seconds": report.seconds,
        "errors": errors,
    }))
}

/// At most 200 characters of a client's string, for an error record.
fn short_id(s: &str) -> String {
    if s.chars().count() <= 200 {
        s.to_string()
    } else {
        s.chars().take(200).chain("…".chars()).collect()
    }
}
