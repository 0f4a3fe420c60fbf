//! `ash_search._native.Encoder`: an encoder plugin from Python. Images go
//! in as files or as raw pixels (8-bit RGB or grey, row-major), codes come
//! out packed (numpy `packbits` order, as the CLI's `.npy`), laid end to
//! end; the GIL is released while images are decoded and encoded.

use std::path::PathBuf;
use std::sync::Arc;

use ash_encoder::{Device, EncodeFailure, Encoder, EncoderOptions};
use ash_search::error::ErrorKind;
use image::{DynamicImage, GrayImage, RgbImage};
use pyo3::prelude::*;
use rayon::prelude::*;

use crate::errors::{error, raise};

/// The device named in Python.
pub fn device_of(name: &str) -> PyResult<Device> {
    match name {
        "auto" => Ok(Device::Auto),
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda),
        other => Err(error(
            ErrorKind::InvalidInput,
            format!("device {other:?} is not auto, cpu or cuda"),
        )),
    }
}

/// A loaded encoder plugin.
#[pyclass(frozen, module = "ash_search._native", name = "Encoder")]
pub struct PyEncoder {
    inner: Arc<Encoder>,
}

impl PyEncoder {
    pub fn from_arc(inner: Arc<Encoder>) -> Self {
        Self { inner }
    }

    pub fn inner(&self) -> Arc<Encoder> {
        self.inner.clone()
    }
}

/// Packed codes end to end, and per image `None` or why it has no code
/// (its bytes in the codes are zero).
type Coded = (Vec<u8>, Vec<Option<(String, String)>>);

/// The `ash_search.errors` class of a failure, and the failure.
fn failure(reason: &EncodeFailure) -> (String, String) {
    let kind = crate::errors::Kinded::error_kind(reason);
    (
        crate::errors::class_name(kind).to_string(),
        reason.to_string(),
    )
}

impl PyEncoder {
    fn pack(&self, results: Vec<Result<ash_encoder::Encoded, EncodeFailure>>) -> Coded {
        let width = self.inner.pin().bits.div_ceil(8);
        let mut codes = vec![0u8; results.len() * width];
        let mut failures = Vec::with_capacity(results.len());
        for (i, result) in results.into_iter().enumerate() {
            match result {
                Ok(encoded) => {
                    codes[i * width..(i + 1) * width].copy_from_slice(&encoded.code.to_packed());
                    failures.push(None);
                }
                Err(reason) => failures.push(Some(failure(&reason))),
            }
        }
        (codes, failures)
    }
}

#[pymethods]
impl PyEncoder {
    /// Loads the plugin in `dir` (manifest.json + model.onnx).
    #[staticmethod]
    #[pyo3(signature = (dir, device = "auto", threads = 0))]
    fn open(py: Python<'_>, dir: PathBuf, device: &str, threads: usize) -> PyResult<Self> {
        let options = EncoderOptions {
            device: device_of(device)?,
            threads,
            ..Default::default()
        };
        let encoder = py.detach(|| Encoder::load(&dir, &options)).map_err(raise)?;
        Ok(Self::from_arc(Arc::new(encoder)))
    }

    /// Bits per code.
    #[getter]
    fn bits(&self) -> usize {
        self.inner.pin().bits
    }

    /// Which model, from where, on which device.
    fn describe(&self) -> String {
        self.inner.describe()
    }

    /// Encodes image files in batches of `batch`.
    fn encode_paths(&self, py: Python<'_>, paths: Vec<PathBuf>, batch: usize) -> Coded {
        py.detach(|| self.pack(self.inner.encode_files(&paths, batch.max(1))))
    }

    /// Encodes `n` images of `height` × `width` × `channels` (1 or 3)
    /// 8-bit pixels, row-major, laid end to end in `pixels`.
    fn encode_pixels(
        &self,
        py: Python<'_>,
        pixels: Vec<u8>,
        n: usize,
        height: u32,
        width: u32,
        channels: usize,
    ) -> PyResult<Coded> {
        let preprocessor = self.inner.preprocessor();
        // Every image has this size: refuse it once, before any copy.
        preprocessor
            .limits()
            .check(width, height)
            .map_err(|e| error(ErrorKind::InvalidInput, format!("images: {e}")))?;
        let each = (height as usize)
            .checked_mul(width as usize)
            .and_then(|p| p.checked_mul(channels))
            .filter(|_| matches!(channels, 1 | 3));
        let Some(each) = each.filter(|e| n.checked_mul(*e) == Some(pixels.len())) else {
            return Err(error(
                ErrorKind::InvalidInput,
                format!(
                    "images: {} bytes are not {n} images of {height}×{width}×{channels} (channels 1 or 3)",
                    pixels.len()
                ),
            ));
        };
        Ok(py.detach(|| {
            let tensors: Vec<Result<Vec<f32>, EncodeFailure>> = pixels
                .par_chunks(each)
                .map(|raw| {
                    let image = match channels {
                        1 => GrayImage::from_raw(width, height, raw.to_vec())
                            .map(DynamicImage::ImageLuma8),
                        _ => RgbImage::from_raw(width, height, raw.to_vec())
                            .map(DynamicImage::ImageRgb8),
                    }
                    .expect("the length was checked");
                    preprocessor
                        .image_tensor(&image)
                        .map_err(EncodeFailure::from)
                })
                .collect();
            self.pack(self.inner.encode_prepared(tensors))
        }))
    }
}
