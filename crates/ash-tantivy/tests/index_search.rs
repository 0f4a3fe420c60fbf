//! The binary_hash field end to end: exact k-NN, radius queries and hybrid
//! ranking across many segments, deletes, re-ingests, merges and reopen,
//! checked against brute force over the same records.

use std::collections::BTreeMap;

use ash_mih::code::BinaryCode;
use ash_mih::synth::{generate, Spread};
use ash_tantivy::hybrid::{self, Mode};
use ash_tantivy::FilterStrategy;
use ash_tantivy::{add_hash_field, FilterKey, FilterStats, HashField, HashIndex, Hit, Remember};
use ash_tantivy::{knn, knn_explained, KnnRequest};
use tantivy::collector::TopDocs;
use tantivy::indexer::NoMergePolicy;
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, Value, FAST, INDEXED, STORED, STRING, TEXT,
};
use tantivy::{IndexWriter, Searcher, TantivyDocument, Term};

const BITS: usize = 32;

struct Fields {
    id: Field,
    sel: Field,
    report: Field,
    hash: HashField,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let id = b.add_text_field("id", STRING | STORED);
    let sel = b.add_i64_field("sel", INDEXED | FAST | STORED);
    let report = b.add_text_field("report", TEXT | STORED);
    let hash = add_hash_field(&mut b, "code", BITS).unwrap();
    (
        b.build(),
        Fields {
            id,
            sel,
            report,
            hash,
        },
    )
}

/// The model the index must agree with: id → (code, sel, report).
type Model = BTreeMap<String, (Option<BinaryCode>, i64, String)>;

fn upsert(
    w: &mut IndexWriter,
    f: &Fields,
    model: &mut Model,
    id: &str,
    code: Option<BinaryCode>,
    sel: i64,
) {
    let report = if sel % 7 == 0 {
        "hard exudates near the macula"
    } else {
        "no findings"
    }
    .to_string();
    w.delete_term(Term::from_field_text(f.id, id));
    let mut doc = TantivyDocument::new();
    doc.add_text(f.id, id);
    doc.add_i64(f.sel, sel);
    doc.add_text(f.report, &report);
    if let Some(c) = &code {
        f.hash.set(&mut doc, c).unwrap();
    }
    w.add_document(doc).unwrap();
    model.insert(id.to_string(), (code, sel, report));
}

/// (distance, id) of every live doc with a code that `keep` accepts, sorted.
fn brute(model: &Model, q: &BinaryCode, keep: &dyn Fn(i64) -> bool) -> Vec<(u32, String)> {
    let mut v: Vec<(u32, String)> = model
        .iter()
        .filter(|(_, (c, sel, _))| c.is_some() && keep(*sel))
        .map(|(id, (c, _, _))| (c.unwrap().distance(q).unwrap(), id.clone()))
        .collect();
    v.sort();
    v
}

fn id_of(searcher: &Searcher, f: &Fields, a: tantivy::DocAddress) -> String {
    let doc: TantivyDocument = searcher.doc(a).unwrap();
    doc.get_first(f.id)
        .and_then(|v| v.as_str())
        .unwrap()
        .to_string()
}

/// Exact top-k: same distances, same ids below the k-th distance, and ids at
/// the k-th distance drawn from the tied ones.
fn assert_same_topk(got: &[(u32, String)], all: &[(u32, String)], k: usize, what: &str) {
    let want = &all[..k.min(all.len())];
    assert_eq!(got.len(), want.len(), "{what}: count");
    let gd: Vec<u32> = got.iter().map(|g| g.0).collect();
    let wd: Vec<u32> = want.iter().map(|w| w.0).collect();
    assert_eq!(gd, wd, "{what}: distances");
    if let Some(&(kth, _)) = want.last() {
        for (d, id) in got {
            assert!(
                all.iter().any(|(d2, id2)| d2 == d && id2 == id),
                "{what}: {id} at {d} is not in the data"
            );
            if *d < kth {
                assert!(
                    want.iter().any(|(_, w)| w == id),
                    "{what}: {id} missing below the k-th distance"
                );
            }
        }
    }
}

