//! A DICOMweb server (a PACS) as a source of records.
//!
//! How it works: the instance listing (QIDO-RS `…/instances`, or
//! `…/studies/{uid}/instances`, `StudyDate=since-`) is read a page at a
//! time. Instances whose id is already indexed are counted as skipped and
//! never retrieved, so the same command can run every night. The rest are
//! retrieved over WADO-RS as the ingest asks for records, `threads` at
//! once and only a few ahead of it, each object written whole (temporary file, fsync, rename) to
//! `save_to/<StudyInstanceUID>/<SOPInstanceUID>.dcm`, and handed to the
//! ingest as a record whose `image` is that file: from there on it is a
//! DICOM file like any other (fields from its header, the same commits,
//! errors and progress).
//!
//! An instance that cannot be used (gone, too large, not DICOM, a malformed
//! UID) becomes an error record; one retrieved but refused by the decoder
//! (a PDF, say) stays in the save folder to be looked at, and is retrieved
//! again by the next run. A server that stops answering, or refuses
//! the credentials, ends the listing: what was retrieved before is indexed
//! and committed, and the ingest reports [`DicomWebError`] so the caller
//! knows the run is incomplete.

mod client;

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use serde_json::json;
use tantivy::Searcher;

use super::sources::RawRecord;
use crate::config::{FrameMode, IndexConfig};
use crate::error::ErrorKind;
use ash_image::dicom::{is_dicom, tag_hex, DicomHeader};
use client::{Client, InstanceRef, RetrieveError};

/// Instances listed per QIDO-RS request.
pub const PAGE_SIZE: usize = 500;

/// Records retrieved ahead of the ingest: a batch's worth, so the next
/// batch is fetched while this one is decoded.
pub const PREFETCH: usize = 32;

/// One retrieval: the instance's position in the listing, the instance,
/// and its record or why there is none.
type Retrieved = (usize, InstanceRef, Result<Vec<RawRecord>, RetrieveError>);

/// Where and how to ingest from a DICOMweb server.
#[derive(Debug, Clone)]
pub struct DicomWebSource {
    /// The server's DICOMweb root, e.g. `http://pacs:8042/dicom-web`.
    pub url: String,
    /// Only this study's instances.
    pub study: Option<String>,
    /// Only studies of this date or later (`YYYYMMDD`; see [`parse_date`]).
    pub since: Option<String>,
    pub auth: Option<Auth>,
    /// Retrieved objects are kept here (the page shows them from here).
    pub save_to: PathBuf,
    /// Retrievals at once.
    pub threads: usize,
    /// Instances listed per request.
    pub page_size: usize,
}

/// Credentials sent with every request.
#[derive(Clone)]
pub enum Auth {
    /// `Authorization: Bearer …`
    Bearer(String),
    /// `Authorization: Basic …`, from `user:password`.
    Basic(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::Bearer(_) => "Bearer(…)",
            Auth::Basic(_) => "Basic(…)",
        })
    }
}

impl Auth {
    fn header(&self) -> String {
        use base64::Engine;
        match self {
            Auth::Bearer(token) => format!("Bearer {token}"),
            Auth::Basic(pair) => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ),
        }
    }
}

