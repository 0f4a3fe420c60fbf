//! The index half of `make bench`: the `binary_hash` field against (a) the
//! `mih` engine alone on the same codes and (b) what a tantivy user writes
//! without it (codes in a u64 fast field, every matching doc scored by a
//! collector). One process, one run, same data and queries.
//!
//! cargo run --release --example bench_index [N] [QUERIES]

use std::time::Instant;

use ash_search::code::BinaryCode;
use ash_search::index::hybrid::{self, Mode};
use ash_search::index::knn::{knn, KnnRequest};
use ash_search::index::{add_hash_field, HashIndex};
use ash_search::mih::{MihBuilder, MihIndex, SearchOptions};
use ash_search::synth::{generate, Spread};
use serde_json::json;
use tantivy::collector::TopDocs;
use tantivy::indexer::NoMergePolicy;
use tantivy::query::{AllQuery, QueryParser};
use tantivy::schema::{Schema, FAST, INDEXED, STORED, STRING, TEXT};
use tantivy::{DocId, Score, SegmentReader, TantivyDocument};

const WORDS: [&str; 12] = [
    "microaneurysms",
    "exudates",
    "haemorrhages",
    "macula",
    "disc",
    "cotton",
    "wool",
    "spots",
    "venous",
    "beading",
    "neovascularisation",
    "normal",
];

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize] * 1e3
}

fn time<T>(queries: &[BinaryCode], mut f: impl FnMut(&BinaryCode) -> T) -> (f64, f64) {
    let times: Vec<f64> = queries
        .iter()
        .map(|q| {
            let t = Instant::now();
            std::hint::black_box(f(q));
            t.elapsed().as_secs_f64()
        })
        .collect();
    (percentile(times.clone(), 0.5), percentile(times, 0.99))
}

