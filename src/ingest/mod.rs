//! Ingestion: records → validated documents → codes → the index, with a
//! per-record error report.
//!
//! How it works: a producer thread streams records ([`sources`]), parses
//! them ([`records`]), drops duplicates and (with `skip_existing`) ids
//! already committed, and decodes and resizes each batch's images in
//! parallel (rayon). Batches cross a channel of two slots, so memory stays
//! bounded whatever the input size, and the next batch decodes while this
//! thread runs the encoder on the current one and adds its documents.
//! Commits come every `commit_every` documents: a killed ingest loses only
//! what came after the last commit, and `skip_existing` resumes it.
//!
//! A record that cannot be used is reported with its line, id, input and
//! reason, and the rest goes on. Only a record that is indexed claims its
//! id: a second record with an id already indexed in this run is refused
//! as a duplicate, but one that follows a refused record of the same id
//! (a half-copied DICOM object beside the intact one) is indexed.

pub mod dicom;
pub mod dicomweb;
pub mod records;
pub mod sources;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;
use tantivy::schema::IndexRecordOption;
use tantivy::{Searcher, TantivyDocument, Term};

use crate::error::ErrorKind;
use crate::store::{Store, StoreError};
use ash_encoder::preprocess::Preprocessor;
use ash_encoder::{EncodeFailure, Encoder};
use ash_tantivy::IndexError;
use records::RecordParser;
use sources::RawRecord;

/// Documents between commits by default: a crash loses at most this many.
pub const COMMIT_EVERY: usize = 10_000;

/// One record that was not indexed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordError {
    pub line: usize,
    pub id: Option<String>,
    pub input: String,
    pub reason: String,
}

/// Where records come from.
pub enum Source<'a> {
    /// JSONL files, read one after the other (each must exist when the
    /// ingest starts; `image` paths are relative to their own file).
    Jsonl(&'a [PathBuf]),
    /// JSONL from any stream (a request body): `input` names it in error
    /// records, relative `image` paths are taken from `base`.
    Reader {
        reader: Box<dyn std::io::BufRead + Send + 'a>,
        input: String,
        base: PathBuf,
    },
    Images {
        dir: &'a Path,
        metadata: Option<&'a Path>,
    },
    /// The instances of a DICOMweb server (a PACS); those already indexed
    /// are skipped before they are retrieved, whatever `skip_existing` says.
    DicomWeb(&'a dicomweb::DicomWebSource),
}

/// Why an ingest stopped.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The index directory or its encoder pin failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A source file or folder could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The metadata CSV of an image folder is unusable as a whole (not
    /// CSV, a file named twice); rows that are only wrong are record errors.
    #[error("{}: {reason}", path.display())]
    Metadata {
        /// The CSV file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The deadline passed before the final commit: nothing since the last
    /// commit was indexed (with `commit_every` at its maximum, nothing).
    #[error("the ingest ran past its deadline and was rolled back; nothing after the last commit was indexed")]
    DeadlineExceeded,
    /// The DICOMweb server failed or refused us. What was retrieved before
    /// is indexed and committed; the same command continues from there.
    #[error("{error}. {}", kept(report))]
    DicomWeb {
        /// What failed.
        error: dicomweb::DicomWebError,
        /// What the ingest did before.
        report: Box<IngestReport>,
    },
    /// The record reader failed (a bug): nothing since the last commit was indexed.
    #[error("the record reader failed ({0}); nothing after the last commit was indexed")]
    ReaderFailed(String),
}

impl IngestError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IngestError::Index(e) => e.kind().into(),
            IngestError::Store(e) => e.kind(),
            IngestError::Read { .. } => ErrorKind::Io,
            IngestError::Metadata { .. } => ErrorKind::InvalidInput,
            IngestError::DeadlineExceeded => ErrorKind::Unavailable,
            IngestError::DicomWeb { error, .. } => error.kind(),
            IngestError::ReaderFailed(_) => ErrorKind::Internal,
        }
    }
}

impl From<tantivy::TantivyError> for IngestError {
    fn from(e: tantivy::TantivyError) -> Self {
        IngestError::Index(e.into())
    }
}

/// What an interrupted DICOMweb ingest kept, in words.
fn kept(report: &IngestReport) -> String {
    match report.indexed {
        0 => "Nothing was indexed".to_string(),
        n => format!(
            "The {n} documents retrieved before are indexed and committed; the same command continues from there"
        ),
    }
}

