//! Range and k-NN search: the MIH probe loop, the popcount scans, and the
//! choice between them. See the crate docs for the method.

use std::collections::BinaryHeap;

use roaring::RoaringBitmap;

use super::cost::{binomial, CostModel};
use super::format::{get_u32, get_u64, Directory, FormatError, Header};
use super::kernel::{self, prefetch};
use super::substring::{neighbours, Substring};
use super::{Hit, MihError};

mod among;
mod lockstep;
use crate::code::BinaryCode;
pub use among::NearestAmong;
pub use lockstep::SegmentHit;
pub(super) use lockstep::{knn_segments, Part};

/// A set of doc ids a search may return (an alive-set, for deletes).
pub trait DocSet: Sync {
    /// Whether `doc` is in the set.
    fn contains(&self, doc: u32) -> bool;
}

impl DocSet for RoaringBitmap {
    fn contains(&self, doc: u32) -> bool {
        RoaringBitmap::contains(self, doc)
    }
}

/// Which algorithm answers a search. `Auto` asks the cost model; the others
/// force one path (tests use them to prove both give the same hits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// The cheaper of the two, by the cost model.
    #[default]
    Auto,
    /// Multi-index hashing.
    Mih,
    /// A sequential popcount over all codes (or the allow-list).
    Scan,
}

/// Filters and knobs shared by range and k-NN search.
#[derive(Clone, Copy, Default)]
pub struct SearchOptions<'a> {
    /// Only these docs may be returned (pre-filtering: exact at any selectivity).
    pub allow: Option<&'a RoaringBitmap>,
    /// Docs outside this set are deleted and never returned.
    pub alive: Option<&'a dyn DocSet>,
    /// k-NN only: ignore docs farther than this.
    pub max_distance: Option<u32>,
    /// Which algorithm answers.
    pub strategy: Strategy,
}

/// What one search did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SearchStats {
    /// The path that produced the hits (`Mih` or `Scan`).
    pub strategy: Strategy,
    /// Bucket lookups.
    pub probes: u64,
    /// Codes fetched from buckets and checked.
    pub candidates: u64,
    /// Codes checked by a scan.
    pub scanned: u64,
    /// True when MIH was abandoned for a scan mid-search.
    pub switched: bool,
}

/// Read access to one substring table.
#[derive(Clone, Copy)]
struct TableView<'a> {
    sub: Substring,
    directory: Directory,
    keys: &'a [u8],
    offsets: &'a [u8],
    ids: &'a [u8],
    num_keys: usize,
}

