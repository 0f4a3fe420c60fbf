//! The Rust half of `make bench` (see bench/codes_bench.py, which drives it):
//! builds and searches the same codes with ash-search's MIH engine and with
//! mih-rs 0.3.1, one thread, one query at a time, and writes timings, sizes
//! and recall as JSON.
//!
//! cargo run --release --example bench_codes -- DB.npy QUERIES.npy OUT.json WORKDIR

use std::time::Instant;

use ash_mih::code::BinaryCode;
use ash_mih::fsio::write_atomic;
use ash_mih::npy;
use ash_mih::{open_mmap, Hit, MihBuilder, SearchOptions};
use serde_json::json;

const KS: [usize; 3] = [1, 10, 100];
const RADII: [u32; 3] = [2, 4, 8];

fn median_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2] * 1e3
}

fn p99_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[(v.len() * 99 / 100).min(v.len() - 1)] * 1e3
}

/// Share of returned items that belong in an exact answer: items closer
/// than or as close as the exact k-th neighbour, at most k of them.
fn knn_recall(exact: &[Hit], got_distances: &[u32], k: usize) -> f64 {
    let Some(kth) = exact.last().map(|h| h.distance) else {
        return 1.0;
    };
    let good = got_distances
        .iter()
        .filter(|&&d| d <= kth)
        .count()
        .min(exact.len());
    good as f64 / exact.len().min(k).max(1) as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, db_path, q_path, out_path, work] = &args[..] else {
        return Err("usage: bench_codes DB.npy QUERIES.npy OUT.json WORKDIR".into());
    };
    let db = npy::read_packed(db_path.as_ref())?;
    let queries_raw = npy::read_packed(q_path.as_ref())?;
    let bits = db.row_bytes * 8;
    if bits != 64 {
        return Err("the benchmark compares 64-bit codes (mih-rs takes u64)".into());
    }
    let queries: Vec<BinaryCode> = (0..queries_raw.rows)
        .map(|i| BinaryCode::from_packed(queries_raw.row(i), bits))
        .collect::<Result<_, _>>()?;
    let n = db.rows;

    // ash-search: build, write, open (mmap), search.
    let started = Instant::now();
    let bytes = MihBuilder::new(bits)?.build_packed(&db.data)?;
    let build_s = started.elapsed().as_secs_f64();
    let path = std::path::Path::new(work).join("bench.mih");
    write_atomic(&path, &bytes)?;
    let index_bytes = bytes.len();
    drop(bytes);
    let started = Instant::now();
    let index = open_mmap(&path)?;
    let open_ms = started.elapsed().as_secs_f64() * 1e3;
    let m = index.substrings().len();
    let opts = SearchOptions::default();
    // Touch the whole file once so both engines start from warm memory.
    for q in queries.iter().take(20) {
        index.knn(
            q,
            10,
            &SearchOptions {
                strategy: ash_mih::Strategy::Scan,
                ..opts
            },
        )?;
    }

    let mut ours = serde_json::Map::new();
    let mut exact_knn: Vec<Vec<Vec<Hit>>> = Vec::new();
    for &k in &KS {
        let mut times = Vec::with_capacity(queries.len());
        let mut all = Vec::with_capacity(queries.len());
        let mut scans = 0;
        for q in &queries {
            let t = Instant::now();
            let (hits, stats) = index.knn_with_stats(q, k, &opts)?;
            times.push(t.elapsed().as_secs_f64());
            scans += usize::from(stats.strategy == ash_mih::Strategy::Scan);
            all.push(hits);
        }
        ours.insert(format!("knn{k}"), json!({"median_ms": median_ms(times.clone()), "p99_ms": p99_ms(times), "scan_share": scans as f64 / queries.len() as f64}));
        exact_knn.push(all);
    }
    let mut exact_range = Vec::new();
    for &r in &RADII {
        let mut times = Vec::with_capacity(queries.len());
        let mut all = Vec::new();
        for q in &queries {
            let t = Instant::now();
            let hits = index.range(q, r, &opts)?;
            times.push(t.elapsed().as_secs_f64());
            all.push(hits);
        }
        ours.insert(
            format!("range{r}"),
            json!({"median_ms": median_ms(times.clone()), "p99_ms": p99_ms(times)}),
        );
        exact_range.push(all);
    }

    // mih-rs 0.3.1 on the same codes (u64 words; Hamming distance does not
    // depend on bit order).
    let words: Vec<u64> = (0..n)
        .map(|i| u64::from_be_bytes(db.row(i).try_into().unwrap()))
        .collect();
    let qwords: Vec<u64> = queries.iter().map(|q| q.words()[0]).collect();
    let started = Instant::now();
    let mih = mih_rs::Index::new(words.clone())?;
    let mih_build_s = started.elapsed().as_secs_f64();
    let mut theirs = serde_json::Map::new();
    for (ki, &k) in KS.iter().enumerate() {
        let mut searcher = mih.topk_searcher();
        let mut times = Vec::new();
        let mut recall = 0.0;
        for (qi, &q) in qwords.iter().enumerate() {
            let t = Instant::now();
            let ids = searcher.run(q, k).to_vec();
            times.push(t.elapsed().as_secs_f64());
            let ds: Vec<u32> = ids
                .iter()
                .map(|&i| (words[i as usize] ^ q).count_ones())
                .collect();
            recall += knn_recall(&exact_knn[ki][qi], &ds, k);
        }
        theirs.insert(format!("knn{k}"), json!({"median_ms": median_ms(times.clone()), "p99_ms": p99_ms(times), "recall": recall / qwords.len() as f64}));
    }
    for (ri, &r) in RADII.iter().enumerate() {
        let mut searcher = mih.range_searcher();
        let mut times = Vec::new();
        let mut matched = 0usize;
        for (qi, &q) in qwords.iter().enumerate() {
            let t = Instant::now();
            let ids = searcher.run(q, r as usize).to_vec();
            times.push(t.elapsed().as_secs_f64());
            matched += usize::from(ids.len() == exact_range[ri][qi].len());
        }
        theirs.insert(format!("range{r}"), json!({"median_ms": median_ms(times.clone()), "p99_ms": p99_ms(times), "recall": matched as f64 / qwords.len() as f64}));
    }

    let out = json!({
        "n": n,
        "bits": bits,
        "queries": queries.len(),
        "ours": {
            "substrings": m,
            "build_s": build_s,
            "build_codes_per_s": n as f64 / build_s,
            "index_bytes": index_bytes,
            "extra_bytes_per_code": (index_bytes as f64 - (n * 8) as f64) / n.max(1) as f64,
            "open_ms": open_ms,
            "results": ours,
            "knn10_distances": exact_knn[1].iter().map(|h| h.iter().map(|x| x.distance).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "range_counts": exact_range.iter().map(|rs| rs.iter().map(Vec::len).collect::<Vec<_>>()).collect::<Vec<_>>(),
        },
        "mih_rs": {
            "substrings": mih.num_blocks(),
            "build_s": mih_build_s,
            "results": theirs,
        },
    });
    std::fs::write(out_path, serde_json::to_string(&out)?)?;
    Ok(())
}
