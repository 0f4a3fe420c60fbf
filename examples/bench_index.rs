//! The index half of `make bench`: the `binary_hash` field against (a) the
//! `mih` engine alone on the same codes and (b) what a tantivy user writes
//! without it (codes in a u64 fast field, every matching doc scored by a
//! collector). Filtered rows run twice: as chosen by cost, and forced to
//! the allow-list (every filter collected first). One process, one run,
//! same data and queries, one thread.
//!
//! cargo run --release --example bench_index [N] [QUERIES] [COMMITS]
//!
//! The figures also go to `target/bench-index.json` (relative to the
//! working directory), or to the path in `BENCH_INDEX_JSON`.
//!
//! Two indexing threads write each commit's documents, so COMMITS (default
//! 2) commits make twice as many segments.

use std::time::Instant;

use ash_mih::code::BinaryCode;
use ash_mih::synth::{generate, Spread};
use ash_mih::{MihBuilder, MihIndex, SearchOptions};
use ash_tantivy::hybrid::{self, Mode};
use ash_tantivy::FilterStrategy;
use ash_tantivy::{add_hash_field, FilterKey, FilterStats, HashIndex, Remember};
use ash_tantivy::{knn, knn_explained, KnnRequest};
use serde_json::json;
use tantivy::collector::TopDocs;
use tantivy::indexer::NoMergePolicy;
use tantivy::query::{AllQuery, QueryParser};
use tantivy::schema::{Schema, FAST, INDEXED, STORED, STRING, TEXT};
use tantivy::{DocId, Score, SegmentReader, TantivyDocument};

