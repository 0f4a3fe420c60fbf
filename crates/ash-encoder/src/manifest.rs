//! `manifest.json`, the contract between an encoder plugin and ash-search:
//! validated against `schemas/encoder-manifest.schema.json`, then read into
//! [`Manifest`]. Its SHA-256 is the encoder's identity in an index
//! ([`EncoderPin`]): two manifests that differ in any byte are two encoders.

use std::fs;
use std::path::{Path, PathBuf};

use ash_mih::code::hex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{EncoderError, Mismatch};

/// The JSON Schema of a manifest.
pub const MANIFEST_SCHEMA: &str = include_str!("../schemas/encoder-manifest.schema.json");

/// What the model's image input expects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// The input's name in the ONNX graph.
    pub name: String,
    /// The tensor layout; `NCHW` is the one supported.
    pub layout: String,
    /// `[height, width]` in pixels.
    pub size: [u32; 2],
    /// Channel order of the tensor.
    pub channel_order: ChannelOrder,
    /// How images are resized to `size`.
    pub resize: ResizeFilter,
    /// Pixel values (0..255) are multiplied by this, then `(x - mean) / std`.
    pub scale: f32,
    /// Per-channel mean subtracted after scaling.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation divided by after the mean.
    pub std: Vec<f32>,
}

/// Channel order of the input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelOrder {
    /// Red, green, blue.
    #[serde(rename = "RGB")]
    Rgb,
    /// Blue, green, red.
    #[serde(rename = "BGR")]
    Bgr,
    /// One grey channel (luma).
    #[serde(rename = "GREY")]
    Grey,
}

impl ChannelOrder {
    /// Channels in the tensor.
    pub fn channels(self) -> usize {
        match self {
            ChannelOrder::Grey => 1,
            ChannelOrder::Rgb | ChannelOrder::Bgr => 3,
        }
    }
}

/// The filter images are resized with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeFilter {
    /// Bilinear (triangle) filter.
    Bilinear,
    /// Nearest neighbour.
    Nearest,
    /// Lanczos with a = 3.
    Lanczos3,
}

/// The model's output names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSpec {
    /// The real-valued hash output, thresholded into the code.
    pub hash: String,
    /// The spatial attention map output, when the model has one.
    #[serde(default)]
    pub attention: Option<String>,
}

/// A parsed, validated manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The model's name.
    pub name: String,
    /// The model's version.
    pub version: String,
    /// Code length in bits.
    pub bits: usize,
    /// What the image input expects.
    pub input: InputSpec,
    /// The output names.
    pub outputs: OutputSpec,
    /// A code bit is 1 where the hash output is above this.
    pub threshold: f32,
    /// SHA-256 of `model.onnx`, checked when the plugin is read.
    #[serde(default)]
    pub model_sha256: Option<String>,
}

/// The encoder an index was built with. Codes of two encoders are not
/// comparable, so an index refuses any other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderPin {
    /// The model's name.
    pub name: String,
    /// The model's version.
    pub version: String,
    /// Code length in bits.
    pub bits: usize,
    /// SHA-256 of the manifest: the identity of the model and its preprocessing.
    pub manifest_sha256: String,
    /// Where the plugin was when the index was pinned (a hint for later
    /// commands that are given no `--encoder`).
    pub dir: PathBuf,
}

impl EncoderPin {
    /// `name version (sha256 prefix)`, for messages.
    pub fn label(&self) -> String {
        format!(
            "{} {} (manifest sha256 {})",
            self.name,
            self.version,
            &self.manifest_sha256[..12.min(self.manifest_sha256.len())]
        )
    }

    /// Refuses `other` unless it is the same encoder.
    pub fn check_same(&self, other: &EncoderPin) -> Result<(), EncoderError> {
        if self.manifest_sha256 == other.manifest_sha256 {
            return Ok(());
        }
        Err(Mismatch::Model {
            pinned: self.label(),
            pinned_dir: self.dir.clone(),
            given: other.label(),
            given_dir: other.dir.clone(),
        }
        .into())
    }
}

