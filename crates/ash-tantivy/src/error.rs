//! The errors of the `binary_hash` layer, one variant for each thing a
//! caller must tell apart, and [`ErrorKind`], the coarse class a server
//! maps to a status and a command line to a message.

use ash_mih::code::CodeError;
use ash_mih::MihError;
use tantivy::directory::error::OpenReadError;
use tantivy::query::QueryParserError;
use tantivy::TantivyError;

use crate::query_text::QueryTextError;

/// Why an operation of this crate failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// tantivy failed: I/O, the writer lock, a damaged segment, a schema
    /// problem; see [`IndexError::kind`] for which class.
    #[error(transparent)]
    Tantivy(#[from] TantivyError),
    /// A segment's code table could not be opened or searched.
    #[error(transparent)]
    Mih(#[from] MihError),
    /// A query string is over the size or nesting limits, or does not parse.
    #[error(transparent)]
    QueryText(#[from] QueryTextError),
    /// A `binary_hash` field was declared with a length outside 1..=`MAX_BITS`.
    #[error("field {field}: code length must be 1..={max} bits, got {bits}")]
    BitsOutOfRange {
        /// The field's name.
        field: String,
        /// The length asked for.
        bits: usize,
        /// The longest code supported.
        max: usize,
    },
    /// A code's packed bytes are not as many as the field's length needs.
    #[error("field {field}: a {bits}-bit code takes {expected} bytes, got {got} bytes")]
    CodeBytes {
        /// The field's name.
        field: String,
        /// The field's code length.
        bits: usize,
        /// Bytes a code of the field takes.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// A code of another length than the field's.
    #[error("field {field}: code has {got} bits, the field takes {bits}")]
    CodeBits {
        /// The field's name.
        field: String,
        /// The field's code length.
        bits: usize,
        /// The code's length.
        got: usize,
    },
    /// A code that is not valid for the field (hex digits, padding bits).
    #[error("field {field} ({bits} bits): {source}")]
    BadCode {
        /// The field's name.
        field: String,
        /// The field's code length.
        bits: usize,
        /// What is wrong with it.
        source: CodeError,
    },
    /// The schema has no `binary_hash` field.
    #[error("the schema has no binary_hash field")]
    NoHashField,
    /// The schema has several `binary_hash` fields; one is supported.
    #[error("the schema has {0} binary_hash fields; one is supported")]
    ManyHashFields(usize),
    /// The index sorts its documents, which `binary_hash` tables cannot
    /// follow: codes are stored in doc-id order.
    #[error("binary_hash fields do not support index sorting: codes are stored in doc-id order")]
    SortedIndex,
    /// A hybrid search was given neither a code nor a text query.
    #[error("a search needs a code, an example doc, or text")]
    EmptySearch,
}

/// The class of an [`IndexError`]: whose fault it is and whether trying
/// again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller's input is wrong (a query, a code, a schema); fix it.
    InvalidInput,
    /// Another writer holds the index; try again later.
    Busy,
    /// Stored data is damaged; `verify` says where.
    Corrupt,
    /// The file system failed.
    Io,
    /// Anything else: a fault of the program or of tantivy.
    Internal,
}

impl IndexError {
    /// The class of this error.
    ///
    /// ```
    /// use ash_tantivy::{ErrorKind, IndexError};
    /// assert_eq!(IndexError::NoHashField.kind(), ErrorKind::InvalidInput);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            IndexError::Tantivy(e) => tantivy_kind(e),
            IndexError::Mih(MihError::Format(_)) => ErrorKind::Corrupt,
            IndexError::Mih(_) => ErrorKind::InvalidInput,
            IndexError::QueryText(_)
            | IndexError::BitsOutOfRange { .. }
            | IndexError::CodeBytes { .. }
            | IndexError::CodeBits { .. }
            | IndexError::BadCode { .. }
            | IndexError::NoHashField
            | IndexError::ManyHashFields(_)
            | IndexError::SortedIndex
            | IndexError::EmptySearch => ErrorKind::InvalidInput,
        }
    }
}

fn tantivy_kind(e: &TantivyError) -> ErrorKind {
    match e {
        TantivyError::LockFailure(..) => ErrorKind::Busy,
        TantivyError::DataCorruption(_) => ErrorKind::Corrupt,
        // A file tantivy cannot read as one of its own (a damaged footer, a
        // format it does not know) is damaged data, not a failing disk.
        TantivyError::OpenReadError(OpenReadError::IoError { io_error, .. })
            if io_error.kind() == std::io::ErrorKind::InvalidData =>
        {
            ErrorKind::Corrupt
        }
        TantivyError::OpenReadError(OpenReadError::IncompatibleIndex(_)) => ErrorKind::Corrupt,
        TantivyError::IoError(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            ErrorKind::Corrupt
        }
        TantivyError::IoError(_)
        | TantivyError::OpenDirectoryError(_)
        | TantivyError::OpenReadError(_)
        | TantivyError::OpenWriteError(_) => ErrorKind::Io,
        TantivyError::InvalidArgument(_)
        | TantivyError::SchemaError(_)
        | TantivyError::FieldNotFound(_) => ErrorKind::InvalidInput,
        _ => ErrorKind::Internal,
    }
}

impl From<QueryParserError> for IndexError {
    fn from(e: QueryParserError) -> Self {
        IndexError::QueryText(QueryTextError::Syntax(e))
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Arc;

    use super::*;

    fn open_read(kind: io::ErrorKind) -> IndexError {
        IndexError::Tantivy(TantivyError::OpenReadError(OpenReadError::IoError {
            io_error: Arc::new(io::Error::new(kind, "footer magic byte mismatch")),
            filepath: "x.mih".into(),
        }))
    }

    #[test]
    fn a_file_tantivy_cannot_read_as_its_own_is_corrupt_a_failing_read_is_io() {
        assert_eq!(
            open_read(io::ErrorKind::InvalidData).kind(),
            ErrorKind::Corrupt
        );
        assert_eq!(
            open_read(io::ErrorKind::PermissionDenied).kind(),
            ErrorKind::Io
        );
    }
}
