//! `.mih` files on disk: atomic writes and memory-mapped opening.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::{MihError, MihIndex};

/// Why a `.mih` file could not be written or opened, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum MihFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Mih { path: PathBuf, source: MihError },
}

/// Writes `bytes` to `path` through a temporary file and a rename, so that a
/// crash never leaves a half-written table under the final name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MihFileError> {
    let io = |source| MihFileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
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
