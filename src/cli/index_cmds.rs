//! `ash-search init | ingest | search | info`: an index of records with
//! metadata and codes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use tantivy::collector::TopDocs;
use tantivy::query::{Query, QueryParser, TermQuery};
use tantivy::schema::{FieldType, IndexRecordOption, Value};
use tantivy::{DocAddress, Searcher, TantivyDocument, Term};

use super::CliError;
use ash_search::code::BinaryCode;
use ash_search::index::config::IndexConfig;
use ash_search::index::hybrid::{self, Hit, Mode};
use ash_search::ingest::{ingest_jsonl, RecordError};
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
    /// JSONL records (schemas/record.schema.json).
    records: PathBuf,
    /// Where refused records go, one JSON line each [default: stderr].
    #[arg(long)]
    errors: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    index: PathBuf,
    /// Query code: hex of the packed bytes (numpy packbits order).
    #[arg(long, conflicts_with = "like")]
    code: Option<String>,
    /// Query by example: the id of an indexed document.
    #[arg(long)]
    like: Option<String>,
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
    /// {"hits": [{"id", "distance", "score", "fields"}], "took_ms"}.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    Filter,
    Rrf,
    Weighted,
}

pub fn init(args: InitArgs) -> Result<ExitCode, CliError> {
    let text = std::fs::read_to_string(&args.schema)
        .map_err(|e| format!("{}: {e}", args.schema.display()))?;
    let config =
        IndexConfig::from_json(&text).map_err(|e| format!("{}: {e}", args.schema.display()))?;
    let store = Store::init(&args.index, config)?;
    println!(
        "created {} ({} fields, {}-bit codes in field {:?})",
        args.index.display(),
        store.config.fields.len(),
        store.config.hash.bits,
        store.config.hash.name
    );
    Ok(ExitCode::SUCCESS)
}