/// A plugin directory's manifest and its identity.
#[derive(Debug, Clone)]
pub struct PluginManifest {
    /// The validated manifest.
    pub manifest: Manifest,
    /// The encoder's identity, for an index to pin.
    pub pin: EncoderPin,
    /// Where `model.onnx` is.
    pub model_path: PathBuf,
}

/// The manifest schema's validator, compiled once per process.
fn manifest_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(MANIFEST_SCHEMA).expect("bundled schema is JSON");
        jsonschema::validator_for(&schema).expect("bundled schema is valid")
    })
}

/// Reads and validates `dir/manifest.json` and checks `dir/model.onnx`
/// against its recorded SHA-256. Needs no ONNX Runtime.
///
/// ```
/// use std::path::Path;
/// use ash_encoder::{manifest::read_plugin, EncoderError};
/// let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugin/models");
/// let plugin = read_plugin(&models.join("ash-synfundus-48")).unwrap();
/// assert_eq!(plugin.pin.bits, 48);
/// assert!(matches!(
///     read_plugin(&models.join("no-such-model")),
///     Err(EncoderError::Manifest { .. })
/// ));
/// ```
pub fn read_plugin(dir: &Path) -> Result<PluginManifest, EncoderError> {
    let path = dir.join("manifest.json");
    let bad = |reason: String| EncoderError::Manifest {
        path: path.clone(),
        reason,
    };
    let bytes = fs::read(&path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let problems: Vec<String> = manifest_validator()
        .iter_errors(&value)
        .map(|e| format!("{e} at {}", field_path(&e.instance_path().to_string())))
        .collect();
    if !problems.is_empty() {
        return Err(bad(format!(
            "does not fit schemas/encoder-manifest.schema.json: {}",
            problems.join("; ")
        )));
    }
    let manifest: Manifest =
        serde_json::from_value(value).map_err(|e| bad(format!("field: {e}")))?;
    let channels = manifest.input.channel_order.channels();
    for (field, len) in [
        ("input.mean", manifest.input.mean.len()),
        ("input.std", manifest.input.std.len()),
    ] {
        if len != 1 && len != channels {
            return Err(bad(format!(
                "field {field}: {len} values for {channels} channel(s) (give 1 or {channels})"
            )));
        }
    }
    // JSON numbers beyond f32's range parse as infinities: refuse them here
    // rather than let every image encode to NaN.
    let numbers = [
        ("input.scale", vec![manifest.input.scale]),
        ("input.mean", manifest.input.mean.clone()),
        ("input.std", manifest.input.std.clone()),
        ("threshold", vec![manifest.threshold]),
    ];
    for (field, values) in numbers {
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(bad(format!(
                "field {field}: {v} is not a finite 32-bit number"
            )));
        }
    }
    let model_path = dir.join("model.onnx");
    if let Some(want) = &manifest.model_sha256 {
        let model = fs::read(&model_path).map_err(|e| EncoderError::Model {
            path: model_path.clone(),
            reason: format!("cannot read: {e}"),
        })?;
        let got = hex(&Sha256::digest(&model));
        if &got != want {
            return Err(EncoderError::Model {
                path: model_path.clone(),
                reason: format!(
                    "sha256 {got} differs from the manifest's model_sha256 {want} \
                     (the model and its manifest do not belong together)"
                ),
            });
        }
    }
    let pin = EncoderPin {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        bits: manifest.bits,
        manifest_sha256: hex(&Sha256::digest(&bytes)),
        dir: fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned()),
    };
    Ok(PluginManifest {
        manifest,
        pin,
        model_path,
    })
}

/// `/input/size/0` → `input.size[0]`, the way the manifest's author reads it.
fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.split('/').filter(|p| !p.is_empty()) {
        if part.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    if out.is_empty() {
        "the top level".into()
    } else {
        format!("field {out}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_becomes_a_field_name() {
        assert_eq!(field_path("/input/size/0"), "field input.size[0]");
        assert_eq!(field_path(""), "the top level");
    }
}
