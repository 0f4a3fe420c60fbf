//! k-NN among docs fed in blocks (`MihIndex::nearest_among`) against brute
//! force over the same docs: any block sizes, deletes, a distance limit,
//! ties, and blocks that repeat or run past the table.

mod support;

use ash_mih::code::BinaryCode;
use ash_mih::synth::{generate, Spread};
use ash_mih::{Hit, MihBuilder, MihIndex, SearchOptions};
use proptest::prelude::*;
use support::{brute_force, subset};

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn nearest_among_matches_brute_force(
        bits in proptest::sample::select(vec![1usize, 24, 64, 65, 130, 256]),
        n in 0usize..400,
        clustered in any::<bool>(),
        keep in 0u64..=1000,
        deleted in 0u64..=300,
        k in 0usize..40,
        limit in proptest::option::of(0u32..40),
        block in 1usize..200,
        seed in any::<u64>(),
    ) {
        let spread = if clustered {
            Spread::Clustered { centres: 3, flip: 0.05 }
        } else {
            Spread::Uniform
        };
        let codes = generate(n, bits, spread, seed, seed ^ 1).unwrap();
        let query = generate(1, bits, spread, seed, seed ^ 2).unwrap()[0];
        let table = MihIndex::open(MihBuilder::new(bits).unwrap().build(&codes).unwrap()).unwrap();
        let allow = subset(n, seed, keep);
        let alive = subset(n, seed ^ 7, 1000 - deleted);
        let opts = SearchOptions {
            alive: Some(&alive),
            max_distance: limit,
            ..SearchOptions::default()
        };
        let want: Vec<Hit> = brute_force(&codes, &query, Some(&allow), Some(&alive))
            .into_iter()
            .filter(|h| limit.is_none_or(|l| h.distance <= l))
            .collect();

        let docs: Vec<u32> = allow.iter().collect();
        let feed = |walk: &mut ash_mih::NearestAmong<'_>| {
            for chunk in docs.chunks(block) {
                walk.feed(chunk);
                // A block fed twice, and docs past the table, are ignored.
                walk.feed(chunk);
            }
            walk.feed(&[n as u32, n as u32 + 5]);
        };
        let mut walk = table.nearest_among(&query, k, &opts).unwrap();
        feed(&mut walk);
        let (hits, stats) = walk.finish();
        prop_assert_eq!(&hits[..], &want[..k.min(want.len())]);
        prop_assert_eq!(stats.scanned, if k == 0 { 0 } else { docs.len() as u64 });

        let mut walk = table.nearest_among(&query, k, &opts).unwrap();
        feed(&mut walk);
        let (tied, _) = walk.finish_with_ties();
        let expected: Vec<Hit> = match (k, want.get(k.wrapping_sub(1))) {
            (0, _) => Vec::new(),
            (_, Some(kth)) => want.iter().filter(|h| h.distance <= kth.distance).copied().collect(),
            (_, None) => want.clone(),
        };
        prop_assert_eq!(tied, expected);
    }
}

#[test]
fn a_query_of_another_length_is_refused() {
    let codes = generate(10, 64, Spread::Uniform, 1, 2).unwrap();
    let table = MihIndex::open(MihBuilder::new(64).unwrap().build(&codes).unwrap()).unwrap();
    let short = BinaryCode::from_hex("0f", 8).unwrap();
    assert!(table
        .nearest_among(&short, 3, &SearchOptions::default())
        .is_err());
}
