//! How a filter narrows the Hamming search in one segment: two exact
//! strategies, and the rule that moves from one to the other.
//!
//! - **candidates**: the Hamming search runs without the filter, nearest
//!   first, 4 × k deep ([`first_depth`]); its candidates are checked in doc
//!   order by one forward pass of point lookups on the filter's scorer (a
//!   fast-column read, or a posting-list skip, each). Too few passed: the
//!   share that did sizes a deeper round ([`next_depth`]). Its cost follows
//!   the answer, not the filter, so it suits broad filters. It is exact
//!   because the filtered (distance, doc) order is a subsequence of the
//!   unfiltered one: the first k matching docs of an exact unfiltered
//!   prefix are the exact filtered top k.
//! - **allow-list**: every doc the filter matches is walked straight into
//!   the distance loop, in the blocks tantivy yields them
//!   ([`Restriction::walk`], `ash_mih::NearestAmong`); nothing is
//!   collected first. Its cost follows the filter's matches, so it suits
//!   selective filters. Range filters over fields that are both indexed
//!   and fast are walked through the inverted index ([`collect_schema`]):
//!   a range keeping 0.1 % of ten million docs then reads 10,000 postings
//!   instead of ten million column values.
//!
//! A search starts with candidates (small segments with the allow-list)
//! and gives way to the allow-list when the next round would cost more
//! than collecting the filter, by [`FilterCosts`] and the share seen so
//! far. So a broad filter costs one round and one scorer per segment, and
//! a selective one, the first time, a 64-deep round more than its
//! allow-list. The share is measured on the query's own neighbours,
//! which also catches a filter that is common overall but rare near the
//! query. A caller may keep each segment's share per filter
//! ([`crate::FilterStats`]), so the next search with that filter starts
//! with the strategy it calls for ([`start_with`]).

use roaring::RoaringBitmap;
use tantivy::query::{EnableScoring, Query, Weight};
use tantivy::schema::{DateOptions, FieldEntry, FieldType, NumericOptions, Schema};
use tantivy::{DocId, Searcher, SeekDangerResult, SegmentReader};

/// How a filter restricts the Hamming search.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilterStrategy {
    /// Candidates first, then the allow-list when going deeper would cost
    /// more (small segments: the allow-list), per segment.
    #[default]
    Auto,
    /// Walk the matching docs straight into the distance loop.
    AllowList,
    /// Search unfiltered, nearest first, and check each candidate.
    Candidates,
}

/// Segments this small are always searched through an allow-list:
/// collecting a filter over them costs less than one unfiltered round.
pub const SMALL_SEGMENT: u32 = 8192;

/// Per-operation costs in nanoseconds on one core of the project's 2-core
/// VM; only their ratios matter. Read off `examples/bench_filters.rs` at
/// 10M documents in 8 segments (`docs/BENCHMARKS.md`): walking a 1 % range
/// filter's matches into the distance loop costs 13 ns a match (9 at 5 %),
/// an unfiltered neighbour about 250–400 ns with its check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilterCosts {
    /// Walking one matching doc into the distance loop.
    pub collect_per_match: f64,
    /// Finding one more unfiltered neighbour and checking it.
    pub candidate: f64,
}

impl Default for FilterCosts {
    fn default() -> Self {
        Self {
            collect_per_match: 13.0,
            candidate: 400.0,
        }
    }
}

impl FilterCosts {
    /// Expected cost of an unfiltered round `depth` deep.
    pub fn deeper_ns(&self, depth: usize) -> f64 {
        depth as f64 * self.candidate
    }

    /// Expected cost of the allow-list over `docs` docs when the filter
    /// keeps `share` of them.
    pub fn allow_list_ns(&self, share: f64, docs: u32) -> f64 {
        share * docs as f64 * self.collect_per_match
    }
}

/// The first unfiltered round's depth: 4 × k, at least 64, so a filter
/// keeping a third of the docs or more is usually done in one round.
pub fn first_depth(k: usize, docs: u32) -> usize {
    k.saturating_mul(4).max(64).min(docs as usize)
}

