//! One search over text (BM25), metadata filters and Hamming similarity.
//!
//! - image only: exact k-NN, score 1 − d/bits;
//! - text only: BM25 over the text query restricted by the filter;
//! - both, by [`Mode`]:
//!   - `Filter`: text and filter restrict, Hamming distance ranks, BM25
//!     breaks ties;
//!   - `Rrf`: reciprocal rank fusion, Σ 1/(60 + rank), of the BM25 ranking
//!     and the Hamming ranking, each taken [`Request::depth`] deep;
//!   - `Weighted(w)`: w · (1 − d/bits) + (1 − w) · BM25 / max BM25 over the
//!     union of both rankings' top `depth` (a doc found on one side only is
//!     scored exactly on the other: its distance is read from the segment,
//!     its BM25 by seeking the text scorer; no code counts as similarity 0).
//!
//! Fusion sees only the top `depth` of each side: a doc below that depth on
//! both sides is never returned, even where its fused score would rank it.
//! Each side is exact within its depth.
//!
//! A filter on the text ranking is applied per segment like the Hamming
//! side's ([`crate::FilterStrategy`]): it is checked on each doc the text
//! query's block-max WAND offers, so the ranking keeps its pruning; when
//! so few pass that this costs more than collecting the filter, the
//! filter's matches are collected and each is scored instead.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use tantivy::collector::TopDocs;
use tantivy::query::{EnableScoring, Query, Weight};
use tantivy::{DocAddress, DocSet, Score, Searcher, SegmentReader};

use super::filter_stats::{Remember, Side};
use super::knn::{knn_explained, scores_of, KnnRequest, SegmentPlan};
use super::restrict::{starting, FilterStrategy, Membership, Restriction};
use super::{HashIndex, Hit, IndexError};
use ash_mih::code::BinaryCode;

/// The RRF constant.
pub const RRF_K: f32 = 60.0;

/// How text and image similarity combine.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Mode {
    /// Text and filter restrict; Hamming distance ranks; BM25 breaks ties.
    #[default]
    Filter,
    /// Reciprocal rank fusion of the BM25 and the Hamming rankings.
    Rrf,
    /// `w` · Hamming similarity + (1 − `w`) · normalised BM25, `w` in [0, 1].
    Weighted(f32),
}

/// A search request.
#[derive(Default)]
pub struct Request<'a> {
    /// The query code, for the Hamming ranking.
    pub code: Option<&'a BinaryCode>,
    /// The text query, for the BM25 ranking.
    pub text: Option<Box<dyn Query>>,
    /// Restricts both rankings; never scored.
    pub filter: Option<Box<dyn Query>>,
    /// How many hits.
    pub k: usize,
    /// Docs farther than this from the code are not hits.
    pub radius: Option<u32>,
    /// How the two rankings combine when both are asked.
    pub mode: Mode,
    /// Fusion modes: how deep each ranking is taken; `None` is
    /// [`default_depth`].
    pub depth: Option<usize>,
    /// How the filter is applied; `Auto` chooses per segment by cost.
    pub strategy: FilterStrategy,
    /// Where shares learnt by earlier searches with the same filter and
    /// text are kept (cost only; `None`: every search learns afresh).
    pub remember: Option<Remember<'a>>,
}

/// The fusion depth when none is asked: 5 × k, at least 50.
pub fn default_depth(k: usize) -> usize {
    k.saturating_mul(5).max(50)
}

/// What the text ranking did in one segment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TextPlan {
    /// The segment's ordinal in the searcher.
    pub segment: u32,
    /// Its docs, deleted ones included.
    pub docs: u32,
    /// The share the filter keeps: of the segment (allow-list), or of
    /// the docs the text query offered (candidates; `None` when it
    /// offered too few to tell).
    pub share: Option<f64>,
    /// `allow-list`: each of the filter's matches was scored;
    /// `candidates`: the filter was checked on each doc the text query's
    /// pruning offered.
    pub strategy: FilterStrategy,
    /// True when candidates gave way to the allow-list.
    pub fell_back: bool,
    /// True when an earlier search's share for this filter and segment
    /// chose where to start.
    pub remembered: bool,
}