impl<'a> TableView<'a> {
    fn all(data: &'a [u8], header: &Header) -> Vec<TableView<'a>> {
        let n = header.num_codes as usize;
        let idb = header.id_bytes as usize;
        header
            .tables
            .iter()
            .map(|t| {
                let nk = t.num_keys as usize;
                let keys = match t.directory {
                    Directory::Sparse => slice(data, t.keys_offset, nk * 4),
                    Directory::Dense => &[][..],
                };
                TableView {
                    sub: Substring {
                        start: t.start_bit as usize,
                        len: t.len_bits as usize,
                    },
                    directory: t.directory,
                    keys,
                    offsets: slice(data, t.offsets_offset, (nk + 1) * 4),
                    ids: slice(data, t.ids_offset, n * idb),
                    num_keys: nk,
                }
            })
            .collect()
    }

    /// The key of directory slot `slot`.
    fn key_at(&self, slot: usize) -> u32 {
        match self.directory {
            Directory::Dense => slot as u32,
            Directory::Sparse => get_u32(self.keys, slot * 4),
        }
    }

    /// Asks the memory for `key`'s directory entry, so that a later
    /// [`TableView::bucket`] finds it cached. Sparse directories are
    /// binary-searched and get no hint.
    #[inline(always)]
    fn prefetch_entry(&self, key: u32) {
        if self.directory == Directory::Dense {
            prefetch(self.offsets, key as usize * 4);
        }
    }

    /// The bucket of `key` as an index range into `ids`.
    #[inline]
    fn bucket(&self, key: u32, n: usize, table: usize) -> Result<(usize, usize), MihError> {
        let slot = match self.directory {
            Directory::Dense => key as usize,
            Directory::Sparse => {
                let (mut lo, mut hi) = (0usize, self.num_keys);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    if get_u32(self.keys, mid * 4) < key {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                if lo == self.num_keys || get_u32(self.keys, lo * 4) != key {
                    return Ok((0, 0));
                }
                lo
            }
        };
        let both = get_u64(self.offsets, slot * 4);
        let (lo, hi) = (both as u32 as usize, (both >> 32) as usize);
        if lo > hi || hi > n {
            return Err(corrupt(
                table,
                format!("bucket {slot} spans {lo}..{hi} of {n} ids"),
            ));
        }
        Ok((lo, hi))
    }
}

fn slice(data: &[u8], offset: u64, len: usize) -> &[u8] {
    // Bounds were checked when the header was decoded.
    &data[offset as usize..offset as usize + len]
}

fn corrupt(table: usize, reason: String) -> MihError {
    FormatError::CorruptTable { table, reason }.into()
}

#[inline(always)]
fn read_id(ids: &[u8], i: usize, width: usize) -> u32 {
    match width {
        4 => get_u32(ids, i * 4),
        3 => {
            let b = &ids[i * 3..i * 3 + 3];
            u32::from_le_bytes([b[0], b[1], b[2], 0])
        }
        2 => u16::from_le_bytes([ids[i * 2], ids[i * 2 + 1]]) as u32,
        _ => ids[i] as u32,
    }
}

/// How many candidates ahead a bucket walk asks the memory for.
const PREFETCH_AHEAD: usize = 64;

/// How many keys ahead a probe asks for the directory entry (see
/// `Searcher::probe`); also how many keys a lockstep search warms per table.
const ENTRY_AHEAD: usize = 16;
/// How many keys ahead a probe reads the bucket bounds and asks for the ids.
const IDS_AHEAD: usize = 8;
/// How many keys ahead a probe asks for the first codes of the bucket.
const CODES_AHEAD: usize = 6;

/// One link of a probe's chain of memory reads, asked for ahead of time by
/// `Searcher::warm`.
#[derive(Clone, Copy)]
enum Warm {
    /// The keys' directory entries.
    Entries,
    /// The buckets' first ids (the entries are read).
    Ids,
    /// The codes of the buckets' first docs (the ids are read).
    Codes,
}

#[inline(always)]
fn load<const W: usize>(codes: &[u8], doc: usize) -> [u64; W] {
    let mut out = [0u64; W];
    for (k, word) in out.iter_mut().enumerate() {
        *word = get_u64(codes, (doc * W + k) * 8);
    }
    out
}

#[inline(always)]
fn distance<const W: usize>(a: &[u64; W], b: &[u64; W]) -> u32 {
    let mut d = 0;
    for k in 0..W {
        d += (a[k] ^ b[k]).count_ones();
    }
    d
}

/// State of one search over one image.
struct Searcher<'a, const W: usize> {
    codes: &'a [u8],
    n: usize,
    id_bytes: usize,
    tables: Vec<TableView<'a>>,
    masks: Vec<[u64; W]>,
    query_keys: Vec<u32>,
    query: [u64; W],
    allow: Option<&'a RoaringBitmap>,
    alive: Option<&'a dyn DocSet>,
    cost: CostModel,
    stats: SearchStats,
}

impl<'a, const W: usize> Searcher<'a, W> {
    fn new(data: &'a [u8], header: &Header, query: &BinaryCode, opts: &SearchOptions<'a>) -> Self {
        let n = header.num_codes as usize;
        let tables = TableView::all(data, header);
        let mut q = [0u64; W];
        q.copy_from_slice(query.words());
        let masks = tables
            .iter()
            .map(|t| {
                let full = t.sub.mask();
                let mut m = [0u64; W];
                m.copy_from_slice(&full[..W]);
                m
            })
            .collect();
        let query_keys = tables.iter().map(|t| t.sub.extract(&q)).collect();
        Searcher {
            codes: slice(data, header.codes_offset, n * W * 8),
            n,
            id_bytes: header.id_bytes as usize,
            tables,
            masks,
            query_keys,
            query: q,
            allow: opts.allow,
            alive: opts.alive,
            cost: CostModel::default(),
            stats: SearchStats::default(),
        }
    }

    #[inline(always)]
    fn admitted(&self, doc: u32) -> bool {
        self.allow.is_none_or(|a| a.contains(doc)) && self.alive.is_none_or(|a| a.contains(doc))
    }

