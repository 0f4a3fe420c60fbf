//! Failures as the Python exceptions of `ash_search.errors`, chosen by the
//! library's [`ErrorKind`], never by an error's text.

use ash_search::error::ErrorKind;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// The `ash_search.errors` class for `kind`.
pub fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => "InvalidInput",
        ErrorKind::NotFound => "NotFound",
        ErrorKind::Conflict => "Conflict",
        ErrorKind::Busy => "Busy",
        ErrorKind::Corrupt => "Corrupt",
        ErrorKind::Unavailable => "Unavailable",
        ErrorKind::Io => "IoError",
        _ => "Internal",
    }
}

/// A Python exception of `kind` saying `message`.
pub fn error(kind: ErrorKind, message: impl std::fmt::Display) -> PyErr {
    Python::attach(|py| {
        let made = py
            .import("ash_search.errors")
            .and_then(|m| m.getattr(class_name(kind)))
            .and_then(|class| class.call1(PyTuple::new(py, [message.to_string()])?));
        match made {
            Ok(value) => PyErr::from_value(value),
            Err(e) => e,
        }
    })
}

/// An error of the library, by its kind.
pub trait Kinded: std::fmt::Display {
    /// The class of this error.
    fn error_kind(&self) -> ErrorKind;
}

macro_rules! kinded {
    ($($t:ty => |$e:ident| $kind:expr),* $(,)?) => {
        $(impl Kinded for $t {
            fn error_kind(&self) -> ErrorKind {
                let $e = self;
                $kind
            }
        })*
    };
}

kinded! {
    ash_search::store::StoreError => |e| e.kind(),
    ash_search::ingest::IngestError => |e| e.kind(),
    ash_search::search::SearchError => |e| e.kind(),
    ash_search::search::request::RequestError => |e| e.kind(),
    ash_encoder::EncoderError => |e| e.kind().into(),
    ash_tantivy::IndexError => |e| e.kind().into(),
    ash_encoder::EncodeFailure => |e| match e {
        ash_encoder::EncodeFailure::Encoder(e) => e.kind().into(),
        _ => ErrorKind::InvalidInput,
    },
}

/// `Err(e)` as the Python exception of its kind.
pub fn raise<E: Kinded>(e: E) -> PyErr {
    error(e.error_kind(), &e)
}
