//! Exact k-NN by Hamming distance over every segment, restricted by a
//! filter (and by the text query when the ranking needs text).
//!
//! Without a restriction, or with a filter whose candidates strategy is
//! the cheaper start, every segment is searched at once: the engine's
//! lockstep search ([`ash_mih::knn_segments`]) with one shared k-th
//! distance, and for a filter in rounds of unfiltered candidates across
//! all segments, each segment's checked in doc order, deeper until k
//! pass. Otherwise (text restricting too, a filter some segment walks
//! more cheaply, a round that would cost more than walking every
//! segment's matches) segments are searched largest first, each with the
//! current global k-th distance as its radius bound, so later segments do
//! little work; in each the restriction is applied by the strategy
//! [`crate::restrict`] picks by cost: the filter's matches walked into the
//! distance loop for selective filters, unfiltered candidates checked in
//! doc order for broad ones. All are exact. Deleted docs and docs without
//! a code are excluded inside the Hamming search.
//! The global order is (distance, text score descending when there is
//! text, segment, doc). [`knn_explained`] also says, per segment, what was
//! done and why.

use std::cmp::Ordering;

use tantivy::query::{Query, Weight};
use tantivy::{DocAddress, DocId, DocSet, Score, Searcher, SegmentReader};

use super::filter_stats::{Remember, Side};
use super::restrict::{
    first_depth, next_depth, start_with, starting, FilterCosts, FilterStrategy, Membership,
    Restriction, SMALL_SEGMENT,
};
use super::segment::{Searchable, SegmentCodes};
use super::{HashIndex, Hit, IndexError};
use ash_mih::code::BinaryCode;
use ash_mih::{SearchOptions, SearchStats};

/// A candidate while segments are searched: it always has a distance.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Near {
    address: DocAddress,
    distance: u32,
    text_score: Option<Score>,
}

impl Near {
    /// The hit a caller sees: scored 1 − distance/bits.
    fn into_hit(self, bits: f32) -> Hit {
        Hit {
            address: self.address,
            distance: Some(self.distance),
            text_score: self.text_score,
            score: 1.0 - self.distance as f32 / bits,
        }
    }
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
    /// How the restriction is applied; `Auto` chooses per segment by cost.
    pub strategy: FilterStrategy,
    /// Where shares learnt by earlier searches with the same restriction
    /// are kept (cost only; `None`: every search learns afresh).
    pub remember: Option<Remember<'a>>,
}

/// What the search did in one segment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SegmentPlan {
    /// The segment's ordinal in the searcher.
    pub segment: u32,
    /// Its docs, deleted ones included.
    pub docs: u32,
    /// The share of docs the filter keeps: of the segment (allow-list),
    /// or of the last round's candidates (`None` unfiltered).
    pub share: Option<f64>,
    /// The strategy that produced the hits (`None` unfiltered).
    pub strategy: Option<FilterStrategy>,
    /// Candidates strategy: unfiltered searches made (each deeper than
    /// the last).
    pub rounds: u32,
    /// Candidates strategy: neighbours fetched by the last round.
    pub depth: usize,
    /// True when candidates gave way to an allow-list, going deeper
    /// costing more than collecting the filter.
    pub fell_back: bool,
    /// True when an earlier search's share for this filter and segment
    /// chose where to start.
    pub remembered: bool,
    /// What the Hamming search did (summed over rounds).
    pub engine: SearchStats,
}

