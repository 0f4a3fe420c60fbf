//! [`ImageError`]: why an image was refused, by class.

/// Why an image was refused. The variant is the class a caller acts on;
/// the text says what exactly, for a person.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Read(std::io::Error),
    /// Over one of the [`ImageLimits`](crate::ImageLimits) (file bytes, pixels a side or in all).
    #[error("{0}")]
    OverLimit(String),
    /// Not an image this build reads: empty, an unknown format, an
    /// unsupported feature of a known one.
    #[error("{0}")]
    Unsupported(String),
    /// Cut short or damaged, found by the integrity check or the decoder.
    #[error("{0}")]
    Damaged(String),
    /// A decoder or the resizer failed (or panicked) on this file.
    #[error("{0}")]
    Failed(String),
}

impl From<crate::untrusted::FileError> for ImageError {
    fn from(e: crate::untrusted::FileError) -> Self {
        use crate::untrusted::FileError;
        match e {
            FileError::Io(io) => ImageError::Read(io),
            FileError::TooLarge { .. } => ImageError::OverLimit(e.to_string()),
            other => ImageError::Unsupported(other.to_string()),
        }
    }
}
