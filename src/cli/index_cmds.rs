//! `ash-search init | ingest | search | info`: an index of records with
//! metadata and codes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};

use super::encoder_args::EncoderArgs;
use super::CliError;
use ash_mih::code::BinaryCode;
use ash_search::config::IndexConfig;
use ash_search::config::{EncoderRef, IMAGE_FIELD};
use ash_search::ingest::dicomweb::{Auth, DicomWebSource};
use ash_search::ingest::{self, IngestOptions, RecordError, Source};
use ash_search::search::request::{RequestError, RequestLimits, SearchRequest};
use ash_search::search::{self, SearchError};
use ash_search::store::Store;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Index directory to create.
    index: PathBuf,
    /// Index configuration (schemas/index.schema.json).
    #[arg(long)]
    schema: PathBuf,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    index: PathBuf,
    /// JSONL records (schemas/record.schema.json), one file or many (e.g.
    /// the shards of a distributed encoding job), read in the order given;
    /// `image` paths are relative to their own file.
    #[arg(
        required_unless_present_any = ["images", "dicomweb"],
        conflicts_with_all = ["images", "dicomweb"]
    )]
    records: Vec<PathBuf>,
    /// A folder of images instead (ids are file stems or the CSV's `id`).
    #[arg(long, conflicts_with = "dicomweb")]
    images: Option<PathBuf>,
    /// CSV of metadata for --images, keyed by its `file` column.
    #[arg(long, requires = "images")]
    metadata: Option<PathBuf>,
    /// A PACS instead: its DICOMweb root URL (e.g.
    /// http://pacs:8042/dicom-web). Instances are listed with QIDO-RS and
    /// retrieved with WADO-RS; those already indexed are skipped, so the
    /// same command can run every night.
    #[arg(long, requires = "save")]
    dicomweb: Option<String>,
    /// With --dicomweb: only this study (its StudyInstanceUID).
    #[arg(long, requires = "dicomweb")]
    study: Option<String>,
    /// With --dicomweb: only studies of this date or later (YYYY-MM-DD).
    #[arg(long, requires = "dicomweb")]
    since: Option<String>,
    /// With --dicomweb: a bearer token for the server.
    #[arg(long, env = "ASH_DICOMWEB_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// With --dicomweb: USER:PASSWORD for HTTP basic authentication.
    #[arg(
        long,
        env = "ASH_DICOMWEB_USER",
        hide_env_values = true,
        conflicts_with = "token"
    )]
    user: Option<String>,
    /// With --dicomweb: where retrieved objects are kept, as
    /// DIR/<study>/<instance>.dcm (give DIR to `serve --image-root`).
    #[arg(long, requires = "dicomweb")]
    save: Option<PathBuf>,
    /// With --dicomweb: retrievals at once.
    #[arg(long, default_value_t = 4)]
    fetch_threads: usize,
    /// Where refused records go, one JSON line each [default: stderr].
    #[arg(long)]
    errors: Option<PathBuf>,
    #[command(flatten)]
    encoder: EncoderArgs,
    /// Images per inference batch.
    #[arg(long, default_value_t = 32, value_parser = at_least_one)]
    batch: usize,
    /// Documents between commits (a killed ingest loses at most these).
    #[arg(long, default_value_t = ash_search::ingest::COMMIT_EVERY, value_parser = at_least_one)]
    commit_every: usize,
    /// Memory the index writer buffers documents in, in MB (tantivy needs
    /// 15 MB for each of its indexing threads, one per core up to 8).
    #[arg(long, default_value_t = (ash_search::ingest::DEFAULT_WRITER_HEAP_BYTES / 1_000_000) as u64,
          value_parser = clap::value_parser!(u64).range(15..=65_536))]
    writer_memory_mb: u64,
    /// Leave records whose id is already indexed alone (resumes an ingest).
    #[arg(long)]
    skip_existing: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    index: PathBuf,
    /// Query code: hex of the packed bytes (numpy packbits order).
    #[arg(long, conflicts_with = "like")]
    code: Option<String>,
    /// Query by example: the id of an indexed document.
    #[arg(long, conflicts_with = "image")]
    like: Option<String>,
    /// Query by image: encoded with the index's encoder.
    #[arg(long, conflicts_with = "code")]
    image: Option<PathBuf>,
    #[command(flatten)]
    encoder: EncoderArgs,
    /// Full-text query (tantivy query syntax) over the text fields, BM25.
    #[arg(long)]
    text: Option<String>,
    /// Restricting query, e.g. 'grade:[2 TO 4] AND eye:OS'.
    #[arg(long)]
    filter: Option<String>,
    #[arg(short = 'k', long, default_value_t = 10)]
    k: usize,
    /// Only docs within this Hamming distance.
    #[arg(long)]
    radius: Option<u32>,
    /// How text and image rank together.
    #[arg(long, value_enum, default_value_t = ModeArg::Filter)]
    mode: ModeArg,
    /// Image weight of `--mode weighted`, in [0, 1].
    #[arg(long, default_value_t = 0.5)]
    weight: f32,
    /// `rrf` and `weighted`: how deep each ranking is taken [default: 5 × k, at least 50].
    #[arg(long)]
    depth: Option<usize>,
    /// Also say, per segment, how the filter was applied (allow-list or
    /// checked candidates), the filter's estimated share and the fusion
    /// depth; with --json as an "explain" object.
    #[arg(long)]
    explain: bool,
    /// {"hits": [{"id", "distance", "score", "fields"}], "took_ms"}.
    #[arg(long)]
    json: bool,
}

