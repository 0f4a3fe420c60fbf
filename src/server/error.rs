//! Every failure the API answers is a JSON body `{"error": {"status",
//! "code", "message"}}` with a 4xx status for anything the client sent and
//! 5xx only for faults of the server itself.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::error::ErrorKind;
use crate::search::request::RequestError;
use crate::search::SearchError;
use crate::store::StoreError;
use ash_encoder::{EncoderError, EncoderErrorKind};
use ash_tantivy::IndexError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds a client should wait before trying again (503).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Adds a `Retry-After` header.
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {
            "status": self.status.as_u16(),
            "code": self.code,
            "message": self.message,
        }});
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(s) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl ApiError {
    /// The answer for an error of `kind`, with the error's own text.
    pub fn of_kind(kind: ErrorKind, message: String) -> Self {
        let (status, code) = match kind {
            ErrorKind::InvalidInput => (StatusCode::BAD_REQUEST, "bad_request"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorKind::Conflict => (StatusCode::CONFLICT, "conflict"),
            ErrorKind::Busy => {
                return ApiError::new(
                    StatusCode::CONFLICT,
                    "index_busy",
                    "another process is writing to this index; try again when it is done",
                )
            }
            ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ErrorKind::Corrupt | ErrorKind::Io | ErrorKind::Internal => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        ApiError::new(status, code, message)
    }
}

impl From<SearchError> for ApiError {
    fn from(e: SearchError) -> Self {
        ApiError::of_kind(e.kind(), e.to_string())
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        ApiError::of_kind(e.kind(), e.to_string())
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        ApiError::of_kind(ErrorKind::from(e.kind()), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Encoder(e) => e.into(),
            e => ApiError::of_kind(e.kind(), e.to_string()),
        }
    }
}

impl From<EncoderError> for ApiError {
    /// Another encoder than the index's is answered 409 with the code
    /// `encoder`, so a client can tell it from other conflicts.
    fn from(e: EncoderError) -> Self {
        match e.kind() {
            EncoderErrorKind::Conflict => {
                ApiError::new(StatusCode::CONFLICT, "encoder", e.to_string())
            }
            kind => ApiError::of_kind(kind.into(), e.to_string()),
        }
    }
}

impl From<axum::extract::multipart::MultipartError> for ApiError {
    fn from(e: axum::extract::multipart::MultipartError) -> Self {
        ApiError::new(e.status(), "bad_multipart", e.body_text())
    }
}