/// Two of these per report; `haemorrhages` is added to 40 % of reports
/// and `vasculitis` to 0.01 %.
const WORDS: [&str; 12] = [
    "microaneurysms",
    "exudates",
    "drusen",
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

/// A fixed pseudo-random value per doc (splitmix64).
fn scatter(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

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
    // `sel` is spread through doc order like a clinical attribute;
    // `cycle` runs 0..999 in doc order, the shape of a date ingested in
    // order (tantivy stores it blockwise-linear, which costs more to open).
    let sel = b.add_i64_field("sel", INDEXED | FAST);
    let cycle = b.add_i64_field("cycle", INDEXED | FAST);
    let report = b.add_text_field("report", TEXT | STORED);
    let code64 = b.add_u64_field("code64", FAST);
    let hash = add_hash_field(&mut b, "code", 64)?;
    let dir = tempfile::tempdir()?;
    let index = HashIndex::create_in_dir(dir.path(), b.build())?;

    // Ingest records with precomputed codes, in several segments.
    let started = Instant::now();
    let mut w = index.index().writer_with_num_threads(2, 400_000_000)?;
    w.set_merge_policy(Box::new(NoMergePolicy));
    // Two indexing threads and COMMITS commits: twice as many segments.
    let commits: usize = args.get(3).map_or(Ok(2), |a| a.parse())?;
    let per_segment = n.div_ceil(commits.max(1));
    for (i, c) in codes.iter().enumerate() {
        let mut doc = TantivyDocument::new();
        doc.add_text(id, format!("r{i}"));
        doc.add_i64(grade, (i % 5) as i64);
        doc.add_text(eye, if i % 2 == 0 { "OD" } else { "OS" });
        doc.add_i64(sel, (scatter(i as u64) % 1000) as i64);
        doc.add_i64(cycle, (i % 1000) as i64);
        let mut text = format!("{} {}", WORDS[i % 12], WORDS[(i / 12) % 12]);
        if i % 5 < 2 {
            text.push_str(" haemorrhages");
        }
        if i % 10_000 == 7 {
            text.push_str(" vasculitis");
        }
        doc.add_text(report, text);
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
    // What filters kept per segment, remembered across queries as the
    // server does.
    let stats = FilterStats::default();
    let knn_with =
        |q: &BinaryCode, filter: &dyn tantivy::query::Query, key: &FilterKey, strategy| {
            knn(
                &index,
                &searcher,
                q,
                &KnnRequest {
                    k: 10,
                    filter: Some(filter),
                    strategy,
                    remember: Some(Remember { stats: &stats, key }),
                    ..Default::default()
                },
            )
            .unwrap()
        };
    let mut filtered = Vec::new();
    let filters = [1, 10, 100, 500, 900]
        .map(|m| (m, format!("sel:[0 TO {}]", m - 1), ""))
        .into_iter()
        .chain([(500, "cycle:[0 TO 499]".to_string(), ", field in doc order")]);
    for (per_mille, text, note) in filters {
        let filter = parser.parse_query(&text)?;
        let key = FilterKey::new(Some(&text), None);
        let (p50, p99) = time(&queries, |q| {
            knn_with(q, filter.as_ref(), &key, FilterStrategy::Auto)
        });
        let (allow_p50, allow_p99) = time(&queries, |q| {
            knn_with(q, filter.as_ref(), &key, FilterStrategy::AllowList)
        });
        // What the cost model chose in each segment, for the first query.
        let (_, plans) = knn_explained(
            &index,
            &searcher,
            &queries[0],
            &KnnRequest {
                k: 10,
                filter: Some(filter.as_ref()),
                remember: Some(Remember {
                    stats: &stats,
                    key: &key,
                }),
                ..Default::default()
            },
        )?;
        let chosen: Vec<String> = plans
            .iter()
            .map(|p| {
                serde_json::to_value(p.strategy)
                    .unwrap()
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        // Both strategies agree (the allow-list is the reference).
        for q in queries.iter().take(20) {
            let a = knn_with(q, filter.as_ref(), &key, FilterStrategy::Auto);
            let b = knn_with(q, filter.as_ref(), &key, FilterStrategy::AllowList);
            assert_eq!(a, b, "the strategies disagree at {per_mille} per mille");
        }
        filtered.push(json!({
            "selectivity_pct": per_mille as f64 / 10.0,
            "filter": text,
            "note": note,
            "p50_ms": p50, "p99_ms": p99,
            "allow_list_p50_ms": allow_p50, "allow_list_p99_ms": allow_p99,
            "chosen": chosen,
        }));
    }
    let text_only = |word: &str| {
        let text = parser.parse_query(word).unwrap();
        time(&queries, |_| {
            hybrid::search(
                &index,
                &searcher,
                &hybrid::Request {
                    text: Some(text.box_clone()),
                    k: 10,
                    ..Default::default()
                },
            )
            .unwrap()
        })
    };
    let common = text_only("haemorrhages");
    let rare = text_only("vasculitis");
    let hybrid_row = |mode: Mode, filter: Option<&str>, strategy: FilterStrategy| {
        let text = parser.parse_query("haemorrhages").unwrap();
        let key = FilterKey::new(filter, Some("haemorrhages"));
        let filter = filter.map(|f| parser.parse_query(f).unwrap());
        time(&queries, |q| {
            hybrid::search(
                &index,
                &searcher,
                &hybrid::Request {
                    code: Some(q),
                    text: Some(text.box_clone()),
                    filter: filter.as_ref().map(|f| f.box_clone()),
                    k: 10,
                    mode,
                    strategy,
                    remember: Some(Remember {
                        stats: &stats,
                        key: &key,
                    }),
                    ..Default::default()
                },
            )
            .unwrap()
        })
    };
    let forty = Some("sel:[0 TO 399]");
    let hybrids = [
        ("filter mode", Mode::Filter, forty, FilterStrategy::Auto),
        (
            "filter mode, allow-list forced",
            Mode::Filter,
            forty,
            FilterStrategy::AllowList,
        ),
        ("rrf", Mode::Rrf, forty, FilterStrategy::Auto),
        (
            "rrf, allow-list forced",
            Mode::Rrf,
            forty,
            FilterStrategy::AllowList,
        ),
        ("rrf, no filter", Mode::Rrf, None, FilterStrategy::Auto),
        (
            "weighted 0.5",
            Mode::Weighted(0.5),
            forty,
            FilterStrategy::Auto,
        ),
    ];
    let mut hybrid_rows = Vec::new();
    for (name, mode, filter, strategy) in hybrids {
        let (p50, p99) = hybrid_row(mode, filter, strategy);
        hybrid_rows.push(json!({"row": name, "p50_ms": p50, "p99_ms": p99}));
    }
    // Radius 8: the field's HammingQuery through tantivy, and the engine.
    let (radius_p50, radius_p99) = time(&queries, |q| {
        let query = index.hamming_query(*q, 8).unwrap();
        searcher.search(&query, &tantivy::collector::Count).unwrap()
    });
    let (engine_radius_p50, engine_radius_p99) = time(&queries, |q| {
        engine.range(q, 8, &SearchOptions::default()).unwrap().len()
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

    // The same documents merged into one segment: what the segments cost.
    let merge_started = Instant::now();
    {
        let mut w: tantivy::IndexWriter = index.index().writer_with_num_threads(1, 200_000_000)?;
        let ids = index.index().searchable_segment_ids()?;
        w.merge(&ids).wait()?;
        w.wait_merging_threads()?;
    }
    let merge_s = merge_started.elapsed().as_secs_f64();
    index.reload()?;
    let one = index.reader().searcher();
    let one_knn = |q: &BinaryCode, filter: Option<&dyn tantivy::query::Query>, key: &FilterKey| {
        knn(
            &index,
            &one,
            q,
            &KnnRequest {
                k: 10,
                filter,
                remember: Some(Remember { stats: &stats, key }),
                ..Default::default()
            },
        )
        .unwrap()
    };
    let no_filter = FilterKey::new(None, None);
    let (one_p50, one_p99) = time(&queries, |q| one_knn(q, None, &no_filter));
    let (engine1_p50, engine1_p99) = time(&queries, |q| {
        engine.knn(q, 10, &SearchOptions::default()).unwrap()
    });
    let mut one_filtered = Vec::new();
    for per_mille in [1, 10, 100, 500, 900] {
        let text = format!("sel:[0 TO {}]", per_mille - 1);
        let filter = parser.parse_query(&text)?;
        let key = FilterKey::new(Some(&text), None);
        let (p50, p99) = time(&queries, |q| one_knn(q, Some(filter.as_ref()), &key));
        one_filtered.push(
            json!({"selectivity_pct": per_mille as f64 / 10.0, "p50_ms": p50, "p99_ms": p99}),
        );
    }

    let out = json!({
        "n": n, "queries": nq, "segments": segments,
        "ingest_s": ingest_s, "ingest_records_per_s": n as f64 / ingest_s,
        "bytes_per_doc_total": bytes_total as f64 / n as f64,
        "bytes_per_doc_hash_files": bytes_mih as f64 / n as f64,
        "engine_knn10": {"p50_ms": engine_p50, "p99_ms": engine_p99},
        "field_knn10": {"p50_ms": img_p50, "p99_ms": img_p99},
        "field_filtered_knn10": filtered,
        "text_only_common": {"p50_ms": common.0, "p99_ms": common.1},
        "text_only_rare": {"p50_ms": rare.0, "p99_ms": rare.1},
        "hybrid_40pct_word_40pct_filter": hybrid_rows,
        "engine_range8": {"p50_ms": engine_radius_p50, "p99_ms": engine_radius_p99},
        "field_range8": {"p50_ms": radius_p50, "p99_ms": radius_p99},
        "naive_fastfield_scan_knn10": {"p50_ms": naive_p50, "p99_ms": naive_p99},
        "one_segment": {
            "merge_s": merge_s,
            "engine_knn10": {"p50_ms": engine1_p50, "p99_ms": engine1_p99},
            "field_knn10": {"p50_ms": one_p50, "p99_ms": one_p99},
            "field_filtered_knn10": one_filtered,
        },
    });
    println!("\n# index benchmark: {n} docs in {segments} segments, 64-bit clustered codes, {nq} queries, k=10, one thread\n");
    println!("| query | p50 ms | p99 ms | / image only (p50) |\n|---|---|---|---|");
    let row = |name: &str, p50: f64, p99: f64| {
        println!("| {name} | {p50:.4} | {p99:.4} | {:.2}x |", p50 / img_p50);
    };
    row("mih engine alone (one table)", engine_p50, engine_p99);
    row("binary_hash field, image only", img_p50, img_p99);
    for f in &filtered {
        let pct = f["selectivity_pct"].as_f64().unwrap();
        row(
            &format!(
                "image + filter {pct}%{} (chosen: {})",
                f["note"].as_str().unwrap(),
                f["chosen"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            f["p50_ms"].as_f64().unwrap(),
            f["p99_ms"].as_f64().unwrap(),
        );
        row(
            &format!(
                "image + filter {pct}%{}, allow-list forced",
                f["note"].as_str().unwrap()
            ),
            f["allow_list_p50_ms"].as_f64().unwrap(),
            f["allow_list_p99_ms"].as_f64().unwrap(),
        );
    }
    row("text only, common word (40 %)", common.0, common.1);
    row("text only, rare word (0.01 %)", rare.0, rare.1);
    for h in &hybrid_rows {
        row(
            &format!(
                "hybrid {} (word 40 %, filter 40 %)",
                h["row"].as_str().unwrap()
            ),
            h["p50_ms"].as_f64().unwrap(),
            h["p99_ms"].as_f64().unwrap(),
        );
    }
    row(
        "radius 8: mih engine alone",
        engine_radius_p50,
        engine_radius_p99,
    );
    row(
        "radius 8: field HammingQuery + Count",
        radius_p50,
        radius_p99,
    );
    row(
        "u64 fast field + scoring collector (no plugin)",
        naive_p50,
        naive_p99,
    );
    println!(
        "\nfield / engine (image only, p50): {:.2}x; no-plugin scan / field: {:.1}x",
        img_p50 / engine_p50,
        naive_p50 / img_p50
    );
    println!("\n# the same documents merged into one segment ({merge_s:.0} s)\n");
    println!("| query | p50 ms | p99 ms | / image only, one segment (p50) |\n|---|---|---|---|");
    let row1 = |name: &str, p50: f64, p99: f64| {
        println!("| {name} | {p50:.4} | {p99:.4} | {:.2}x |", p50 / one_p50);
    };
    row1("mih engine alone (one table)", engine1_p50, engine1_p99);
    row1("binary_hash field, image only", one_p50, one_p99);
    for f in &one_filtered {
        row1(
            &format!("image + filter {}%", f["selectivity_pct"]),
            f["p50_ms"].as_f64().unwrap(),
            f["p99_ms"].as_f64().unwrap(),
        );
    }
    println!(
        "\nfield / engine (image only, one segment, p50): {:.2}x",
        one_p50 / engine1_p50
    );
    println!(
        "ingest: {:.0} records/s (2 threads, precomputed codes, short reports); index {:.1} bytes/doc in all, {:.1} in the .mih/.mihnone files",
        n as f64 / ingest_s,
        bytes_total as f64 / n as f64,
        bytes_mih as f64 / n as f64
    );
    // The figures `bench/compare_revisions.py` reads; run from outside a
    // checkout, `target/` may not exist, so it is made.
    let json_path = std::path::PathBuf::from(
        std::env::var_os("BENCH_INDEX_JSON").unwrap_or_else(|| "target/bench-index.json".into()),
    );
    if let Some(dir) = json_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&json_path, serde_json::to_string_pretty(&out)?)?;
    println!("figures written to {}", json_path.display());
    Ok(())
}
