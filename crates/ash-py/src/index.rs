//! `ash_search._native.Index`: an index directory opened from Python.
//!
//! Every call that touches the index releases the GIL: searches from
//! several Python threads run at once, and a search in one thread goes on
//! while another ingests (it sees the last commit). The Python wrapper
//! (`ash_search/__init__.py`) turns records, codes and numpy arrays into the
//! plain values these methods take.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use ash_encoder::Encoder;
use ash_search::config::IndexConfig;
use ash_search::error::ErrorKind;
use ash_search::ingest::{self, IngestOptions, RecordError, Source};
use ash_search::search;
use ash_search::search::request::{RequestLimits, SearchRequest};
use ash_search::store::Store;
use ash_tantivy::{knn, IndexError, KnnRequest};
use pyo3::prelude::*;
use rayon::prelude::*;
use tantivy::schema::Value;
use tantivy::{IndexWriter, Searcher, TantivyDocument, Term};

use crate::encoder::{device_of, PyEncoder};
use crate::errors::{error, raise};

/// The bounds of a search from Python: the CLI's (nothing to protect but
/// nonsense to refuse).
const LIMITS: RequestLimits = RequestLimits {
    max_k: 1_000_000,
    max_depth: 1_000_000,
};

/// Memory for the writer that holds deletions until `commit`.
const DELETE_WRITER_BYTES: usize = 15_000_000;

/// An opened index directory.
#[pyclass(frozen, module = "ash_search._native", name = "Index")]
pub struct PyIndex {
    store: Arc<Store>,
    read_only: bool,
    /// Holds deletions until `commit` (and the index's writer lock).
    pending: Mutex<Option<IndexWriter>>,
    /// The index's own encoder, loaded on first need.
    encoder: Mutex<Option<Arc<Encoder>>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PyIndex {
    fn wrap(store: Store, read_only: bool) -> Self {
        Self {
            store: Arc::new(store),
            read_only,
            pending: Mutex::new(None),
            encoder: Mutex::new(None),
        }
    }

    fn writable(&self) -> PyResult<()> {
        if self.read_only {
            return Err(error(
                ErrorKind::Conflict,
                format!("{}: opened read-only", self.store.dir.display()),
            ));
        }
        Ok(())
    }

    /// The index's pinned encoder, loaded once.
    fn own_encoder(&self, device: &str) -> PyResult<Arc<Encoder>> {
        let mut held = locked(&self.encoder);
        if let Some(e) = held.as_ref() {
            return Ok(e.clone());
        }
        let options = ash_encoder::EncoderOptions {
            device: device_of(device)?,
            ..Default::default()
        };
        let encoder = Arc::new(self.store.open_encoder(None, &options).map_err(raise)?);
        *held = Some(encoder.clone());
        Ok(encoder)
    }

    /// Commits the deletions held, if any, and lets the writer lock go.
    fn commit_pending(&self) -> PyResult<()> {
        if let Some(mut writer) = locked(&self.pending).take() {
            writer.commit().map_err(|e| raise(IndexError::from(e)))?;
            writer
                .wait_merging_threads()
                .map_err(|e| raise(IndexError::from(e)))?;
        }
        self.store.index.reload().map_err(raise)
    }
}

/// The id stored in a document.
fn stored_id(
    store: &Store,
    searcher: &Searcher,
    hit: &ash_tantivy::Hit,
) -> Result<String, IndexError> {
    let doc: TantivyDocument = searcher.doc(hit.address)?;
    Ok(doc
        .get_first(store.id_field)
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default())
}

#[pymethods]
impl PyIndex {
    /// Creates an index in `path` from a configuration (JSON text, as
    /// `ash-search init` reads it).
    #[staticmethod]
    fn create(py: Python<'_>, path: PathBuf, config: &str) -> PyResult<Self> {
        let config = IndexConfig::from_json(config)
            .map_err(|e| error(ErrorKind::InvalidInput, format!("schema: {e}")))?;
        let store = py.detach(|| Store::init(&path, config)).map_err(raise)?;
        Ok(Self::wrap(store, false))
    }

    /// Opens the index in `path`.
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf, read_only: bool) -> PyResult<Self> {
        let store = py.detach(|| Store::open(&path)).map_err(raise)?;
        Ok(Self::wrap(store, read_only))
    }

