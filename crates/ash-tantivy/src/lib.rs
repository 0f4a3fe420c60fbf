//! tantivy glue: the `binary_hash` field type, its segment plugin, and the
//! queries over it. Knows tantivy; delegates Hamming search to `mih`.
//!
//! # How does it work?
//!
//! A schema gets one custom field of type `binary_hash` with its bit length
//! ([`add_hash_field`]). Documents carry their code as the field's bytes
//! (numpy `packbits` order), set through [`HashField::set`], which refuses a
//! code of the wrong length. When tantivy finalizes a segment, the
//! [`BinaryHashPlugin`] writes the segment's codes in doc-id order as a
//! `.mih` table (docs without a code get a zero placeholder and are listed
//! in a `.mihnone` bitmap so they never match); merges rebuild both files
//! from the source segments' alive docs. Readers memory-map each segment's
//! table once and cache it by segment id.
//!
//! Queries: [`HammingQuery`] is an ordinary tantivy `Query` (radius match,
//! score 1 − d/bits) that composes in a `BooleanQuery`; [`knn()`] is the
//! exact k-NN over all segments, with a filter applied per segment by the
//! cheaper of two exact strategies ([`FilterStrategy`]: an allow-list of
//! the filter's matches, or candidates checked against the filter, chosen
//! by a cost model); [`hybrid`] ranks text (BM25) with Hamming similarity.
//! The cost model's machinery is private: it changes plans, never hits.
//!
//! [`HashIndex`] opens or creates an index with the plugin registered,
//! which tantivy needs on every open.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod field;
mod filter_stats;
mod hamming_query;
pub mod hybrid;
mod knn;
mod plugin;
pub mod query_text;
mod restrict;
mod segment;

use std::path::Path;
use std::sync::Arc;

use tantivy::schema::Schema;
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader};

pub use error::{ErrorKind, IndexError};
pub use field::{add_hash_field, HashField, TYPE_NAME};
pub use filter_stats::{FilterKey, FilterStats, Remember};
pub use hamming_query::HammingQuery;
pub use knn::{knn, knn_explained, KnnRequest, SegmentPlan};
pub use plugin::{find_hash_field, BinaryHashPlugin};
pub use restrict::FilterStrategy;
pub use segment::SegmentCodes;
use segment::{CodeCache, CodeWarmer};

use ash_mih::code::BinaryCode;

/// One ranked result of [`knn()`] or [`hybrid::search`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Where the document is.
    pub address: DocAddress,
    /// Hamming distance to the query code (`None` without a code query, or
    /// when the doc has no code).
    pub distance: Option<u32>,
    /// BM25 score of the text query, when there is one.
    pub text_score: Option<Score>,
    /// The ranking score (higher first).
    pub score: Score,
}

/// What [`HashIndex::verify`] found in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentCheck {
    /// The segment's id.
    pub segment: String,
    /// Documents in it, deleted ones included.
    pub docs: u32,
    /// `None` when the segment's code table is whole.
    pub problem: Option<String>,
}

/// Checks the index in `path` without opening a reader over it (a reader
/// refuses to open over a damaged table; this reports it instead).
pub fn verify_dir(path: &Path) -> Result<Vec<SegmentCheck>, IndexError> {
    let mut index = Index::open_in_dir(path)?;
    let field = find_hash_field(&index.schema())?;
    index.register_plugin(Arc::new(BinaryHashPlugin::new(field.clone())));
    verify_segments(&index, &field)
}

/// Checks every segment's code table in full: the body checksum and every
/// bucket, besides the header checks of opening. Segments are opened afresh
/// (not from a cache), so damage done after they were first opened is
/// found too.
pub fn verify_segments(index: &Index, field: &HashField) -> Result<Vec<SegmentCheck>, IndexError> {
    let mut out = Vec::new();
    for segment in index.searchable_segments()? {
        let id = segment.id().uuid_string();
        let docs = segment.meta().max_doc();
        let problem = match SegmentReader::open(&segment) {
            Err(e) => Some(e.to_string()),
            Ok(reader) => match SegmentCodes::open(&reader, field) {
                Err(e) => Some(e.to_string()),
                Ok(codes) => codes
                    .table
                    .verify()
                    .err()
                    .map(|e| format!("segment {id}: code table: {e}")),
            },
        };
        out.push(SegmentCheck {
            segment: id,
            docs,
            problem,
        });
    }
    Ok(out)
}

