//! `ash-search encode`: codes for image files, for users who index
//! elsewhere. A file that cannot be encoded is reported on stderr and the
//! rest go on; the exit code is 1 when any failed. Files come from the
//! command line or from a list (`--files-from`), so a caller with many
//! files (a distributed job's shard) does not depend on the system's
//! limit on argument bytes.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;

use super::encoder_args::EncoderArgs;
use super::CliError;
use ash_encoder::Encoder;
use ash_image::untrusted::open_regular;
use ash_search::ingest::sources::bounded_lines;

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// Image files (PNG, JPEG, TIFF, BMP, DICOM).
    #[arg(required_unless_present = "files_from")]
    files: Vec<PathBuf>,
    /// Also read image paths from this file, one per line (`-`: standard
    /// input); results follow the order of the command line, then the list.
    #[arg(long, value_name = "LIST")]
    files_from: Option<PathBuf>,
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
    let mut files = args.files.clone();
    if let Some(list) = &args.files_from {
        files.extend(read_list(list)?);
    }
    let encoder = Encoder::load(&dir, &args.encoder.options())?;
    say!("{}", encoder.describe());
    let started = Instant::now();
    let mut failed = 0usize;
    let bits = encoder.manifest().bits;
    for (file, result) in files.iter().zip(encoder.encode_files(&files, args.batch)) {
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
                    out!(
                        "{}",
                        serde_json::json!({"file": name, "error": reason.to_string()})
                    )?;
                }
                say!("{name}: {reason}");
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    say!(
        "encoded={} failed={failed} seconds={secs:.3} images_per_s={:.1} peak_rss_mib={:.0}",
        files.len() - failed,
        (files.len() - failed) as f64 / secs.max(1e-9),
        super::peak_rss_mib().unwrap_or(f64::NAN)
    );
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The non-empty lines of a list of paths (`-`: standard input, which may
/// be a pipe; a named list must be a regular file). Lines are bounded, so
/// a list that never ends a line (`/dev/stdin` on a device) is refused.
fn read_list(list: &Path) -> Result<Vec<PathBuf>, CliError> {
    let shown = list.display().to_string();
    let reader: Box<dyn BufRead> = if list == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        let file = open_regular(list).map_err(|e| format!("--files-from {shown}: {e}"))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut files = Vec::new();
    for (n, line) in bounded_lines(reader) {
        let line = line.map_err(|e| format!("--files-from {shown}: line {n}: {e}"))?;
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if !line.trim().is_empty() {
            files.push(PathBuf::from(line));
        }
    }
    Ok(files)
}