    /// Whether the search met `x` (substring j at radius s) for the first
    /// time now: no table i probed to radius `rho[i]` holds it at a step
    /// (d_i, i) that comes before (s, j).
    #[inline(always)]
    fn first_met(&self, x: &[u64; W], s: usize, j: usize, rho: &[isize]) -> bool {
        for (i, mask) in self.masks.iter().enumerate() {
            if i == j {
                continue;
            }
            let mut di = 0usize;
            for k in 0..W {
                di += (x[k] & mask[k]).count_ones() as usize;
            }
            if (di as isize) <= rho[i] && (di < s || (di == s && i < j)) {
                return false;
            }
        }
        true
    }

    /// Probes table j at exactly radius s. `emit(doc, distance)` is called
    /// once per admitted doc within `*bound` and returns the new bound.
    /// When there are fewer keys in the table than neighbours at radius s,
    /// it walks the table's keys instead, which bounds an exhaustive search.
    fn step(
        &mut self,
        s: usize,
        j: usize,
        rho: &[isize],
        bound: &mut u32,
        emit: &mut impl FnMut(u32, u32) -> u32,
    ) -> Result<(), MihError> {
        let table = self.tables[j];
        let query_key = self.query_keys[j];
        if self.walks_keys(s, j) {
            let keys = (0..table.num_keys)
                .map(|slot| table.key_at(slot))
                .filter(|key| (key ^ query_key).count_ones() as usize == s);
            self.probe(j, keys, s, rho, bound, emit)
        } else {
            self.probe(
                j,
                neighbours(query_key, table.sub.len, s),
                s,
                rho,
                bound,
                emit,
            )
        }
    }

    /// Whether step (s, j) walks the table's keys rather than enumerating
    /// the query's neighbours: there are fewer keys than neighbours.
    fn walks_keys(&self, s: usize, j: usize) -> bool {
        let table = &self.tables[j];
        binomial(table.sub.len, s) > table.num_keys as f64
    }

    /// Asks the memory for step (s, j)'s first probes, one link of their
    /// chains per `stage` (see [`Warm`]). A search over several tables
    /// takes each stage for every table before the next stage and before
    /// probing any, so that the tables' misses overlap rather than follow
    /// one another; the probes then find their first links cached.
    fn warm(&self, s: usize, j: usize, stage: Warm) {
        let table = &self.tables[j];
        if s > table.sub.len || self.walks_keys(s, j) {
            return;
        }
        let keys = neighbours(self.query_keys[j], table.sub.len, s);
        match stage {
            Warm::Entries => keys
                .take(ENTRY_AHEAD)
                .for_each(|key| table.prefetch_entry(key)),
            Warm::Ids => {
                for key in keys.take(IDS_AHEAD) {
                    if let Ok((lo, _)) = table.bucket(key, self.n, j) {
                        prefetch(table.ids, lo * self.id_bytes);
                    }
                }
            }
            Warm::Codes => {
                for key in keys.take(CODES_AHEAD) {
                    if let Ok((lo, hi)) = table.bucket(key, self.n, j) {
                        self.prefetch_codes(table.ids, lo, hi.min(lo + PREFETCH_AHEAD));
                    }
                }
            }
        }
    }