/// How an ingest runs.
#[derive(Debug, Clone, Copy)]
pub struct IngestOptions {
    pub commit_every: usize,
    /// Images per inference batch.
    pub batch: usize,
    /// Leave records whose id is already committed alone (to resume).
    pub skip_existing: bool,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
    /// Give up, rolling back to the last commit, when this passes before
    /// the final commit starts. Once the final commit starts, it finishes.
    pub deadline: Option<Instant>,
    /// Memory the index writer buffers documents in before it writes a
    /// segment ([`DEFAULT_WRITER_HEAP_BYTES`]); tantivy refuses less than
    /// 15 MB per indexing thread, with an error.
    pub writer_heap_bytes: usize,
}

/// The writer's buffer when an ingest does not say: large enough that a
/// big ingest writes few segments, small beside a server's memory.
pub const DEFAULT_WRITER_HEAP_BYTES: usize = 200_000_000;

impl IngestOptions {
    /// Whether the deadline has passed.
    fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            commit_every: COMMIT_EVERY,
            batch: 32,
            skip_existing: false,
            progress: false,
            deadline: None,
            writer_heap_bytes: DEFAULT_WRITER_HEAP_BYTES,
        }
    }
}

/// What an ingest did and where its time went.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IngestReport {
    pub indexed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub images: usize,
    pub seconds: f64,
    /// Decoding and resizing, summed over the threads that did it.
    pub decode_cpu_seconds: f64,
    pub encode_seconds: f64,
    /// Adding documents and committing.
    pub index_seconds: f64,
    /// Time the encoder waited for decoded images.
    pub wait_seconds: f64,
}

/// Where a record's image stands in the pipeline.
enum ImageState {
    /// The record names no image (it carries a code, or none).
    Absent,
    /// Named; the decoder has not run yet.
    Named,
    /// Decoded into the model's input, or why it could not be.
    Decoded(Result<Vec<f32>, EncodeFailure>),
    /// Handed to the encoder.
    Taken,
}

/// What the producer made of one record.
enum Outcome {
    Ready {
        line: usize,
        /// Where the record came from (the JSONL file, the image).
        origin: String,
        /// The image file, when the record names one.
        input: String,
        id: String,
        doc: TantivyDocument,
        /// The record's image, as far as the pipeline has got with it.
        image: ImageState,
        /// The image's frame, from 0.
        frame: u32,
    },
    Refused(RecordError),
    Skipped,
}

struct Batch {
    items: Vec<Outcome>,
    decode: Duration,
}

/// The records of a source, how many there will be when that is known,
/// and, for a PACS, what the listing reports when it is done.
struct Opened<'a> {
    records: Box<dyn Iterator<Item = RawRecord> + Send + 'a>,
    total: Option<u64>,
    listing: Option<std::sync::Arc<dicomweb::ListingOutcome>>,
}

/// Indexes the records of `source`; images are encoded with `encoder`,
/// which the index pins if it has no encoder yet.
///
/// How it works: a producer thread reads records, parses them and decodes
/// their images in batches (in parallel); this thread encodes each batch
/// and writes its documents ([`Sink`]), committing every
/// `options.commit_every` documents and at the end. A deadline or a
/// failure rolls back to the last commit.
pub fn ingest(
    store: &Store,
    source: Source<'_>,
    encoder: Option<&Encoder>,
    options: &IngestOptions,
    on_error: &mut dyn FnMut(RecordError),
) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let mut report = IngestReport::default();
    let existing = if options.skip_existing || matches!(source, Source::DicomWeb(_)) {
        store.index.reload()?;
        Some(store.index.reader().searcher())
    } else {
        None
    };
    let opened = open_source(store, source, existing.clone(), &mut report, on_error)?;
    let mut writer = store.index.writer(options.writer_heap_bytes)?;
    if let Some(encoder) = encoder {
        store.pin_encoder(encoder.pin(), &writer)?;
    }
    let parser = RecordParser::new(store);
    let producer = Producer {
        parser: &parser,
        preprocessor: encoder.map(Encoder::preprocessor),
        existing: existing.as_ref(),
        id_field: store.id_field,
        batch: options.batch.max(1),
    };
    let mut sink = Sink {
        store,
        writer: &mut writer,
        claimed: HashSet::new(),
        pending: 0,
        commit_every: options.commit_every,
    };
    let bar = progress_bar(opened.total, options.progress);
    let run = Pipeline {
        store,
        encoder,
        options,
        bar: &bar,
    }
    .run(producer, opened.records, &mut sink, &mut report, on_error);
    let decode = match run {
        Ok(decode) if !options.expired() => decode,
        Ok(_) => {
            let _ = writer.rollback();
            return Err(IngestError::DeadlineExceeded);
        }
        Err(e) => {
            // Uncommitted documents are dropped with the writer; say so
            // explicitly rather than leave it to drop order.
            let _ = writer.rollback();
            return Err(e);
        }
    };
    let t = Instant::now();
    writer.commit()?;
    writer.wait_merging_threads()?;
    report.index_seconds += t.elapsed().as_secs_f64();
    bar.finish_and_clear();
    report.decode_cpu_seconds = decode.as_secs_f64();
    report.seconds = started.elapsed().as_secs_f64();
    match opened.listing {
        Some(outcome) => finish_listing(outcome, report),
        None => Ok(report),
    }
}

