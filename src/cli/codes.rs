//! `ash-search codes …`: code tables as files, driven from outside (numpy,
//! FAISS users, benchmarks).

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand, ValueEnum};

use super::CliError;
use ash_mih::code::{bytes_for, BinaryCode};
use ash_mih::fsio::write_atomic;
use ash_mih::npy;
use ash_mih::synth::{self, Spread};
use ash_mih::{open_mmap, search_batch, BatchQuery, Hit, MihBuilder, Strategy};

#[derive(Debug, Subcommand)]
pub enum CodesCommand {
    /// Build a .mih table from packed codes (rows of numpy.packbits output).
    Build {
        /// uint8 .npy of shape (n, ceil(bits/8)).
        #[arg(long)]
        input: PathBuf,
        /// Code length, for lengths that are not a multiple of 8 [default: 8 × columns].
        #[arg(long)]
        bits: Option<usize>,
        /// Number of substring tables [default: chosen from n and bits].
        #[arg(long)]
        substrings: Option<usize>,
        #[arg(long)]
        output: PathBuf,
    },
    /// The k nearest codes to each query, exact, ordered by (distance, id).
    Knn {
        #[command(flatten)]
        search: SearchArgs,
        #[arg(short = 'k', long)]
        k: usize,
    },
    /// Every code within a Hamming radius of each query, ordered by (distance, id).
    Range {
        #[command(flatten)]
        search: SearchArgs,
        #[arg(long)]
        radius: u32,
    },
    /// Check a .mih file's checksum and tables.
    Verify {
        #[arg(long)]
        index: PathBuf,
    },
    /// Write a deterministic synthetic code set as a .npy file.
    Generate {
        #[arg(long)]
        n: usize,
        #[arg(long, default_value_t = 64)]
        bits: usize,
        #[arg(long, value_enum, default_value_t = SpreadArg::Clustered)]
        spread: SpreadArg,
        /// Clustered only: number of centres.
        #[arg(long, default_value_t = 1000)]
        centres: usize,
        /// Clustered only: probability of flipping each bit of a centre.
        #[arg(long, default_value_t = 0.08)]
        flip: f64,
        /// Seed of the centres (share it between a database and its queries).
        #[arg(long, default_value_t = 1)]
        centre_seed: u64,
        /// Seed of the codes.
        #[arg(long, default_value_t = 2)]
        seed: u64,
        #[arg(long)]
        output: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SpreadArg {
    Uniform,
    Clustered,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// A .mih table built by `codes build`.
    #[arg(long)]
    index: PathBuf,
    /// uint8 .npy of packed query codes, same width as the table.
    #[arg(long)]
    queries: PathBuf,
    /// Worker threads [default: all cores].
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// One JSON line per query: {"query", "ids", "distances"}.
    #[arg(long)]
    json: bool,
    /// Force one algorithm instead of the cost model's choice.
    #[arg(long, value_enum, default_value_t = StrategyArg::Auto)]
    strategy: StrategyArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StrategyArg {
    Auto,
    Mih,
    Scan,
}

pub fn run(cmd: CodesCommand) -> Result<ExitCode, CliError> {
    match cmd {
        CodesCommand::Build {
            input,
            bits,
            substrings,
            output,
        } => build(input, bits, substrings, output),
        CodesCommand::Knn { search, k } => search_cmd(search, BatchQuery::Knn(k)),
        CodesCommand::Range { search, radius } => search_cmd(search, BatchQuery::Range(radius)),
        CodesCommand::Verify { index } => {
            let table = open_mmap(&index)?;
            table
                .verify()
                .map_err(|e| format!("{}: {e}", index.display()))?;
            out!(
                "{}: ok ({} codes of {} bits, {} substrings, {} bytes)",
                index.display(),
                table.len(),
                table.bits(),
                table.substrings().len(),
                table.size_bytes()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        CodesCommand::Generate {
            n,
            bits,
            spread,
            centres,
            flip,
            centre_seed,
            seed,
            output,
        } => {
            let spread = match spread {
                SpreadArg::Uniform => Spread::Uniform,
                SpreadArg::Clustered => Spread::Clustered { centres, flip },
            };
            let codes = synth::generate(n, bits, spread, centre_seed, seed)?;
            let packed: Vec<u8> = codes.iter().flat_map(|c| c.to_packed()).collect();
            npy::write_packed(&output, &packed, bytes_for(bits))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn build(
    input: PathBuf,
    bits: Option<usize>,
    substrings: Option<usize>,
    output: PathBuf,
) -> Result<ExitCode, CliError> {
    let codes = npy::read_packed(&input)?;
    let bits = bits.unwrap_or(codes.row_bytes * 8);
    if bytes_for(bits) != codes.row_bytes {
        return Err(format!(
            "{}: rows are {} bytes, but {bits}-bit codes take {} bytes",
            input.display(),
            codes.row_bytes,
            bytes_for(bits)
        )
        .into());
    }
    let started = Instant::now();
    let mut builder = MihBuilder::new(bits)?;
    if let Some(m) = substrings {
        builder = builder.substrings(m);
    }
    let bytes = builder
        .build_packed(&codes.data)
        .map_err(|e| format!("{}: {e}", input.display()))?;
    let built = started.elapsed().as_secs_f64();
    write_atomic(&output, &bytes)?;
    say!(
        "codes={} bits={bits} bytes={} build_seconds={built:.3} codes_per_second={:.0}",
        codes.rows,
        bytes.len(),
        codes.rows as f64 / built.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

fn search_cmd(args: SearchArgs, what: BatchQuery) -> Result<ExitCode, CliError> {
    let table = open_mmap(&args.index)?;
    let raw = npy::read_packed(&args.queries)?;
    if raw.row_bytes != bytes_for(table.bits()) {
        return Err(format!(
            "{}: query rows are {} bytes, the table's {}-bit codes take {}",
            args.queries.display(),
            raw.row_bytes,
            table.bits(),
            bytes_for(table.bits())
        )
        .into());
    }
    let queries = (0..raw.rows)
        .map(|i| {
            BinaryCode::from_packed(raw.row(i), table.bits())
                .map_err(|e| format!("{}: query {i}: {e}", args.queries.display()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let threads = if args.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        args.threads
    };
    let started = Instant::now();
    let strategy = match args.strategy {
        StrategyArg::Auto => Strategy::Auto,
        StrategyArg::Mih => Strategy::Mih,
        StrategyArg::Scan => Strategy::Scan,
    };
    let results = search_batch(&table, &queries, what, strategy, threads)?;
    let seconds = started.elapsed().as_secs_f64();
    print_results(&results, args.json)?;
    say!(
        "queries={} seconds={seconds:.6} per_query_us={:.3} threads={threads}",
        queries.len(),
        seconds * 1e6 / queries.len().max(1) as f64
    );
    Ok(ExitCode::SUCCESS)
}

fn print_results(results: &[Vec<Hit>], json: bool) -> io::Result<()> {
    let mut out = BufWriter::new(io::stdout().lock());
    if json {
        for (i, hits) in results.iter().enumerate() {
            let line = serde_json::json!({
                "query": i,
                "ids": hits.iter().map(|h| h.doc).collect::<Vec<_>>(),
                "distances": hits.iter().map(|h| h.distance).collect::<Vec<_>>(),
            });
            writeln!(out, "{line}")?;
        }
    } else {
        writeln!(
            out,
            "{:>7}  {:>5}  {:>10}  {:>8}",
            "query", "rank", "id", "distance"
        )?;
        for (i, hits) in results.iter().enumerate() {
            if hits.is_empty() {
                writeln!(out, "{i:>7}  {:>5}  {:>10}  {:>8}", "-", "(none)", "-")?;
            }
            for (rank, h) in hits.iter().enumerate() {
                writeln!(
                    out,
                    "{i:>7}  {:>5}  {:>10}  {:>8}",
                    rank + 1,
                    h.doc,
                    h.distance
                )?;
            }
        }
    }
    out.flush()
}
