//! `.mih` files on disk: atomic writes and memory-mapped opening.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::{MihError, MihIndex};

/// Why a `.mih` file could not be written or opened, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum MihFileError {
    /// The file could not be read, mapped or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is not a usable `.mih` table.
    #[error("{path}: {source}")]
    Mih {
        /// The file.
        path: PathBuf,
        /// Why it was refused.
        source: MihError,
    },
}

/// Memory-maps and opens a `.mih` file (header checks only).
pub fn open_mmap(path: &Path) -> Result<MihIndex<Mmap>, MihFileError> {
    let file = File::open(path).map_err(|source| MihFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    // SAFETY: the map is read-only; ash-search never modifies a .mih file in
    // place (writes go to a new file and a rename), so the bytes stay stable
    // while mapped. Another process truncating the file is outside that promise.
    let map = unsafe { Mmap::map(&file) }.map_err(|source| MihFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    MihIndex::open(map).map_err(|source| MihFileError::Mih {
        path: path.to_owned(),
        source,
    })
}