/// Why the server could not be used (the ingest stops; see the module docs).
#[derive(Debug, thiserror::Error)]
pub enum DicomWebError {
    /// The URL given is not a DICOMweb root.
    #[error("--dicomweb {url}: {reason}")]
    BadUrl { url: String, reason: String },
    /// `--since` is not a date.
    #[error("--since {0:?} is not a date (YYYY-MM-DD or YYYYMMDD)")]
    BadDate(String),
    /// `--study` is not a UID.
    #[error("--study {0:?} is not a DICOM UID")]
    BadStudy(String),
    /// The server did not answer (refused, reset, timed out, unknown host).
    #[error("the DICOMweb server at {url} did not answer: {reason}")]
    Unreachable { url: String, reason: String },
    /// The server refused the credentials (or their absence).
    #[error("the DICOMweb server refused {url} with {status}: give --token or --user (or ASH_DICOMWEB_TOKEN / ASH_DICOMWEB_USER)")]
    Unauthorized { url: String, status: u16 },
    /// The listing was answered with an error status.
    #[error("the DICOMweb server answered {status} to {url}")]
    Status { url: String, status: u16 },
    /// The listing is not what QIDO-RS answers.
    #[error("the DICOMweb server's answer to {url} is unusable: {reason}")]
    BadResponse { url: String, reason: String },
    /// The server answers pages with instances already listed (or, page
    /// after page, with nothing usable).
    #[error("the DICOMweb server at {url} ignores the listing's offset (its pages repeat instances already listed, or list nothing usable)")]
    IgnoresPaging { url: String },
    /// The retrieval threads could not be started.
    #[error("could not start the retrieval threads: {0}")]
    Start(std::io::Error),
    /// A retrieved object could not be kept.
    #[error("{}: {source}", path.display())]
    Save {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DicomWebError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DicomWebError::BadUrl { .. }
            | DicomWebError::BadDate(_)
            | DicomWebError::BadStudy(_)
            | DicomWebError::Unauthorized { .. } => ErrorKind::InvalidInput,
            DicomWebError::Save { .. } | DicomWebError::Start(_) => ErrorKind::Io,
            _ => ErrorKind::Unavailable,
        }
    }
}

/// A date as QIDO-RS wants it (`YYYYMMDD`), from `YYYY-MM-DD` or `YYYYMMDD`.
///
/// ```
/// use ash_search::ingest::dicomweb::parse_date;
/// assert_eq!(parse_date("2026-03-14").unwrap(), "20260314");
/// assert_eq!(parse_date("20260314").unwrap(), "20260314");
/// assert!(parse_date("2026-13-01").is_err());
/// ```
pub fn parse_date(text: &str) -> Result<String, DicomWebError> {
    let digits: String = text.chars().filter(|c| *c != '-').collect();
    let bad = || DicomWebError::BadDate(text.to_string());
    let dashes_ok =
        text.len() == 8 || (text.len() == 10 && &text[4..5] == "-" && &text[7..8] == "-");
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) || !dashes_ok {
        return Err(bad());
    }
    let month: u32 = digits[4..6].parse().map_err(|_| bad())?;
    let day: u32 = digits[6..8].parse().map_err(|_| bad())?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    Ok(digits)
}

/// What the listing learnt that the ingest reports at its end.
#[derive(Debug, Default)]
pub struct ListingOutcome {
    /// Instances already indexed, never retrieved.
    pub skipped: AtomicUsize,
    /// Why the listing ended early, if it did.
    pub failure: Mutex<Option<DicomWebError>>,
}

/// The records of a DICOMweb server's instances (see the module docs).
pub struct Listing {
    client: Client,
    source: DicomWebSource,
    /// The attribute documents take their id from.
    id_keyword: String,
    frame_mode: FrameMode,
    query: Vec<(&'static str, String)>,
    /// `source.save_to`, absolute (records' image paths are stored as given).
    save_to: PathBuf,
    existing: Option<Searcher>,
    id_field: tantivy::schema::Field,
    pool: rayon::ThreadPool,
    offset: usize,
    seen: HashSet<String>,
    /// Pages in a row with nothing new in them.
    unusable_pages: usize,
    /// Listed, not indexed, not retrieved yet: (position, instance).
    pending: VecDeque<(usize, InstanceRef)>,
    ready: VecDeque<RawRecord>,
    done: bool,
    outcome: Arc<ListingOutcome>,
}

impl Listing {
    /// A listing of `source`; `existing` is the index as it is, so indexed
    /// instances are skipped before they are retrieved.
    pub fn new(
        source: &DicomWebSource,
        config: &IndexConfig,
        existing: Option<Searcher>,
        id_field: tantivy::schema::Field,
        max_object_bytes: u64,
    ) -> Result<(Self, Arc<ListingOutcome>), DicomWebError> {
        let client = Client::new(&source.url, source.auth.as_ref(), max_object_bytes)?;
        if let Some(study) = &source.study {
            client::check_uid(study).map_err(|_| DicomWebError::BadStudy(study.clone()))?;
        }
        let mut query = Vec::new();
        if let Some(since) = &source.since {
            query.push(("StudyDate", format!("{}-", parse_date(since)?)));
        }
        if let Some(tag) = tag_hex(&config.dicom.id) {
            query.push(("includefield", tag));
        }
        let save_to = std::path::absolute(&source.save_to).map_err(|e| DicomWebError::Save {
            path: source.save_to.clone(),
            source: e,
        })?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(source.threads.max(1))
            .thread_name(|i| format!("dicomweb-{i}"))
            .build()
            .map_err(|e| DicomWebError::Start(std::io::Error::other(e)))?;
        let outcome = Arc::new(ListingOutcome::default());
        let listing = Self {
            client,
            source: source.clone(),
            id_keyword: config.dicom.id.clone(),
            frame_mode: config.dicom.frames,
            query,
            save_to,
            existing,
            id_field,
            pool,
            offset: 0,
            seen: HashSet::new(),
            unusable_pages: 0,
            pending: VecDeque::new(),
            ready: VecDeque::new(),
            done: false,
            outcome: outcome.clone(),
        };
        Ok((listing, outcome))
    }

