//! Filtered k-NN at every selectivity, beside image-only k-NN on the same
//! index: clustered 64-bit codes in several segments, a range filter over
//! a field spread through doc order, k = 10, one thread. Each filter runs
//! as the cost model chooses (with the shares of earlier queries
//! remembered, as the server does) and forced to each strategy; the
//! chosen answers are checked equal to the allow-list's. The last column
//! is tantivy yielding the filter's matches and nothing else: the floor
//! of the allow-list's walk.
//!
//! cargo run --release -p ash-tantivy --example bench_filters [N] [QUERIES] [COMMITS]
//!
//! Two indexing threads write each commit: 2 × COMMITS segments (default 4: 8).

use std::time::Instant;

use ash_mih::code::BinaryCode;
use ash_mih::synth::{generate, Spread};
use ash_tantivy::{add_hash_field, knn, FilterKey, FilterStats, FilterStrategy, HashIndex};
use ash_tantivy::{KnnRequest, Remember};
use tantivy::indexer::NoMergePolicy;
use tantivy::query::{Query, QueryParser};
use tantivy::schema::{Schema, FAST, INDEXED};
use tantivy::TantivyDocument;

/// A fixed pseudo-random value per doc (splitmix64).
fn scatter(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// p50 of `f` over `queries`, in ms.
fn p50<T>(queries: &[BinaryCode], mut f: impl FnMut(&BinaryCode) -> T) -> f64 {
    let mut times: Vec<f64> = queries
        .iter()
        .map(|q| {
            let t = Instant::now();
            std::hint::black_box(f(q));
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: usize| args.get(i).map_or(Ok(default), |s| s.parse());
    let (n, nq, commits) = (arg(1, 1_000_000)?, arg(2, 200)?, arg(3, 4)?);
    let spread = Spread::Clustered {
        centres: 1000,
        flip: 0.08,
    };
    let codes = generate(n, 64, spread, 1, 2)?;
    let queries = generate(nq, 64, spread, 1, 3)?;
    let mut b = Schema::builder();
    let sel = b.add_i64_field("sel", INDEXED | FAST);
    let hash = add_hash_field(&mut b, "code", 64)?;
    let dir = tempfile::tempdir()?;
    let index = HashIndex::create_in_dir(dir.path(), b.build())?;
    let mut w = index.index().writer_with_num_threads(2, 400_000_000)?;
    w.set_merge_policy(Box::new(NoMergePolicy));
    let per_commit = n.div_ceil(commits.max(1));
    for (i, c) in codes.iter().enumerate() {
        let mut doc = TantivyDocument::new();
        doc.add_i64(sel, (scatter(i as u64) % 1000) as i64);
        hash.set(&mut doc, c)?;
        w.add_document(doc)?;
        if i % per_commit == per_commit - 1 {
            w.commit()?;
        }
    }
    w.commit()?;
    index.reload()?;
    let searcher = index.reader().searcher();
    let segments = searcher.segment_readers().len();
    let stats = FilterStats::default();
    let search = |q: &BinaryCode, filter: Option<&dyn Query>, key: &FilterKey, strategy| {
        knn(
            &index,
            &searcher,
            q,
            &KnnRequest {
                k: 10,
                filter,
                strategy,
                remember: Some(Remember { stats: &stats, key }),
                ..Default::default()
            },
        )
        .unwrap()
    };
    let unfiltered = FilterKey::new(None, None);
    let image = p50(&queries, |q| {
        search(q, None, &unfiltered, FilterStrategy::Auto)
    });
    println!("# {n} clustered 64-bit codes in {segments} segments, {nq} queries, k=10, one thread");
    println!();
    println!("image only: p50 {image:.4} ms");
    println!();
    println!("| filter keeps | chosen p50 ms | / image only | allow-list forced p50 ms | candidates forced p50 ms | tantivy's matches alone p50 ms |");
    println!("|---|---|---|---|---|---|");
    let parser = QueryParser::for_index(index.index(), vec![]);
    for per_mille in [1, 10, 50, 100, 250, 500, 900] {
        let text = format!("sel:[0 TO {}]", per_mille - 1);
        let filter = parser.parse_query(&text)?;
        let key = FilterKey::new(Some(&text), None);
        let run = |strategy| {
            p50(&queries, |q| {
                search(q, Some(filter.as_ref()), &key, strategy)
            })
        };
        let chosen = run(FilterStrategy::Auto);
        let allow = run(FilterStrategy::AllowList);
        let candidates = run(FilterStrategy::Candidates);
        for q in queries.iter().take(20) {
            assert_eq!(
                search(q, Some(filter.as_ref()), &key, FilterStrategy::Auto),
                search(q, Some(filter.as_ref()), &key, FilterStrategy::AllowList),
                "the strategies disagree at {per_mille} per mille"
            );
        }
        // What tantivy alone takes to yield the filter's matches (the
        // walk's floor), through the same weight the walk uses.
        let weight = filter.weight(tantivy::query::EnableScoring::disabled_from_schema(
            index.collect_schema(),
        ))?;
        let matches_only = p50(&queries, |_| {
            let mut n = 0usize;
            for reader in searcher.segment_readers() {
                weight
                    .for_each_no_score(reader, &mut |b: &[u32]| n += b.len())
                    .unwrap();
            }
            n
        });
        println!(
            "| {:.1} % | {chosen:.4} | {:.2}x | {allow:.4} | {candidates:.4} | {matches_only:.4} |",
            per_mille as f64 / 10.0,
            chosen / image
        );
    }
    Ok(())
}