/// What a search did, per side and segment.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Explain {
    /// The Hamming side, per segment in search order.
    pub image: Vec<SegmentPlan>,
    /// The text side, per segment, when a filter restricted it.
    pub text: Vec<TextPlan>,
    /// The fusion depth, in the fusion modes.
    pub depth: Option<usize>,
}

/// Runs `req`: exact k-NN, BM25, or both combined by its [`Mode`].
///
/// ```
/// use ash_mih::code::BinaryCode;
/// use ash_tantivy::hybrid::{search, Mode, Request};
/// use ash_tantivy::{add_hash_field, HashIndex};
/// use tantivy::schema::{Schema, TEXT};
/// use tantivy::TantivyDocument;
///
/// let mut builder = Schema::builder();
/// let report = builder.add_text_field("report", TEXT);
/// let field = add_hash_field(&mut builder, "code", 8).unwrap();
/// let index = HashIndex::create_in_ram(builder.build()).unwrap();
/// let mut writer = index.writer(15_000_000).unwrap();
/// for (text, hex) in [("exudates", "0f"), ("drusen", "0e"), ("exudates", "f0")] {
///     let mut doc = TantivyDocument::default();
///     doc.add_text(report, text);
///     field.set(&mut doc, &BinaryCode::from_hex(hex, 8).unwrap()).unwrap();
///     writer.add_document(doc).unwrap();
/// }
/// writer.commit().unwrap();
/// index.reload().unwrap();
/// let searcher = index.reader().searcher();
/// let parser = tantivy::query::QueryParser::for_index(index.index(), vec![report]);
/// let hits = search(&index, &searcher, &Request {
///     code: Some(&BinaryCode::from_hex("0f", 8).unwrap()),
///     text: Some(parser.parse_query("exudates").unwrap()),
///     filter: None,
///     k: 5,
///     radius: None,
///     mode: Mode::Filter,
///     ..Default::default()
/// }).unwrap();
/// // Text restricts, distance ranks: the two "exudates" reports, nearest first.
/// assert_eq!(hits.iter().map(|h| h.distance).collect::<Vec<_>>(), [Some(0), Some(8)]);
/// ```
pub fn search(
    index: &HashIndex,
    searcher: &Searcher,
    req: &Request,
) -> Result<Vec<Hit>, IndexError> {
    Ok(search_explained(index, searcher, req)?.0)
}

/// [`search`], with what each side did in each segment.
pub fn search_explained(
    index: &HashIndex,
    searcher: &Searcher,
    req: &Request,
) -> Result<(Vec<Hit>, Explain), IndexError> {
    let mut explain = Explain::default();
    let hits = match (req.code, req.text.as_deref()) {
        (None, None) => return Err(IndexError::EmptySearch),
        (None, Some(text)) => text_ranking(index, searcher, text, req, req.k, &mut explain)?
            .into_iter()
            .map(|(score, address)| Hit {
                address,
                distance: None,
                text_score: Some(score),
                score,
            })
            .collect(),
        (Some(code), Some(text)) if req.mode != Mode::Filter => {
            fuse(index, searcher, code, text, req, &mut explain)?
        }
        (Some(code), text) => {
            let (hits, plans) = knn_explained(
                index,
                searcher,
                code,
                &KnnRequest {
                    k: req.k,
                    filter: req.filter.as_deref(),
                    text,
                    max_distance: req.radius,
                    strategy: req.strategy,
                    remember: req.remember,
                },
            )?;
            explain.image = plans;
            hits
        }
    };
    Ok((hits, explain))
}

