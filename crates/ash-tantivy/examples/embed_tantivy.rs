//! A tantivy application that already has its own schema, text fields and
//! `IndexWriter` adds a 48-bit `binary_hash` field with `ash-tantivy` alone,
//! indexes codes beside its documents, and runs one `BooleanQuery` of a
//! `TermQuery` and a `HammingQuery`; then an exact filtered k-NN. Every
//! answer is checked against a scan of the codes it indexed.
//!
//! ```text
//! cargo run -p ash-tantivy --example embed_tantivy
//! ```

use std::collections::BTreeSet;

use ash_mih::synth::{generate, Spread};
use ash_tantivy::{add_hash_field, HashIndex};
use ash_tantivy::{knn, KnnRequest};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{IndexRecordOption, Schema, Value, STORED, STRING, TEXT};
use tantivy::{TantivyDocument, Term};

const DOCS: usize = 20_000;
const BITS: usize = 48;
const RADIUS: u32 = 6;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The application's own schema...
    let mut builder = Schema::builder();
    let id = builder.add_text_field("id", STRING | STORED);
    let eye = builder.add_text_field("eye", STRING | STORED);
    let report = builder.add_text_field("report", TEXT);
    // ...with one more field: the codes.
    let code_field = add_hash_field(&mut builder, "ash_code", BITS)?;
    let dir = tempfile::tempdir()?;
    let index = HashIndex::create_in_dir(dir.path(), builder.build())?;

    let codes = generate(
        DOCS,
        BITS,
        Spread::Clustered {
            centres: 200,
            flip: 0.05,
        },
        7,
        8,
    )?;
    let eye_of = |i: usize| if i.is_multiple_of(3) { "OS" } else { "OD" };
    // The application's own writer; two commits make two segments.
    let mut writer = index.writer(50_000_000)?;
    for (i, code) in codes.iter().enumerate() {
        let mut doc = TantivyDocument::default();
        doc.add_text(id, format!("case-{i}"));
        doc.add_text(eye, eye_of(i));
        doc.add_text(report, "hard exudates near the fovea");
        code_field.set(&mut doc, code)?;
        writer.add_document(doc)?;
        if i == DOCS / 2 {
            writer.commit()?;
        }
    }
    writer.commit()?;
    index.reload()?;
    let searcher = index.reader().searcher();
    println!(
        "{DOCS} documents with {BITS}-bit codes in {} segments",
        searcher.segment_readers().len()
    );

    let query_code = codes[42];
    let left_eye: Box<dyn Query> = Box::new(TermQuery::new(
        Term::from_field_text(eye, "OS"),
        IndexRecordOption::Basic,
    ));
    let near: Box<dyn Query> = Box::new(index.hamming_query(query_code, RADIUS)?);
    let both = BooleanQuery::new(vec![
        (Occur::Must, left_eye.box_clone()),
        (Occur::Must, near),
    ]);
    let found: BTreeSet<String> = searcher
        .search(&both, &TopDocs::with_limit(DOCS).order_by_score())?
        .into_iter()
        .map(|(_, address)| {
            let doc: TantivyDocument = searcher.doc(address)?;
            Ok(doc
                .get_first(id)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string())
        })
        .collect::<tantivy::Result<_>>()?;
    let expected: BTreeSet<String> = codes
        .iter()
        .enumerate()
        .filter(|(i, c)| eye_of(*i) == "OS" && c.distance(&query_code).is_ok_and(|d| d <= RADIUS))
        .map(|(i, _)| format!("case-{i}"))
        .collect();
    println!(
        "eye:OS AND within {RADIUS} bits of case-42: {} documents",
        found.len()
    );
    assert_eq!(
        found, expected,
        "the BooleanQuery must match the scan exactly"
    );

    let hits = knn(
        &index,
        &searcher,
        &query_code,
        &KnnRequest {
            k: 10,
            filter: Some(left_eye.as_ref()),
            ..KnnRequest::default()
        },
    )?;
    let mut scan: Vec<u32> = codes
        .iter()
        .enumerate()
        .filter(|(i, _)| eye_of(*i) == "OS")
        .map(|(_, c)| c.distance(&query_code))
        .collect::<Result<_, _>>()?;
    scan.sort_unstable();
    let got: Vec<u32> = hits.iter().filter_map(|h| h.distance).collect();
    println!("10 nearest left eyes: distances {got:?}");
    assert_eq!(
        got,
        scan[..10],
        "k-NN must give the scan's 10 smallest distances"
    );
    drop(dir);
    Ok(())
}