    /// The index directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.store.dir.clone()
    }

    /// Bits per code.
    #[getter]
    fn bits(&self) -> usize {
        self.store.config.hash.bits
    }

    /// Whether writes are refused.
    #[getter]
    fn read_only(&self) -> bool {
        self.read_only
    }

    /// Live documents in the last commit this object sees.
    fn __len__(&self) -> usize {
        self.store.index.reader().searcher().num_docs() as usize
    }

    /// The index's own encoder (its pinned plugin), loaded once.
    #[pyo3(signature = (device = "auto"))]
    fn encoder(&self, py: Python<'_>, device: &str) -> PyResult<PyEncoder> {
        let encoder = py.detach(|| self.own_encoder(device))?;
        Ok(PyEncoder::from_arc(encoder))
    }

    /// Indexes JSONL records (the bytes of `ash-search ingest`'s input);
    /// `encoder` (or the index's own, when `images` says records name
    /// images) encodes their images. Returns the report and the records
    /// refused, as JSON; line numbers count from `first_line`.
    #[pyo3(signature = (jsonl, base, first_line, images, encoder, batch, commit_every, skip_existing))]
    #[allow(clippy::too_many_arguments)]
    fn ingest_jsonl(
        &self,
        py: Python<'_>,
        jsonl: Vec<u8>,
        base: PathBuf,
        first_line: usize,
        images: bool,
        encoder: Option<PyRef<'_, PyEncoder>>,
        batch: usize,
        commit_every: usize,
        skip_existing: bool,
    ) -> PyResult<String> {
        self.writable()?;
        let explicit = encoder.map(|e| e.inner());
        py.detach(|| {
            self.commit_pending()?;
            let encoder = match explicit {
                Some(e) => {
                    self.store.check_encoder(e.pin()).map_err(raise)?;
                    Some(e)
                }
                None if images => Some(self.own_encoder("auto")?),
                None => None,
            };
            let options = IngestOptions {
                commit_every,
                batch,
                skip_existing,
                ..Default::default()
            };
            let mut refused: Vec<RecordError> = Vec::new();
            let source = Source::Reader {
                reader: Box::new(Cursor::new(jsonl)),
                input: "records".to_string(),
                base,
            };
            let report = ingest::ingest(
                &self.store,
                source,
                encoder.as_deref(),
                &options,
                &mut |mut e: RecordError| {
                    e.line += first_line.saturating_sub(1);
                    refused.push(e);
                },
            )
            .map_err(raise)?;
            self.store.index.reload().map_err(raise)?;
            Ok(serde_json::json!({ "report": report, "errors": refused }).to_string())
        })
    }

    /// Deletes the documents with these ids; they are gone for searches
    /// after `commit`. Returns how many of the ids a live document had.
    fn delete(&self, py: Python<'_>, ids: Vec<String>) -> PyResult<usize> {
        self.writable()?;
        py.detach(|| {
            let searcher = self.store.index.reader().searcher();
            let mut pending = locked(&self.pending);
            if pending.is_none() {
                *pending = Some(
                    self.store
                        .index
                        .writer(DELETE_WRITER_BYTES)
                        .map_err(raise)?,
                );
            }
            let writer = pending.as_ref().expect("made above");
            let mut live = 0;
            for id in &ids {
                if search::find(&self.store, &searcher, id)
                    .map_err(raise)?
                    .is_some()
                {
                    live += 1;
                }
                writer.delete_term(Term::from_field_text(self.store.id_field, id));
            }
            Ok(live)
        })
    }

    /// Commits the deletions held and reloads, so that searches see every
    /// commit made so far (by this object or another process).
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.commit_pending())
    }

    /// One search, as `ash-search search --json` prints it (hits, took_ms,
    /// and the plan when `explain`). `image` is a file encoded with the
    /// index's encoder.
    #[pyo3(signature = (code, image, like, text, filter, mode, k, radius, weight, depth, explain))]
    #[allow(clippy::too_many_arguments)]
    fn search(
        &self,
        py: Python<'_>,
        code: Option<String>,
        image: Option<PathBuf>,
        like: Option<String>,
        text: Option<String>,
        filter: Option<String>,
        mode: Option<String>,
        k: Option<usize>,
        radius: Option<u32>,
        weight: Option<f32>,
        depth: Option<usize>,
        explain: bool,
    ) -> PyResult<String> {
        let request = SearchRequest {
            code,
            like,
            text,
            filter,
            k,
            radius,
            mode,
            weight,
            depth,
            explain: Some(explain),
        };
        py.detach(|| {
            let checked = request.check(image.is_some(), &LIMITS).map_err(raise)?;
            let image_code = match &image {
                Some(path) => Some(self.encode_file(path)?),
                None => None,
            };
            let searcher = self.store.index.reader().searcher();
            let started = Instant::now();
            let (hits, plan) = checked
                .resolve(&self.store, &searcher, image_code)
                .and_then(|q| search::search_explained(&self.store, &searcher, &q, None))
                .map_err(raise)?;
            let mut out = serde_json::json!({
                "hits": hits,
                "took_ms": started.elapsed().as_secs_f64() * 1e3,
            });
            if explain {
                out["explain"] = serde_json::to_value(&plan).expect("plans serialise");
            }
            Ok(out.to_string())
        })
    }

    /// The packed code of the live document with this id.
    fn code(&self, py: Python<'_>, id: &str) -> PyResult<Vec<u8>> {
        py.detach(|| {
            let searcher = self.store.index.reader().searcher();
            search::code_of(&self.store, &searcher, id)
                .map(|c| c.to_packed())
                .map_err(raise)
        })
    }

    /// k-NN (within `radius` when given) for each of `n` packed codes laid
    /// end to end in `codes`; the queries run in parallel. Returns each
    /// query's ids and distances, nearest first.
    #[pyo3(signature = (codes, k, radius))]
    #[allow(clippy::type_complexity)]
    fn search_many(
        &self,
        py: Python<'_>,
        codes: Vec<u8>,
        k: usize,
        radius: Option<u32>,
    ) -> PyResult<(Vec<Vec<String>>, Vec<Vec<u32>>)> {
        if k == 0 || k > LIMITS.max_k {
            return Err(error(
                ErrorKind::InvalidInput,
                format!("k must be 1 to {}, got {k}", LIMITS.max_k),
            ));
        }
        let width = self.store.config.hash.bits.div_ceil(8);
        if !codes.len().is_multiple_of(width) {
            return Err(error(
                ErrorKind::InvalidInput,
                format!(
                    "codes: {} bytes is not a whole number of {width}-byte codes",
                    codes.len()
                ),
            ));
        }
        py.detach(|| {
            let field = self.store.index.field();
            let queries = codes
                .chunks(width)
                .map(|c| field.parse(c))
                .collect::<Result<Vec<_>, _>>()
                .map_err(raise)?;
            let searcher = self.store.index.reader().searcher();
            let request = KnnRequest {
                k,
                max_distance: radius,
                ..Default::default()
            };
            let answers = queries
                .par_iter()
                .map(|code| {
                    let hits = knn(&self.store.index, &searcher, code, &request)?;
                    let ids = hits
                        .iter()
                        .map(|h| stored_id(&self.store, &searcher, h))
                        .collect::<Result<Vec<_>, _>>()?;
                    let distances = hits
                        .iter()
                        .map(|h| h.distance.unwrap_or(u32::MAX))
                        .collect();
                    Ok((ids, distances))
                })
                .collect::<Result<Vec<(Vec<String>, Vec<u32>)>, IndexError>>()
                .map_err(raise)?;
            Ok(answers.into_iter().unzip())
        })
    }
}

impl PyIndex {
    /// An image file's code, by the index's encoder.
    fn encode_file(&self, path: &std::path::Path) -> PyResult<ash_mih::code::BinaryCode> {
        let encoder = self.own_encoder("auto")?;
        let result = encoder
            .encode_files(&[path.to_path_buf()], 1)
            .pop()
            .expect("one result per file");
        result.map(|e| e.code).map_err(|reason| {
            let kind = crate::errors::Kinded::error_kind(&reason);
            error(kind, format!("image {}: {reason}", path.display()))
        })
    }
}