    fn fail(&mut self, e: DicomWebError) {
        self.done = true;
        let mut slot = self
            .outcome
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(e);
    }

    /// Lists the next page; what is new in it and not indexed waits in
    /// `pending` to be retrieved.
    fn next_page(&mut self) {
        let study = self.source.study.as_deref();
        let page = self.client.list(
            study,
            &self.query,
            self.offset,
            self.source.page_size.max(1),
        );
        let (instances, unusable) = match page {
            Ok(p) => p,
            Err(e) => return self.fail(e),
        };
        let listed = instances.len() + unusable.len();
        if listed == 0 {
            self.done = true;
            return;
        }
        let listing_url = self.client.listing_url(study);
        let unusable_here = unusable.len();
        for u in unusable {
            self.ready.push_back(RawRecord {
                line: self.offset + u.position + 1,
                input: listing_url.clone(),
                base: self.save_to.clone(),
                value: Err(u.reason),
            });
        }
        let first_line = self.offset + 1;
        self.offset += listed;
        let mut new = Vec::new();
        for (i, instance) in instances.into_iter().enumerate() {
            if self.seen.insert(instance.sop.clone()) {
                new.push((first_line + i, instance));
            }
        }
        // A server that ignores `offset` would list the same page forever.
        if new.is_empty() {
            self.unusable_pages += 1;
            if listed > unusable_here || self.unusable_pages > 3 {
                return self.fail(DicomWebError::IgnoresPaging { url: listing_url });
            }
            return;
        }
        self.unusable_pages = 0;
        for (line, instance) in new {
            // With "each", a multi-frame object is indexed as `<id>-f1`….
            let indexed = instance.id.as_deref().is_some_and(|id| {
                self.is_indexed(id)
                    || self.frame_mode == FrameMode::Each
                        && self.is_indexed(&super::dicom::frame_id(id, 1))
            });
            if indexed {
                self.outcome.skipped.fetch_add(1, Ordering::Relaxed);
            } else {
                self.pending.push_back((line, instance));
            }
        }
    }

    /// Retrieves the next few listed instances, `threads` at once. Only a
    /// few are retrieved ahead of the ingest, so a server that fails takes
    /// little retrieved-but-unindexed work with it.
    fn retrieve_some(&mut self) {
        let n = (self.source.threads.max(1) * 2).min(self.pending.len());
        let chunk: Vec<(usize, InstanceRef)> = self.pending.drain(..n).collect();
        // Once the server has failed, the rest of the chunk is not tried.
        let stopped = AtomicBool::new(false);
        let results: Vec<Option<Retrieved>> = self.pool.install(|| {
            chunk
                .into_par_iter()
                .map(|(line, instance)| {
                    if stopped.load(Ordering::Relaxed) {
                        return None;
                    }
                    let result = self.retrieve_and_save(line, &instance);
                    if matches!(result, Err(RetrieveError::Server(_))) {
                        stopped.store(true, Ordering::Relaxed);
                    }
                    Some((line, instance, result))
                })
                .collect()
        });
        let mut failure = None;
        for (line, instance, result) in results.into_iter().flatten() {
            match result {
                Ok(records) => self.ready.extend(records),
                Err(RetrieveError::Server(e)) => {
                    failure.get_or_insert(e);
                }
                Err(RetrieveError::Instance(reason)) => self.ready.push_back(RawRecord {
                    line,
                    input: self.client.instance_url(&instance),
                    base: self.save_to.clone(),
                    value: Err(reason),
                }),
            }
        }
        if let Some(e) = failure {
            self.pending.clear();
            self.fail(e);
        }
    }

