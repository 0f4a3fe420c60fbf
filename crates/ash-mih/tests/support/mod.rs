//! Brute-force answers the exact search is checked against.
#![allow(dead_code)]

use ash_mih::code::BinaryCode;
use ash_mih::Hit;
use roaring::RoaringBitmap;

/// Every admitted doc with its distance, ordered by (distance, doc).
pub fn brute_force(
    codes: &[BinaryCode],
    query: &BinaryCode,
    allow: Option<&RoaringBitmap>,
    alive: Option<&RoaringBitmap>,
) -> Vec<Hit> {
    let mut hits: Vec<Hit> = codes
        .iter()
        .enumerate()
        .filter(|(doc, _)| allow.is_none_or(|a| a.contains(*doc as u32)))
        .filter(|(doc, _)| alive.is_none_or(|a| a.contains(*doc as u32)))
        .map(|(doc, c)| Hit {
            doc: doc as u32,
            distance: c
                .words()
                .iter()
                .zip(query.words())
                .map(|(a, b)| (a ^ b).count_ones())
                .sum(),
        })
        .collect();
    hits.sort_by_key(|h| (h.distance, h.doc));
    hits
}

pub fn brute_knn(all: &[Hit], k: usize, max_distance: u32) -> Vec<Hit> {
    all.iter()
        .filter(|h| h.distance <= max_distance)
        .take(k)
        .copied()
        .collect()
}

pub fn brute_range(all: &[Hit], r: u32) -> Vec<Hit> {
    all.iter().filter(|h| h.distance <= r).copied().collect()
}

/// A deterministic pseudo-random subset of 0..n, about `keep_per_mille`
/// in a thousand, different for each `seed`.
pub fn subset(n: usize, seed: u64, keep_per_mille: u64) -> RoaringBitmap {
    (0..n as u32)
        .filter(|&d| {
            (d as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(seed)
                % 1000
                < keep_per_mille
        })
        .collect()
}