    /// Checks the buckets of `keys` in table j as a pipeline. Each probe
    /// is a chain of three dependent memory reads: the key's directory
    /// entry, then the bucket's ids, then the docs' codes. Taken one after
    /// another, every link of every chain waits for the memory; here the
    /// entry of the key [`ENTRY_AHEAD`] ahead is asked for, the bounds of
    /// the one [`IDS_AHEAD`] ahead are read and its ids asked for, and the
    /// first codes of the one [`CODES_AHEAD`] ahead are asked for, while
    /// the current bucket is checked — so the misses of many chains overlap.
    fn probe(
        &mut self,
        j: usize,
        mut keys: impl Iterator<Item = u32>,
        s: usize,
        rho: &[isize],
        bound: &mut u32,
        emit: &mut impl FnMut(u32, u32) -> u32,
    ) -> Result<(), MihError> {
        let table = self.tables[j];
        // Keys are numbered in the order taken; key p and, once read, its
        // bucket's span sit in slot p % ENTRY_AHEAD until it is checked.
        // `taken`, `bounded` and `primed` count the keys through each stage.
        let mut ring = [(0u32, (0usize, 0usize)); ENTRY_AHEAD];
        let (mut taken, mut bounded, mut primed) = (0usize, 0usize, 0usize);
        for next in 0.. {
            while taken < next + ENTRY_AHEAD {
                let Some(key) = keys.next() else { break };
                table.prefetch_entry(key);
                ring[taken % ENTRY_AHEAD].0 = key;
                taken += 1;
            }
            if next == taken {
                return Ok(());
            }
            while bounded < taken.min(next + IDS_AHEAD) {
                let (key, span) = &mut ring[bounded % ENTRY_AHEAD];
                *span = table.bucket(*key, self.n, j)?;
                prefetch(table.ids, span.0 * self.id_bytes);
                bounded += 1;
            }
            while primed < bounded.min(next + CODES_AHEAD) {
                let (lo, hi) = ring[primed % ENTRY_AHEAD].1;
                self.prefetch_codes(table.ids, lo, hi.min(lo + PREFETCH_AHEAD));
                primed += 1;
            }
            self.visit(j, ring[next % ENTRY_AHEAD].1, s, rho, bound, emit)?;
        }
        Ok(())
    }

    /// Asks the memory for the codes of the docs at `ids[lo..hi]`.
    #[inline(always)]
    fn prefetch_codes(&self, ids: &[u8], lo: usize, hi: usize) {
        for i in lo..hi {
            prefetch(self.codes, read_id(ids, i, self.id_bytes) as usize * W * 8);
        }
    }

    /// Checks every code in table j's bucket `lo..hi` (index range into
    /// the table's ids).
    #[inline]
    fn visit(
        &mut self,
        j: usize,
        (lo, hi): (usize, usize),
        s: usize,
        rho: &[isize],
        bound: &mut u32,
        emit: &mut impl FnMut(u32, u32) -> u32,
    ) -> Result<(), MihError> {
        self.stats.probes += 1;
        self.stats.candidates += (hi - lo) as u64;
        let ids = self.tables[j].ids;
        // The codes of a bucket's docs lie anywhere in the table: asking
        // for some ahead overlaps their memory round trips. `probe` asked
        // for the first ones.
        for i in lo..hi {
            if i + PREFETCH_AHEAD < hi {
                let ahead = read_id(ids, i + PREFETCH_AHEAD, self.id_bytes) as usize;
                prefetch(self.codes, ahead * W * 8);
            }
            let doc = read_id(ids, i, self.id_bytes);
            if doc as usize >= self.n {
                return Err(corrupt(j, format!("doc id {doc} >= {}", self.n)));
            }
            let code = load::<W>(self.codes, doc as usize);
            let d = distance(&code, &self.query);
            if d > *bound {
                continue;
            }
            let mut x = [0u64; W];
            for k in 0..W {
                x[k] = code[k] ^ self.query[k];
            }
            if self.first_met(&x, s, j, rho) && self.admitted(doc) {
                *bound = emit(doc, d);
            }
        }
        Ok(())
    }

    /// Whether a k-NN under `strategy` should scan rather than probe: a
    /// small table, or a filter so selective that k matches would take
    /// more candidates than a scan costs.
    fn prefers_scan(&self, k: usize, strategy: Strategy) -> bool {
        match strategy {
            Strategy::Scan => true,
            Strategy::Mih => false,
            Strategy::Auto => {
                let selectivity = self
                    .allow
                    .map_or(1.0, |a| (a.len() as f64 / self.n as f64).min(1.0));
                let least_candidates = k as f64 / selectivity;
                self.n < self.cost.min_mih_codes
                    || least_candidates * self.cost.candidate_ns(self.codes.len()) > self.scan_ns()
            }
        }
    }

    fn work_ns(&self) -> f64 {
        self.stats.probes as f64 * self.cost.probe_ns
            + self.stats.candidates as f64 * self.cost.candidate_ns(self.codes.len())
    }

    fn scan_ns(&self) -> f64 {
        self.cost.scan_ns(self.n, W, self.allow.map(|a| a.len()))
    }

