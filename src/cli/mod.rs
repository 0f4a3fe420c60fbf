//! Argument definitions and dispatch.

mod codes;

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
    /// Build and search standalone code tables (.mih) from numpy .npy files.
    #[command(subcommand)]
    Codes(codes::CodesCommand),
}

/// A CLI failure: what failed and why, printed as one line.
pub type CliError = Box<dyn std::error::Error + Send + Sync>;

pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Codes(cmd) => codes::run(cmd),
    }
}