/// The next round's depth after one `depth` deep passed `share` of its
/// candidates: k ÷ share with half again as slack, and at least twice
/// as deep.
pub fn next_depth(share: f64, k: usize, depth: usize, docs: u32) -> usize {
    let want = (k as f64 / share.max(1e-9) * 1.5).ceil() + k as f64;
    (want.min(docs as f64) as usize)
        .max(depth.saturating_mul(2))
        .min(docs as usize)
}

/// `schema` with fast storage dropped from numeric and date fields that
/// are also indexed, so that range queries built against it read the
/// inverted index (cost per match) instead of the fast column (cost per
/// doc). Field ids are unchanged.
pub fn collect_schema(schema: &Schema) -> Schema {
    let mut builder = Schema::builder();
    for (_, entry) in schema.fields() {
        let name = entry.name().to_string();
        let changed = match entry.field_type() {
            FieldType::I64(o) if o.is_indexed() && o.is_fast() => {
                Some(FieldType::I64(numeric_without_fast(o)))
            }
            FieldType::U64(o) if o.is_indexed() && o.is_fast() => {
                Some(FieldType::U64(numeric_without_fast(o)))
            }
            FieldType::F64(o) if o.is_indexed() && o.is_fast() => {
                Some(FieldType::F64(numeric_without_fast(o)))
            }
            FieldType::Date(o) if o.is_indexed() && o.is_fast() => {
                Some(FieldType::Date(date_without_fast(o)))
            }
            _ => None,
        };
        builder.add_field(match changed {
            Some(t) => FieldEntry::new(name, t),
            None => entry.clone(),
        });
    }
    builder.build()
}

fn numeric_without_fast(o: &NumericOptions) -> NumericOptions {
    let mut out = NumericOptions::default().set_indexed();
    if o.is_stored() {
        out = out.set_stored();
    }
    if o.fieldnorms() {
        out = out.set_fieldnorm();
    }
    if o.should_coerce() {
        out = out.set_coerce();
    }
    out
}

fn date_without_fast(o: &DateOptions) -> DateOptions {
    let mut out = DateOptions::default()
        .set_indexed()
        .set_precision(o.get_precision());
    if o.is_stored() {
        out = out.set_stored();
    }
    if o.fieldnorms() {
        out = out.set_fieldnorm();
    }
    out
}

/// A query that restricts the Hamming search, compiled twice: a seekable
/// weight to estimate its share and check candidates, and a weight that
/// collects its matches cheaply.
pub struct Restriction {
    check: Box<dyn Weight>,
    collect: Box<dyn Weight>,
}

impl Restriction {
    /// A filter (never scored). `collect_schema` is [`collect_schema`] of
    /// the searcher's schema.
    pub fn filter(
        query: &dyn Query,
        searcher: &Searcher,
        collect_schema: &Schema,
    ) -> tantivy::Result<Self> {
        let check = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
        // A query the reduced schema cannot express (one that needs a fast
        // column) is collected by its ordinary weight.
        let collect = query
            .weight(EnableScoring::disabled_from_schema(collect_schema))
            .or_else(|_| query.weight(EnableScoring::disabled_from_searcher(searcher)))?;
        Ok(Self { check, collect })
    }

    /// A scored query that also restricts (text in filter mode).
    pub fn scored(query: &dyn Query, searcher: &Searcher) -> tantivy::Result<Self> {
        Ok(Self {
            check: query.weight(EnableScoring::enabled_from_searcher(searcher))?,
            collect: query.weight(EnableScoring::disabled_from_searcher(searcher))?,
        })
    }

    /// The seekable weight (scores, when built by [`Self::scored`]).
    pub fn weight(&self) -> &dyn Weight {
        self.check.as_ref()
    }

    /// Every doc of `reader` it matches (deleted ones included).
    pub fn collect(&self, reader: &SegmentReader) -> tantivy::Result<RoaringBitmap> {
        matching_docs(self.collect.as_ref(), reader)
    }

    /// Calls `f` with every doc of `reader` it matches (deleted ones
    /// included), in ascending blocks, as cheaply as tantivy yields them.
    pub fn walk(&self, reader: &SegmentReader, f: &mut dyn FnMut(&[DocId])) -> tantivy::Result<()> {
        self.collect.for_each_no_score(reader, f)
    }

