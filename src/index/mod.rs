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
//! table once and cache it by segment id ([`segment::CodeCache`]).
//!
//! Queries: [`HammingQuery`] is an ordinary tantivy `Query` (radius match,
//! score 1 − d/bits) that composes in a `BooleanQuery`; [`knn::knn`] is the
//! exact k-NN over all segments with a pre-filter evaluated per segment into
//! a `RoaringBitmap`; [`hybrid`] ranks text (BM25) with Hamming similarity.
//!
//! [`HashIndex`] opens or creates an index with the plugin registered,
//! which tantivy needs on every open.

pub mod config;
pub mod hamming_query;
pub mod hybrid;
pub mod knn;
pub mod plugin;
pub mod query_text;
pub mod segment;

use std::path::Path;
use std::sync::Arc;

use tantivy::schema::{Field, Schema, SchemaBuilder};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, SegmentReader, TantivyDocument};

pub use hamming_query::HammingQuery;
pub use plugin::{find_hash_field, BinaryHashPlugin};
pub use segment::{CodeCache, CodeWarmer, SegmentCodes};

use crate::code::{bytes_for, BinaryCode, CodeError, MAX_BITS};

/// The custom field type name.
pub const TYPE_NAME: &str = "binary_hash";

/// Errors of the index layer.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Mih(#[from] crate::mih::MihError),
    #[error("query: {0}")]
    Query(#[from] tantivy::query::QueryParserError),
    #[error(transparent)]
    Encoder(#[from] crate::encoder::EncoderError),
}

/// Adds a `binary_hash` field of `bits` bits to a schema.
pub fn add_hash_field(
    builder: &mut SchemaBuilder,
    name: &str,
    bits: usize,
) -> Result<HashField, IndexError> {
    if !(1..=MAX_BITS).contains(&bits) {
        return Err(IndexError::Invalid(format!(
            "field {name}: code length must be 1..={MAX_BITS} bits, got {bits}"
        )));
    }
    let field = builder.add_custom_field(name, TYPE_NAME, serde_json::json!({ "bits": bits }));
    HashField::new(field, name, bits).map_err(IndexError::Invalid)
}

/// A schema's `binary_hash` field: its handle, name and code length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashField {
    pub field: Field,
    pub name: String,
    pub bits: usize,
}

impl HashField {
    pub fn new(field: Field, name: &str, bits: usize) -> Result<Self, String> {
        if !(1..=MAX_BITS).contains(&bits) {
            return Err(format!(
                "field {name}: code length {bits} is not in 1..={MAX_BITS}"
            ));
        }
        Ok(Self {
            field,
            name: name.to_string(),
            bits,
        })
    }

    /// Reads a code from the field's bytes, naming the field on error.
    pub fn parse(&self, bytes: &[u8]) -> Result<BinaryCode, IndexError> {
        if bytes.len() != bytes_for(self.bits) {
            return Err(IndexError::Invalid(format!(
                "field {}: a {}-bit code takes {} bytes, got {} bytes",
                self.name,
                self.bits,
                bytes_for(self.bits),
                bytes.len()
            )));
        }
        BinaryCode::from_packed(bytes, self.bits).map_err(|e| self.code_error(e))
    }

    /// Sets a document's code; a code of another length is refused.
    pub fn set(&self, doc: &mut TantivyDocument, code: &BinaryCode) -> Result<(), IndexError> {
        self.check(code)?;
        doc.add_custom(self.field, &code.to_packed());
        Ok(())
    }

    /// Refuses a code whose length is not the field's, naming both.
    pub fn check(&self, code: &BinaryCode) -> Result<(), IndexError> {
        if code.bits() != self.bits {
            return Err(IndexError::Invalid(format!(
                "field {}: code has {} bits, the field takes {}",
                self.name,
                code.bits(),
                self.bits
            )));
        }
        Ok(())
    }

    /// Parses a query code from hex, naming the field on error.
    pub fn from_hex(&self, hex: &str) -> Result<BinaryCode, IndexError> {
        BinaryCode::from_hex(hex, self.bits).map_err(|e| self.code_error(e))
    }

    fn code_error(&self, e: CodeError) -> IndexError {
        IndexError::Invalid(format!("field {} ({} bits): {e}", self.name, self.bits))
    }
}

/// What [`HashIndex::verify`] found in one segment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SegmentCheck {
    pub segment: String,
    pub docs: u32,
    /// `None` when the segment's code table is whole.
    pub problem: Option<String>,
}

/// Checks the index in `path` without opening a reader over it (a reader
/// refuses to open over a damaged table; this reports it instead).
pub fn verify_dir(path: &Path) -> Result<Vec<SegmentCheck>, IndexError> {
    let mut index = Index::open_in_dir(path)?;
    let field = find_hash_field(&index.schema()).map_err(IndexError::Invalid)?;
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
pub struct HashIndex {
    index: Index,
    field: HashField,
    cache: Arc<CodeCache>,
    reader: IndexReader,
    /// Kept alive here: tantivy holds warmers weakly.
    _warmer: Arc<CodeWarmer>,
}

impl HashIndex {
    /// Creates an index in `path` (which must exist and be empty).
    pub fn create_in_dir(path: &Path, schema: Schema) -> Result<Self, IndexError> {
        let field = find_hash_field(&schema).map_err(IndexError::Invalid)?;
        let index = Index::builder()
            .schema(schema)
            .register_plugin(Arc::new(BinaryHashPlugin::new(field.clone())))
            .create_in_dir(path)?;
        Self::wrap(index, field)
    }

    /// Creates an index in memory (tests, examples).
    pub fn create_in_ram(schema: Schema) -> Result<Self, IndexError> {
        let field = find_hash_field(&schema).map_err(IndexError::Invalid)?;
        let index = Index::builder()
            .schema(schema)
            .register_plugin(Arc::new(BinaryHashPlugin::new(field.clone())))
            .create_in_ram()?;
        Self::wrap(index, field)
    }

    /// Opens an existing index, registering the plugin again.
    pub fn open_in_dir(path: &Path) -> Result<Self, IndexError> {
        let mut index = Index::open_in_dir(path)?;
        let field = find_hash_field(&index.schema()).map_err(IndexError::Invalid)?;
        index.register_plugin(Arc::new(BinaryHashPlugin::new(field.clone())));
        Self::wrap(index, field)
    }

    fn wrap(index: Index, field: HashField) -> Result<Self, IndexError> {
        if index.settings().sort_by_field.is_some() {
            return Err(IndexError::Invalid(
                "binary_hash fields do not support index sorting: codes are stored in doc-id order"
                    .into(),
            ));
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
        Ok(Self {
            index,
            field,
            cache,
            reader,
            _warmer: warmer,
        })
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn field(&self) -> &HashField {
        &self.field
    }

    pub fn schema(&self) -> Schema {
        self.index.schema()
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

    /// The shared segment cache (for queries built by hand).
    pub fn cache(&self) -> &Arc<CodeCache> {
        &self.cache
    }
}
