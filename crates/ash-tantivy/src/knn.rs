//! Exact k-NN by Hamming distance over every segment, with a pre-filter.
//!
//! Per segment, the filter (and the text query, when the ranking needs
//! text) is evaluated into a `RoaringBitmap` allow-list, so the search is
//! exact at any selectivity; deletes and docs without a code are excluded
//! by the alive-set. Segments are searched in order with the current global
//! k-th distance as their radius bound, so later segments do little work.
//! The global order is (distance, text score descending when there is text,
//! segment, doc).

use std::cmp::Ordering;

use roaring::RoaringBitmap;
use tantivy::query::{EnableScoring, Query, Weight};
use tantivy::{DocAddress, DocId, DocSet, Score, Searcher, SegmentReader};

use super::segment::Searchable;
use super::{HashIndex, Hit, IndexError};
use ash_mih::code::BinaryCode;
use ash_mih::SearchOptions;

/// A candidate while segments are searched: it always has a distance.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Near {
    address: DocAddress,
    distance: u32,
    text_score: Option<Score>,
}

/// What a k-NN search asks.
#[derive(Default)]
pub struct KnnRequest<'a> {
    /// How many hits.
    pub k: usize,
    /// Only docs matching this query are candidates (not scored).
    pub filter: Option<&'a dyn Query>,
    /// Only docs matching this query are candidates; its BM25 score breaks
    /// distance ties.
    pub text: Option<&'a dyn Query>,
    /// Ignore docs farther than this.
    pub max_distance: Option<u32>,
}

fn order(a: &Near, b: &Near) -> Ordering {
    a.distance
        .cmp(&b.distance)
        .then_with(|| {
            let (x, y) = (a.text_score.unwrap_or(0.0), b.text_score.unwrap_or(0.0));
            y.total_cmp(&x)
        })
        .then_with(|| {
            (a.address.segment_ord, a.address.doc_id)
                .cmp(&(b.address.segment_ord, b.address.doc_id))
        })
}

/// The docs of `reader` that match `weight`, as a bitmap (deletes included;
/// the alive-set removes them later).
pub fn matching_docs(
    weight: &dyn Weight,
    reader: &SegmentReader,
) -> tantivy::Result<RoaringBitmap> {
    // Collecting first and building from the sorted list is several times
    // faster than inserting doc by doc.
    let mut docs: Vec<DocId> = Vec::new();
    weight.for_each_no_score(reader, &mut |block: &[DocId]| {
        docs.extend_from_slice(block);
    })?;
    if !docs.is_sorted() {
        docs.sort_unstable();
        docs.dedup();
    }
    Ok(RoaringBitmap::from_sorted_iter(docs).unwrap_or_default())
}

/// BM25 scores of `docs` (ascending) under `weight`; 0 where a doc does not match.
pub fn scores_of(
    weight: &dyn Weight,
    reader: &SegmentReader,
    docs: &[DocId],
) -> tantivy::Result<Vec<Score>> {
    let mut scorer = weight.scorer(reader, 1.0)?;
    Ok(docs
        .iter()
        .map(|&d| {
            if scorer.doc() <= d && scorer.seek(d) == d {
                scorer.score()
            } else {
                0.0
            }
        })
        .collect())
}

/// The exact k nearest docs to `code`, across all segments of `searcher`,
/// nearest first; each hit's score is 1 − distance/bits.
pub fn knn(
    index: &HashIndex,
    searcher: &Searcher,
    code: &BinaryCode,
    req: &KnnRequest,
) -> Result<Vec<Hit>, IndexError> {
    let field = index.field();
    field.check(code)?;
    if req.k == 0 {
        return Ok(Vec::new());
    }
    let filter_w = req
        .filter
        .map(|q| q.weight(EnableScoring::disabled_from_searcher(searcher)))
        .transpose()?;
    let text_w = req
        .text
        .map(|q| q.weight(EnableScoring::enabled_from_searcher(searcher)))
        .transpose()?;
    let mut found: Vec<Near> = Vec::new();
    let mut bound = req.max_distance.unwrap_or(field.bits as u32);
    // Largest segments first: they set a tight k-th distance early, which
    // bounds the radius of every later segment.
    let mut order_by_size: Vec<(usize, &SegmentReader)> =
        searcher.segment_readers().iter().enumerate().collect();
    order_by_size.sort_by_key(|(ord, r)| (std::cmp::Reverse(r.num_docs()), *ord));
    for (ord, reader) in order_by_size {
        let codes = index.codes(reader)?;
        let mut allow: Option<RoaringBitmap> = None;
        for w in filter_w.iter().chain(text_w.iter()) {
            let docs = matching_docs(w.as_ref(), reader)?;
            allow = Some(match allow {
                Some(a) => a & docs,
                None => docs,
            });
        }
        let searchable = Searchable {
            alive: reader.alive_bitset(),
            none: &codes.none,
        };
        let opts = SearchOptions {
            allow: allow.as_ref(),
            alive: Some(&searchable),
            max_distance: Some(bound),
            ..SearchOptions::default()
        };
        let mut hits = codes.table.knn(code, req.k, &opts)?;
        if text_w.is_some() && hits.len() == req.k {
            // Text scores break distance ties: take every doc at the k-th distance.
            let last = hits[hits.len() - 1].distance;
            hits = codes.table.range(code, last, &opts)?;
        }
        let mut docs: Vec<(DocId, u32)> = hits.iter().map(|h| (h.doc, h.distance)).collect();
        docs.sort_unstable();
        let scores = match &text_w {
            Some(w) => Some(scores_of(
                w.as_ref(),
                reader,
                &docs.iter().map(|d| d.0).collect::<Vec<_>>(),
            )?),
            None => None,
        };
        for (i, &(doc, distance)) in docs.iter().enumerate() {
            found.push(Near {
                address: DocAddress::new(ord as u32, doc),
                distance,
                text_score: scores.as_ref().map(|s| s[i]),
            });
        }
        found.sort_by(order);
        if found.len() >= req.k {
            bound = bound.min(found[req.k - 1].distance);
            // Keep every hit at the bound: text may reorder ties later.
            found.retain(|h| h.distance <= bound);
        }
    }
    found.sort_by(order);
    found.truncate(req.k);
    let bits = field.bits as f32;
    Ok(found
        .into_iter()
        .map(|n| Hit {
            address: n.address,
            distance: Some(n.distance),
            text_score: n.text_score,
            score: 1.0 - n.distance as f32 / bits,
        })
        .collect())
}