fn filter_for(index: &HashIndex, f: &Fields, per_mille: i64) -> Option<Box<dyn Query>> {
    let parser = QueryParser::for_index(index.index(), vec![f.sel]);
    match per_mille {
        1000 => None,
        0 => Some(parser.parse_query("sel:[1000 TO 2000]").unwrap()),
        1 => Some(parser.parse_query("sel:7").unwrap()),
        p => Some(
            parser
                .parse_query(&format!("sel:[0 TO {}]", p - 1))
                .unwrap(),
        ),
    }
}

const STRATEGIES: [FilterStrategy; 3] = [
    FilterStrategy::Auto,
    FilterStrategy::AllowList,
    FilterStrategy::Candidates,
];

fn check_all(index: &HashIndex, f: &Fields, model: &Model, queries: &[BinaryCode]) {
    index.reload().unwrap();
    let searcher = index.reader().searcher();
    let parser = QueryParser::for_index(index.index(), vec![f.report]);
    for q in queries {
        for per_mille in [0i64, 1, 100, 900, 1000] {
            let filter = filter_for(index, f, per_mille);
            let keep = move |sel: i64| {
                per_mille == 1000
                    || (per_mille == 1 && sel == 7)
                    || (per_mille > 1 && sel < per_mille)
            };
            let all = brute(model, q, &keep);
            let with_text = brute(model, q, &|sel| keep(sel) && sel % 7 == 0);
            for strategy in STRATEGIES {
                for k in [1usize, 10, 50, model.len() + 5] {
                    let hits = knn(
                        index,
                        &searcher,
                        q,
                        &KnnRequest {
                            k,
                            filter: filter.as_deref(),
                            strategy,
                            ..Default::default()
                        },
                    )
                    .unwrap();
                    let got = ranked(&searcher, f, &hits);
                    let what = format!("knn k={k} filter={per_mille} {strategy:?}");
                    assert_same_topk(&got, &all, k, &what);
                }
                // Text restricts too (filter mode): both are checked.
                let hits = hybrid::search(
                    index,
                    &searcher,
                    &hybrid::Request {
                        code: Some(q),
                        text: Some(parser.parse_query("exudates").unwrap()),
                        filter: filter.as_ref().map(|b| b.box_clone()),
                        k: 10,
                        strategy,
                        ..Default::default()
                    },
                )
                .unwrap();
                let got = ranked(&searcher, f, &hits);
                let what = format!("text+filter={per_mille} {strategy:?}");
                assert_same_topk(&got, &with_text, 10, &what);
                check_text_ranking(index, &searcher, &parser, filter.as_deref(), strategy);
            }
        }
        // Radius query, alone and inside a BooleanQuery with a term query.
        for radius in [0u32, 3, 8] {
            let query = index.hamming_query(*q, radius).unwrap();
            let found = searcher
                .search(&query, &TopDocs::with_limit(100_000).order_by_score())
                .unwrap();
            let mut got: Vec<(u32, String)> = found
                .iter()
                .map(|(score, a)| {
                    (
                        ((1.0 - score) * BITS as f32).round() as u32,
                        id_of(&searcher, f, *a),
                    )
                })
                .collect();
            got.sort();
            let want: Vec<_> = brute(model, q, &|_| true)
                .into_iter()
                .filter(|(d, _)| *d <= radius)
                .collect();
            assert_eq!(got, want, "radius {radius}");
            let both = BooleanQuery::new(vec![
                (Occur::Must, Box::new(query.clone()) as Box<dyn Query>),
                (
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_i64(f.sel, 7),
                        IndexRecordOption::Basic,
                    )),
                ),
            ]);
            let n = searcher.search(&both, &tantivy::collector::Count).unwrap();
            assert_eq!(n, want.iter().filter(|(_, id)| model[id].1 == 7).count());
        }
    }
}

