//! The application's classes of failure. Every error type of the app has a
//! `kind()` returning an [`ErrorKind`]; the server turns it into a status
//! and the CLI into its message, so neither ever reads an error's text.

use ash_encoder::EncoderErrorKind;

/// Whose fault a failure is, and whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// What the caller gave is wrong (a query, a record, a configuration).
    InvalidInput,
    /// What the caller named does not exist (an id, an index).
    NotFound,
    /// The request contradicts the index's state (another encoder, an index
    /// that already exists).
    Conflict,
    /// Another writer holds the index; try again when it is done.
    Busy,
    /// Stored data is damaged.
    Corrupt,
    /// A component this machine lacks (ONNX Runtime, a model).
    Unavailable,
    /// The file system failed.
    Io,
    /// A fault of the program.
    Internal,
}

impl From<ash_tantivy::ErrorKind> for ErrorKind {
    fn from(kind: ash_tantivy::ErrorKind) -> Self {
        match kind {
            ash_tantivy::ErrorKind::InvalidInput => ErrorKind::InvalidInput,
            ash_tantivy::ErrorKind::Busy => ErrorKind::Busy,
            ash_tantivy::ErrorKind::Corrupt => ErrorKind::Corrupt,
            ash_tantivy::ErrorKind::Io => ErrorKind::Io,
            _ => ErrorKind::Internal,
        }
    }
}

impl From<EncoderErrorKind> for ErrorKind {
    fn from(kind: EncoderErrorKind) -> Self {
        match kind {
            EncoderErrorKind::Conflict => ErrorKind::Conflict,
            EncoderErrorKind::BadPlugin | EncoderErrorKind::Unavailable => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }
}