    fn is_indexed(&self, id: &str) -> bool {
        let Some(searcher) = &self.existing else {
            return false;
        };
        let term = tantivy::Term::from_field_text(self.id_field, id);
        searcher.doc_freq(&term).is_ok_and(|n| n > 0) && super::has_alive(searcher, &term)
    }

    /// Retrieves one instance and keeps it; the records (one, or one per
    /// frame with `"frames": "each"`) name the kept file.
    fn retrieve_and_save(
        &self,
        line: usize,
        instance: &InstanceRef,
    ) -> Result<Vec<RawRecord>, RetrieveError> {
        let bytes = self.client.retrieve(instance)?;
        if !is_dicom(&bytes) {
            return Err(RetrieveError::Instance(
                "the server's answer is not a DICOM Part 10 object".into(),
            ));
        }
        let path = save(&self.save_to, instance, &bytes).map_err(RetrieveError::Server)?;
        let header = DicomHeader::read(&bytes).ok();
        let header_id = header.as_ref().and_then(|h| h.value(&self.id_keyword));
        let id = header_id
            .or_else(|| instance.id.clone())
            .unwrap_or_else(|| instance.sop.clone());
        let frames = match (&header, self.frame_mode) {
            (Some(h), FrameMode::Each) => h.frames().max(1),
            _ => 1,
        };
        let record = json!({"id": id, "image": path.display().to_string()});
        Ok(super::dicom::per_frame(record, frames)
            .into_iter()
            .map(|value| RawRecord {
                line,
                input: self.client.instance_url(instance),
                base: self.save_to.clone(),
                value: Ok(value),
            })
            .collect())
    }
}

impl Listing {
    /// The listing run on a thread of its own, at most `depth` records
    /// ahead of the caller, so retrieval overlaps decoding and encoding.
    /// When the caller stops early the thread ends at its next record.
    pub fn prefetch(
        self,
        depth: usize,
    ) -> Result<impl Iterator<Item = RawRecord> + Send, DicomWebError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(depth.max(1));
        std::thread::Builder::new()
            .name("dicomweb-listing".into())
            .spawn(move || {
                for record in self {
                    if tx.send(record).is_err() {
                        return;
                    }
                }
            })
            .map(|_| rx.into_iter())
            .map_err(DicomWebError::Start)
    }
}

impl Iterator for Listing {
    type Item = RawRecord;

    fn next(&mut self) -> Option<RawRecord> {
        loop {
            if let Some(record) = self.ready.pop_front() {
                return Some(record);
            }
            if !self.pending.is_empty() {
                self.retrieve_some();
            } else if self.done {
                return None;
            } else {
                self.next_page();
            }
        }
    }
}

/// Writes `bytes` whole to `dir/<study>/<sop>.dcm` (temporary file, fsync,
/// rename), so a file there is always a complete object.
fn save(dir: &Path, instance: &InstanceRef, bytes: &[u8]) -> Result<PathBuf, DicomWebError> {
    let folder = dir.join(&instance.study);
    let path = folder.join(format!("{}.dcm", instance.sop));
    let failed = |source| DicomWebError::Save {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(&folder).map_err(failed)?;
    let mut file = tempfile::NamedTempFile::new_in(&folder).map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    file.as_file().sync_all().map_err(failed)?;
    file.persist(&path).map_err(|e| failed(e.error))?;
    Ok(path)
}
