//! Reading a segment's codes: the memory-mapped `.mih` table and the set of
//! docs without a code, opened once per segment and cached by segment id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use roaring::RoaringBitmap;
use tantivy::directory::OwnedBytes;
use tantivy::error::DataCorruption;
use tantivy::fastfield::AliveBitSet;
use tantivy::index::{SegmentComponent, SegmentId};
use tantivy::{DocId, SegmentReader, TantivyError};

use super::plugin::{EXT_NONE, EXT_TABLE};
use super::HashField;
use ash_mih::code::BinaryCode;
use ash_mih::{DocSet, MihIndex};

/// One segment's codes.
pub struct SegmentCodes {
    /// The segment's `.mih` table, doc ids as code ids.
    pub table: MihIndex<OwnedBytes>,
    /// Docs that carry no code (they never match an image query).
    pub none: RoaringBitmap,
}

fn corrupt(reader: &SegmentReader, what: &str, e: impl std::fmt::Display) -> TantivyError {
    TantivyError::DataCorruption(DataCorruption::comment_only(format!(
        "segment {}: {what}: {e}",
        reader.segment_id().uuid_string()
    )))
}

impl SegmentCodes {
    /// Opens the segment's component files (mmap-backed, header checks only).
    pub fn open(reader: &SegmentReader, field: &HashField) -> tantivy::Result<Self> {
        let bytes = reader
            .open_read(SegmentComponent::Custom(EXT_TABLE.to_string()))?
            .read_bytes()?;
        let table = MihIndex::open(bytes).map_err(|e| corrupt(reader, "code table", e))?;
        if table.bits() != field.bits || table.len() != reader.max_doc() as usize {
            return Err(corrupt(
                reader,
                "code table",
                format!(
                    "{} codes of {} bits, expected {} of {}",
                    table.len(),
                    table.bits(),
                    reader.max_doc(),
                    field.bits
                ),
            ));
        }
        let none_bytes = reader
            .open_read(SegmentComponent::Custom(EXT_NONE.to_string()))?
            .read_bytes()?;
        let none = RoaringBitmap::deserialize_from(none_bytes.as_slice())
            .map_err(|e| corrupt(reader, "docs without codes", e))?;
        Ok(Self { table, none })
    }

    /// The code of `doc`, or `None` when it has none.
    pub fn code(&self, doc: DocId) -> Option<BinaryCode> {
        if self.none.contains(doc) {
            return None;
        }
        self.table.code(doc)
    }
}

/// The docs a segment search may return: alive (not deleted) and with a code.
pub struct Searchable<'a> {
    /// tantivy's alive-set (`None`: nothing deleted).
    pub alive: Option<&'a AliveBitSet>,
    /// Docs without a code.
    pub none: &'a RoaringBitmap,
}

impl<'a> Searchable<'a> {
    /// The set, or `None` when every doc is searchable (nothing deleted,
    /// every doc with a code), which spares the search a check per
    /// candidate.
    pub fn of(alive: Option<&'a AliveBitSet>, none: &'a RoaringBitmap) -> Option<Self> {
        (alive.is_some() || !none.is_empty()).then_some(Self { alive, none })
    }
}

impl DocSet for Searchable<'_> {
    fn contains(&self, doc: u32) -> bool {
        !self.none.contains(doc) && self.alive.is_none_or(|a| a.is_alive(doc))
    }
}

/// Opened segments by id. Entries for segments that left the index are
/// dropped whenever a searcher over the current segments asks.
#[derive(Default)]
pub struct CodeCache {
    segments: Mutex<HashMap<SegmentId, Arc<SegmentCodes>>>,
}

impl CodeCache {
    /// The codes of `reader`'s segment, opened on first use.
    pub fn get(
        &self,
        reader: &SegmentReader,
        field: &HashField,
    ) -> tantivy::Result<Arc<SegmentCodes>> {
        let id = reader.segment_id();
        if let Some(codes) = self.lock().get(&id) {
            return Ok(codes.clone());
        }
        let codes = Arc::new(SegmentCodes::open(reader, field)?);
        self.lock().insert(id, codes.clone());
        Ok(codes)
    }

    /// Drops every cached segment not among `live`.
    pub fn retain(&self, live: &[SegmentId]) {
        self.lock().retain(|id, _| live.contains(id));
    }

    /// Number of segments held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no segment is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SegmentId, Arc<SegmentCodes>>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.segments.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Opens every segment's code table as soon as a searcher over it is made.
///
/// tantivy's own segment files are all opened (memory-mapped) when a
/// searcher is built, so a merge may delete them afterwards without harm.
/// A table opened lazily, at the first query, could find its file already
/// collected by a merge that finished in between; opening it here, inside
/// the reload, gives the `.mih` files the same guarantee as tantivy's own.
pub struct CodeWarmer {
    /// Where opened tables go.
    pub cache: Arc<CodeCache>,
    /// The field whose tables are opened.
    pub field: HashField,
}

impl tantivy::Warmer for CodeWarmer {
    fn warm(&self, searcher: &tantivy::Searcher) -> tantivy::Result<()> {
        for reader in searcher.segment_readers() {
            self.cache.get(reader, &self.field)?;
        }
        Ok(())
    }

    /// Drops the tables of segments no live searcher holds.
    fn garbage_collect(&self, live: &[&tantivy::SearcherGeneration]) {
        let ids: Vec<SegmentId> = live
            .iter()
            .flat_map(|g| g.segments().keys().copied())
            .collect();
        self.cache.retain(&ids);
    }
}