    /// Expected cost of probing every table at radius s, from the bucket
    /// sizes seen so far (or the uniform average before any).
    fn level_ns(&self, s: usize) -> f64 {
        let probes: f64 = self
            .tables
            .iter()
            .map(|t| binomial(t.sub.len, s).min(t.num_keys as f64))
            .sum();
        let per_probe = if self.stats.probes > 0 {
            self.stats.candidates as f64 / self.stats.probes as f64
        } else {
            let avg: f64 = self
                .tables
                .iter()
                .map(|t| self.n as f64 / (1u64 << t.sub.len) as f64)
                .sum();
            avg / self.tables.len() as f64
        };
        probes * (self.cost.probe_ns + per_probe * self.cost.candidate_ns(self.codes.len()))
    }

    /// Calls `f(doc, distance)` for every admitted doc within `bound`, in doc
    /// order, through the allow-list when that is cheaper. `f` returns the
    /// new bound.
    fn scan(&mut self, mut bound: u32, mut f: impl FnMut(u32, u32) -> u32) {
        let q = self.query;
        let allow_first = self
            .allow
            .is_some_and(|a| self.cost.prefer_allow_scan(self.n, W, a.len()));
        if let (true, Some(allow)) = (allow_first, self.allow) {
            // In chunks: every code of a chunk is asked for before the
            // first is compared, so their memory round trips overlap.
            let mut docs = allow.iter().take_while(|&d| (d as usize) < self.n);
            let mut chunk = [0u32; 16];
            loop {
                let mut len = 0;
                for (slot, doc) in chunk.iter_mut().zip(docs.by_ref()) {
                    *slot = doc;
                    prefetch(self.codes, doc as usize * W * 8);
                    len += 1;
                }
                for &doc in &chunk[..len] {
                    self.stats.scanned += 1;
                    let d = distance(&load::<W>(self.codes, doc as usize), &q);
                    if d <= bound && self.alive.is_none_or(|a| a.contains(doc)) {
                        bound = f(doc, d);
                    }
                }
                if len < chunk.len() {
                    return;
                }
            }
        }
        self.stats.scanned += self.n as u64;
        let kernel = kernel::select::<W>();
        let mut dist = [0u32; kernel::BLOCK];
        for (block, chunk) in self.codes.chunks(W * 8 * kernel::BLOCK).enumerate() {
            let dist = &mut dist[..chunk.len() / (W * 8)];
            kernel(chunk, &q, dist);
            let first = (block * kernel::BLOCK) as u32;
            for (i, &d) in dist.iter().enumerate() {
                if d <= bound && self.admitted(first + i as u32) {
                    bound = f(first + i as u32, d);
                }
            }
        }
    }
}

/// Dispatches on the number of words per code so that every inner loop is
/// compiled for a fixed width.
macro_rules! by_width {
    ($header:expr, $f:ident ( $($arg:expr),* )) => {
        match $header.words_per_code() {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            _ => $f::<4>($($arg),*),
        }
    };
}

pub(super) fn knn(
    data: &[u8],
    header: &Header,
    query: &BinaryCode,
    k: usize,
    opts: &SearchOptions,
) -> Result<(Vec<Hit>, SearchStats), MihError> {
    by_width!(header, knn_w(data, header, query, k, opts))
}

pub(super) fn range(
    data: &[u8],
    header: &Header,
    query: &BinaryCode,
    radius: u32,
    opts: &SearchOptions,
) -> Result<(Vec<Hit>, SearchStats), MihError> {
    by_width!(header, range_w(data, header, query, radius, opts))
}

/// Collects k-NN results by distance and keeps the bound at the k-th
/// distance found so far. `T` names a hit: a doc, or a (segment, doc).
struct KnnHits<T = u32> {
    k: usize,
    limit: u32,
    by_distance: Vec<Vec<T>>,
    found: usize,
    bound: u32,
}

impl<T: Ord + Copy> KnnHits<T> {
    fn new(k: usize, limit: u32) -> Self {
        Self {
            k,
            limit,
            by_distance: vec![Vec::new(); limit as usize + 1],
            found: 0,
            bound: limit,
        }
    }

    /// Adds a hit within the bound; returns the new bound (the k-th distance
    /// once k hits are known, else the limit).
    fn add(&mut self, hit: T, d: u32) -> u32 {
        self.by_distance[d as usize].push(hit);
        self.found += 1;
        if self.found >= self.k && (d < self.bound || self.found == self.k) {
            self.bound = self.kth();
        }
        self.bound
    }

