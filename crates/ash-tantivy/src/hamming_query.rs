//! `HammingQuery`: docs whose code lies within a radius of a query code,
//! as a tantivy `Query`, `Weight` and `Scorer`. Score = 1 − distance/bits.

use std::fmt;
use std::sync::Arc;

use tantivy::query::{EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, TantivyError, TERMINATED};

use super::segment::{CodeCache, Searchable};
use super::{HashField, IndexError};
use ash_mih::code::BinaryCode;
use ash_mih::SearchOptions;

/// Matches docs within `radius` of `code` in a `binary_hash` field.
///
/// ```
/// use ash_mih::code::BinaryCode;
/// use ash_tantivy::{add_hash_field, HashIndex};
/// use tantivy::collector::TopDocs;
/// use tantivy::schema::Schema;
/// use tantivy::TantivyDocument;
///
/// let mut builder = Schema::builder();
/// let field = add_hash_field(&mut builder, "code", 12).unwrap();
/// let index = HashIndex::create_in_ram(builder.build()).unwrap();
/// let mut writer = index.writer(15_000_000).unwrap();
/// for bits in ["000000000000", "000000000111", "111111111111"] {
///     let mut doc = TantivyDocument::new();
///     field.set(&mut doc, &BinaryCode::from_bit_str(bits).unwrap()).unwrap();
///     writer.add_document(doc).unwrap();
/// }
/// writer.commit().unwrap();
/// index.reload().unwrap();
///
/// let query = index.hamming_query(BinaryCode::zeros(12).unwrap(), 3).unwrap();
/// let hits = index.reader().searcher().search(&query, &TopDocs::with_limit(10).order_by_score()).unwrap();
/// assert_eq!(hits.len(), 2);
/// assert_eq!(hits[0].0, 1.0); // distance 0
/// assert_eq!(hits[1].0, 0.75); // distance 3 of 12 bits
/// ```
#[derive(Clone)]
pub struct HammingQuery {
    cache: Arc<CodeCache>,
    field: HashField,
    code: BinaryCode,
    radius: u32,
}

impl HammingQuery {
    /// Matches the docs whose code is within `radius` of `code`; a code of
    /// another length than the field's is refused. [`crate::HashIndex::hamming_query`]
    /// fills in the cache and the field.
    pub fn new(
        cache: Arc<CodeCache>,
        field: HashField,
        code: BinaryCode,
        radius: u32,
    ) -> Result<Self, IndexError> {
        field.check(&code)?;
        Ok(Self {
            cache,
            field,
            code,
            radius,
        })
    }
}

impl fmt::Debug for HammingQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HammingQuery({}:{} within {})",
            self.field.name,
            self.code.to_hex(),
            self.radius
        )
    }
}

impl Query for HammingQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(HammingWeight {
            query: self.clone(),
        }))
    }
}

/// The query bound to a searcher.
pub struct HammingWeight {
    query: HammingQuery,
}

impl HammingWeight {
    /// Matching docs of one segment with their distances, in doc order.
    fn matches(&self, reader: &SegmentReader) -> tantivy::Result<Vec<(DocId, u32)>> {
        let q = &self.query;
        let codes = q.cache.get(reader, &q.field)?;
        let searchable = Searchable {
            alive: None,
            none: &codes.none,
        };
        let opts = SearchOptions {
            alive: Some(&searchable),
            ..SearchOptions::default()
        };
        let mut hits = codes
            .table
            .range(&q.code, q.radius, &opts)
            .map_err(|e| TantivyError::InvalidArgument(e.to_string()))?;
        hits.sort_unstable_by_key(|h| h.doc);
        Ok(hits.into_iter().map(|h| (h.doc, h.distance)).collect())
    }

    fn similarity(&self, distance: u32) -> Score {
        1.0 - distance as Score / self.query.field.bits as Score
    }
}

impl Weight for HammingWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let hits = self.matches(reader)?;
        let scores = hits
            .iter()
            .map(|&(_, d)| boost * self.similarity(d))
            .collect();
        Ok(Box::new(HammingScorer {
            docs: hits.into_iter().map(|(doc, _)| doc).collect(),
            scores,
            pos: 0,
        }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let q = &self.query;
        let codes = q.cache.get(reader, &q.field)?;
        let distance = codes
            .code(doc)
            .map(|c| c.distance(&q.code).unwrap_or(u32::MAX))
            .filter(|&d| d <= q.radius)
            .ok_or_else(|| {
                TantivyError::InvalidArgument(format!("document #{doc} does not match {q:?}"))
            })?;
        let mut e = Explanation::new_with_string(
            format!("Hamming similarity 1 - d/bits, d = {distance}"),
            self.similarity(distance),
        );
        e.add_const("distance", distance as Score);
        e.add_const("bits", q.field.bits as Score);
        e.add_const("radius", q.radius as Score);
        Ok(e)
    }
}

/// Cursor over one segment's precomputed matches.
pub struct HammingScorer {
    docs: Vec<DocId>,
    scores: Vec<Score>,
    pos: usize,
}

impl DocSet for HammingScorer {
    fn advance(&mut self) -> DocId {
        if self.pos < self.docs.len() {
            self.pos += 1;
        }
        self.doc()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        let rest = &self.docs[self.pos..];
        self.pos += rest.partition_point(|&d| d < target);
        self.doc()
    }

    fn doc(&self) -> DocId {
        self.docs.get(self.pos).copied().unwrap_or(TERMINATED)
    }

    fn size_hint(&self) -> u32 {
        (self.docs.len() - self.pos) as u32
    }
}

impl Scorer for HammingScorer {
    fn score(&mut self) -> Score {
        self.scores.get(self.pos).copied().unwrap_or(0.0)
    }
}