pub fn ingest(args: IngestArgs) -> Result<ExitCode, CliError> {
    let store = Store::open(&args.index)?;
    let mut sink: Box<dyn Write> = match &args.errors {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
        )),
        None => Box::new(std::io::stderr()),
    };
    let mut write_error = |e: RecordError| {
        let _ = writeln!(sink, "{}", serde_json::to_string(&e).expect("serialises"));
    };
    let started = Instant::now();
    let report = ingest_jsonl(&store, &args.records, &mut write_error)?;
    sink.flush()?;
    eprintln!(
        "indexed={} failed={} seconds={:.3}",
        report.indexed,
        report.failed,
        started.elapsed().as_secs_f64()
    );
    Ok(if report.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn search(args: SearchArgs) -> Result<ExitCode, CliError> {
    let store = Store::open(&args.index)?;
    let searcher = store.index.reader().searcher();
    let started = Instant::now();
    let code: Option<BinaryCode> = match (&args.code, &args.like) {
        (Some(hex), _) => Some(store.index.field().from_hex(hex)?),
        (None, Some(id)) => Some(code_of(&store, &searcher, id)?),
        (None, None) => None,
    };
    let schema = store.index.schema();
    let text_fields: Vec<_> = schema
        .fields()
        .filter(|(_, e)| matches!(e.field_type(), FieldType::Str(o) if o.get_indexing_options().is_some_and(|i| i.tokenizer() != "raw")))
        .map(|(f, _)| f)
        .collect();
    let all_fields: Vec<_> = schema
        .fields()
        .filter(|(_, e)| e.is_indexed())
        .map(|(f, _)| f)
        .collect();
    let parse = |q: &str, fields: Vec<_>, what: &str| -> Result<Box<dyn Query>, CliError> {
        let parser = QueryParser::for_index(store.index.index(), fields);
        parser
            .parse_query(q)
            .map_err(|e| format!("--{what} {q:?}: {e}").into())
    };
    let text = args
        .text
        .as_deref()
        .map(|q| parse(q, text_fields.clone(), "text"))
        .transpose()?;
    let filter = args
        .filter
        .as_deref()
        .map(|q| parse(q, all_fields.clone(), "filter"))
        .transpose()?;
    let mode = match args.mode {
        ModeArg::Filter => Mode::Filter,
        ModeArg::Rrf => Mode::Rrf,
        ModeArg::Weighted if (0.0..=1.0).contains(&args.weight) => Mode::Weighted(args.weight),
        ModeArg::Weighted => {
            return Err(format!("--weight {} is not in [0, 1]", args.weight).into())
        }
    };
    let hits = hybrid::search(
        &store.index,
        &searcher,
        &hybrid::Request {
            code: code.as_ref(),
            text,
            filter,
            k: args.k,
            radius: args.radius,
            mode,
        },
    )?;
    let took_ms = started.elapsed().as_secs_f64() * 1e3;
    let rows = hits
        .iter()
        .map(|h| row(&store, &searcher, h))
        .collect::<Result<Vec<_>, CliError>>()?;
    if args.json {
        println!("{}", serde_json::json!({"hits": rows, "took_ms": took_ms}));
    } else {
        print_table(&rows);
        eprintln!("{} hits in {took_ms:.2} ms", rows.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// The code of the indexed document with this id.
fn code_of(store: &Store, searcher: &Searcher, id: &str) -> Result<BinaryCode, CliError> {
    let term = Term::from_field_text(store.id_field, id);
    let found = searcher.search(
        &TermQuery::new(term, IndexRecordOption::Basic),
        &TopDocs::with_limit(1).order_by_score(),
    )?;
    let (_, address) = found
        .first()
        .ok_or_else(|| format!("--like {id:?}: no document has this id"))?;
    let codes = store
        .index
        .codes(searcher.segment_reader(address.segment_ord))?;
    codes
        .code(address.doc_id)
        .ok_or_else(|| format!("--like {id:?}: this document has no code").into())
}

fn row(store: &Store, searcher: &Searcher, hit: &Hit) -> Result<serde_json::Value, CliError> {
    let doc: TantivyDocument = searcher.doc(hit.address)?;
    let schema = store.index.schema();
    let mut fields = BTreeMap::new();
    for (field, value) in doc.field_values() {
        let name = schema.get_field_name(field).to_string();
        let v = value_json(&value);
        fields.entry(name).or_insert(v);
    }
    let id = fields.remove("id").unwrap_or(serde_json::Value::Null);
    Ok(serde_json::json!({
        "id": id,
        "distance": hit.distance,
        "score": hit.score,
        "fields": fields,
        "address": address_json(hit.address),
    }))
}

fn address_json(a: DocAddress) -> serde_json::Value {
    serde_json::json!([a.segment_ord, a.doc_id])
}

fn value_json<'a>(v: &impl Value<'a>) -> serde_json::Value {
    if let Some(s) = v.as_str() {
        serde_json::json!(s)
    } else if let Some(i) = v.as_i64() {
        serde_json::json!(i)
    } else if let Some(f) = v.as_f64() {
        serde_json::json!(f)
    } else if let Some(b) = v.as_bool() {
        serde_json::json!(b)
    } else if let Some(d) = v.as_datetime() {
        let t = d.into_utc();
        serde_json::json!(t
            .format(&tantivy::time::format_description::well_known::Rfc3339)
            .unwrap_or_default())
    } else {
        serde_json::Value::Null
    }
}

fn print_table(rows: &[serde_json::Value]) {
    println!(
        "{:>4}  {:<14} {:>8} {:>7}  fields",
        "rank", "id", "distance", "score"
    );
    for (i, r) in rows.iter().enumerate() {
        let dist = r["distance"]
            .as_u64()
            .map_or("-".to_string(), |d| d.to_string());
        let fields: Vec<String> = r["fields"]
            .as_object()
            .map(|o| {
                o.iter()
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
        println!(
            "{:>4}  {:<14} {:>8} {:>7.4}  {}",
            i + 1,
            r["id"].as_str().unwrap_or("?"),
            dist,
            r["score"].as_f64().unwrap_or(0.0),
            fields.join("  ")
        );
    }
}

pub fn info(index: PathBuf, json: bool) -> Result<ExitCode, CliError> {
    let store = Store::open(&index)?;
    let searcher = store.index.reader().searcher();
    let mut by_ext: BTreeMap<String, u64> = BTreeMap::new();
    for entry in std::fs::read_dir(&index)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            let name = entry.file_name().to_string_lossy().to_string();
            let ext = name
                .rsplit_once('.')
                .map_or(name.clone(), |(_, e)| e.to_string());
            *by_ext.entry(ext).or_default() += entry.metadata()?.len();
        }
    }
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
        println!("{info}");
    } else {
        for (k, v) in info.as_object().expect("object") {
            println!("{k:>20}: {v}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