    fn kth(&self) -> u32 {
        let mut seen = 0;
        for (d, hits) in self.by_distance.iter().enumerate() {
            seen += hits.len();
            if seen >= self.k {
                return d as u32;
            }
        }
        self.limit
    }

    fn count_within(&self, r: usize) -> usize {
        self.by_distance.iter().take(r + 1).map(Vec::len).sum()
    }

    /// The k best as (distance, hit), by distance then hit.
    fn into_best(self) -> Vec<(u32, T)> {
        let mut out = Vec::with_capacity(self.k.min(self.found));
        for (d, mut hits) in self.by_distance.into_iter().enumerate() {
            hits.sort_unstable();
            for hit in hits {
                if out.len() == self.k {
                    return out;
                }
                out.push((d as u32, hit));
            }
        }
        out
    }
}

impl KnnHits<u32> {
    fn into_hits(self) -> Vec<Hit> {
        self.into_best()
            .into_iter()
            .map(|(distance, doc)| Hit { distance, doc })
            .collect()
    }
}

fn knn_w<const W: usize>(
    data: &[u8],
    header: &Header,
    query: &BinaryCode,
    k: usize,
    opts: &SearchOptions,
) -> Result<(Vec<Hit>, SearchStats), MihError> {
    let bits = header.bits;
    let limit = opts.max_distance.unwrap_or(bits).min(bits);
    let mut s = Searcher::<W>::new(data, header, query, opts);
    if k == 0 || s.n == 0 || s.allow.is_some_and(|a| a.is_empty()) {
        return Ok((Vec::new(), s.stats));
    }
    if s.prefers_scan(k, opts.strategy) {
        return Ok(scan_knn(s, k, limit));
    }

    let m = s.tables.len();
    let rho: Vec<isize> = s.tables.iter().map(|t| t.sub.len as isize).collect();
    let max_len = s.tables.iter().map(|t| t.sub.len).max().unwrap_or(0);
    let mut hits = KnnHits::new(k, limit);
    let mut bound = limit;
    'levels: for level in 0..=max_len {
        if opts.strategy == Strategy::Auto
            && level > 0
            && s.work_ns() + s.level_ns(level) > s.scan_ns()
        {
            let (hits, mut stats) = scan_knn(s, k, limit);
            stats.switched = true;
            return Ok((hits, stats));
        }
        for j in 0..m {
            if level <= s.tables[j].sub.len {
                s.step(level, j, &rho, &mut bound, &mut |doc, d| hits.add(doc, d))?;
            }
            let final_radius = m * level + j;
            if final_radius >= limit as usize || hits.count_within(final_radius) >= k {
                break 'levels;
            }
        }
    }
    s.stats.strategy = Strategy::Mih;
    Ok((hits.into_hits(), s.stats))
}

fn scan_knn<const W: usize>(
    mut s: Searcher<'_, W>,
    k: usize,
    limit: u32,
) -> (Vec<Hit>, SearchStats) {
    let cap = k.min(s.n);
    let mut heap: BinaryHeap<(u32, u32)> = BinaryHeap::with_capacity(cap + 1);
    // Docs arrive in ascending order, so a tie with the current worst loses.
    let bound_of = |heap: &BinaryHeap<(u32, u32)>| match heap.peek() {
        Some(&(worst, _)) if heap.len() == cap => worst.saturating_sub(1),
        _ => limit,
    };
    s.scan(limit, |doc, d| {
        if heap.len() == cap {
            if heap.peek().is_some_and(|&(worst, _)| d >= worst) {
                return bound_of(&heap);
            }
            heap.pop();
        }
        heap.push((d, doc));
        bound_of(&heap)
    });
    let mut hits: Vec<Hit> = heap
        .into_iter()
        .map(|(distance, doc)| Hit { distance, doc })
        .collect();
    hits.sort_unstable();
    s.stats.strategy = Strategy::Scan;
    (hits, s.stats)
}