/// Hits as (distance, id), for [`assert_same_topk`].
fn ranked(searcher: &Searcher, f: &Fields, hits: &[Hit]) -> Vec<(u32, String)> {
    hits.iter()
        .map(|h| (h.distance.unwrap(), id_of(searcher, f, h.address)))
        .collect()
}

/// The text ranking under a filter, by each strategy, against tantivy's
/// own `TopDocs` over text AND filter (the filter scoring 0).
fn check_text_ranking(
    index: &HashIndex,
    searcher: &Searcher,
    parser: &QueryParser,
    filter: Option<&dyn Query>,
    strategy: FilterStrategy,
) {
    let text = parser.parse_query("exudates macula").unwrap();
    let reference: Box<dyn Query> = match filter {
        Some(fq) => Box::new(BooleanQuery::new(vec![
            (Occur::Must, text.box_clone()),
            (
                Occur::Must,
                Box::new(ConstScoreQuery::new(fq.box_clone(), 0.0)),
            ),
        ])),
        None => text.box_clone(),
    };
    let want = searcher
        .search(
            reference.as_ref(),
            &TopDocs::with_limit(30).order_by_score(),
        )
        .unwrap();
    let got = hybrid::search(
        index,
        searcher,
        &hybrid::Request {
            text: Some(text),
            filter: filter.map(|q| q.box_clone()),
            k: 30,
            strategy,
            ..Default::default()
        },
    )
    .unwrap();
    let got: Vec<(f32, tantivy::DocAddress)> = got.iter().map(|h| (h.score, h.address)).collect();
    assert_eq!(got, want, "text ranking, {strategy:?}");
}

/// A plain k-NN request: no filter, no text, no radius.
fn nearest(k: usize) -> KnnRequest<'static> {
    KnnRequest {
        k,
        ..Default::default()
    }
}

fn codes(n: usize, seed: u64) -> Vec<BinaryCode> {
    generate(
        n,
        BITS,
        Spread::Clustered {
            centres: 12,
            flip: 0.1,
        },
        9,
        seed,
    )
    .unwrap()
}

#[test]
fn knn_and_radius_match_brute_force_across_segments_deletes_merges_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (schema, f) = schema();
    let index = HashIndex::create_in_dir(dir.path(), schema).unwrap();
    let mut w: IndexWriter = index.writer(20_000_000).unwrap();
    w.set_merge_policy(Box::new(NoMergePolicy));
    let mut model = Model::new();
    let base = codes(3000, 1);
    for (i, c) in base.iter().enumerate() {
        // Every 13th doc has no code.
        let code = (i % 13 != 5).then_some(*c);
        upsert(
            &mut w,
            &f,
            &mut model,
            &format!("d{i}"),
            code,
            (i % 1000) as i64,
        );
        if i % 400 == 399 {
            w.commit().unwrap();
        }
    }
    w.commit().unwrap();
    // Deletes and re-ingests of the same ids with new codes.
    let fresh = codes(300, 2);
    for (j, c) in fresh.iter().enumerate() {
        let id = format!("d{}", j * 7);
        if j % 3 == 0 {
            w.delete_term(Term::from_field_text(f.id, &id));
            model.remove(&id);
        } else {
            upsert(&mut w, &f, &mut model, &id, Some(*c), (j * 7 % 1000) as i64);
        }
    }
    w.commit().unwrap();
    let queries = codes(6, 3);
    index.reload().unwrap();
    assert!(index.reader().searcher().segment_readers().len() >= 8);
    check_all(&index, &f, &model, &queries);

    // Explicit merge of half of the segments, then of all.
    let ids = index.index().searchable_segment_ids().unwrap();
    w.merge(&ids[..ids.len() / 2]).wait().unwrap();
    check_all(&index, &f, &model, &queries);
    let ids = index.index().searchable_segment_ids().unwrap();
    w.merge(&ids).wait().unwrap();
    check_all(&index, &f, &model, &queries);
    assert_eq!(index.reader().searcher().segment_readers().len(), 1);
    drop(w);

    // Reopen: the plugin is registered again by HashIndex::open_in_dir.
    let reopened = HashIndex::open_in_dir(dir.path()).unwrap();
    check_all(&reopened, &f, &model, &queries);
    let mut w: IndexWriter = reopened.writer(20_000_000).unwrap();
    upsert(&mut w, &f, &mut model, "late", Some(queries[0]), 3);
    w.commit().unwrap();
    w.wait_merging_threads().unwrap();
    check_all(&reopened, &f, &model, &queries);
}

