//! The cost model that picks MIH or a popcount scan for each search.
//!
//! Costs are in nanoseconds on one core of the project's 2-core EPYC VM,
//! read off `knn_with_stats` timings of 1M-code tables (probes, candidates
//! and scanned codes per query against time per query); only their ratios
//! matter. A random code
//! check is cheap while the code array fits in cache and a memory round
//! trip once it does not, which is why uniform codes in a large table lose
//! to the scan at large k-NN radii.

/// Per-operation costs; `CostModel::default()` is what searches use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostModel {
    /// Sequential scan, per 64-bit word of code.
    pub scan_ns_per_word: f64,
    /// Scan of an allow-list, per listed doc (bitmap iteration and a load),
    /// while the code array fits in cache.
    pub allow_scan_ns: f64,
    /// The same when it does not: each listed doc's code is a memory
    /// round trip (overlapped by prefetching).
    pub allow_scan_ns_uncached: f64,
    /// One bucket lookup in a substring table.
    pub probe_ns: f64,
    /// One candidate check while the code array fits in cache.
    pub candidate_ns_cached: f64,
    /// One candidate check when the code array does not fit in cache
    /// (a bucket walk asks for codes 64 candidates ahead, so round trips
    /// overlap): the engine's k-NN checks 6–8 ns a candidate at 10M, and
    /// filtered rounds and small buckets overlap less, hence 10.
    pub candidate_ns_uncached: f64,
    /// Code arrays up to this size count as cached: a quarter of this
    /// VM's 32 MiB L3, as the other segments of an index and the filter's
    /// postings compete for it.
    pub cache_bytes: usize,
    /// Below this many codes a scan is always taken.
    pub min_mih_codes: usize,
}

impl Default for CostModel {
    fn default() -> Self {
        Self {
            scan_ns_per_word: 0.65,
            allow_scan_ns: 4.0,
            allow_scan_ns_uncached: 25.0,
            probe_ns: 15.0,
            candidate_ns_cached: 20.0,
            candidate_ns_uncached: 10.0,
            cache_bytes: 8 << 20,
            min_mih_codes: 512,
        }
    }
}

impl CostModel {
    /// Cost of checking one candidate found through a table.
    pub fn candidate_ns(&self, code_array_bytes: usize) -> f64 {
        if code_array_bytes <= self.cache_bytes {
            self.candidate_ns_cached
        } else {
            self.candidate_ns_uncached
        }
    }

    /// Cost of scanning one listed doc of an allow-list.
    pub fn allow_scan_ns(&self, code_array_bytes: usize) -> f64 {
        if code_array_bytes <= self.cache_bytes {
            self.allow_scan_ns
        } else {
            self.allow_scan_ns_uncached
        }
    }

    /// Cost of the cheaper scan: every code, or the allow-list's docs.
    pub fn scan_ns(&self, n: usize, words: usize, allowed: Option<u64>) -> f64 {
        let full = n as f64 * words as f64 * self.scan_ns_per_word;
        let bytes = n * words * 8;
        match allowed {
            Some(a) => full.min(a as f64 * self.allow_scan_ns(bytes)),
            None => full,
        }
    }

    /// Whether scanning the allow-list beats a full scan that checks membership.
    pub fn prefer_allow_scan(&self, n: usize, words: usize, allowed: u64) -> bool {
        (allowed as f64 * self.allow_scan_ns(n * words * 8))
            < n as f64 * words as f64 * self.scan_ns_per_word
    }
}

/// C(n, k) as a float (probe counts overflow integers quickly).
pub fn binomial(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}
