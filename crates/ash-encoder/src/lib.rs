//! The encoder: an encoder plugin directory (`manifest.json` +
//! `model.onnx`) run through ONNX Runtime.
//!
//! How it works: [`manifest::read_plugin`] validates the manifest and the
//! model's digest; [`Encoder::load`] loads ONNX Runtime once per process
//! (found as [`Device`] and `ORT_DYLIB_PATH` say), opens a pool of sessions on the chosen execution provider
//! and checks the model's input and output names, ranks and sizes against
//! the manifest. [`preprocess`] turns image files into input tensors (any
//! thread may do this); [`Encoder::encode`] runs a batch of tensors through
//! one pooled session (`Session::run` needs `&mut`, so concurrent callers
//! each take their own) and thresholds the `hash` output into codes.

#![deny(missing_docs)]
#![deny(unsafe_code)]

mod error;
pub mod manifest;
mod pool;
pub mod preprocess;
// Loading ONNX Runtime: one `unsafe` block (reading its version), with its SAFETY argument.
#[allow(unsafe_code)]
mod runtime;

use std::path::{Path, PathBuf};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{TensorRef, ValueType};
use rayon::prelude::*;

use ash_image::ImageLimits;
use ash_mih::code::BinaryCode;
pub use error::{
    EncodeFailure, EncoderError, EncoderErrorKind, InferenceError, Mismatch, RuntimeError,
};
use manifest::{read_plugin, EncoderPin, Manifest, PluginManifest};
use pool::SessionPool;
use preprocess::Preprocessor;
pub use runtime::{Device, Provider};

/// How sessions are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderOptions {
    /// Which execution provider sessions run on.
    pub device: Device,
    /// Intra-op threads per session; 0 means one per core.
    pub threads: usize,
    /// Sessions in the pool: how many batches may run at once.
    pub sessions: usize,
    /// Limits on the images decoded.
    pub limits: ImageLimits,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        Self {
            device: Device::Auto,
            threads: 0,
            sessions: 1,
            limits: ImageLimits::default(),
        }
    }
}

/// One image's encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// The binary code: the `hash` output thresholded.
    pub code: BinaryCode,
    /// The real-valued `hash` output before the threshold.
    pub outputs: Vec<f32>,
    /// The attention map, when the model has one.
    pub attention: Option<AttentionMap>,
}

/// A spatial attention map in [0, 1], row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionMap {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `height * width` values in [0, 1], row-major.
    pub values: Vec<f32>,
}

/// A loaded encoder plugin, ready to encode from any thread.
pub struct Encoder {
    plugin: PluginManifest,
    /// Most images one run takes: 1 for a model exported with a fixed batch
    /// of one, else unbounded.
    max_batch: usize,
    preprocessor: Preprocessor,
    pool: SessionPool,
    provider: Provider,
    runtime_path: PathBuf,
    runtime_source: &'static str,
    runtime_version: String,
}

