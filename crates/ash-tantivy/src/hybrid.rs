//! One search over text (BM25), metadata filters and Hamming similarity.
//!
//! - image only: exact k-NN, score 1 − d/bits;
//! - text only: BM25 over the text query restricted by the filter;
//! - both, by [`Mode`]:
//!   - `Filter`: text and filter restrict, Hamming distance ranks, BM25
//!     breaks ties;
//!   - `Rrf`: reciprocal rank fusion, Σ 1/(60 + rank), of the BM25 ranking
//!     and the Hamming ranking, each taken `depth` deep;
//!   - `Weighted(w)`: w · (1 − d/bits) + (1 − w) · BM25 / max BM25 over the
//!     union of both rankings (a doc missing from one side is scored exactly
//!     on it: its distance is read from the segment, its BM25 by seeking
//!     the text scorer; no code counts as similarity 0).

use std::collections::HashMap;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, EnableScoring, Occur, Query};
use tantivy::{DocAddress, Score, Searcher};

use super::knn::{knn, scores_of, KnnRequest};
use super::{HashIndex, Hit, IndexError};
use ash_mih::code::BinaryCode;

/// The RRF constant.
pub const RRF_K: f32 = 60.0;

/// How text and image similarity combine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Text and filter restrict; Hamming distance ranks; BM25 breaks ties.
    Filter,
    /// Reciprocal rank fusion of the BM25 and the Hamming rankings.
    Rrf,
    /// `w` · Hamming similarity + (1 − `w`) · normalised BM25, `w` in [0, 1].
    Weighted(f32),
}

/// A search request.
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
}

/// How deep each ranking is taken for fusion.
fn depth(k: usize) -> usize {
    (k * 10).max(100)
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
/// }).unwrap();
/// // Text restricts, distance ranks: the two "exudates" reports, nearest first.
/// assert_eq!(hits.iter().map(|h| h.distance).collect::<Vec<_>>(), [Some(0), Some(8)]);
/// ```
pub fn search(
    index: &HashIndex,
    searcher: &Searcher,
    req: &Request,
) -> Result<Vec<Hit>, IndexError> {
    match (req.code, req.text.as_deref()) {
        (None, None) => Err(IndexError::EmptySearch),
        (None, Some(text)) => text_ranking(searcher, text, req.filter.as_deref(), req.k).map(|v| {
            v.into_iter()
                .map(|(score, address)| Hit {
                    address,
                    distance: None,
                    text_score: Some(score),
                    score,
                })
                .collect()
        }),
        (Some(code), Some(text)) if req.mode != Mode::Filter => {
            fuse(index, searcher, code, text, req)
        }
        (Some(code), text) => knn(
            index,
            searcher,
            code,
            &KnnRequest {
                k: req.k,
                filter: req.filter.as_deref(),
                text,
                max_distance: req.radius,
            },
        ),
    }
}

/// Top docs of `text` restricted by `filter`, BM25 first.
fn text_ranking(
    searcher: &Searcher,
    text: &dyn Query,
    filter: Option<&dyn Query>,
    n: usize,
) -> Result<Vec<(Score, DocAddress)>, IndexError> {
    let query: Box<dyn Query> = match filter {
        Some(f) => Box::new(BooleanQuery::new(vec![
            (Occur::Must, text.box_clone()),
            (Occur::Must, f.box_clone()),
        ])),
        None => text.box_clone(),
    };
    Ok(searcher.search(
        query.as_ref(),
        &TopDocs::with_limit(n.max(1)).order_by_score(),
    )?)
}

fn fuse(
    index: &HashIndex,
    searcher: &Searcher,
    code: &BinaryCode,
    text: &dyn Query,
    req: &Request,
) -> Result<Vec<Hit>, IndexError> {
    let n = depth(req.k);
    let bits = index.field().bits as f32;
    let image = knn(
        index,
        searcher,
        code,
        &KnnRequest {
            k: n,
            filter: req.filter.as_deref(),
            text: None,
            max_distance: req.radius,
        },
    )?;
    let texts = text_ranking(searcher, text, req.filter.as_deref(), n)?;

    #[derive(Default)]
    struct Candidate {
        image_rank: Option<usize>,
        text_rank: Option<usize>,
        distance: Option<u32>,
        text_score: Option<Score>,
    }
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
    // Fill in the side each candidate is missing, exactly.
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
                    .map(|own| own.distance(code).unwrap_or(u32::MAX));
                if let (Some(d), Some(r)) = (c.distance, req.radius) {
                    if d > r {
                        c.distance = None;
                    }
                }
            }
            if c.text_score.is_none() {
                c.text_score = Some(score);
            }
        }
    }
    let max_bm25 = cands
        .values()
        .filter_map(|c| c.text_score)
        .fold(0.0f32, f32::max);
    let mut hits: Vec<Hit> = cands
        .into_iter()
        .map(|(address, c)| {
            let score = match req.mode {
                Mode::Weighted(w) => {
                    let sim = c.distance.map_or(0.0, |d| 1.0 - d as f32 / bits);
                    let text = if max_bm25 > 0.0 {
                        c.text_score.unwrap_or(0.0) / max_bm25
                    } else {
                        0.0
                    };
                    w * sim + (1.0 - w) * text
                }
                _ => {
                    let rrf = |r: Option<usize>| r.map_or(0.0, |r| 1.0 / (RRF_K + r as f32 + 1.0));
                    rrf(c.image_rank) + rrf(c.text_rank)
                }
            };
            Hit {
                address,
                distance: c.distance,
                text_score: c.text_score,
                score,
            }
        })
        .collect();
    hits.sort_by(|a, b| {
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
    });
    hits.truncate(req.k);
    Ok(hits)
}
