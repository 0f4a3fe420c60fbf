//! MIH range and k-NN against brute force, for every strategy.

mod support;

use ash_mih::code::BinaryCode;
use ash_mih::synth::{generate, Spread};
use ash_mih::{MihBuilder, MihIndex, SearchOptions, Strategy as Path};
use proptest::prelude::*;
use support::{brute_force, brute_knn, brute_range, subset};

const BITS: [usize; 10] = [1, 12, 24, 36, 48, 63, 64, 65, 128, 256];

/// A code set: random, clustered (many near-duplicates) or few distinct
/// values (many exact duplicates and ties).
fn code_set() -> impl Strategy<Value = (usize, Vec<BinaryCode>, Vec<BinaryCode>)> {
    (
        proptest::sample::select(BITS.to_vec()),
        0usize..300,
        0u8..3,
        any::<u64>(),
    )
        .prop_map(|(bits, n, kind, seed)| {
            let spread = match kind {
                0 => Spread::Uniform,
                1 => Spread::Clustered {
                    centres: 4,
                    flip: 0.06,
                },
                _ => Spread::Clustered {
                    centres: 3,
                    flip: 0.0,
                },
            };
            let codes = generate(n, bits, spread, seed, seed ^ 1).unwrap();
            let mut queries = generate(4, bits, spread, seed, seed ^ 2).unwrap();
            queries.extend(codes.iter().take(2).copied());
            (bits, codes, queries)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn every_strategy_matches_brute_force(
        (bits, codes, queries) in code_set(),
        m_pick in 0usize..4,
        radius_frac in 0.0f64..=1.0,
        k_extra in 0usize..320,
        filter_kind in 0u8..4,
        seed in any::<u64>(),
    ) {
        let min_m = bits.div_ceil(32);
        let m = match m_pick {
            0 => None,
            1 => Some(min_m),
            2 => Some((min_m + 1).min(bits)),
            _ => Some(bits.min(min_m + 5)),
        };
        let mut builder = MihBuilder::new(bits).unwrap();
        if let Some(m) = m { builder = builder.substrings(m); }
        let index = MihIndex::open(builder.build(&codes).unwrap()).unwrap();
        index.verify().unwrap();
        let n = codes.len();
        let allow = subset(n, seed, [1000, 300, 20, 0][filter_kind as usize % 4]);
        let alive = subset(n, seed.rotate_left(7), 800);
        let radius = (radius_frac * bits as f64).round() as u32;
        let k = 1 + k_extra;
        for (use_allow, use_alive) in [(false, false), (true, false), (false, true), (true, true)] {
            for q in &queries {
                let all = brute_force(&codes, q, use_allow.then_some(&allow), use_alive.then_some(&alive));
                for strategy in [Path::Auto, Path::Mih, Path::Scan] {
                    let opts = SearchOptions {
                        allow: use_allow.then_some(&allow),
                        alive: if use_alive { Some(&alive) } else { None },
                        strategy,
                        max_distance: None,
                    };
                    prop_assert_eq!(index.range(q, radius, &opts).unwrap(), brute_range(&all, radius),
                        "range r={} {:?} m={:?}", radius, strategy, m);
                    prop_assert_eq!(index.knn(q, k, &opts).unwrap(), brute_knn(&all, k, bits as u32),
                        "knn k={} {:?} m={:?}", k, strategy, m);
                    let capped = SearchOptions { max_distance: Some(radius), ..opts };
                    prop_assert_eq!(index.knn(q, k, &capped).unwrap(), brute_knn(&all, k, radius),
                        "knn k={} max_distance={} {:?}", k, radius, strategy);
                }
            }
        }
    }
}

/// Large enough that MIH does real work: big buckets, many duplicates
/// across tables, the progressive stop at every k.
#[test]
fn mih_on_a_larger_clustered_set_matches_brute_force() {
    for (bits, spread) in [
        (
            64,
            Spread::Clustered {
                centres: 50,
                flip: 0.08,
            },
        ),
        (
            48,
            Spread::Clustered {
                centres: 20,
                flip: 0.05,
            },
        ),
        (128, Spread::Uniform),
        (36, Spread::Uniform),
    ] {
        let codes = generate(30_000, bits, spread, 7, 8).unwrap();
        let queries = generate(20, bits, spread, 7, 9).unwrap();
        let index = MihIndex::open(MihBuilder::new(bits).unwrap().build(&codes).unwrap()).unwrap();
        let allow = subset(codes.len(), 3, 10);
        for q in &queries {
            for allow in [None, Some(&allow)] {
                let all = brute_force(&codes, q, allow, None);
                for strategy in [Path::Auto, Path::Mih] {
                    let opts = SearchOptions {
                        allow,
                        strategy,
                        ..Default::default()
                    };
                    for k in [1, 10, 100, 1000] {
                        assert_eq!(
                            index.knn(q, k, &opts).unwrap(),
                            brute_knn(&all, k, bits as u32),
                            "bits {bits} k {k}"
                        );
                    }
                    for r in [0, 2, 4, 8, 12] {
                        assert_eq!(
                            index.range(q, r, &opts).unwrap(),
                            brute_range(&all, r),
                            "bits {bits} r {r}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn query_of_another_length_is_an_error() {
    let codes = generate(10, 24, Spread::Uniform, 1, 2).unwrap();
    let index = MihIndex::open(MihBuilder::new(24).unwrap().build(&codes).unwrap()).unwrap();
    let q = BinaryCode::zeros(23).unwrap();
    assert!(index.knn(&q, 1, &SearchOptions::default()).is_err());
    assert!(index.range(&q, 1, &SearchOptions::default()).is_err());
}

#[test]
fn empty_and_single_tables() {
    for n in [0usize, 1] {
        let codes = generate(n, 48, Spread::Uniform, 1, 2).unwrap();
        let index = MihIndex::open(MihBuilder::new(48).unwrap().build(&codes).unwrap()).unwrap();
        index.verify().unwrap();
        let q = BinaryCode::zeros(48).unwrap();
        let all = brute_force(&codes, &q, None, None);
        for strategy in [Path::Auto, Path::Mih, Path::Scan] {
            let opts = SearchOptions {
                strategy,
                ..Default::default()
            };
            assert_eq!(index.knn(&q, 5, &opts).unwrap(), brute_knn(&all, 5, 48));
            assert_eq!(index.range(&q, 48, &opts).unwrap(), all);
            assert!(index.knn(&q, 0, &opts).unwrap().is_empty());
        }
    }
}