#[test]
fn default_merge_policy_keeps_answers_exact() {
    let (schema, f) = schema();
    let index = HashIndex::create_in_ram(schema).unwrap();
    let mut w: IndexWriter = index.writer_with_threads(1);
    let mut model = Model::new();
    for (i, c) in codes(2500, 4).iter().enumerate() {
        upsert(
            &mut w,
            &f,
            &mut model,
            &format!("m{i}"),
            Some(*c),
            (i % 1000) as i64,
        );
        if i % 100 == 99 {
            w.commit().unwrap();
        }
    }
    w.commit().unwrap();
    w.wait_merging_threads().unwrap();
    check_all(&index, &f, &model, &codes(4, 5));
}

trait OneThread {
    fn writer_with_threads(&self, n: usize) -> IndexWriter;
}

impl OneThread for HashIndex {
    fn writer_with_threads(&self, n: usize) -> IndexWriter {
        self.index().writer_with_num_threads(n, 20_000_000).unwrap()
    }
}

#[test]
fn index_without_codes_and_wrong_lengths() {
    let (schema, f) = schema();
    let index = HashIndex::create_in_ram(schema).unwrap();
    let mut w = index.writer(20_000_000).unwrap();
    let mut model = Model::new();
    for i in 0..50 {
        upsert(&mut w, &f, &mut model, &format!("n{i}"), None, i);
    }
    w.commit().unwrap();
    index.reload().unwrap();
    let searcher = index.reader().searcher();
    let q = BinaryCode::zeros(BITS).unwrap();
    assert!(knn(&index, &searcher, &q, &nearest(5)).unwrap().is_empty());
    let query = index.hamming_query(q, BITS as u32).unwrap();
    assert_eq!(
        searcher.search(&query, &tantivy::collector::Count).unwrap(),
        0
    );

    let mut doc = TantivyDocument::new();
    let err = f
        .hash
        .set(&mut doc, &BinaryCode::zeros(24).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("field code") && err.contains("24 bits") && err.contains("takes 32"),
        "{err}"
    );
    let err = f.hash.parse(&[0u8; 3]).unwrap_err().to_string();
    assert!(err.contains("takes 4 bytes, got 3 bytes"), "{err}");
    assert!(knn(
        &index,
        &searcher,
        &BinaryCode::zeros(12).unwrap(),
        &nearest(1)
    )
    .is_err());
}

