//! `ash-search encode`: codes for image files, for users who index
//! elsewhere. A file that cannot be encoded is reported on stderr and the
//! rest go on; the exit code is 1 when any failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;

use super::encoder_args::EncoderArgs;
use super::CliError;
use ash_search::encoder::Encoder;

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// Image files (PNG, JPEG, TIFF, BMP).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    encoder: EncoderArgs,
    /// Images per inference batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// One JSON object per file: {"file", "code", "bits"} or {"file", "error"}.
    #[arg(long)]
    json: bool,
}

pub fn run(args: EncodeArgs) -> Result<ExitCode, CliError> {
    let dir = args.encoder.encoder.clone().ok_or(
        "--encoder DIR is required (an encoder plugin, e.g. plugin/models/ash-synfundus-48)",
    )?;
    let encoder = Encoder::load(&dir, &args.encoder.options())?;
    say!("{}", encoder.describe());
    let started = Instant::now();
    let mut failed = 0usize;
    let bits = encoder.manifest().bits;
    for (file, result) in args
        .files
        .iter()
        .zip(encoder.encode_files(&args.files, args.batch))
    {
        let name = file.display().to_string();
        match (result, args.json) {
            (Ok(e), true) => out!(
                "{}",
                serde_json::json!({"file": name, "code": e.code.to_hex(), "bits": bits})
            )?,
            (Ok(e), false) => out!("{}  {name}", e.code.to_hex())?,
            (Err(reason), json) => {
                failed += 1;
                if json {
                    out!("{}", serde_json::json!({"file": name, "error": reason}))?;
                }
                say!("{name}: {reason}");
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    say!(
        "encoded={} failed={failed} seconds={secs:.3} images_per_s={:.1} peak_rss_mib={:.0}",
        args.files.len() - failed,
        (args.files.len() - failed) as f64 / secs.max(1e-9),
        super::peak_rss_mib().unwrap_or(f64::NAN)
    );
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