impl Encoder {
    /// Loads the plugin in `dir`; see the module docs for what is checked.
    ///
    /// ```
    /// use std::path::Path;
    /// use ash_encoder::{Encoder, EncoderOptions};
    /// let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    /// let encoder = Encoder::load(
    ///     &root.join("plugin/models/ash-synfundus-48"),
    ///     &EncoderOptions::default(),
    /// )?;
    /// let tensor = encoder
    ///     .preprocessor()
    ///     .load(&root.join("tests/fixtures/ingest/images/case-00.png"))?;
    /// let encoded = encoder.encode(&tensor, 1)?;
    /// assert_eq!(encoded[0].code.bits(), 48);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(dir: &Path, options: &EncoderOptions) -> Result<Self, EncoderError> {
        Self::from_plugin(read_plugin(dir)?, options)
    }

    /// [`Encoder::load`] for a plugin whose manifest was already read.
    pub fn from_plugin(
        plugin: PluginManifest,
        options: &EncoderOptions,
    ) -> Result<Self, EncoderError> {
        let rt = runtime::runtime()?;
        let provider = runtime::choose_provider(options.device, rt.cuda_available)?;
        let threads = if options.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            options.threads
        };
        let mut sessions = Vec::new();
        for _ in 0..options.sessions.max(1) {
            sessions.push(open_session(
                &rt.environment,
                &plugin.model_path,
                provider,
                threads,
            )?);
        }
        let max_batch = check_model(&sessions[0], &plugin)?;
        Ok(Self {
            max_batch,
            preprocessor: Preprocessor::new(plugin.manifest.input.clone(), options.limits),
            pool: SessionPool::new(sessions),
            provider,
            runtime_path: rt.located.path.clone(),
            runtime_source: rt.located.source,
            runtime_version: rt.version.clone(),
            plugin,
        })
    }

    /// The plugin's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.plugin.manifest
    }

    /// The identity an index records.
    pub fn pin(&self) -> &EncoderPin {
        &self.plugin.pin
    }

    /// The execution provider the sessions run on.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// Turns image files into this model's input tensors.
    pub fn preprocessor(&self) -> &Preprocessor {
        &self.preprocessor
    }

    /// One line for logs: which model runs where, on which ONNX Runtime.
    pub fn describe(&self) -> String {
        let m = self.manifest();
        format!(
            "encoder {} {} ({} bits, {}×{} input) on {}, ONNX Runtime {} {} ({})",
            m.name,
            m.version,
            m.bits,
            m.input.size[1],
            m.input.size[0],
            self.provider.name(),
            self.runtime_version,
            self.runtime_path.display(),
            self.runtime_source
        )
    }

    /// Runs `n` preprocessed images (concatenated tensors), in as few runs
    /// as the model's batch dimension allows.
    pub fn encode(&self, tensors: &[f32], n: usize) -> Result<Vec<Encoded>, EncoderError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let per = self.preprocessor.tensor_len();
        if tensors.len() != n * per {
            return Err(InferenceError::InputLength {
                floats: tensors.len(),
                images: n,
                per_image: per,
            }
            .into());
        }
        let mut out = Vec::with_capacity(n);
        for chunk in tensors.chunks(self.max_batch.saturating_mul(per).max(per)) {
            out.extend(self.run(chunk, chunk.len() / per)?);
        }
        Ok(out)
    }

    /// One session run over `n` images.
    fn run(&self, tensors: &[f32], n: usize) -> Result<Vec<Encoded>, EncoderError> {
        let m = self.manifest();
        let [h, w] = m.input.size;
        let shape = [n, m.input.channel_order.channels(), h as usize, w as usize];
        self.pool.with(|session| {
            let input = TensorRef::from_array_view((shape, tensors))
                .map_err(|e| InferenceError::Run(e.to_string()))?;
            let outputs = session
                .run(ort::inputs![m.input.name.as_str() => input])
                .map_err(|e| InferenceError::Run(e.to_string()))?;
            let (hash_shape, hash) = outputs[m.outputs.hash.as_str()]
                .try_extract_tensor::<f32>()
                .map_err(|e| InferenceError::Run(format!("output {}: {e}", m.outputs.hash)))?;
            if hash_shape.len() != 2
                || hash_shape[0] as usize != n
                || hash_shape[1] as usize != m.bits
            {
                return Err(InferenceError::OutputShape {
                    output: m.outputs.hash.clone(),
                    shape: hash_shape.iter().copied().collect(),
                    expected: format!("[{n}, {}] (manifest bits)", m.bits),
                }
                .into());
            }
            let attention = match &m.outputs.attention {
                Some(name) => {
                    let (shape, values) = outputs[name.as_str()]
                        .try_extract_tensor::<f32>()
                        .map_err(|e| InferenceError::Run(format!("output {name}: {e}")))?;
                    let dims: Vec<i64> = shape.iter().copied().collect();
                    let fits = dims.len() == 4
                        && dims[0] as usize == n
                        && dims[1] == 1
                        && dims[2] > 0
                        && dims[3] > 0
                        && values.len() == n * (dims[2] * dims[3]) as usize;
                    if !fits {
                        return Err(InferenceError::OutputShape {
                            output: name.clone(),
                            shape: dims,
                            expected: format!("[{n}, 1, h, w]"),
                        }
                        .into());
                    }
                    Some(((dims[2] as usize, dims[3] as usize), values))
                }
                None => None,
            };
            let mut out = Vec::with_capacity(n);
            for (i, row) in hash.chunks_exact(m.bits).enumerate() {
                if let Some(bad) = row.iter().find(|v| !v.is_finite()) {
                    return Err(InferenceError::NotFinite {
                        output: m.outputs.hash.clone(),
                        value: *bad,
                        image: i + 1,
                    }
                    .into());
                }
                let bools: Vec<bool> = row.iter().map(|&v| v >= m.threshold).collect();
                let code = BinaryCode::from_bools(&bools)
                    .map_err(|e| InferenceError::Run(e.to_string()))?;
                let attention = attention.map(|((ah, aw), values)| AttentionMap {
                    height: ah,
                    width: aw,
                    values: values[i * ah * aw..(i + 1) * ah * aw].to_vec(),
                });
                out.push(Encoded {
                    code,
                    outputs: row.to_vec(),
                    attention,
                });
            }
            Ok(out)
        })
    }

    /// Encodes image files: decoded in parallel, run in batches of
    /// `batch`. Each file gets its encoding or the reason it has none.
    pub fn encode_files(
        &self,
        paths: &[PathBuf],
        batch: usize,
    ) -> Vec<Result<Encoded, EncodeFailure>> {
        let mut results = Vec::with_capacity(paths.len());
        for chunk in paths.chunks(batch.max(1)) {
            let tensors: Vec<Result<Vec<f32>, EncodeFailure>> = chunk
                .par_iter()
                .map(|p| self.preprocessor.load(p).map_err(EncodeFailure::from))
                .collect();
            results.extend(self.encode_prepared(tensors));
        }
        results
    }

    /// Encodes the tensors that were prepared; passes the failures through.
    /// A batch the model fails on is run again image by image, so one bad
    /// image (NaN outputs, say) fails alone.
    pub fn encode_prepared<E: From<EncoderError>>(
        &self,
        tensors: Vec<Result<Vec<f32>, E>>,
    ) -> Vec<Result<Encoded, E>> {
        let ok: Vec<&Vec<f32>> = tensors.iter().filter_map(|t| t.as_ref().ok()).collect();
        let flat: Vec<f32> = ok.iter().flat_map(|t| t.iter().copied()).collect();
        let alone = |t: &Vec<f32>| -> Result<Encoded, E> {
            let mut one = self.encode(t, 1)?;
            one.pop()
                .ok_or_else(|| EncoderError::from(InferenceError::Run("no output".into())).into())
        };
        let mut encoded = match self.encode(&flat, ok.len()) {
            Ok(e) => e.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(_) if ok.len() > 1 => ok.iter().map(|t| alone(t)).collect(),
            // One image (a run of none cannot fail): the error is its own.
            Err(e) => vec![Err(e.into())],
        }
        .into_iter();
        tensors
            .into_iter()
            .map(|t| match t {
                Ok(_) => encoded.next().expect("one encoding per tensor"),
                Err(reason) => Err(reason),
            })
            .collect()
    }
}

