//! Argument definitions and dispatch.

mod codes;
mod index_cmds;

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
    /// Add JSONL records (schemas/record.schema.json); ids replace.
    Ingest(index_cmds::IngestArgs),
    /// Image, text and hybrid search.
    Search(index_cmds::SearchArgs),
    /// Documents, segments, bits, file sizes and the encoder of an index.
    Info {
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

pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Codes(cmd) => codes::run(cmd),
        Command::Init(args) => index_cmds::init(args),
        Command::Ingest(args) => index_cmds::ingest(args),
        Command::Search(args) => index_cmds::search(args),
        Command::Info { index, json } => index_cmds::info(index, json),
    }
}