/// The top `n` docs of `text` restricted by the request's filter, BM25
/// first, ties to the lower address (tantivy's `TopDocs` order).
fn text_ranking(
    index: &HashIndex,
    searcher: &Searcher,
    text: &dyn Query,
    req: &Request,
    n: usize,
    explain: &mut Explain,
) -> Result<Vec<(Score, DocAddress)>, IndexError> {
    let n = n.max(1);
    let Some(filter) = req.filter.as_deref() else {
        return Ok(searcher.search(text, &TopDocs::with_limit(n).order_by_score())?);
    };
    let text_w = text.weight(EnableScoring::enabled_from_searcher(searcher))?;
    let restriction = Restriction::filter(filter, searcher, index.collect_schema())?;
    let mut top = TopN::new(n);
    for (ord, reader) in searcher.segment_readers().iter().enumerate() {
        let docs = reader.max_doc();
        let ord = ord as u32;
        let id = reader.segment_id();
        let remembered = req.remember.and_then(|r| r.get(id, Side::Text));
        let start = starting(req.strategy, remembered, docs, |share| {
            text_start(share, docs, n)
        });
        let mut plan = TextPlan {
            segment: ord,
            docs,
            share: None,
            strategy: start,
            fell_back: false,
            remembered: remembered.is_some(),
        };
        if start == FilterStrategy::Candidates {
            let may_fall_back = req.strategy == FilterStrategy::Auto;
            let done = offered_and_checked(
                text_w.as_ref(),
                &restriction,
                reader,
                ord,
                &mut top,
                may_fall_back,
                &mut plan,
            )?;
            if !done {
                // Gave way: this segment's entries are found again below.
                top.heap
                    .retain(|Reverse((_, Reverse(a)))| a.segment_ord != ord);
                plan.fell_back = true;
                plan.strategy = FilterStrategy::AllowList;
            }
        }
        if plan.strategy == FilterStrategy::AllowList {
            let allowed = restriction.collect(reader)?;
            plan.share = Some(allowed.len() as f64 / docs.max(1) as f64);
            let alive = reader.alive_bitset();
            let mut scorer = text_w.scorer(reader, 1.0)?;
            for doc in allowed.iter() {
                if alive.is_some_and(|a| !a.is_alive(doc)) {
                    continue;
                }
                if scorer.doc() <= doc && scorer.seek(doc) == doc {
                    let score = scorer.score();
                    if score > top.threshold() {
                        top.push(score, DocAddress::new(ord, doc));
                    }
                }
            }
        }
        if let (Some(share), Some(r)) = (plan.share, req.remember) {
            r.put(id, Side::Text, share);
        }
        explain.text.push(plan);
    }
    Ok(top.into_sorted())
}

/// Cost of one doc offered by the text query and checked, and of one
/// filter match collected and scored, in nanoseconds (the scale of
/// [`crate::restrict::FilterCosts`]).
const OFFERED_NS: f64 = 40.0;
const COLLECTED_NS: f64 = 60.0;

/// Where a text ranking with a remembered share starts: about n ÷ share
/// docs are offered before n pass, against every match collected.
fn text_start(share: f64, docs: u32, n: usize) -> FilterStrategy {
    let offered = (n as f64 / share.max(1e-9)).min(docs as f64) * OFFERED_NS;
    if share * docs as f64 * COLLECTED_NS <= offered {
        FilterStrategy::AllowList
    } else {
        FilterStrategy::Candidates
    }
}