/// The records of `source`. An image folder's metadata rows that name no
/// image are refused here, into `report` and `on_error`.
fn open_source<'a>(
    store: &Store,
    source: Source<'a>,
    existing: Option<Searcher>,
    report: &mut IngestReport,
    on_error: &mut dyn FnMut(RecordError),
) -> Result<Opened<'a>, IngestError> {
    let opened = |records: Box<dyn Iterator<Item = RawRecord> + Send + 'a>, total| Opened {
        records,
        total,
        listing: None,
    };
    Ok(match source {
        Source::Jsonl(paths) => opened(
            Box::new(sources::jsonl_files(paths)?),
            Some(paths.iter().map(|p| sources::count_lines(p)).sum()),
        ),
        Source::Reader {
            reader,
            input,
            base,
        } => opened(Box::new(sources::jsonl_reader(reader, input, base)), None),
        Source::Images { dir, metadata } => {
            let (records, orphans) = sources::image_folder(dir, metadata, &store.config)?;
            let input = metadata
                .map(|m| m.display().to_string())
                .unwrap_or_default();
            for (line, reason) in orphans {
                report.failed += 1;
                on_error(RecordError {
                    line,
                    id: None,
                    input: input.clone(),
                    reason,
                });
            }
            let n = records.len() as u64;
            opened(Box::new(records.into_iter()), Some(n))
        }
        Source::DicomWeb(server) => {
            let failed = |error| IngestError::DicomWeb {
                error,
                report: Box::default(),
            };
            let (listing, outcome) = dicomweb::Listing::new(
                server,
                &store.config,
                existing,
                store.id_field,
                ash_image::ImageLimits::default().max_file_bytes,
            )
            .map_err(failed)?;
            let records = listing.prefetch(dicomweb::PREFETCH).map_err(failed)?;
            Opened {
                records: Box::new(records),
                total: None,
                listing: Some(outcome),
            }
        }
    })
}

/// A PACS listing's skipped instances join the report; a listing that
/// failed part way is the ingest's error, with what was indexed before.
fn finish_listing(
    outcome: std::sync::Arc<dicomweb::ListingOutcome>,
    mut report: IngestReport,
) -> Result<IngestReport, IngestError> {
    report.skipped += outcome.skipped.load(std::sync::atomic::Ordering::Relaxed);
    let failure = outcome
        .failure
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    match failure {
        Some(error) => Err(IngestError::DicomWeb {
            error,
            report: Box::new(report),
        }),
        None => Ok(report),
    }
}

/// The consuming half of an ingest: batches in, codes set, documents out.
struct Pipeline<'a> {
    store: &'a Store,
    encoder: Option<&'a Encoder>,
    options: &'a IngestOptions,
    bar: &'a ProgressBar,
}