    /// Which of `docs` (strictly ascending) it matches, by one forward
    /// pass of point lookups.
    pub fn matches_sorted(
        &self,
        reader: &SegmentReader,
        docs: &[DocId],
    ) -> tantivy::Result<Vec<bool>> {
        let mut member = Membership::new(self.check.as_ref(), reader)?;
        Ok(docs.iter().map(|&d| member.contains(d)).collect())
    }
}

/// Point lookups on one scorer, for strictly ascending doc ids.
pub struct Membership {
    scorer: Box<dyn tantivy::query::Scorer>,
}

impl Membership {
    /// A fresh scorer of `weight` over `reader`.
    pub fn new(weight: &dyn Weight, reader: &SegmentReader) -> tantivy::Result<Self> {
        Ok(Self {
            scorer: weight.scorer(reader, 1.0)?,
        })
    }

    /// Whether `doc` matches; each call's doc must exceed the last's.
    pub fn contains(&mut self, doc: DocId) -> bool {
        // Only `seek_danger` is called, as its contract asks after a miss.
        self.scorer.seek_danger(doc) == SeekDangerResult::Found
    }
}

/// Where a segment's search starts: a forced strategy as asked; with
/// `Auto`, the allow-list in small segments, `by_share` of a remembered
/// share, else candidates (which measure the share as they go).
pub fn starting(
    requested: FilterStrategy,
    remembered: Option<f64>,
    docs: u32,
    by_share: impl FnOnce(f64) -> FilterStrategy,
) -> FilterStrategy {
    match (requested, remembered) {
        (FilterStrategy::Auto, _) if docs <= SMALL_SEGMENT => FilterStrategy::AllowList,
        (FilterStrategy::Auto, Some(share)) => by_share(share),
        (FilterStrategy::Auto, None) => FilterStrategy::Candidates,
        (forced, _) => forced,
    }
}

/// Where a search with a remembered share of the neighbours should start:
/// the allow-list when walking it costs less than the candidates that
/// share calls for. `matches`, the share of the segment the filter was
/// counted to match, prices the walk when known (the neighbours' share
/// of one query can be far from it either way).
pub fn start_with(share: f64, matches: Option<f64>, k: usize, docs: u32) -> FilterStrategy {
    let costs = FilterCosts::default();
    let depth = next_depth(share, k, first_depth(k, docs), docs);
    if costs.allow_list_ns(matches.unwrap_or(share), docs) <= costs.deeper_ns(depth) {
        FilterStrategy::AllowList
    } else {
        FilterStrategy::Candidates
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_start_at_four_k_and_grow_with_the_missing_share() {
        assert_eq!(first_depth(10, 1_000_000), 64);
        assert_eq!(first_depth(100, 1_000_000), 400);
        assert_eq!(first_depth(10, 20), 20);
        // Half passed: k ÷ ½ × 1.5 + k, but at least twice as deep.
        assert_eq!(next_depth(0.5, 10, 64, 1_000_000), 128);
        assert_eq!(next_depth(0.01, 10, 64, 1_000_000), 1510);
        assert_eq!(next_depth(0.0, 10, 64, 5000), 5000);
    }

    #[test]
    fn a_remembered_share_picks_where_to_start() {
        assert_eq!(
            start_with(0.001, None, 10, 10_000_000),
            FilterStrategy::AllowList
        );
        assert_eq!(
            start_with(0.4, None, 10, 10_000_000),
            FilterStrategy::Candidates
        );
        // Few neighbours passed, but the filter is known to match 5 % of
        // the segment: walking it would cost more than going deeper.
        assert_eq!(
            start_with(0.008, None, 10, 1_250_000),
            FilterStrategy::AllowList
        );
        assert_eq!(
            start_with(0.008, Some(0.05), 10, 1_250_000),
            FilterStrategy::Candidates
        );
    }

    #[test]
    fn going_deeper_gives_way_to_the_allow_list_when_it_costs_more() {
        let c = FilterCosts::default();
        let n = 10_000_000;
        // 0.1 % of 10M: 10,000 matches to collect, or 15,000 more neighbours.
        assert!(c.deeper_ns(next_depth(0.001, 10, 64, n)) > c.allow_list_ns(0.001, n));
        // 5 %: 500,000 matches, or 310 neighbours.
        assert!(c.deeper_ns(next_depth(0.05, 10, 64, n)) < c.allow_list_ns(0.05, n));
    }
}