#[test]
fn hybrid_modes_rank_as_documented() {
    let (schema, f) = schema();
    let index = HashIndex::create_in_ram(schema).unwrap();
    let mut w = index.writer(20_000_000).unwrap();
    let mut model = Model::new();
    let cs = codes(400, 6);
    for (i, c) in cs.iter().enumerate() {
        upsert(
            &mut w,
            &f,
            &mut model,
            &format!("h{i}"),
            Some(*c),
            (i % 1000) as i64,
        );
    }
    w.commit().unwrap();
    index.reload().unwrap();
    let searcher = index.reader().searcher();
    let parser = QueryParser::for_index(index.index(), vec![f.report]);
    let q = cs[3];
    let text = || parser.parse_query("exudates").unwrap();
    // Text "exudates", no filter, no radius.
    let search = |code: Option<&BinaryCode>, k: usize, mode: Mode| {
        let req = hybrid::Request {
            code,
            text: Some(text()),
            k,
            mode,
            ..Default::default()
        };
        hybrid::search(&index, &searcher, &req).unwrap()
    };

    // filter: only text matches, ranked by distance.
    let hits = search(Some(&q), 20, Mode::Filter);
    let all = brute(&model, &q, &|sel| sel % 7 == 0);
    let got = ranked(&searcher, &f, &hits);
    assert_same_topk(&got, &all, 20, "filter mode");
    assert!(hits.iter().all(|h| h.text_score.unwrap() > 0.0));

    // rrf: scores are sums of 1/(60 + rank); the best doc in both lists leads.
    let hits = search(Some(&q), 10, Mode::Rrf);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(
        hits[0].score <= 2.0 / 61.0 + 1e-6 && hits[0].score > 1.0 / 61.0,
        "{}",
        hits[0].score
    );

    // weighted with w = 1 is pure image similarity; w = 0 pure normalised BM25.
    let hits = search(Some(&q), 5, Mode::Weighted(1.0));
    let all = brute(&model, &q, &|_| true);
    assert_eq!(
        hits.iter().map(|h| h.distance.unwrap()).collect::<Vec<_>>(),
        all[..5].iter().map(|a| a.0).collect::<Vec<_>>()
    );
    for h in &hits {
        assert!((h.score - (1.0 - h.distance.unwrap() as f32 / BITS as f32)).abs() < 1e-6);
    }
    let hits = search(Some(&q), 5, Mode::Weighted(0.0));
    assert!((hits[0].score - 1.0).abs() < 1e-6);
    assert!(hits
        .iter()
        .all(|h| model[&id_of(&searcher, &f, h.address)].1 % 7 == 0));

    // text only.
    let hits = search(None, 1000, Mode::Filter);
    assert_eq!(hits.len(), model.values().filter(|m| m.1 % 7 == 0).count());
}

#[test]
fn readers_stay_exact_while_a_writer_commits_and_merges() {
    let (schema, f) = schema();
    let index = std::sync::Arc::new(HashIndex::create_in_ram(schema).unwrap());
    let cs = codes(1500, 7);
    let writer_index = index.clone();
    let id_field = f.id;
    let sel_field = f.sel;
    let hash = f.hash.clone();
    let report = f.report;
    let writer = std::thread::spawn(move || {
        let f = Fields {
            id: id_field,
            sel: sel_field,
            report,
            hash,
        };
        let mut w = writer_index.writer(20_000_000).unwrap();
        let mut model = Model::new();
        for (i, c) in cs.iter().enumerate() {
            upsert(
                &mut w,
                &f,
                &mut model,
                &format!("c{}", i % 900),
                Some(*c),
                (i % 1000) as i64,
            );
            if i % 50 == 49 {
                w.commit().unwrap();
            }
        }
        w.commit().unwrap();
        w.wait_merging_threads().unwrap();
    });
    let q = codes(1, 8)[0];
    let mut rounds = 0;
    while !writer.is_finished() || rounds < 3 {
        index.reload().unwrap();
        let searcher = index.reader().searcher();
        // Brute force over this snapshot: stored sel/id plus each segment's codes.
        let mut all = Vec::new();
        for (ord, r) in searcher.segment_readers().iter().enumerate() {
            let codes = index.codes(r).unwrap();
            for doc in r.doc_ids_alive() {
                if let Some(c) = codes.code(doc) {
                    all.push((
                        c.distance(&q).unwrap(),
                        id_of(&searcher, &f, tantivy::DocAddress::new(ord as u32, doc)),
                    ));
                }
            }
        }
        all.sort();
        let hits = knn(&index, &searcher, &q, &nearest(25)).unwrap();
        let got = ranked(&searcher, &f, &hits);
        assert_same_topk(&got, &all, 25, "concurrent");
        let ids: std::collections::HashSet<_> = got.iter().map(|g| &g.1).collect();
        assert_eq!(ids.len(), got.len(), "an id appears twice");
        rounds += 1;
    }
    writer.join().unwrap();
}