impl SegmentPlan {
    /// The plan of segment `segment` of `docs` docs before anything is
    /// done in it: no filter, no rounds, no engine work yet.
    fn unfiltered(segment: u32, docs: u32) -> Self {
        SegmentPlan {
            segment,
            docs,
            share: None,
            strategy: None,
            rounds: 0,
            depth: 0,
            fell_back: false,
            remembered: false,
            engine: SearchStats::default(),
        }
    }
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
///
/// ```
/// use ash_mih::code::BinaryCode;
/// use ash_tantivy::{add_hash_field, knn, FilterStrategy, HashIndex, KnnRequest};
/// use tantivy::query::TermQuery;
/// use tantivy::schema::{IndexRecordOption, Schema, STRING};
/// use tantivy::{TantivyDocument, Term};
///
/// let mut builder = Schema::builder();
/// let eye = builder.add_text_field("eye", STRING);
/// let field = add_hash_field(&mut builder, "code", 8).unwrap();
/// let index = HashIndex::create_in_ram(builder.build()).unwrap();
/// let mut writer = index.writer(15_000_000).unwrap();
/// for (side, hex) in [("OD", "0f"), ("OS", "0e"), ("OD", "f0")] {
///     let mut doc = TantivyDocument::default();
///     doc.add_text(eye, side);
///     field.set(&mut doc, &BinaryCode::from_hex(hex, 8).unwrap()).unwrap();
///     writer.add_document(doc).unwrap();
/// }
/// writer.commit().unwrap();
/// index.reload().unwrap();
/// let searcher = index.reader().searcher();
/// let right_eyes = TermQuery::new(Term::from_field_text(eye, "OD"), IndexRecordOption::Basic);
/// let query = BinaryCode::from_hex("0e", 8).unwrap();
/// let hits = knn(&index, &searcher, &query, &KnnRequest {
///     k: 1,
///     filter: Some(&right_eyes),
///     text: None,
///     max_distance: None,
///     strategy: FilterStrategy::Auto,
///     remember: None,
/// }).unwrap();
/// // The nearest right eye (distance 1), not the nearer left one.
/// assert_eq!(hits.iter().map(|h| h.distance).collect::<Vec<_>>(), [Some(1)]);
/// ```
pub fn knn(
    index: &HashIndex,
    searcher: &Searcher,
    code: &BinaryCode,
    req: &KnnRequest,
) -> Result<Vec<Hit>, IndexError> {
    Ok(knn_explained(index, searcher, code, req)?.0)
}

/// [`knn`], with what was done in each segment, in search order.
pub fn knn_explained(
    index: &HashIndex,
    searcher: &Searcher,
    code: &BinaryCode,
    req: &KnnRequest,
) -> Result<(Vec<Hit>, Vec<SegmentPlan>), IndexError> {
    let field = index.field();
    field.check(code)?;
    if req.k == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    if req.filter.is_none() && req.text.is_none() && searcher.segment_readers().len() > 1 {
        return knn_lockstep(index, searcher, code, req);
    }
    let mut restrictions = Vec::new();
    if let Some(q) = req.filter {
        restrictions.push(Restriction::filter(q, searcher, index.collect_schema())?);
    }
    if let (Some(filter), None) = (restrictions.first(), req.text) {
        if let Some(done) = knn_filtered_lockstep(index, searcher, code, req, filter)? {
            return Ok(done);
        }
    }
    let text = req
        .text
        .map(|q| Restriction::scored(q, searcher))
        .transpose()?;
    // The text query restricts too when present: its shares differ.
    let side = if req.text.is_some() {
        Side::HammingWithText
    } else {
        Side::Hamming
    };
    let mut found: Vec<Near> = Vec::new();
    let mut plans = Vec::new();
    let mut bound = req.max_distance.unwrap_or(field.bits as u32);
    // Largest segments first: they set a tight k-th distance early, which
    // bounds the radius of every later segment.
    let mut order_by_size: Vec<(usize, &SegmentReader)> =
        searcher.segment_readers().iter().enumerate().collect();
    order_by_size.sort_by_key(|(ord, r)| (std::cmp::Reverse(r.num_docs()), *ord));
    for (ord, reader) in order_by_size {
        let codes = index.codes(reader)?;
        let all: Vec<&Restriction> = restrictions.iter().chain(text.iter()).collect();
        let segment = SegmentSearch {
            reader,
            codes: &codes,
            code,
            k: req.k,
            bound,
            restrictions: &all,
            ties: text.is_some(),
            remember: req.remember.map(|r| (r, side)),
        };
        let (docs, plan) = segment.run(ord as u32, req.strategy)?;
        plans.push(plan);
        let scores = match &text {
            Some(t) => Some(scores_of(
                t.weight(),
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
    let hits = found.into_iter().map(|n| n.into_hit(bits)).collect();
    Ok((hits, plans))
}

/// Each segment's searchable docs (alive, with a code), for a lockstep search.
fn searchables<'a>(
    readers: &'a [SegmentReader],
    codes: &'a [std::sync::Arc<SegmentCodes>],
) -> Vec<Option<Searchable<'a>>> {
    readers
        .iter()
        .zip(codes)
        .map(|(r, c)| Searchable::of(r.alive_bitset(), &c.none))
        .collect()
}

/// The engine's view of each segment for [`ash_mih::knn_segments`]: its
/// table, excluding what is not searchable.
fn lockstep_parts<'a>(
    codes: &'a [std::sync::Arc<SegmentCodes>],
    searchable: &'a [Option<Searchable<'a>>],
) -> Vec<(
    &'a ash_mih::MihIndex<tantivy::directory::OwnedBytes>,
    SearchOptions<'a>,
)> {
    codes
        .iter()
        .zip(searchable)
        .map(|(c, s)| {
            let opts = SearchOptions {
                alive: s.as_ref().map(|s| s as &dyn ash_mih::DocSet),
                ..SearchOptions::default()
            };
            (&c.table, opts)
        })
        .collect()
}

/// Image-only k-NN over several segments: the engine searches them in
/// lockstep with one shared k-th distance ([`ash_mih::knn_segments`]), so
/// no segment searches past the collection's k-th nearest.
fn knn_lockstep(
    index: &HashIndex,
    searcher: &Searcher,
    code: &BinaryCode,
    req: &KnnRequest,
) -> Result<(Vec<Hit>, Vec<SegmentPlan>), IndexError> {
    let readers = searcher.segment_readers();
    let codes = readers
        .iter()
        .map(|r| index.codes(r))
        .collect::<Result<Vec<_>, _>>()?;
    let searchable = searchables(readers, &codes);
    let parts = lockstep_parts(&codes, &searchable);
    let (found, stats) = ash_mih::knn_segments(&parts, code, req.k, req.max_distance)?;
    let plans = readers
        .iter()
        .zip(stats)
        .enumerate()
        .map(|(ord, (reader, engine))| SegmentPlan {
            engine,
            ..SegmentPlan::unfiltered(ord as u32, reader.max_doc())
        })
        .collect();
    Ok((segment_hits(index, found), plans))
}

/// The engine's hits over several segments as the field's hits.
fn segment_hits(
    index: &HashIndex,
    found: impl IntoIterator<Item = ash_mih::SegmentHit>,
) -> Vec<Hit> {
    let bits = index.field().bits as f32;
    found
        .into_iter()
        .map(|h| {
            Near {
                address: DocAddress::new(h.segment, h.doc),
                distance: h.distance,
                text_score: None,
            }
            .into_hit(bits)
        })
        .collect()
}

/// Hits and what was done in each segment.
type Explained = (Vec<Hit>, Vec<SegmentPlan>);

/// A filtered k-NN's candidates strategy over all segments at once: the
/// engine's lockstep search, unfiltered and `depth` deep across the
/// segments, then each segment's candidates checked against the filter in
/// doc order. The filtered (distance, segment, doc) order is a
/// subsequence of the unfiltered one, so the first k that pass are the
/// answer; too few, and the share that passed sizes a deeper round. One
/// round over all segments replaces a round in each, each to its own
/// depth. Returns `None` (nothing decided) where the per-segment search
/// is the better start: one segment, a small one, a filter some segment
/// is remembered to walk more cheaply, or a next round that would cost
/// more than walking every segment's matches.
fn knn_filtered_lockstep(
    index: &HashIndex,
    searcher: &Searcher,
    code: &BinaryCode,
    req: &KnnRequest,
    filter: &Restriction,
) -> Result<Option<Explained>, IndexError> {
    let readers = searcher.segment_readers();
    if readers.len() < 2 || req.strategy == FilterStrategy::AllowList {
        return Ok(None);
    }
    let auto = req.strategy == FilterStrategy::Auto;
    let total: u32 = readers.iter().map(|r| r.max_doc()).sum();
    if auto && total <= SMALL_SEGMENT {
        return Ok(None);
    }
    let costs = FilterCosts::default();
    // What is known of each segment's share: counted by a walk, else seen
    // among its neighbours by an earlier search.
    let known: Vec<(u32, Option<f64>)> = readers
        .iter()
        .map(|r| {
            let id = r.segment_id();
            let get = |side| req.remember.and_then(|m| m.get(id, side));
            (
                r.max_doc(),
                get(Side::Matches).or_else(|| get(Side::Hamming)),
            )
        })
        .collect();
    // Walking every segment's matches, with `share` where nothing is known.
    let walk_ns = |share: f64| -> f64 {
        known
            .iter()
            .map(|&(docs, k)| costs.allow_list_ns(k.unwrap_or(share), docs))
            .sum()
    };
    let start_share = known.iter().filter_map(|k| k.1).min_by(f64::total_cmp);
    // A remembered share sizes the first round (a broad filter needs
    // fewer than 4 × k); unknown, it starts 4 × k deep.
    let mut depth = match start_share {
        Some(share) => next_depth(share, req.k, 0, total).max(req.k),
        None => first_depth(req.k, total),
    };
    if let (true, Some(share)) = (auto, start_share) {
        if costs.deeper_ns(depth) > walk_ns(share) {
            return Ok(None);
        }
    }
    let codes = readers
        .iter()
        .map(|r| index.codes(r))
        .collect::<Result<Vec<_>, _>>()?;
    let searchable = searchables(readers, &codes);
    let parts = lockstep_parts(&codes, &searchable);
    let mut plans: Vec<SegmentPlan> = readers
        .iter()
        .enumerate()
        .map(|(ord, r)| SegmentPlan {
            strategy: Some(FilterStrategy::Candidates),
            remembered: req
                .remember
                .is_some_and(|m| m.get(r.segment_id(), Side::Hamming).is_some()),
            ..SegmentPlan::unfiltered(ord as u32, r.max_doc())
        })
        .collect();
    // The share the last round saw, for every segment's next search.
    let remember_share = |share: f64| {
        if let Some(r) = req.remember {
            for reader in readers {
                r.put(reader.segment_id(), Side::Hamming, share);
            }
        }
    };
    loop {
        let (hits, stats) = ash_mih::knn_segments(&parts, code, depth, req.max_distance)?;
        let exhausted = hits.len() < depth || depth >= total as usize;
        // Each segment's candidates, checked in doc order.
        let mut pass = vec![false; hits.len()];
        for (ord, reader) in readers.iter().enumerate() {
            let mut mine: Vec<(DocId, usize)> = hits
                .iter()
                .enumerate()
                .filter(|(_, h)| h.segment == ord as u32)
                .map(|(i, h)| (h.doc, i))
                .collect();
            mine.sort_unstable();
            let docs: Vec<DocId> = mine.iter().map(|m| m.0).collect();
            for ((_, i), ok) in mine.iter().zip(filter.matches_sorted(reader, &docs)?) {
                pass[*i] = ok;
            }
            let plan = &mut plans[ord];
            plan.rounds += 1;
            plan.depth = depth;
            add_stats(&mut plan.engine, &stats[ord]);
        }
        let admitted: Vec<&ash_mih::SegmentHit> = hits
            .iter()
            .zip(&pass)
            .filter(|(_, &p)| p)
            .map(|(h, _)| h)
            .collect();
        let share = ((admitted.len() as f64).max(0.5) / hits.len().max(1) as f64).min(1.0);
        for plan in &mut plans {
            plan.share = Some(share);
        }
        if admitted.len() >= req.k || exhausted {
            remember_share(share);
            let found = segment_hits(index, admitted.into_iter().take(req.k).copied());
            return Ok(Some((found, plans)));
        }
        let next = next_depth(share, req.k, depth, total);
        if auto && costs.deeper_ns(next) > walk_ns(share) {
            // The per-segment search starts from what was learnt here.
            remember_share(share);
            return Ok(None);
        }
        depth = next;
    }
}

/// One segment's part of a k-NN.
struct SegmentSearch<'a> {
    reader: &'a SegmentReader,
    codes: &'a SegmentCodes,
    code: &'a BinaryCode,
    k: usize,
    bound: u32,
    restrictions: &'a [&'a Restriction],
    /// Every doc at the k-th distance is wanted (text breaks ties later).
    ties: bool,
    /// Shares seen by earlier searches, and the side they were seen for.
    remember: Option<(Remember<'a>, Side)>,
}