fn open_session(
    env: &ort::environment::Environment,
    model: &Path,
    provider: Provider,
    threads: usize,
) -> Result<Session, EncoderError> {
    let refused = |what: &str, e: &dyn std::fmt::Display| EncoderError::Model {
        path: model.to_path_buf(),
        reason: format!("{what}: {e}"),
    };
    let session = "cannot make a session";
    let builder = Session::builder(env)
        .map_err(|e| refused(session, &e))?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| refused(session, &e))?
        .with_intra_threads(threads)
        .map_err(|e| refused(session, &e))?;
    let mut builder = match provider {
        Provider::Cpu => builder,
        Provider::Cuda => builder
            .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
            .map_err(|e| refused("cannot start the CUDA execution provider", &e))?,
    };
    builder
        .commit_from_file(model)
        .map_err(|e| refused("ONNX Runtime cannot load the model", &e))
}

/// Checks the model's declared inputs and outputs against the manifest;
/// returns the most images one run may take (the model's batch dimension).
fn check_model(session: &Session, plugin: &PluginManifest) -> Result<usize, EncoderError> {
    let check = ModelCheck { session, plugin };
    check.input()?;
    check.hash_output()?;
    let max_batch = check.batch()?;
    check.attention_output()?;
    Ok(max_batch)
}

/// A model's declared interface against its manifest, one part at a time.
struct ModelCheck<'a> {
    session: &'a Session,
    plugin: &'a PluginManifest,
}

