//! Argument definitions and dispatch.

/// `println!` that returns an error instead of panicking when stdout is
/// closed (`ash-search encode … | head -1`); `main` ends quietly on it.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// `eprintln!` that never panics (a closed stderr is no reason to stop).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod codes;
mod encode;
mod encoder_args;
mod index_cmds;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exact Hamming-space image retrieval for ophthalmology.
#[derive(Debug, Parser)]
#[command(name = "ash-search", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an index from a configuration (schemas/index.schema.json).
    Init(index_cmds::InitArgs),
    /// Add records (JSONL, or a folder of images with a metadata CSV);
    /// images are encoded with the index's encoder; ids replace.
    Ingest(index_cmds::IngestArgs),
    /// Print the codes of image files (hex), for indexing elsewhere.
    Encode(encode::EncodeArgs),
    /// The HTTP API and the web page (see schemas/openapi.json).
    Serve(serve::ServeArgs),
    /// Image, text and hybrid search.
    Search(index_cmds::SearchArgs),
    /// Documents, segments, bits, file sizes and the encoder of an index.
    Info {
        index: std::path::PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Check every segment's code table in full (checksums and structure);
    /// exits 1 when any is damaged.
    Verify {
        index: std::path::PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Build and search standalone code tables (.mih) from numpy .npy files.
    #[command(subcommand)]
    Codes(codes::CodesCommand),
}

/// A CLI failure: what failed and why, printed as one line.
pub type CliError = Box<dyn std::error::Error + Send + Sync>;

/// Whether `e` is stdout closing under us: the reader had what it wanted.
pub fn is_broken_pipe(e: &CliError) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Codes(cmd) => codes::run(cmd),
        Command::Init(args) => index_cmds::init(args),
        Command::Ingest(args) => index_cmds::ingest(args),
        Command::Encode(args) => encode::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Search(args) => index_cmds::search(args),
        Command::Info { index, json } => index_cmds::info(index, json),
        Command::Verify { index, json } => index_cmds::verify(index, json),
    }
}

/// This process's peak resident memory in MiB (Linux `VmHWM`, which,
/// unlike `getrusage`, does not inherit the parent's peak across exec).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