#[test]
fn explain_boost_cache_and_sorting_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let (schema, f) = schema();
    let index = HashIndex::create_in_dir(dir.path(), schema.clone()).unwrap();
    let mut w: IndexWriter = index.writer(20_000_000).unwrap();
    w.set_merge_policy(Box::new(NoMergePolicy));
    let mut model = Model::new();
    let cs = codes(200, 11);
    for (i, c) in cs.iter().enumerate() {
        upsert(&mut w, &f, &mut model, &format!("e{i}"), Some(*c), i as i64);
        if i % 50 == 49 {
            w.commit().unwrap();
        }
    }
    index.reload().unwrap();
    let searcher = index.reader().searcher();
    let query = index.hamming_query(cs[0], 6).unwrap();
    let hits = searcher
        .search(&query, &TopDocs::with_limit(5).order_by_score())
        .unwrap();
    for (score, address) in &hits {
        let e = query.explain(&searcher, *address).unwrap();
        assert!((e.value() - score).abs() < 1e-6);
    }
    let boosted = tantivy::query::BoostQuery::new(Box::new(query.clone()), 2.0);
    let twice = searcher
        .search(&boosted, &TopDocs::with_limit(5).order_by_score())
        .unwrap();
    assert!((twice[0].0 - 2.0 * hits[0].0).abs() < 1e-6);

    // The cache holds the segments of live searchers only, opened when the
    // searcher is made (not at the first query), so a searcher made before
    // a merge still answers after the merge collected its segments' files.
    assert_eq!(index.cached_segments(), 4);
    let before = knn(&index, &searcher, &cs[0], &nearest(3)).unwrap();
    w.merge(&index.index().searchable_segment_ids().unwrap())
        .wait()
        .unwrap();
    w.garbage_collect_files().wait().unwrap();
    index.reload().unwrap();
    assert_eq!(index.cached_segments(), 5, "the old searcher still holds 4");
    assert_eq!(knn(&index, &searcher, &cs[0], &nearest(3)).unwrap(), before);
    drop(searcher);
    // tantivy collects dead generations every second, in the background.
    let started = std::time::Instant::now();
    while index.cached_segments() != 1 {
        assert!(
            started.elapsed().as_secs() < 10,
            "{} cached",
            index.cached_segments()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let searcher = index.reader().searcher();
    let after = knn(&index, &searcher, &cs[0], &nearest(3)).unwrap();
    assert_eq!(
        after.iter().map(|h| h.distance).collect::<Vec<_>>(),
        before.iter().map(|h| h.distance).collect::<Vec<_>>()
    );
    drop(w);

    // An index sorted by a field cannot hold codes in doc-id order.
    let sorted_dir = tempfile::tempdir().unwrap();
    let settings = tantivy::IndexSettings {
        sort_by_field: Some(tantivy::IndexSortByField {
            field: "sel".into(),
            order: tantivy::Order::Asc,
        }),
        ..Default::default()
    };
    let field = ash_tantivy::find_hash_field(&schema).unwrap();
    tantivy::Index::builder()
        .schema(schema)
        .settings(settings)
        .register_plugin(std::sync::Arc::new(ash_tantivy::BinaryHashPlugin::new(
            field,
        )))
        .create_in_dir(sorted_dir.path())
        .unwrap();
    let err = HashIndex::open_in_dir(sorted_dir.path())
        .err()
        .expect("sorted index refused")
        .to_string();
    assert!(err.contains("index sorting"), "{err}");
}

#[test]
fn the_filter_strategy_follows_the_share_and_explain_shows_it() {
    let (schema, f) = schema();
    let index = HashIndex::create_in_ram(schema).unwrap();
    let mut w: IndexWriter = index.writer_with_threads(1);
    let mut model = Model::new();
    for (i, c) in codes(60_000, 8).iter().enumerate() {
        upsert(
            &mut w,
            &f,
            &mut model,
            &format!("s{i}"),
            Some(*c),
            (i % 1000) as i64,
        );
    }
    w.commit().unwrap();
    w.wait_merging_threads().unwrap();
    index.reload().unwrap();
    let searcher = index.reader().searcher();
    assert_eq!(searcher.segment_readers().len(), 1);
    let q = codes(1, 9)[0];
    // (filter, share kept, strategy auto must pick)
    for (per_mille, want) in [
        (1, FilterStrategy::AllowList),
        (900, FilterStrategy::Candidates),
    ] {
        let filter = filter_for(&index, &f, per_mille).unwrap();
        let (hits, plans) = knn_explained(
            &index,
            &searcher,
            &q,
            &KnnRequest {
                k: 10,
                filter: Some(filter.as_ref()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].strategy, Some(want), "filter {per_mille}‰");
        let share = plans[0].share.unwrap();
        let truth = per_mille as f64 / 1000.0;
        assert!(
            share > truth / 3.0 && share < (truth * 3.0).min(1.01),
            "estimated share {share} for {truth}"
        );
        if want == FilterStrategy::Candidates {
            // One round sufficed and met far fewer codes than the filter keeps.
            assert_eq!(plans[0].rounds, 1);
            assert!(plans[0].depth < 100, "depth {}", plans[0].depth);
        }
        let keep = |sel: i64| if per_mille == 1 { sel == 7 } else { sel < 900 };
        let got = ranked(&searcher, &f, &hits);
        assert_same_topk(&got, &brute(&model, &q, &keep), 10, "explained");
    }
    // A filter whose matches all lie far from the query makes the
    // candidates strategy go deeper, or give up for an allow-list, and
    // still answer exactly.
    let far = brute(&model, &q, &|_| true);
    let far_id = &far.last().unwrap().1;
    let far_sel = model[far_id].1;
    let filter = filter_for(&index, &f, 1000).unwrap_or_else(|| {
        QueryParser::for_index(index.index(), vec![f.sel])
            .parse_query(&format!("sel:{far_sel}"))
            .unwrap()
    });
    let (hits, plans) = knn_explained(
        &index,
        &searcher,
        &q,
        &KnnRequest {
            k: 3,
            filter: Some(filter.as_ref()),
            strategy: FilterStrategy::Candidates,
            ..Default::default()
        },
    )
    .unwrap();
    let got = ranked(&searcher, &f, &hits);
    assert_same_topk(&got, &brute(&model, &q, &|s| s == far_sel), 3, "far filter");
    assert!(plans[0].rounds > 1 || plans[0].fell_back, "{plans:?}");
}

#[test]
fn filter_statistics_change_the_plan_never_the_hits() {
    let (schema, f) = schema();
    let index = HashIndex::create_in_ram(schema).unwrap();
    let mut w: IndexWriter = index.writer_with_threads(1);
    let mut model = Model::new();
    for (i, c) in codes(30_000, 11).iter().enumerate() {
        upsert(
            &mut w,
            &f,
            &mut model,
            &format!("t{i}"),
            Some(*c),
            (i % 1000) as i64,
        );
    }
    w.commit().unwrap();
    w.wait_merging_threads().unwrap();
    index.reload().unwrap();
    let searcher = index.reader().searcher();
    let text_parser = QueryParser::for_index(index.index(), vec![f.report]);
    let stats = FilterStats::default();
    let key = FilterKey::new(Some("sel:7"), Some("exudates"));
    let q = codes(1, 12)[0];
    let run = |remember: Option<Remember>, mode: Mode| {
        let req = hybrid::Request {
            code: Some(&q),
            text: Some(text_parser.parse_query("exudates").unwrap()),
            filter: filter_for(&index, &f, 1),
            k: 10,
            mode,
            remember,
            ..Default::default()
        };
        hybrid::search_explained(&index, &searcher, &req).unwrap()
    };
    for mode in [Mode::Filter, Mode::Rrf] {
        let (fresh, fresh_plan) = run(None, mode);
        let remember = Remember {
            stats: &stats,
            key: &key,
        };
        let (first, first_plan) = run(Some(remember), mode);
        let (again, again_plan) = run(Some(remember), mode);
        assert_eq!(fresh, first, "{mode:?}");
        assert_eq!(fresh, again, "{mode:?}");
        assert!(!fresh.is_empty());
        // Without a cache, and the first time with one, nothing is known;
        // the second search starts from what the first learnt.
        assert!(fresh_plan.image.iter().all(|p| !p.remembered));
        assert!(first_plan.image.iter().all(|p| !p.remembered));
        assert!(again_plan.image.iter().all(|p| p.remembered), "{mode:?}");
        if mode == Mode::Rrf {
            assert!(again_plan.text.iter().all(|p| p.remembered));
        }
    }
    assert!(!stats.is_empty());
    // The shares learnt for the filter alone are not used for another key.
    let other = FilterKey::new(Some("sel:7"), None);
    let (_, plan) = run(
        Some(Remember {
            stats: &stats,
            key: &other,
        }),
        Mode::Filter,
    );
    assert!(plan.image.iter().all(|p| !p.remembered));
}

/// Filtered k-NN over segments too large to collect by default: the
/// candidates rounds run over all segments in lockstep, or give way to
/// walks; with and without remembered shares, after deletes, exact.
#[test]
fn filtered_knn_over_large_segments_matches_brute_force() {
    let (schema, f) = schema();
    let index = HashIndex::create_in_ram(schema).unwrap();
    let mut w: IndexWriter = index.writer_with_threads(1);
    w.set_merge_policy(Box::new(NoMergePolicy));
    let mut model = Model::new();
    for (i, c) in codes(24_000, 11).iter().enumerate() {
        let code = (i % 17 != 3).then_some(*c);
        let sel = ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as i64;
        upsert(&mut w, &f, &mut model, &format!("L{i}"), code, sel);
        if i % 6000 == 5999 {
            w.commit().unwrap();
        }
    }
    for i in (0..24_000).step_by(11) {
        let id = format!("L{i}");
        w.delete_term(Term::from_field_text(f.id, &id));
        model.remove(&id);
    }
    w.commit().unwrap();
    index.reload().unwrap();
    let searcher = index.reader().searcher();
    assert!(searcher.segment_readers().len() >= 4);
    let stats = FilterStats::default();
    for (n, q) in codes(12, 12).iter().enumerate() {
        for per_mille in [1i64, 10, 50, 100, 500, 1000] {
            let filter = filter_for(&index, &f, per_mille);
            let keep = move |sel: i64| {
                per_mille == 1000
                    || (per_mille == 1 && sel == 7)
                    || (per_mille > 1 && sel < per_mille)
            };
            let all = brute(&model, q, &keep);
            let key = FilterKey::new(Some(&format!("{per_mille}")), None);
            for strategy in STRATEGIES {
                for remember in [
                    None,
                    Some(Remember {
                        stats: &stats,
                        key: &key,
                    }),
                ] {
                    for k in [1usize, 10, 100] {
                        let hits = knn(
                            &index,
                            &searcher,
                            q,
                            &KnnRequest {
                                k,
                                filter: filter.as_deref(),
                                strategy,
                                remember,
                                max_distance: (n % 3 == 2).then_some(9),
                                ..Default::default()
                            },
                        )
                        .unwrap();
                        let within: Vec<(u32, String)> = all
                            .iter()
                            .filter(|h| n % 3 != 2 || h.0 <= 9)
                            .cloned()
                            .collect();
                        let what = format!(
                            "large k={k} filter={per_mille} {strategy:?} remembered={}",
                            remember.is_some()
                        );
                        assert_same_topk(&ranked(&searcher, &f, &hits), &within, k, &what);
                    }
                }
            }
        }
    }
}