/// Docs offered by the text query's pruning (block-max WAND for term
/// queries), each checked against the filter, into `top`. With
/// `may_fall_back`, it stops (returns false) once what it has spent
/// passes what collecting the filter would cost, at the share of offered
/// docs that passed.
fn offered_and_checked(
    text: &dyn Weight,
    restriction: &Restriction,
    reader: &SegmentReader,
    ord: u32,
    top: &mut TopN,
    may_fall_back: bool,
    plan: &mut TextPlan,
) -> tantivy::Result<bool> {
    let docs = reader.max_doc() as f64;
    let alive = reader.alive_bitset();
    let mut check = Membership::new(restriction.weight(), reader)?;
    let (mut offered, mut passed, mut gave_way) = (0u64, 0u64, false);
    text.for_each_pruning(top.threshold(), reader, &mut |doc, score| {
        if gave_way {
            return Score::MAX;
        }
        offered += 1;
        if alive.is_none_or(|a| a.is_alive(doc)) && check.contains(doc) {
            passed += 1;
            if score > top.threshold() {
                top.push(score, DocAddress::new(ord, doc));
            }
        }
        if may_fall_back && offered >= 256 && offered % 64 == 0 {
            let share = passed.max(1) as f64 / offered as f64;
            if offered as f64 * OFFERED_NS > share * docs * COLLECTED_NS {
                gave_way = true;
                return Score::MAX;
            }
        }
        top.threshold()
    })?;
    // Too few offered docs say nothing of the filter (a threshold from an
    // earlier segment may prune them all).
    plan.share = (offered >= 32).then(|| passed as f64 / offered as f64);
    Ok(!gave_way)
}

/// The best `n` (score, address) pairs seen; among equal scores the lower
/// address wins, as in tantivy's `TopDocs`.
struct TopN {
    n: usize,
    /// A min-heap whose least entry is the lowest score and, among equal
    /// scores, the highest address: the one to drop first.
    heap: BinaryHeap<Reverse<(Ordered, Reverse<DocAddress>)>>,
}

/// A score ordered totally.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ordered(Score);

impl Eq for Ordered {}

impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl TopN {
    fn new(n: usize) -> Self {
        Self {
            n,
            // A caller's n may be huge; the heap grows only with what enters.
            heap: BinaryHeap::with_capacity(n.min(1024) + 1),
        }
    }

    /// Docs offered in address order enter only above this score.
    fn threshold(&self) -> Score {
        match self.heap.peek() {
            Some(Reverse((s, _))) if self.heap.len() == self.n => s.0,
            _ => Score::MIN,
        }
    }

    fn push(&mut self, score: Score, address: DocAddress) {
        self.heap.push(Reverse((Ordered(score), Reverse(address))));
        if self.heap.len() > self.n {
            self.heap.pop();
        }
    }

    fn into_sorted(self) -> Vec<(Score, DocAddress)> {
        let mut v: Vec<(Score, DocAddress)> = self
            .heap
            .into_iter()
            .map(|Reverse((s, Reverse(a)))| (s.0, a))
            .collect();
        v.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        v
    }
}

/// Rank fusion: the image and text rankings, each `depth` deep; every
/// candidate's missing side filled in exactly; scored by the mode; the
/// best k kept.
fn fuse(
    index: &HashIndex,
    searcher: &Searcher,
    code: &BinaryCode,
    text: &dyn Query,
    req: &Request,
    explain: &mut Explain,
) -> Result<Vec<Hit>, IndexError> {
    let n = req.depth.unwrap_or_else(|| default_depth(req.k)).max(req.k);
    explain.depth = Some(n);
    let (image, plans) = knn_explained(
        index,
        searcher,
        code,
        &KnnRequest {
            k: n,
            filter: req.filter.as_deref(),
            text: None,
            max_distance: req.radius,
            strategy: req.strategy,
            remember: req.remember,
        },
    )?;
    explain.image = plans;
    let texts = text_ranking(index, searcher, text, req, n, explain)?;
    let mut cands = candidates(&image, &texts);
    fill_missing_sides(index, searcher, code, text, req.radius, &mut cands)?;
    let mut hits = score(cands, req.mode, index.field().bits as f32);
    hits.sort_by(best_first);
    hits.truncate(req.k);
    Ok(hits)
}

/// A document in either ranking, with what is known of it.
#[derive(Default)]
struct Candidate {
    image_rank: Option<usize>,
    text_rank: Option<usize>,
    distance: Option<u32>,
    text_score: Option<Score>,
}

