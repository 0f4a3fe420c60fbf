//! Many queries against one index on a thread pool of a chosen size.

use rayon::prelude::*;

use super::{Hit, MihError, MihIndex, SearchOptions, Strategy};
use crate::code::BinaryCode;

/// What each query of a batch asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchQuery {
    /// The k nearest codes.
    Knn(usize),
    /// Every code within this Hamming distance.
    Range(u32),
}

/// Answers every query, in input order, on `threads` threads (0 = all cores).
pub fn search_batch<D: AsRef<[u8]> + Sync>(
    index: &MihIndex<D>,
    queries: &[BinaryCode],
    what: BatchQuery,
    strategy: Strategy,
    threads: usize,
) -> Result<Vec<Vec<Hit>>, MihError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| MihError::InvalidArgument(format!("thread pool: {e}")))?;
    let opts = SearchOptions {
        strategy,
        ..SearchOptions::default()
    };
    pool.install(|| {
        queries
            .par_iter()
            .with_max_len(1)
            .map(|q| match what {
                BatchQuery::Knn(k) => index.knn(q, k, &opts),
                BatchQuery::Range(r) => index.range(q, r, &opts),
            })
            .collect()
    })
}