/// A count of at least 1 (0 would be refused, never raised to 1).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    Filter,
    Rrf,
    Weighted,
}

impl ModeArg {
    /// The mode's name in a search request.
    fn name(self) -> &'static str {
        match self {
            ModeArg::Filter => "filter",
            ModeArg::Rrf => "rrf",
            ModeArg::Weighted => "weighted",
        }
    }
}

pub fn init(args: InitArgs) -> Result<ExitCode, CliError> {
    let text = std::fs::read_to_string(&args.schema)
        .map_err(|e| format!("{}: {e}", args.schema.display()))?;
    let mut config =
        IndexConfig::from_json(&text).map_err(|e| format!("{}: {e}", args.schema.display()))?;
    // An encoder directory that is not there from here may be meant
    // relative to the configuration file.
    if let Some(EncoderRef::Dir(dir)) = &config.hash.encoder {
        let beside = args.schema.parent().map(|p| p.join(dir));
        if !std::path::Path::new(dir).exists() {
            if let Some(b) = beside.filter(|b| b.exists()) {
                config.hash.encoder = Some(EncoderRef::Dir(b.display().to_string()));
            }
        }
    }
    let store = Store::init(&args.index, config)?;
    if let Some(pin) = store.encoder_pin() {
        out!("encoder: {}", pin.label())?;
    }
    out!(
        "created {} ({} fields, {}-bit codes in field {:?})",
        args.index.display(),
        store.config.fields.len(),
        store.config.hash.bits,
        store.config.hash.name
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn ingest(args: IngestArgs) -> Result<ExitCode, CliError> {
    let store = Store::open(&args.index)?;
    // Images need the encoder; records with codes alone do not.
    let needs_encoder = args.images.is_some()
        || args.dicomweb.is_some()
        || args.encoder.encoder.is_some()
        || args.records.iter().any(|r| has_image_records(r));
    let encoder = if needs_encoder {
        Some(args.encoder.open(&store, &args.encoder.options())?)
    } else {
        None
    };
    let mut sink: Box<dyn Write> = match &args.errors {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
        )),
        None => Box::new(std::io::stderr()),
    };
    let mut write_error = |e: RecordError| {
        let _ = writeln!(sink, "{}", serde_json::to_string(&e).expect("serialises"));
    };
    let server = args.dicomweb.as_ref().map(|url| DicomWebSource {
        url: url.clone(),
        study: args.study.clone(),
        since: args.since.clone(),
        auth: match (&args.token, &args.user) {
            (Some(token), _) => Some(Auth::Bearer(token.clone())),
            (None, Some(pair)) => Some(Auth::Basic(pair.clone())),
            (None, None) => None,
        },
        save_to: args.save.clone().unwrap_or_default(),
        threads: args.fetch_threads.max(1),
        page_size: ash_search::ingest::dicomweb::PAGE_SIZE,
    });
    let source = match (args.records.is_empty(), &args.images, &server) {
        (false, _, _) => Source::Jsonl(&args.records),
        (true, Some(dir), _) => Source::Images {
            dir,
            metadata: args.metadata.as_deref(),
        },
        (true, None, Some(server)) => Source::DicomWeb(server),
        (true, None, None) => return Err("give JSONL files, --images DIR or --dicomweb URL".into()),
    };
    let options = IngestOptions {
        commit_every: args.commit_every,
        batch: args.batch,
        skip_existing: args.skip_existing,
        progress: !args.quiet,
        deadline: None,
        writer_heap_bytes: (args.writer_memory_mb * 1_000_000) as usize,
    };
    let result = ingest::ingest(&store, source, encoder.as_ref(), &options, &mut write_error);
    sink.flush()?;
    let report = match result {
        Err(ingest::IngestError::DicomWeb { error, report }) => {
            print_report(&report);
            return Err(Box::new(ingest::IngestError::DicomWeb { error, report }));
        }
        r => r?,
    };
    print_report(&report);
    Ok(if report.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The ingest's one-line summary on stdout.
fn print_report(report: &ingest::IngestReport) {
    say!(
        "indexed={} failed={} skipped={} images={} seconds={:.3} images_per_s={:.1} \
         decode_cpu_s={:.3} encode_s={:.3} index_s={:.3} wait_s={:.3} peak_rss_mib={:.0}",
        report.indexed,
        report.failed,
        report.skipped,
        report.images,
        report.seconds,
        report.images as f64 / report.seconds.max(1e-9),
        report.decode_cpu_seconds,
        report.encode_seconds,
        report.index_seconds,
        report.wait_seconds,
        super::peak_rss_mib().unwrap_or(f64::NAN)
    );
}

/// Whether a JSONL file has any record with an `image` (a cheap scan of
/// a regular file, line by bounded line; anything else is refused later,
/// when the ingest opens it).
fn has_image_records(path: &std::path::Path) -> bool {
    ash_image::untrusted::open_regular(path).is_ok_and(|f| {
        ash_search::ingest::sources::bounded_lines(std::io::BufReader::new(f)).any(|(_, l)| {
            l.is_ok_and(|l| {
                serde_json::from_str::<serde_json::Value>(&l)
                    .is_ok_and(|v| v.get("image").is_some())
            })
        })
    })
}

pub fn search(args: SearchArgs) -> Result<ExitCode, CliError> {
    let store = Store::open(&args.index)?;
    let checked = args
        .request()
        .check(args.image.is_some(), &CLI_LIMITS)
        .map_err(|e| format!("{}: {e}", flag_of(&e)))?;
    let image_code = match &args.image {
        Some(path) => Some(encode_query_image(&args, &store, path)?),
        None => None,
    };
    let searcher = store.index.reader().searcher();
    let started = Instant::now();
    // The message names the option the problem is in, by the error's type.
    let (hits, explain) = checked
        .resolve(&store, &searcher, image_code)
        .and_then(|query| search::search_explained(&store, &searcher, &query, None))
        .map_err(|e| match &e {
            SearchError::UnknownId(id) | SearchError::NoCode(id) => format!("--like {id:?}: {e}"),
            SearchError::Query { .. } | SearchError::Code(_) => format!("--{e}"),
            _ => e.to_string(),
        })?;
    let took_ms = started.elapsed().as_secs_f64() * 1e3;
    let rows: Vec<serde_json::Value> = hits
        .iter()
        .map(|h| serde_json::to_value(h).expect("hits serialise"))
        .collect();
    let explain = serde_json::to_value(&explain).expect("plans serialise");
    if args.json {
        let mut v = serde_json::json!({"hits": rows, "took_ms": took_ms});
        if args.explain {
            v["explain"] = explain;
        }
        out!("{v}")?;
    } else {
        print_table(&rows)?;
        say!("{} hits in {took_ms:.2} ms", rows.len());
        if args.explain {
            say!("explain: {explain}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The CLI's bounds: no server to protect, only nonsense to refuse.
const CLI_LIMITS: RequestLimits = RequestLimits {
    max_k: 1_000_000,
    max_depth: 1_000_000,
};

impl SearchArgs {
    /// The flags as the one search request grammar.
    fn request(&self) -> SearchRequest {
        SearchRequest {
            code: self.code.clone(),
            like: self.like.clone(),
            text: self.text.clone(),
            filter: self.filter.clone(),
            k: Some(self.k),
            radius: self.radius,
            mode: Some(self.mode.name().to_string()),
            weight: Some(self.weight),
            depth: self.depth,
            explain: Some(self.explain),
        }
    }
}

/// The flag a refused request is about, by the error's variant.
fn flag_of(e: &RequestError) -> &'static str {
    match e {
        RequestError::K { .. } => "-k",
        RequestError::Weight(_) => "--weight",
        RequestError::Depth { .. } | RequestError::DepthBelowK { .. } => "--depth",
        RequestError::Mode(_) => "--mode",
        _ => "search",
    }
}

/// `--image`'s code, encoded with the index's encoder.
fn encode_query_image(
    args: &SearchArgs,
    store: &Store,
    path: &std::path::Path,
) -> Result<BinaryCode, CliError> {
    let encoder = args.encoder.open(store, &args.encoder.options())?;
    let encoded = encoder
        .encode_files(&[path.to_path_buf()], 1)
        .pop()
        .expect("one result per file")
        .map_err(|reason| format!("--image {}: {reason}", path.display()))?;
    Ok(encoded.code)
}

fn print_table(rows: &[serde_json::Value]) -> std::io::Result<()> {
    out!(
        "{:>4}  {:<14} {:>8} {:>7}  fields",
        "rank",
        "id",
        "distance",
        "score"
    )?;
    for (i, r) in rows.iter().enumerate() {
        let dist = r["distance"]
            .as_u64()
            .map_or("-".to_string(), |d| d.to_string());
        let fields: Vec<String> = r["fields"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| k != &IMAGE_FIELD)
                    .map(|(k, v)| {
                        let s = v.as_str().map_or(v.to_string(), str::to_string);
                        let s: String = if s.chars().count() > 48 {
                            s.chars().take(45).chain("...".chars()).collect()
                        } else {
                            s
                        };
                        format!("{k}={s}")
                    })
                    .collect()
            })
            .unwrap_or_default();
        out!(
            "{:>4}  {:<14} {:>8} {:>7.4}  {}",
            i + 1,
            r["id"].as_str().unwrap_or("?"),
            dist,
            r["score"].as_f64().unwrap_or(0.0),
            fields.join("  ")
        )?;
    }
    Ok(())
}

pub fn info(index: PathBuf, json: bool) -> Result<ExitCode, CliError> {
    let store = Store::open(&index)?;
    let searcher = store.index.reader().searcher();
    let by_ext = store.bytes_by_extension()?;
    let mut with_code = 0u64;
    for r in searcher.segment_readers() {
        let codes = store.index.codes(r)?;
        with_code += (0..r.max_doc())
            .filter(|&d| r.alive_bitset().is_none_or(|a| a.is_alive(d)) && !codes.none.contains(d))
            .count() as u64;
    }
    let info = serde_json::json!({
        "index": index.display().to_string(),
        "documents": searcher.num_docs(),
        "documents_with_code": with_code,
        "segments": searcher.segment_readers().len(),
        "bits": store.config.hash.bits,
        "hash_field": store.config.hash.name,
        "encoder": store.config.hash.encoder,
        "bytes_total": by_ext.values().sum::<u64>(),
        "bytes_by_extension": by_ext,
    });
    if json {
        out!("{info}")?;
    } else {
        for (k, v) in info.as_object().expect("object") {
            out!("{k:>20}: {v}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn verify(index: PathBuf, json: bool) -> Result<ExitCode, CliError> {
    // The index is opened without its reader: a damaged table must be
    // reported here, not stop the command at open.
    let checks = ash_tantivy::verify_dir(&index)?;
    let damaged = checks.iter().filter(|c| c.problem.is_some()).count();
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"segments": checks.iter().map(|c| serde_json::json!({
                "segment": c.segment,
                "docs": c.docs,
                "problem": c.problem,
            })).collect::<Vec<_>>(), "damaged": damaged})
        )?;
    } else {
        for c in &checks {
            match &c.problem {
                None => writeln!(out, "segment {}: ok ({} docs)", c.segment, c.docs)?,
                Some(p) => writeln!(out, "segment {}: DAMAGED: {p}", c.segment)?,
            }
        }
        writeln!(out, "{} segments, {damaged} damaged", checks.len())?;
    }
    Ok(if damaged > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