/// The union of the two rankings.
fn candidates(image: &[Hit], texts: &[(Score, DocAddress)]) -> HashMap<DocAddress, Candidate> {
    let mut cands: HashMap<DocAddress, Candidate> = HashMap::new();
    for (rank, h) in image.iter().enumerate() {
        let c = cands.entry(h.address).or_default();
        c.image_rank = Some(rank);
        c.distance = h.distance;
    }
    for (rank, &(score, address)) in texts.iter().enumerate() {
        let c = cands.entry(address).or_default();
        c.text_rank = Some(rank);
        c.text_score = Some(score);
    }
    cands
}

/// Fills in the side each candidate is missing, exactly: the distance of
/// a text-only candidate (none when deleted, codeless or beyond `radius`)
/// and the BM25 score of an image-only one; segment by segment, in doc order.
fn fill_missing_sides(
    index: &HashIndex,
    searcher: &Searcher,
    code: &BinaryCode,
    text: &dyn Query,
    radius: Option<u32>,
    cands: &mut HashMap<DocAddress, Candidate>,
) -> Result<(), IndexError> {
    let text_w = text.weight(EnableScoring::enabled_from_searcher(searcher))?;
    let mut by_segment: HashMap<u32, Vec<u32>> = HashMap::new();
    for a in cands.keys() {
        by_segment.entry(a.segment_ord).or_default().push(a.doc_id);
    }
    for (ord, mut docs) in by_segment {
        docs.sort_unstable();
        let reader = searcher.segment_reader(ord);
        let codes = index.codes(reader)?;
        let scores = scores_of(text_w.as_ref(), reader, &docs)?;
        for (doc, score) in docs.into_iter().zip(scores) {
            let c = cands
                .get_mut(&DocAddress::new(ord, doc))
                .expect("candidate listed above");
            if c.distance.is_none() {
                let alive = reader.alive_bitset().is_none_or(|a| a.is_alive(doc));
                c.distance = codes
                    .code(doc)
                    .filter(|_| alive)
                    .map(|own| own.distance(code).unwrap_or(u32::MAX))
                    .filter(|d| radius.is_none_or(|r| *d <= r));
            }
            c.text_score.get_or_insert(score);
        }
    }
    Ok(())
}

/// Each candidate's fused score: reciprocal rank fusion, or the weighted
/// sum of Hamming similarity and BM25 normalised by the best BM25.
fn score(cands: HashMap<DocAddress, Candidate>, mode: Mode, bits: f32) -> Vec<Hit> {
    let max_bm25 = cands
        .values()
        .filter_map(|c| c.text_score)
        .fold(0.0f32, f32::max);
    let rrf = |r: Option<usize>| r.map_or(0.0, |r| 1.0 / (RRF_K + r as f32 + 1.0));
    cands
        .into_iter()
        .map(|(address, c)| {
            let score = match mode {
                Mode::Weighted(w) => {
                    let sim = c.distance.map_or(0.0, |d| 1.0 - d as f32 / bits);
                    let text = if max_bm25 > 0.0 {
                        c.text_score.unwrap_or(0.0) / max_bm25
                    } else {
                        0.0
                    };
                    w * sim + (1.0 - w) * text
                }
                _ => rrf(c.image_rank) + rrf(c.text_rank),
            };
            Hit {
                address,
                distance: c.distance,
                text_score: c.text_score,
                score,
            }
        })
        .collect()
}

/// Higher score first; then nearer; then by address, so ties are stable.
fn best_first(a: &Hit, b: &Hit) -> std::cmp::Ordering {
    b.score
        .total_cmp(&a.score)
        .then_with(|| {
            a.distance
                .unwrap_or(u32::MAX)
                .cmp(&b.distance.unwrap_or(u32::MAX))
        })
        .then_with(|| {
            (a.address.segment_ord, a.address.doc_id)
                .cmp(&(b.address.segment_ord, b.address.doc_id))
        })
}
