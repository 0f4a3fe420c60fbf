//! Packed codes as numpy `.npy` files: a C-order `uint8` array of shape
//! `(n, ceil(bits / 8))`, each row one code in `numpy.packbits` order, which
//! is what numpy and FAISS users already have.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use npyz::{DType, Order, TypeChar, WriterBuilder};

/// Rows of packed codes read from a `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedCodes {
    /// Number of codes.
    pub rows: usize,
    /// Bytes per code.
    pub row_bytes: usize,
    /// `rows * row_bytes` bytes, row after row.
    pub data: Vec<u8>,
}

impl PackedCodes {
    /// Row `i`'s bytes.
    pub fn row(&self, i: usize) -> &[u8] {
        &self.data[i * self.row_bytes..(i + 1) * self.row_bytes]
    }
}

/// Why a `.npy` file could not be used, always naming the file.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is not a 2-D `uint8` array of packed codes.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Reads a 2-D `uint8` `.npy` file of packed codes (numpy `packbits`
/// order, one code a row).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("codes.npy");
/// ash_mih::npy::write_packed(&path, &[0x0f, 0xf0, 0xff, 0x00], 2).unwrap();
/// let codes = ash_mih::npy::read_packed(&path).unwrap();
/// assert_eq!((codes.rows, codes.row_bytes, codes.row(1)), (2, 2, &[0xff, 0x00][..]));
/// ```
pub fn read_packed(path: &Path) -> Result<PackedCodes, NpyError> {
    let io = |source| NpyError::Io {
        path: path.to_owned(),
        source,
    };
    let invalid = |reason: String| NpyError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let file = File::open(path).map_err(io)?;
    let npy = npyz::NpyFile::new(BufReader::new(file))
        .map_err(|e| invalid(format!("not a readable .npy file ({e})")))?;
    match npy.dtype() {
        DType::Plain(t) if t.type_char() == TypeChar::Uint && t.num_bytes() == Some(1) => {}
        other => {
            return Err(invalid(format!(
                "dtype is {}, expected uint8 packed codes (numpy.packbits output)",
                other.descr()
            )))
        }
    }
    let shape = npy.shape().to_vec();
    if shape.len() != 2 {
        return Err(invalid(format!(
            "shape is {shape:?}, expected 2 dimensions (codes, bytes per code)"
        )));
    }
    if npy.order() != Order::C && shape[0] > 1 && shape[1] > 1 {
        return Err(invalid(
            "array is in Fortran order; save it with numpy.ascontiguousarray".to_string(),
        ));
    }
    let (rows, row_bytes) = (shape[0] as usize, shape[1] as usize);
    if row_bytes == 0 {
        return Err(invalid("rows are 0 bytes wide".to_string()));
    }
    let data: Vec<u8> = npy.into_vec().map_err(|e| {
        invalid(format!(
            "data could not be read ({e}); is the file truncated?"
        ))
    })?;
    if data.len() != rows * row_bytes {
        return Err(invalid(format!(
            "holds {} bytes, the shape needs {}",
            data.len(),
            rows * row_bytes
        )));
    }
    Ok(PackedCodes {
        rows,
        row_bytes,
        data,
    })
}

/// Writes rows of packed codes as a 2-D `uint8` `.npy` file.
pub fn write_packed(path: &Path, data: &[u8], row_bytes: usize) -> Result<(), NpyError> {
    let io = |source| NpyError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::create(path).map_err(io)?;
    let rows = (data.len() / row_bytes.max(1)) as u64;
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[rows, row_bytes as u64])
        .writer(BufWriter::new(file))
        .begin_nd()
        .map_err(io)?;
    writer.extend(data.iter().copied()).map_err(io)?;
    writer.finish().map_err(io)
}