/// A tantivy index with a `binary_hash` field and its plugin registered.
///
/// ```
/// use ash_mih::code::BinaryCode;
/// use ash_tantivy::{knn, KnnRequest};
/// use ash_tantivy::{add_hash_field, HashIndex};
/// use tantivy::schema::Schema;
/// use tantivy::TantivyDocument;
///
/// let dir = tempfile::tempdir().unwrap();
/// let mut builder = Schema::builder();
/// let field = add_hash_field(&mut builder, "code", 16).unwrap();
/// let index = HashIndex::create_in_dir(dir.path(), builder.build()).unwrap();
/// let mut writer = index.writer(15_000_000).unwrap();
/// for hex in ["0000", "0001", "ffff"] {
///     let mut doc = TantivyDocument::default();
///     field.set(&mut doc, &BinaryCode::from_hex(hex, 16).unwrap()).unwrap();
///     writer.add_document(doc).unwrap();
/// }
/// writer.commit().unwrap();
/// drop((writer, index));
///
/// // Opened again: the plugin is registered anew, the codes are found.
/// let index = HashIndex::open_in_dir(dir.path()).unwrap();
/// index.reload().unwrap();
/// let searcher = index.reader().searcher();
/// let query = BinaryCode::from_hex("0003", 16).unwrap();
/// let hits = knn(&index, &searcher, &query, &KnnRequest { k: 2, ..Default::default() }).unwrap();
/// assert_eq!(hits.iter().map(|h| h.distance).collect::<Vec<_>>(), [Some(1), Some(2)]);
/// ```
pub struct HashIndex {
    index: Index,
    field: HashField,
    cache: Arc<CodeCache>,
    reader: IndexReader,
    /// The schema filters are collected against ([`restrict::collect_schema`]).
    collect_schema: Schema,
    /// Kept alive here: tantivy holds warmers weakly.
    _warmer: Arc<CodeWarmer>,
}

impl HashIndex {
    /// Creates an index in `path` (which must exist and be empty).
    pub fn create_in_dir(path: &Path, schema: Schema) -> Result<Self, IndexError> {
        let field = find_hash_field(&schema)?;
        let index = Index::builder()
            .schema(schema)
            .register_plugin(Arc::new(BinaryHashPlugin::new(field.clone())))
            .create_in_dir(path)?;
        Self::wrap(index, field)
    }

    /// Creates an index in memory (tests, examples).
    pub fn create_in_ram(schema: Schema) -> Result<Self, IndexError> {
        let field = find_hash_field(&schema)?;
        let index = Index::builder()
            .schema(schema)
            .register_plugin(Arc::new(BinaryHashPlugin::new(field.clone())))
            .create_in_ram()?;
        Self::wrap(index, field)
    }

    /// Opens an existing index, registering the plugin again.
    pub fn open_in_dir(path: &Path) -> Result<Self, IndexError> {
        let mut index = Index::open_in_dir(path)?;
        let field = find_hash_field(&index.schema())?;
        index.register_plugin(Arc::new(BinaryHashPlugin::new(field.clone())));
        Self::wrap(index, field)
    }

    fn wrap(index: Index, field: HashField) -> Result<Self, IndexError> {
        if index.settings().sort_by_field.is_some() {
            return Err(IndexError::SortedIndex);
        }
        let cache = Arc::new(CodeCache::default());
        let warmer = Arc::new(CodeWarmer {
            cache: cache.clone(),
            field: field.clone(),
        });
        let weak: std::sync::Weak<dyn tantivy::Warmer> = Arc::downgrade(&warmer) as _;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .warmers(vec![weak])
            .try_into()?;
        let collect_schema = restrict::collect_schema(&index.schema());
        Ok(Self {
            index,
            field,
            cache,
            reader,
            collect_schema,
            _warmer: warmer,
        })
    }

    /// The tantivy index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The `binary_hash` field.
    pub fn field(&self) -> &HashField {
        &self.field
    }

    /// The index's schema.
    pub fn schema(&self) -> Schema {
        self.index.schema()
    }

    /// The schema filters are collected against: range queries over
    /// indexed fields read the inverted index.
    pub fn collect_schema(&self) -> &Schema {
        &self.collect_schema
    }

    /// A writer with `heap_bytes` of indexing memory per thread.
    pub fn writer(&self, heap_bytes: usize) -> Result<IndexWriter, IndexError> {
        Ok(self.index.writer(heap_bytes)?)
    }

    /// The reader; call `reload()` on it after commits to see them.
    pub fn reader(&self) -> &IndexReader {
        &self.reader
    }

    /// Reloads the reader; the warmer opens new segments' code tables and
    /// drops those no searcher holds any more.
    pub fn reload(&self) -> Result<(), IndexError> {
        self.reader.reload()?;
        Ok(())
    }

    /// The codes of a segment (opened once, then cached).
    pub fn codes(&self, reader: &SegmentReader) -> Result<Arc<SegmentCodes>, IndexError> {
        Ok(self.cache.get(reader, &self.field)?)
    }

    /// A radius query over the hash field.
    pub fn hamming_query(&self, code: BinaryCode, radius: u32) -> Result<HammingQuery, IndexError> {
        HammingQuery::new(self.cache.clone(), self.field.clone(), code, radius)
    }

    /// Checks every segment's code table in full ([`verify_segments`]).
    pub fn verify(&self) -> Result<Vec<SegmentCheck>, IndexError> {
        verify_segments(&self.index, &self.field)
    }

    /// How many segments' code tables are held open: those of the
    /// segments some searcher still holds (for monitoring; a table is
    /// dropped once no searcher holds its segment).
    pub fn cached_segments(&self) -> usize {
        self.cache.len()
    }
}