fn range_w<const W: usize>(
    data: &[u8],
    header: &Header,
    query: &BinaryCode,
    radius: u32,
    opts: &SearchOptions,
) -> Result<(Vec<Hit>, SearchStats), MihError> {
    let r = radius.min(header.bits);
    let mut s = Searcher::<W>::new(data, header, query, opts);
    if s.n == 0 || s.allow.is_some_and(|a| a.is_empty()) {
        return Ok((Vec::new(), s.stats));
    }
    // Norouzi's split of r = m·r' + a: the first a+1 tables are probed to
    // radius r', the rest to r' - 1; a code within r is then in one of them.
    let m = s.tables.len();
    let (base, extra) = ((r as usize / m) as isize, r as usize % m);
    let rho: Vec<isize> = s
        .tables
        .iter()
        .enumerate()
        .map(|(j, t)| {
            let rho = if j <= extra { base } else { base - 1 };
            rho.min(t.sub.len as isize)
        })
        .collect();
    let use_scan = match opts.strategy {
        Strategy::Scan => true,
        Strategy::Mih => false,
        Strategy::Auto => {
            let est: f64 = (0..=base.max(0) as usize)
                .map(|level| {
                    s.tables
                        .iter()
                        .zip(&rho)
                        .filter(|(_, &rho)| level as isize <= rho)
                        .map(|(t, _)| {
                            binomial(t.sub.len, level)
                                * (s.cost.probe_ns
                                    + s.n as f64 / (1u64 << t.sub.len) as f64
                                        * s.cost.candidate_ns(s.codes.len()))
                        })
                        .sum::<f64>()
                })
                .sum();
            s.n < s.cost.min_mih_codes || est > s.scan_ns()
        }
    };
    let mut hits = Vec::new();
    if use_scan {
        s.scan(r, |doc, distance| {
            hits.push(Hit { distance, doc });
            r
        });
        s.stats.strategy = Strategy::Scan;
    } else {
        let mut bound = r;
        for level in 0..=base.max(0) as usize {
            for j in 0..m {
                if level as isize <= rho[j] {
                    s.step(level, j, &rho, &mut bound, &mut |doc, distance| {
                        hits.push(Hit { distance, doc });
                        r
                    })?;
                }
            }
        }
        s.stats.strategy = Strategy::Mih;
    }
    // One u64 key per hit compares in one instruction; a range query
    // can return thousands.
    hits.sort_unstable_by_key(|h| (u64::from(h.distance) << 32) | u64::from(h.doc));
    Ok((hits, s.stats))
}

/// The structural half of `MihIndex::verify`: every table lists every doc
/// exactly once, in the bucket of its own substring value.
pub(super) fn verify_tables(data: &[u8], header: &Header) -> Result<(), MihError> {
    let n = header.num_codes as usize;
    let w = header.words_per_code();
    let codes = slice(data, header.codes_offset, n * w * 8);
    let idb = header.id_bytes as usize;
    for (j, t) in TableView::all(data, header).iter().enumerate() {
        let mut seen = vec![false; n];
        let mut prev_key: Option<u32> = None;
        for slot in 0..t.num_keys {
            let key = match t.directory {
                Directory::Dense => slot as u32,
                Directory::Sparse => {
                    let key = get_u32(t.keys, slot * 4);
                    if prev_key.is_some_and(|p| p >= key) || (key as u64) >> t.sub.len != 0 {
                        return Err(corrupt(
                            j,
                            format!("sparse key {key} out of order or too long"),
                        ));
                    }
                    prev_key = Some(key);
                    key
                }
            };
            let lo = get_u32(t.offsets, slot * 4) as usize;
            let hi = get_u32(t.offsets, slot * 4 + 4) as usize;
            if slot == 0 && lo != 0 || lo > hi || hi > n {
                return Err(corrupt(j, format!("bucket {slot} spans {lo}..{hi}")));
            }
            for i in lo..hi {
                let doc = read_id(t.ids, i, idb) as usize;
                if doc >= n || std::mem::replace(&mut seen[doc], true) {
                    return Err(corrupt(
                        j,
                        format!("doc id {doc} out of range or listed twice"),
                    ));
                }
                let words: Vec<u64> = (0..w).map(|k| get_u64(codes, (doc * w + k) * 8)).collect();
                if t.sub.extract(&words) != key {
                    return Err(corrupt(
                        j,
                        format!("doc {doc} is in the bucket of another key"),
                    ));
                }
            }
        }
        if get_u32(t.offsets, t.num_keys * 4) as usize != n {
            return Err(corrupt(j, "buckets do not cover every doc".to_string()));
        }
    }
    Ok(())
}
