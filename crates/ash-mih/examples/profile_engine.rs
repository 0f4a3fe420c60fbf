//! Where an engine query's time goes, without hardware counters: for k-NN
//! (k = 1, 10, 100) and radius (2, 4, 8) over one table of N clustered
//! 64-bit codes, the p50 per query beside what it did: bucket probes,
//! candidates checked, candidates per result, and the cache lines that work
//! must touch (one for each candidate's code, one for each probe's bucket
//! bounds, one per 16 ids read), with the time per line that implies.
//! One thread; `perf record` on it shows which loop the time is in.
//!
//! cargo run --release -p ash-mih --example profile_engine [N] [QUERIES]

use ash_mih::synth::{generate, Spread};
use ash_mih::{MihBuilder, MihIndex, SearchOptions, SearchStats};
use std::time::Instant;

const LINE: f64 = 64.0;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(10_000_000, |a| a.parse().expect("N"));
    let nq: usize = args.get(2).map_or(1000, |a| a.parse().expect("QUERIES"));
    let spread = Spread::Clustered {
        centres: 1000,
        flip: 0.08,
    };
    let codes = generate(n, 64, spread, 1, 2).unwrap();
    let queries = generate(nq, 64, spread, 1, 3).unwrap();
    let index = MihIndex::open(MihBuilder::new(64).unwrap().build(&codes).unwrap()).unwrap();
    let tables = index.substrings().len();
    let id_bytes = if n <= 1 << 16 {
        2.0
    } else if n <= 1 << 24 {
        3.0
    } else {
        4.0
    };
    println!("# {n} clustered 64-bit codes, one table (m = {tables}), {nq} queries, one thread\n");
    println!("| query | p50 µs | probes/q | candidates/q | results/q | candidates per result | lines/q | ns per line at p50 |");
    println!("|---|---|---|---|---|---|---|---|");
    let opts = SearchOptions::default();
    let run = |label: String, f: &dyn Fn(&ash_mih::code::BinaryCode) -> (usize, SearchStats)| {
        let mut times = Vec::with_capacity(nq);
        let (mut probes, mut candidates, mut results) = (0u64, 0u64, 0usize);
        for q in &queries {
            let t = Instant::now();
            let (hits, stats) = f(q);
            times.push(t.elapsed().as_secs_f64());
            probes += stats.probes;
            candidates += stats.candidates + stats.scanned;
            results += hits;
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let p50 = times[times.len() / 2] * 1e6;
        let per = |x: u64| x as f64 / nq as f64;
        let lines = per(candidates) + per(probes) + per(candidates) * id_bytes / LINE;
        println!(
            "| {label} | {p50:.1} | {:.0} | {:.0} | {:.1} | {:.0} | {lines:.0} | {:.0} |",
            per(probes),
            per(candidates),
            results as f64 / nq as f64,
            per(candidates) / (results as f64 / nq as f64).max(1.0),
            p50 * 1e3 / lines.max(1.0),
        );
    };
    for k in [1usize, 10, 100] {
        run(format!("k-NN k={k}"), &|q| {
            let (hits, stats) = index.knn_with_stats(q, k, &opts).unwrap();
            (hits.len(), stats)
        });
    }
    for radius in [2u32, 4, 8] {
        run(format!("radius {radius}"), &|q| {
            let (hits, stats) = index.range_with_stats(q, radius, &opts).unwrap();
            (hits.len(), stats)
        });
    }
}