/// What a tantivy user writes without the plugin: every doc scored by the
/// popcount of its u64 fast-field code against the query.
fn naive_top10(
    q: &BinaryCode,
) -> impl tantivy::collector::Collector<Fruit = Vec<(i64, tantivy::DocAddress)>> {
    let qw = q.words()[0];
    TopDocs::with_limit(10).tweak_score(move |r: &SegmentReader| {
        let col = r
            .fast_fields()
            .u64("code64")
            .unwrap()
            .first_or_default_col(0);
        move |doc: DocId, _: Score| -((col.get_val(doc) ^ qw).count_ones() as i64)
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(Ok(1_000_000), |s| s.parse())?;
    let nq: usize = args.get(2).map_or(Ok(200), |s| s.parse())?;
    let spread = Spread::Clustered {
        centres: 1000,
        flip: 0.08,
    };
    let codes = generate(n, 64, spread, 1, 2)?;
    let queries = generate(nq, 64, spread, 1, 3)?;

    let mut b = Schema::builder();
    let id = b.add_text_field("id", STRING | STORED);
    let grade = b.add_i64_field("grade", INDEXED | FAST | STORED);
    let eye = b.add_text_field("eye", STRING | STORED);
    let sel = b.add_i64_field("sel", INDEXED | FAST);
    let report = b.add_text_field("report", TEXT | STORED);
    let code64 = b.add_u64_field("code64", FAST);
    let hash = add_hash_field(&mut b, "code", 64)?;
    let dir = tempfile::tempdir()?;
    let index = HashIndex::create_in_dir(dir.path(), b.build())?;

    // Ingest records with precomputed codes, in several segments.
    let started = Instant::now();
    let mut w = index.index().writer_with_num_threads(2, 400_000_000)?;
    w.set_merge_policy(Box::new(NoMergePolicy));
    // Two indexing threads and two commits: four segments.
    let per_segment = n.div_ceil(2);
    for (i, c) in codes.iter().enumerate() {
        let mut doc = TantivyDocument::new();
        doc.add_text(id, format!("r{i}"));
        doc.add_i64(grade, (i % 5) as i64);
        doc.add_text(eye, if i % 2 == 0 { "OD" } else { "OS" });
        doc.add_i64(sel, (i % 100) as i64);
        doc.add_text(
            report,
            format!("{} {}", WORDS[i % 12], WORDS[(i / 12) % 12]),
        );
        doc.add_u64(code64, c.words()[0]);
        hash.set(&mut doc, c)?;
        w.add_document(doc)?;
        if i % per_segment == per_segment - 1 {
            w.commit()?;
        }
    }
    w.commit()?;
    w.wait_merging_threads()?;
    let ingest_s = started.elapsed().as_secs_f64();
    index.reload()?;
    let searcher = index.reader().searcher();
    let segments = searcher.segment_readers().len();
    let mut bytes_total = 0u64;
    let mut bytes_mih = 0u64;
    for e in std::fs::read_dir(dir.path())? {
        let e = e?;
        let len = e.metadata()?.len();
        bytes_total += len;
        if e.path()
            .extension()
            .is_some_and(|x| x == "mih" || x == "mihnone")
        {
            bytes_mih += len;
        }
    }

    // (a) the engine alone, one table over all codes.
    let engine = MihIndex::open(MihBuilder::new(64)?.build(&codes)?)?;
    let (engine_p50, engine_p99) = time(&queries, |q| {
        engine.knn(q, 10, &SearchOptions::default()).unwrap()
    });
    // The field.
    let (img_p50, img_p99) = time(&queries, |q| {
        knn(
            &index,
            &searcher,
            q,
            &KnnRequest {
                k: 10,
                ..Default::default()
            },
        )
        .unwrap()
    });
    let parser = QueryParser::for_index(index.index(), vec![report]);
    let mut filtered = Vec::new();
    for pct in [1, 10, 50] {
        let filter = parser.parse_query(&format!("sel:[0 TO {}]", pct - 1))?;
        let (p50, p99) = time(&queries, |q| {
            knn(
                &index,
                &searcher,
                q,
                &KnnRequest {
                    k: 10,
                    filter: Some(filter.as_ref()),
                    ..Default::default()
                },
            )
            .unwrap()
        });
        filtered.push(json!({"selectivity_pct": pct, "p50_ms": p50, "p99_ms": p99}));
    }
    let (rrf_p50, rrf_p99) = time(&queries, |q| {
        hybrid::search(
            &index,
            &searcher,
            &hybrid::Request {
                code: Some(q),
                text: Some(parser.parse_query("exudates").unwrap()),
                filter: None,
                k: 10,
                radius: None,
                mode: Mode::Rrf,
            },
        )
        .unwrap()
    });
    // (b) what a tantivy user writes without the plugin.
    let (naive_p50, naive_p99) = time(&queries, |q| {
        searcher.search(&AllQuery, &naive_top10(q)).unwrap()
    });
    // Same answers: the naive scan is exact too.
    for q in queries.iter().take(20) {
        let ours: Vec<u32> = knn(
            &index,
            &searcher,
            q,
            &KnnRequest {
                k: 10,
                ..Default::default()
            },
        )?
        .iter()
        .filter_map(|h| h.distance)
        .collect();
        let naive: Vec<u32> = searcher
            .search(&AllQuery, &naive_top10(q))?
            .iter()
            .map(|(s, _)| (-s) as u32)
            .collect();
        assert_eq!(ours, naive, "the plugin and the scan disagree");
    }

    let out = json!({
        "n": n, "queries": nq, "segments": segments,
        "ingest_s": ingest_s, "ingest_records_per_s": n as f64 / ingest_s,
        "bytes_per_doc_total": bytes_total as f64 / n as f64,
        "bytes_per_doc_hash_files": bytes_mih as f64 / n as f64,
        "engine_knn10": {"p50_ms": engine_p50, "p99_ms": engine_p99},
        "field_knn10": {"p50_ms": img_p50, "p99_ms": img_p99},
        "field_filtered_knn10": filtered,
        "field_rrf_knn10": {"p50_ms": rrf_p50, "p99_ms": rrf_p99},
        "naive_fastfield_scan_knn10": {"p50_ms": naive_p50, "p99_ms": naive_p99},
    });
    println!("\n# index benchmark: {n} docs in {segments} segments, 64-bit clustered codes, {nq} queries, k=10\n");
    println!("| query | p50 ms | p99 ms |\n|---|---|---|");
    println!("| mih engine alone (one table) | {engine_p50:.4} | {engine_p99:.4} |");
    println!("| binary_hash field, image only | {img_p50:.4} | {img_p99:.4} |");
    for f in &filtered {
        println!(
            "| field, image + filter {}% | {:.4} | {:.4} |",
            f["selectivity_pct"],
            f["p50_ms"].as_f64().unwrap(),
            f["p99_ms"].as_f64().unwrap()
        );
    }
    println!("| field, hybrid rrf (text \"exudates\") | {rrf_p50:.4} | {rrf_p99:.4} |");
    println!(
        "| u64 fast field + scoring collector (no plugin) | {naive_p50:.4} | {naive_p99:.4} |"
    );
    println!(
        "\nfield / engine (image only, p50): {:.2}x; no-plugin scan / field: {:.1}x",
        img_p50 / engine_p50,
        naive_p50 / img_p50
    );
    println!(
        "ingest: {:.0} records/s (2 threads, precomputed codes, short reports); index {:.1} bytes/doc in all, {:.1} in the .mih/.mihnone files",
        n as f64 / ingest_s,
        bytes_total as f64 / n as f64,
        bytes_mih as f64 / n as f64
    );
    std::fs::write(
        "target/bench-index.json",
        serde_json::to_string_pretty(&out)?,
    )?;
    Ok(())
}