impl SegmentSearch<'_> {
    /// The segment's hits as (doc, distance), ascending by doc, and its plan.
    fn run(
        &self,
        ord: u32,
        strategy: FilterStrategy,
    ) -> Result<(Vec<(DocId, u32)>, SegmentPlan), IndexError> {
        let docs = self.reader.max_doc();
        let mut plan = SegmentPlan::unfiltered(ord, docs);
        let mut hits = if self.restrictions.is_empty() {
            self.unrestricted(&mut plan)?
        } else {
            let id = self.reader.segment_id();
            let remembered = self.remember.and_then(|(r, side)| r.get(id, side));
            plan.remembered = remembered.is_some();
            let start = starting(strategy, remembered, docs, |share| {
                let matches = self.remember.and_then(|(r, _)| r.get(id, Side::Matches));
                start_with(share, matches, self.k, docs)
            });
            let hits = match start {
                FilterStrategy::Candidates => {
                    let depth = match remembered {
                        Some(share) => {
                            next_depth(share, self.k, 0, docs).max(first_depth(self.k, docs))
                        }
                        None => first_depth(self.k, docs),
                    };
                    self.candidates(depth, strategy == FilterStrategy::Auto, &mut plan)?
                }
                _ => self.allow_listed(&mut plan)?,
            };
            if let (Some(share), Some((r, side))) = (plan.share, self.remember) {
                r.put(id, side, share);
            }
            hits
        };
        hits.sort_unstable();
        Ok((hits, plan))
    }

    fn options<'b>(&self, searchable: Option<&'b Searchable<'b>>) -> SearchOptions<'b> {
        SearchOptions {
            alive: searchable.map(|s| s as &dyn ash_mih::DocSet),
            max_distance: Some(self.bound),
            ..SearchOptions::default()
        }
    }

    /// Unrestricted k-NN, with every doc at the k-th distance when ties
    /// are wanted.
    fn unrestricted(&self, plan: &mut SegmentPlan) -> Result<Vec<(DocId, u32)>, IndexError> {
        let searchable = Searchable::of(self.reader.alive_bitset(), &self.codes.none);
        let opts = self.options(searchable.as_ref());
        let (mut hits, stats) = self.codes.table.knn_with_stats(self.code, self.k, &opts)?;
        add_stats(&mut plan.engine, &stats);
        if self.ties && hits.len() == self.k {
            let last = hits[hits.len() - 1].distance;
            let (all, stats) = self.codes.table.range_with_stats(self.code, last, &opts)?;
            add_stats(&mut plan.engine, &stats);
            hits = all;
        }
        Ok(hits.iter().map(|h| (h.doc, h.distance)).collect())
    }

    /// The allow-list strategy: the first restriction's matches are walked
    /// straight into the distance loop, in the blocks tantivy yields them;
    /// the other restrictions are checked on the way by point lookups.
    fn allow_listed(&self, plan: &mut SegmentPlan) -> Result<Vec<(DocId, u32)>, IndexError> {
        plan.strategy = Some(FilterStrategy::AllowList);
        let Some((walked, checked)) = self.restrictions.split_first() else {
            return self.unrestricted(plan);
        };
        let searchable = Searchable::of(self.reader.alive_bitset(), &self.codes.none);
        let opts = self.options(searchable.as_ref());
        let mut walk = self.codes.table.nearest_among(self.code, self.k, &opts)?;
        let mut others = checked
            .iter()
            .map(|r| Membership::new(r.weight(), self.reader))
            .collect::<tantivy::Result<Vec<_>>>()?;
        let mut kept = 0u64;
        let mut passed: Vec<DocId> = Vec::new();
        walked.walk(self.reader, &mut |block: &[DocId]| {
            if others.is_empty() {
                kept += block.len() as u64;
                walk.feed(block);
                return;
            }
            passed.clear();
            passed.extend(
                block
                    .iter()
                    .filter(|&&d| others.iter_mut().all(|m| m.contains(d))),
            );
            kept += passed.len() as u64;
            walk.feed(&passed);
        })?;
        let share = kept as f64 / self.reader.max_doc().max(1) as f64;
        plan.share = Some(share);
        if let Some((r, _)) = self.remember {
            r.put(self.reader.segment_id(), Side::Matches, share);
        }
        let (hits, stats) = if self.ties {
            walk.finish_with_ties()
        } else {
            walk.finish()
        };
        add_stats(&mut plan.engine, &stats);
        Ok(hits.iter().map(|h| (h.doc, h.distance)).collect())
    }

    /// Unfiltered neighbours, nearest first, checked against every
    /// restriction, deeper until k pass. The share of candidates that
    /// pass sizes the next round; with `may_fall_back`, a round that would
    /// cost more than collecting the filter's matches gives way to the
    /// allow-list.
    fn candidates(
        &self,
        first: usize,
        may_fall_back: bool,
        plan: &mut SegmentPlan,
    ) -> Result<Vec<(DocId, u32)>, IndexError> {
        plan.strategy = Some(FilterStrategy::Candidates);
        let docs = self.reader.max_doc();
        let costs = FilterCosts::default();
        let searchable = Searchable::of(self.reader.alive_bitset(), &self.codes.none);
        let opts = self.options(searchable.as_ref());
        // What a walk would cost is known exactly once one has run here;
        // until then the neighbours' share stands in for it.
        let matches = self
            .remember
            .and_then(|(r, _)| r.get(self.reader.segment_id(), Side::Matches));
        let mut depth = first;
        loop {
            plan.rounds += 1;
            plan.depth = depth;
            let (hits, stats) = self.codes.table.knn_with_stats(self.code, depth, &opts)?;
            add_stats(&mut plan.engine, &stats);
            // Fewer than asked, or every doc: nothing farther is left to meet.
            let exhausted = hits.len() < depth || depth >= docs as usize;
            let mut by_doc: Vec<DocId> = hits.iter().map(|h| h.doc).collect();
            by_doc.sort_unstable();
            let mut pass = vec![true; by_doc.len()];
            for r in self.restrictions {
                for (p, m) in pass.iter_mut().zip(r.matches_sorted(self.reader, &by_doc)?) {
                    *p &= m;
                }
            }
            // Hits are in (distance, doc) order; keep those that pass, in it.
            let admitted: Vec<(DocId, u32)> = hits
                .iter()
                .filter(|h| by_doc.binary_search(&h.doc).is_ok_and(|i| pass[i]))
                .map(|h| (h.doc, h.distance))
                .collect();
            let share = (admitted.len() as f64).max(0.5) / hits.len().max(1) as f64;
            plan.share = Some(share.min(1.0));
            let last = hits.last().map_or(0, |h| h.distance);
            let done = match admitted.get(self.k.wrapping_sub(1)) {
                // With ties wanted, every doc at the k-th distance must
                // have been met: the prefix must reach past it.
                Some(&(_, kth)) => !self.ties || last > kth || exhausted,
                None => exhausted,
            };
            if done {
                let keep = match admitted.get(self.k.wrapping_sub(1)) {
                    Some(&(_, kth)) if self.ties => {
                        admitted.iter().take_while(|h| h.1 <= kth).count()
                    }
                    _ => self.k,
                };
                return Ok(admitted.into_iter().take(keep).collect());
            }
            let next = next_depth(share, self.k, depth, docs);
            let walk_ns = costs.allow_list_ns(matches.unwrap_or(share), docs);
            if may_fall_back && costs.deeper_ns(next) > walk_ns {
                plan.fell_back = true;
                return self.allow_listed(plan);
            }
            depth = next;
        }
    }
}

fn add_stats(total: &mut SearchStats, one: &SearchStats) {
    total.strategy = one.strategy;
    total.probes += one.probes;
    total.candidates += one.candidates;
    total.scanned += one.scanned;
    total.switched |= one.switched;
}