impl ModelCheck<'_> {
    /// The error for a disagreement over the manifest's `field`.
    fn fail(&self, field: &str, reason: String) -> EncoderError {
        EncoderError::Model {
            path: self.plugin.model_path.clone(),
            reason: format!(
                "disagrees with {} field {field}: {reason}",
                self.plugin.pin.dir.join("manifest.json").display()
            ),
        }
    }

    fn names(outlets: &[ort::value::Outlet]) -> String {
        outlets
            .iter()
            .map(|o| o.name().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The input the manifest names: a float32 tensor [N, C, H, W] of the
    /// manifest's channels and size.
    fn input(&self) -> Result<(), EncoderError> {
        let m = &self.plugin.manifest;
        let input = self
            .session
            .inputs()
            .iter()
            .find(|o| o.name() == m.input.name)
            .ok_or_else(|| {
                self.fail(
                    "input.name",
                    format!(
                        "no input {:?} (the model has: {})",
                        m.input.name,
                        Self::names(self.session.inputs())
                    ),
                )
            })?;
        let [h, w] = m.input.size;
        let want = [
            -1,
            m.input.channel_order.channels() as i64,
            i64::from(h),
            i64::from(w),
        ];
        let shape = tensor_shape(input.dtype())
            .ok_or_else(|| self.fail("input.dtype", "the input is not a float32 tensor".into()))?;
        let agrees = shape.len() == 4
            && shape
                .iter()
                .zip(want)
                .skip(1)
                .all(|(&a, b)| a == b || a < 0);
        if !agrees {
            return Err(self.fail(
                "input.size",
                format!(
                    "the model's input {:?} has shape {shape:?}; the manifest says [N, {}, {h}, {w}] \
                     ({:?}, size [height, width])",
                    m.input.name, want[1], m.input.channel_order
                ),
            ));
        }
        Ok(())
    }

    /// The output named `name`, for the manifest's `field`.
    fn output(&self, field: &str, name: &str) -> Result<&ort::value::Outlet, EncoderError> {
        self.session
            .outputs()
            .iter()
            .find(|o| o.name() == name)
            .ok_or_else(|| {
                self.fail(
                    field,
                    format!(
                        "no output {name:?} (the model has: {})",
                        Self::names(self.session.outputs())
                    ),
                )
            })
    }

    /// The hash output: a float32 tensor [N, bits].
    fn hash_output(&self) -> Result<(), EncoderError> {
        let m = &self.plugin.manifest;
        let hash = self.output("outputs.hash", &m.outputs.hash)?;
        let shape = tensor_shape(hash.dtype()).ok_or_else(|| {
            self.fail("outputs.hash", "the output is not a float32 tensor".into())
        })?;
        if shape.len() != 2 || (shape[1] >= 0 && shape[1] as usize != m.bits) {
            return Err(self.fail(
                "bits",
                format!(
                    "output {:?} has shape {shape:?}; the manifest says [N, {}]",
                    m.outputs.hash, m.bits
                ),
            ));
        }
        Ok(())
    }

    /// The most images a run takes: unbounded for a dynamic batch, 1 for
    /// a fixed batch of one; any other fixed batch is refused.
    fn batch(&self) -> Result<usize, EncoderError> {
        match shape_batch(&self.plugin.manifest, self.session) {
            b if b <= 0 => Ok(usize::MAX),
            1 => Ok(1),
            b => Err(self.fail(
                "input.size",
                format!(
                    "the model's input {:?} has a fixed batch of {b}; export it with a dynamic \
                     batch dimension (or a batch of 1)",
                    self.plugin.manifest.input.name
                ),
            )),
        }
    }

    /// The attention output, when the manifest names one: [N, 1, h, w].
    fn attention_output(&self) -> Result<(), EncoderError> {
        let Some(name) = &self.plugin.manifest.outputs.attention else {
            return Ok(());
        };
        let att = self.output("outputs.attention", name)?;
        let shape = tensor_shape(att.dtype())
            .ok_or_else(|| self.fail("outputs.attention", "not a float32 tensor".into()))?;
        if shape.len() != 4 {
            return Err(self.fail(
                "outputs.attention",
                format!("output {name:?} has shape {shape:?}; expected [N, 1, h, w]"),
            ));
        }
        Ok(())
    }
}

/// The input's declared batch dimension (negative when dynamic).
fn shape_batch(m: &Manifest, session: &Session) -> i64 {
    session
        .inputs()
        .iter()
        .find(|o| o.name() == m.input.name)
        .and_then(|o| tensor_shape(o.dtype()))
        .and_then(|s| s.first().copied())
        .unwrap_or(-1)
}

/// The dims of a float32 tensor type (-1 where dynamic).
fn tensor_shape(t: &ValueType) -> Option<Vec<i64>> {
    match t {
        ValueType::Tensor { ty, shape, .. } if *ty == ort::value::TensorElementType::Float32 => {
            Some(shape.iter().copied().collect())
        }
        _ => None,
    }
}
