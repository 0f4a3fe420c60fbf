//! The engine over one collection split into 1, 2, 4 and 8 tables (the
//! segments of a live index), searched in lockstep (`knn_segments`), beside
//! the same codes in one table, in one run: p50 per query and what each
//! search did (bucket probes, candidates checked, codes scanned), so the
//! cost of segments shows where it comes from. One thread.
//!
//! M, when given, is the number of substrings of every split table
//! (otherwise each is built with the default for its own size, as a
//! segment is).
//!
//! cargo run --release -p ash-mih --example bench_segments [N] [QUERIES] [M]

use ash_mih::code::BinaryCode;
use ash_mih::synth::{generate, Spread};
use ash_mih::{knn_segments, MihBuilder, MihIndex, SearchOptions};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(1_000_000, |a| a.parse().expect("N"));
    let nq: usize = args.get(2).map_or(300, |a| a.parse().expect("QUERIES"));
    let split_m: Option<usize> = args.get(3).map(|a| a.parse().expect("M"));
    let spread = Spread::Clustered {
        centres: 1000,
        flip: 0.08,
    };
    let codes = generate(n, 64, spread, 1, 2).unwrap();
    let queries: Vec<BinaryCode> = generate(nq, 64, spread, 1, 3).unwrap();
    let one = MihIndex::open(MihBuilder::new(64).unwrap().build(&codes).unwrap()).unwrap();
    println!(
        "# {n} clustered 64-bit codes, {nq} queries: k-NN over N tables in lockstep vs one table\n"
    );
    println!("| tables | m each | k | p50 ms | one table p50 ms | ratio | probes/q | one table | candidates/q | one table | scanned/q |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for parts in [1usize, 2, 4, 8] {
        let per = n.div_ceil(parts);
        let tables: Vec<MihIndex<Vec<u8>>> = codes
            .chunks(per)
            .map(|c| {
                let builder = MihBuilder::new(64).unwrap();
                let builder = match split_m {
                    Some(m) => builder.substrings(m),
                    None => builder,
                };
                MihIndex::open(builder.build(c).unwrap()).unwrap()
            })
            .collect();
        let opts = SearchOptions::default();
        let list: Vec<_> = tables.iter().map(|t| (t, opts)).collect();
        for k in [1usize, 10, 100] {
            let mut times = Vec::new();
            let (mut probes, mut cands, mut scanned) = (0u64, 0u64, 0u64);
            for q in &queries {
                let t = Instant::now();
                let (_h, stats) = knn_segments(&list, q, k, None).unwrap();
                times.push(t.elapsed().as_secs_f64() * 1e3);
                for s in stats {
                    probes += s.probes;
                    cands += s.candidates;
                    scanned += s.scanned;
                }
            }
            times.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let mut one_t = Vec::new();
            let (mut p1, mut c1) = (0u64, 0u64);
            for q in &queries {
                let t = Instant::now();
                let (_h, s) = one.knn_with_stats(q, k, &opts).unwrap();
                one_t.push(t.elapsed().as_secs_f64() * 1e3);
                p1 += s.probes;
                c1 += s.candidates;
            }
            one_t.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let nq = queries.len() as f64;
            println!(
                "| {parts} | {} | {k} | {:.4} | {:.4} | {:.2}x | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
                tables[0].substrings().len(),
                times[times.len() / 2],
                one_t[one_t.len() / 2],
                times[times.len() / 2] / one_t[one_t.len() / 2],
                probes as f64 / nq,
                p1 as f64 / nq,
                cands as f64 / nq,
                c1 as f64 / nq,
                scanned as f64 / nq
            );
        }
    }
}
