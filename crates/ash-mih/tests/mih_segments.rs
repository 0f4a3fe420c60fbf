//! k-NN over several tables in lockstep against brute force over their
//! union: every strategy, allow-lists and deletes per table, tables of
//! different sizes (and so different substring counts), bounded distances.

mod support;

use ash_mih::code::BinaryCode;
use ash_mih::synth::{generate, Spread};
use ash_mih::{knn_segments, MihBuilder, MihIndex, SearchOptions, SegmentHit, Strategy as Path};
use proptest::prelude::*;
use roaring::RoaringBitmap;
use support::{brute_force, subset};

/// The k best of every table's admitted codes, by (distance, table, doc).
fn brute_segments(
    tables: &[Vec<BinaryCode>],
    query: &BinaryCode,
    filters: &[(Option<RoaringBitmap>, Option<RoaringBitmap>)],
    k: usize,
    max_distance: u32,
) -> Vec<SegmentHit> {
    let mut all: Vec<SegmentHit> = tables
        .iter()
        .zip(filters)
        .enumerate()
        .flat_map(|(segment, (codes, (allow, alive)))| {
            brute_force(codes, query, allow.as_ref(), alive.as_ref())
                .into_iter()
                .map(move |h| SegmentHit {
                    distance: h.distance,
                    segment: segment as u32,
                    doc: h.doc,
                })
        })
        .filter(|h| h.distance <= max_distance)
        .collect();
    all.sort();
    all.truncate(k);
    all
}

fn spread(kind: u8) -> Spread {
    match kind {
        0 => Spread::Uniform,
        1 => Spread::Clustered {
            centres: 4,
            flip: 0.06,
        },
        _ => Spread::Clustered {
            centres: 3,
            flip: 0.0,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn lockstep_matches_brute_force_over_the_union(
        bits in proptest::sample::select(vec![12usize, 36, 64, 65, 128]),
        sizes in proptest::collection::vec(0usize..400, 1..6),
        kind in 0u8..3,
        k in 1usize..200,
        radius_frac in 0.0f64..=1.0,
        filtered in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let tables: Vec<Vec<BinaryCode>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| generate(n, bits, spread(kind), seed, seed ^ i as u64).unwrap())
            .collect();
        let indexes: Vec<MihIndex<Vec<u8>>> = tables
            .iter()
            .map(|codes| MihIndex::open(MihBuilder::new(bits).unwrap().build(codes).unwrap()).unwrap())
            .collect();
        let filters: Vec<(Option<RoaringBitmap>, Option<RoaringBitmap>)> = tables
            .iter()
            .enumerate()
            .map(|(i, codes)| {
                let s = seed.rotate_left(i as u32);
                if filtered {
                    (Some(subset(codes.len(), s, [1000, 300, 20][i % 3])), Some(subset(codes.len(), s ^ 5, 800)))
                } else {
                    (None, None)
                }
            })
            .collect();
        let mut queries = generate(3, bits, spread(kind), seed, seed ^ 99).unwrap();
        queries.extend(tables.iter().flatten().take(2).copied());
        let radius = (radius_frac * bits as f64).round() as u32;
        for q in &queries {
            for strategy in [Path::Auto, Path::Mih, Path::Scan] {
                let parts: Vec<(&MihIndex<Vec<u8>>, SearchOptions<'_>)> = indexes
                    .iter()
                    .zip(&filters)
                    .map(|(index, (allow, alive))| {
                        (index, SearchOptions {
                            allow: allow.as_ref(),
                            alive: alive.as_ref().map(|a| a as &dyn ash_mih::DocSet),
                            strategy,
                            max_distance: None,
                        })
                    })
                    .collect();
                for max_distance in [None, Some(radius)] {
                    let (got, stats) = knn_segments(&parts, q, k, max_distance).unwrap();
                    prop_assert_eq!(stats.len(), parts.len());
                    let want = brute_segments(&tables, q, &filters, k, max_distance.unwrap_or(bits as u32));
                    prop_assert_eq!(got, want, "{:?} k={} max_distance={:?}", strategy, k, max_distance);
                }
            }
        }
    }
}

/// Large, clustered tables of very different sizes: real probing, the
/// switch to a scan mid-way, and the shared bound across eight tables.
#[test]
fn eight_clustered_tables_match_brute_force() {
    let bits = 64;
    let spread = Spread::Clustered {
        centres: 40,
        flip: 0.08,
    };
    let sizes = [40_000, 20_000, 9_000, 5_000, 3_000, 1_000, 200, 10];
    let tables: Vec<Vec<BinaryCode>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| generate(n, bits, spread, 11, 100 + i as u64).unwrap())
        .collect();
    let indexes: Vec<MihIndex<Vec<u8>>> = tables
        .iter()
        .map(|c| MihIndex::open(MihBuilder::new(bits).unwrap().build(c).unwrap()).unwrap())
        .collect();
    let none = vec![(None, None); tables.len()];
    let queries = generate(15, bits, spread, 11, 7).unwrap();
    for q in &queries {
        for strategy in [Path::Auto, Path::Mih] {
            let opts = SearchOptions {
                strategy,
                ..SearchOptions::default()
            };
            let parts: Vec<_> = indexes.iter().map(|i| (i, opts)).collect();
            for k in [1, 10, 100, 1000] {
                let (got, _) = knn_segments(&parts, q, k, None).unwrap();
                assert_eq!(
                    got,
                    brute_segments(&tables, q, &none, k, bits as u32),
                    "{strategy:?} k={k}"
                );
            }
        }
    }
}

#[test]
fn tables_of_another_length_are_refused() {
    let a = MihIndex::open(MihBuilder::new(16).unwrap().build(&[]).unwrap()).unwrap();
    let q = BinaryCode::from_hex("00ff00ff", 32).unwrap();
    assert!(knn_segments(&[(&a, SearchOptions::default())], &q, 1, None).is_err());
    let none: [(&MihIndex<Vec<u8>>, SearchOptions<'_>); 0] = [];
    assert_eq!(knn_segments(&none, &q, 5, None).unwrap().0, vec![]);
}