impl Pipeline<'_> {
    /// Runs `producer` over `records` on a thread of its own and consumes
    /// its batches here; returns the decoding time summed over threads.
    fn run(
        &self,
        producer: Producer<'_>,
        records: Box<dyn Iterator<Item = RawRecord> + Send + '_>,
        sink: &mut Sink<'_>,
        report: &mut IngestReport,
        on_error: &mut dyn FnMut(RecordError),
    ) -> Result<Duration, IngestError> {
        std::thread::scope(|scope| {
            let (tx, rx) = sync_channel::<Batch>(2);
            let handle = scope.spawn(move || producer.run(records, tx));
            // On an early return the receiver is dropped, so the producer
            // stops at its next send; it is joined either way.
            let consumed = self.consume(rx, sink, report, on_error);
            let joined = handle
                .join()
                .map_err(|p| IngestError::ReaderFailed(panic_message(p.as_ref())));
            let decode = consumed?;
            joined?;
            Ok(decode)
        })
    }

    fn consume(
        &self,
        batches: std::sync::mpsc::Receiver<Batch>,
        sink: &mut Sink<'_>,
        report: &mut IngestReport,
        on_error: &mut dyn FnMut(RecordError),
    ) -> Result<Duration, IngestError> {
        let mut waited = Instant::now();
        let mut decode = Duration::ZERO;
        for batch in batches {
            if self.options.expired() {
                return Err(IngestError::DeadlineExceeded);
            }
            report.wait_seconds += waited.elapsed().as_secs_f64();
            decode += batch.decode;
            let n = batch.items.len() as u64;
            let t = Instant::now();
            let items = encode_batch(self.store, self.encoder, batch.items, report);
            report.encode_seconds += t.elapsed().as_secs_f64();
            let t = Instant::now();
            for item in items {
                sink.write(item, report, on_error)?;
            }
            report.index_seconds += t.elapsed().as_secs_f64();
            self.bar.inc(n);
            waited = Instant::now();
        }
        Ok(decode)
    }
}

/// Where finished records go: the index writer, each id once per ingest
/// (a later record with an id already written in this ingest is refused),
/// with a commit every `commit_every` documents.
struct Sink<'a> {
    store: &'a Store,
    writer: &'a mut tantivy::IndexWriter,
    claimed: HashSet<String>,
    pending: usize,
    commit_every: usize,
}

impl Sink<'_> {
    fn write(
        &mut self,
        item: Outcome,
        report: &mut IngestReport,
        on_error: &mut dyn FnMut(RecordError),
    ) -> Result<(), IngestError> {
        match item {
            Outcome::Ready {
                line, origin, id, ..
            } if self.claimed.contains(&id) => {
                report.failed += 1;
                on_error(RecordError {
                    line,
                    id: Some(id),
                    input: origin,
                    reason: "duplicate id in this batch".into(),
                });
            }
            Outcome::Ready { id, doc, .. } => {
                self.writer
                    .delete_term(Term::from_field_text(self.store.id_field, &id));
                self.writer.add_document(doc)?;
                self.claimed.insert(id);
                report.indexed += 1;
                self.pending += 1;
                if self.pending >= self.commit_every {
                    self.writer.commit()?;
                    self.pending = 0;
                }
            }
            Outcome::Refused(e) => {
                report.failed += 1;
                on_error(e);
            }
            Outcome::Skipped => report.skipped += 1,
        }
        Ok(())
    }
}

/// Runs the batch's decoded images through the encoder and sets their
/// codes; images that failed to decode or encode become refusals.
fn encode_batch(
    store: &Store,
    encoder: Option<&Encoder>,
    mut items: Vec<Outcome>,
    report: &mut IngestReport,
) -> Vec<Outcome> {
    let Some(encoder) = encoder else {
        return items;
    };
    // Take the decoded images out, remembering whose they were.
    let mut owners = Vec::new();
    let mut tensors = Vec::new();
    for (i, item) in items.iter_mut().enumerate() {
        if let Outcome::Ready {
            image: image @ ImageState::Decoded(_),
            ..
        } = item
        {
            if let ImageState::Decoded(tensor) = std::mem::replace(image, ImageState::Taken) {
                owners.push(i);
                tensors.push(tensor);
            }
        }
    }
    for (i, result) in owners.into_iter().zip(encoder.encode_prepared(tensors)) {
        let Outcome::Ready {
            line,
            input,
            id,
            doc,
            ..
        } = &mut items[i]
        else {
            continue;
        };
        // A record's error is its reason, in words.
        let set = result.map_err(|e| e.to_string()).and_then(|e| {
            store
                .index
                .field()
                .set(doc, &e.code)
                .map_err(|e| e.to_string())
        });
        match set {
            Ok(()) => report.images += 1,
            Err(reason) => {
                items[i] = Outcome::Refused(RecordError {
                    line: *line,
                    id: Some(id.clone()),
                    input: input.clone(),
                    reason,
                })
            }
        }
    }
    items
}

