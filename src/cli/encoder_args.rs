//! The options every command that runs the encoder shares.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use ash_encoder::{Device, Encoder, EncoderOptions};
use ash_image::ImageLimits;
use ash_search::store::{Store, StoreError};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DeviceArg {
    /// CUDA when this ONNX Runtime has it, else the CPU (logged).
    Auto,
    Cpu,
    /// CUDA, or an error when it is not available.
    Cuda,
}

#[derive(Debug, Args)]
pub struct EncoderArgs {
    /// Encoder plugin directory (manifest.json + model.onnx) [default: the
    /// index's own].
    #[arg(long)]
    pub encoder: Option<PathBuf>,
    /// Execution provider.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// ONNX Runtime threads [default: one per core].
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Largest image width or height, in pixels.
    #[arg(long, default_value_t = ImageLimits::default().max_side)]
    pub max_side: u32,
}

impl EncoderArgs {
    pub fn options(&self) -> EncoderOptions {
        EncoderOptions {
            device: match self.device {
                DeviceArg::Auto => Device::Auto,
                DeviceArg::Cpu => Device::Cpu,
                DeviceArg::Cuda => Device::Cuda,
            },
            threads: self.threads,
            sessions: 1,
            limits: ImageLimits {
                max_side: self.max_side,
                ..ImageLimits::default()
            },
        }
    }

    /// The index's encoder (or `--encoder`), checked against its pin, with
    /// a log line saying which model runs where.
    pub fn open(&self, store: &Store, options: &EncoderOptions) -> Result<Encoder, StoreError> {
        let encoder = store.open_encoder(self.encoder.as_deref(), options)?;
        say!("{}", encoder.describe());
        Ok(encoder)
    }
}
