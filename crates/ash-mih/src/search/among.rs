//! Exact k-NN among docs handed over in ascending blocks: a filter's
//! matches walked straight into the distance loop.
//!
//! A selective filter (say 1 % of a segment) leaves too few docs for the
//! multi-index search to meet k of them soon, and collecting them into a
//! bitmap first costs a pass and an allocation per doc. Here the caller
//! feeds the matches as its query engine yields them (tantivy hands out
//! blocks of 64); the codes of the next 32 docs are asked of the memory
//! while the previous 32 are compared, so their round trips overlap, and
//! since the docs ascend, the loads walk the code array forwards. Hits are
//! kept by distance under the running k-th distance, ties included on
//! request.

use super::{distance, load, prefetch, KnnHits};
use crate::code::BinaryCode;
use crate::format::Header;
use crate::{DocSet, Hit, SearchOptions, SearchStats, Strategy};

/// The k nearest among the docs fed to it; made by
/// [`crate::MihIndex::nearest_among`].
pub struct NearestAmong<'a> {
    codes: &'a [u8],
    n: usize,
    words: usize,
    query: [u64; 4],
    alive: Option<&'a dyn DocSet>,
    hits: KnnHits<u32>,
    bound: u32,
    last: Option<u32>,
    /// Docs whose codes were asked of the memory but not yet compared.
    pending: Vec<u32>,
    stats: SearchStats,
}

/// How many docs' codes are in flight while the previous ones are compared.
const AHEAD: usize = 32;

impl<'a> NearestAmong<'a> {
    pub(crate) fn new(
        data: &'a [u8],
        header: &Header,
        query: &BinaryCode,
        k: usize,
        opts: &SearchOptions<'a>,
    ) -> Self {
        let n = header.num_codes as usize;
        let words = header.words_per_code();
        let mut q = [0u64; 4];
        q[..words].copy_from_slice(query.words());
        let bits = header.bits;
        let limit = opts.max_distance.unwrap_or(bits).min(bits);
        Self {
            codes: super::slice(data, header.codes_offset, n * words * 8),
            n,
            words,
            query: q,
            alive: opts.alive,
            hits: KnnHits::new(k, limit),
            bound: limit,
            last: None,
            pending: Vec::with_capacity(AHEAD),
            stats: SearchStats {
                strategy: Strategy::Scan,
                ..SearchStats::default()
            },
        }
    }

    /// Checks `docs`, which must ascend and lie above every doc fed before
    /// (docs past the table's end, or out of order, are ignored).
    pub fn feed(&mut self, docs: &[u32]) {
        match self.words {
            1 => self.feed_w::<1>(docs),
            2 => self.feed_w::<2>(docs),
            3 => self.feed_w::<3>(docs),
            _ => self.feed_w::<4>(docs),
        }
    }

    fn feed_w<const W: usize>(&mut self, docs: &[u32]) {
        if self.hits.k == 0 {
            return;
        }
        let start = docs.partition_point(|&d| self.last.is_some_and(|l| d <= l));
        let end = docs.partition_point(|&d| (d as usize) < self.n);
        let docs = &docs[start..end.max(start)];
        for chunk in docs.chunks(AHEAD) {
            // Ask for this chunk's codes, then compare the previous chunk's,
            // which have had a chunk's worth of time to arrive.
            for &doc in chunk {
                prefetch(self.codes, doc as usize * W * 8);
            }
            self.check_pending::<W>();
            self.pending.extend_from_slice(chunk);
        }
        if let Some(&l) = docs.last() {
            self.last = Some(l);
        }
    }

    fn check_pending<const W: usize>(&mut self) {
        let mut q = [0u64; W];
        q.copy_from_slice(&self.query[..W]);
        for &doc in &self.pending {
            let d = distance(&load::<W>(self.codes, doc as usize), &q);
            if d <= self.bound && self.alive.is_none_or(|a| a.contains(doc)) {
                self.bound = self.hits.add(doc, d);
            }
        }
        self.stats.scanned += self.pending.len() as u64;
        self.pending.clear();
    }

    /// Compares the docs still waiting for their codes.
    fn drain(&mut self) {
        match self.words {
            1 => self.check_pending::<1>(),
            2 => self.check_pending::<2>(),
            3 => self.check_pending::<3>(),
            _ => self.check_pending::<4>(),
        }
    }

    /// The k nearest fed, by (distance, doc), and what the walk did.
    pub fn finish(mut self) -> (Vec<Hit>, SearchStats) {
        self.drain();
        (self.hits.into_hits(), self.stats)
    }

    /// Like [`Self::finish`], but with every doc at the k-th distance (a
    /// later ranking may break those ties otherwise).
    pub fn finish_with_ties(mut self) -> (Vec<Hit>, SearchStats) {
        self.drain();
        let k = self.hits.k;
        if k == 0 {
            return (Vec::new(), self.stats);
        }
        let kth = if self.hits.found >= k {
            self.hits.kth()
        } else {
            self.hits.limit
        };
        let mut out = Vec::new();
        for (d, docs) in self.hits.by_distance.into_iter().enumerate() {
            if d as u32 > kth {
                break;
            }
            out.extend(docs.into_iter().map(|doc| Hit {
                distance: d as u32,
                doc,
            }));
        }
        out.sort_unstable();
        (out, self.stats)
    }
}