/// The reading side of the pipeline.
struct Producer<'a> {
    parser: &'a RecordParser,
    preprocessor: Option<&'a Preprocessor>,
    existing: Option<&'a Searcher>,
    id_field: tantivy::schema::Field,
    batch: usize,
}

impl Producer<'_> {
    fn run(
        self,
        records: Box<dyn Iterator<Item = RawRecord> + Send + '_>,
        tx: std::sync::mpsc::SyncSender<Batch>,
    ) {
        let mut records = records.peekable();
        while records.peek().is_some() {
            let chunk: Vec<RawRecord> = records.by_ref().take(self.batch).collect();
            let items: Vec<Outcome> = chunk.into_iter().map(|raw| self.parse(raw)).collect();
            let (items, decode): (Vec<Outcome>, Vec<Duration>) =
                items.into_par_iter().map(|item| self.decode(item)).unzip();
            let batch = Batch {
                items,
                decode: decode.into_iter().sum(),
            };
            if tx.send(batch).is_err() {
                return; // the writer stopped on an error
            }
        }
    }

    fn parse(&self, raw: RawRecord) -> Outcome {
        let refuse = |id: Option<String>, reason: String| {
            Outcome::Refused(RecordError {
                line: raw.line,
                id,
                input: raw.input.clone(),
                reason,
            })
        };
        let value = match raw.value {
            Ok(v) => v,
            Err(reason) => return refuse(None, reason),
        };
        let parsed = match self.parser.parse_value(value, &raw.base) {
            Ok(p) => p,
            Err((id, reason)) => return refuse(id, reason),
        };
        if let Some(searcher) = self.existing {
            let term = Term::from_field_text(self.id_field, &parsed.id);
            if searcher.doc_freq(&term).is_ok_and(|n| n > 0) && has_alive(searcher, &term) {
                return Outcome::Skipped;
            }
        }
        match (parsed.image, self.preprocessor) {
            (Some(image), Some(_)) => Outcome::Ready {
                line: raw.line,
                origin: raw.input.clone(),
                input: image.display().to_string(),
                id: parsed.id,
                doc: parsed.doc,
                image: ImageState::Named,
                frame: parsed.frame,
            },
            (Some(image), None) => refuse(
                Some(parsed.id),
                format!(
                    "image {} needs an encoder: give --encoder DIR, or a precomputed \"code\" (hex)",
                    image.display()
                ),
            ),
            (None, _) => Outcome::Ready {
                line: raw.line,
                origin: raw.input.clone(),
                input: String::new(),
                id: parsed.id,
                doc: parsed.doc,
                image: ImageState::Absent,
                frame: 0,
            },
        }
    }

    /// Decodes the item's image, if it has one; returns the time it took.
    fn decode(&self, item: Outcome) -> (Outcome, Duration) {
        match (item, self.preprocessor) {
            (
                Outcome::Ready {
                    line,
                    origin,
                    input,
                    id,
                    doc,
                    image: ImageState::Named,
                    frame,
                },
                Some(pre),
            ) => {
                let started = Instant::now();
                let tensor = pre
                    .load_frame(Path::new(&input), frame)
                    .map_err(EncodeFailure::from);
                let took = started.elapsed();
                (
                    Outcome::Ready {
                        line,
                        origin,
                        input,
                        id,
                        doc,
                        image: ImageState::Decoded(tensor),
                        frame,
                    },
                    took,
                )
            }
            (item, _) => (item, Duration::ZERO),
        }
    }
}

/// Whether a live document holds `term` (deleted ones still count in
/// `doc_freq`).
fn has_alive(searcher: &Searcher, term: &Term) -> bool {
    searcher.segment_readers().iter().any(|reader| {
        let Ok(index) = reader.inverted_index(term.field()) else {
            return false;
        };
        let Ok(Some(mut postings)) = index.read_postings(term, IndexRecordOption::Basic) else {
            return false;
        };
        use tantivy::{DocSet, TERMINATED};
        let mut doc = postings.doc();
        while doc != TERMINATED {
            if reader.alive_bitset().is_none_or(|a| a.is_alive(doc)) {
                return true;
            }
            doc = postings.advance();
        }
        false
    })
}

/// The text of a panic payload, for a message.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

/// A bar when the number of records is known up front, else a counter.
fn progress_bar(total: Option<u64>, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    if total.is_none() {
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos} records, {per_sec}")
                .expect("valid template"),
        );
        return bar;
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} records, {per_sec}, ETA {eta}",
        )
        .expect("valid template"),
    );
    bar
}
