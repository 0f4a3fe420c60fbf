//! Why an encoder could not be loaded or run, by class: each variant is a
//! thing a caller tells apart ([`EncoderError::kind`] groups them for a
//! status or an exit code); the text, built from typed fields, says what
//! exactly for a person.

use std::path::PathBuf;

use ash_image::ImageError;

use crate::runtime::{END_VERSION, INSTALL_HINT, MIN_VERSION, ORT_LIB_NAME, ORT_VERSION};

/// Why an encoder could not be loaded or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncoderError {
    /// The manifest is missing, not JSON, or does not fit the schema.
    #[error("{}: {reason}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The model file is missing, differs from its digest, or ONNX Runtime
    /// refuses it.
    #[error("{}: {reason}", path.display())]
    Model {
        /// The model file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// ONNX Runtime could not be found, loaded or started.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// An encoder that is not the one asked for.
    #[error(transparent)]
    Mismatch(#[from] Mismatch),
    /// A batch could not be run or gave unusable outputs.
    #[error(transparent)]
    Inference(#[from] InferenceError),
}

/// Why ONNX Runtime is unavailable; each message says how to install it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// `ORT_DYLIB_PATH` names something that is not a file.
    #[error("ONNX Runtime: ORT_DYLIB_PATH={} is not a file; {INSTALL_HINT}", .0.display())]
    NotAFile(PathBuf),
    /// No library anywhere it is looked for.
    #[error(
        "ONNX Runtime {ORT_VERSION} was not found (ORT_DYLIB_PATH unset, no \
         .cache/onnxruntime/{ORT_LIB_NAME}, no python3 onnxruntime); {INSTALL_HINT}"
    )]
    NotFound,
    /// A library of a version outside the supported range.
    #[error(
        "ONNX Runtime: {} (found through {found_through}) is ONNX Runtime {version}, which is \
         not supported (supported: {}.{} up to, not including, {}.{}; tested: 1.30.0 and \
         {ORT_VERSION}); {INSTALL_HINT}",
        path.display(), MIN_VERSION.0, MIN_VERSION.1, END_VERSION.0, END_VERSION.1
    )]
    Unsupported {
        /// The library file.
        path: PathBuf,
        /// Which rule found it.
        found_through: &'static str,
        /// The version it reports.
        version: String,
    },
    /// The library is not ONNX Runtime, or would not start.
    #[error("ONNX Runtime: {} (found through {found_through}): {reason}; {INSTALL_HINT}", path.display())]
    Unusable {
        /// The library file.
        path: PathBuf,
        /// Which rule found it.
        found_through: &'static str,
        /// What went wrong, in ONNX Runtime's or the loader's words.
        reason: String,
    },
    /// Loading ran on a thread of its own, which could not start or panicked.
    #[error("ONNX Runtime: the loading thread failed: {0}")]
    LoaderThread(String),
    /// `--device cuda`, and this ONNX Runtime has no CUDA provider.
    #[error(
        "--device cuda: this ONNX Runtime has no CUDA execution provider (the PyPI \
         `onnxruntime` wheel is CPU-only; use `onnxruntime-gpu` through ORT_DYLIB_PATH \
         on a machine with CUDA, or --device auto|cpu)"
    )]
    NoCuda,
}

/// Another encoder than the one an index requires.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Mismatch {
    /// Another model: codes of two models are not comparable.
    #[error(
        "the index was built with encoder {pinned} but {} is {given}; codes of two models are \
         not comparable (re-index with one encoder, or use the index's: --encoder {})",
        given_dir.display(), pinned_dir.display()
    )]
    Model {
        /// The pinned encoder's label (name, version, digest prefix).
        pinned: String,
        /// Where the pinned encoder lives.
        pinned_dir: PathBuf,
        /// The offered encoder's label.
        given: String,
        /// Where the offered encoder lives.
        given_dir: PathBuf,
    },
    /// A model making codes of another length than the index holds.
    #[error("encoder {encoder} makes {bits}-bit codes; this index holds {index_bits}-bit codes")]
    Bits {
        /// The encoder's label.
        encoder: String,
        /// Its code length.
        bits: usize,
        /// The index's code length.
        index_bits: usize,
    },
}

/// Why a batch gave no codes.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum InferenceError {
    /// The tensors given are not a whole number of images.
    #[error("inference failed: {floats} floats for {images} images of {per_image}")]
    InputLength {
        /// Floats given.
        floats: usize,
        /// Images said to be there.
        images: usize,
        /// Floats one image takes.
        per_image: usize,
    },
    /// ONNX Runtime failed to run the model.
    #[error("inference failed: {0}")]
    Run(String),
    /// An output of another shape than the manifest promises.
    #[error("inference failed: output {output} has shape {shape:?}, expected {expected}")]
    OutputShape {
        /// The output's name.
        output: String,
        /// Its shape.
        shape: Vec<i64>,
        /// What the manifest makes of it.
        expected: String,
    },
    /// A value no code can be read from (NaN, infinity).
    #[error(
        "inference failed: the model's output {output} holds {value} for image {image} of the \
         batch; a code cannot be read from it"
    )]
    NotFinite {
        /// The output's name.
        output: String,
        /// The value.
        value: f32,
        /// The image, from 1, within its batch.
        image: usize,
    },
}

/// The class of an [`EncoderError`], for a server's status or a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncoderErrorKind {
    /// The plugin (manifest or model) is broken: fix or replace it.
    BadPlugin,
    /// ONNX Runtime is missing or unusable on this machine.
    Unavailable,
    /// Another encoder than the one required.
    Conflict,
    /// Running the model failed.
    Failed,
}

impl EncoderError {
    /// The class of this error.
    ///
    /// ```
    /// use ash_encoder::{EncoderError, EncoderErrorKind, Mismatch};
    /// let e = EncoderError::from(Mismatch::Bits {
    ///     encoder: "ash-effnet-48 1.0.0".into(),
    ///     bits: 48,
    ///     index_bits: 32,
    /// });
    /// assert_eq!(e.kind(), EncoderErrorKind::Conflict);
    /// ```
    pub fn kind(&self) -> EncoderErrorKind {
        match self {
            EncoderError::Manifest { .. } | EncoderError::Model { .. } => {
                EncoderErrorKind::BadPlugin
            }
            EncoderError::Runtime(_) => EncoderErrorKind::Unavailable,
            EncoderError::Mismatch(_) => EncoderErrorKind::Conflict,
            EncoderError::Inference(_) => EncoderErrorKind::Failed,
        }
    }
}

/// Why one image has no encoding: its file, or the model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeFailure {
    /// The image was refused or could not be decoded.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The model could not encode it.
    #[error(transparent)]
    Encoder(#[from] EncoderError),
}
