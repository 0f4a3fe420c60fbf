//! The ingestion hook for embedders (`ash_search::embed`): codes filled
//! into another application's documents, failures reported by position,
//! an encoder of the wrong length refused before any work.

use ash_encoder::{Encoder, EncoderOptions};
use ash_search::embed::{CodeFiller, FillError, Image};
use ash_tantivy::{add_hash_field, HashIndex};
use tantivy::schema::{Schema, STORED, STRING};
use tantivy::TantivyDocument;

use crate::common::server::ROOT;

fn encoder() -> Encoder {
    let dir = format!("{ROOT}/plugin/models/ash-synfundus-48");
    Encoder::load(dir.as_ref(), &EncoderOptions::default()).expect("the shipped encoder loads")
}

#[test]
fn files_and_bytes_get_the_encoders_codes_and_broken_images_are_reported() {
    let encoder = encoder();
    let mut builder = Schema::builder();
    let id = builder.add_text_field("id", STRING | STORED);
    let field = add_hash_field(&mut builder, "code", 48).unwrap();
    let index = HashIndex::create_in_ram(builder.build()).unwrap();
    let writer = index.writer(20_000_000).unwrap();
    let images = format!("{ROOT}/tests/fixtures/ingest/images");
    let inputs = [
        Image::Path(format!("{images}/case-03.png").into()),
        Image::Path(format!("{images}/not-an-image.png").into()),
        Image::Bytes(std::fs::read(format!("{images}/case-07.png")).unwrap()),
        Image::Bytes(b"GIF89a nothing".to_vec()),
        Image::Path(format!("{images}/bomb.png").into()),
    ];
    let docs = inputs.iter().enumerate().map(|(i, image)| {
        let mut doc = TantivyDocument::default();
        doc.add_text(id, format!("doc-{i}"));
        (doc, image.clone())
    });
    let filled = CodeFiller::new(&encoder, field.clone())
        .batch(2)
        .add_documents(&writer, docs)
        .unwrap();
    assert_eq!(filled.added, 2);
    let failed: Vec<usize> = filled.failed.iter().map(|f| f.position).collect();
    assert_eq!(failed, [1, 3, 4]);
    let mut writer = writer;
    writer.commit().unwrap();
    index.reload().unwrap();
    let searcher = index.reader().searcher();
    assert_eq!(searcher.num_docs(), 2);
    let expected = encoder.encode_files(
        &[
            format!("{images}/case-03.png").into(),
            format!("{images}/case-07.png").into(),
        ],
        2,
    );
    let mut stored = Vec::new();
    for reader in searcher.segment_readers() {
        let codes = index.codes(reader).unwrap();
        for doc in 0..reader.max_doc() {
            stored.push(codes.code(doc).unwrap());
        }
    }
    let mut want: Vec<_> = expected.into_iter().map(|e| e.unwrap().code).collect();
    stored.sort_by_key(|c| c.to_packed());
    want.sort_by_key(|c| c.to_packed());
    assert_eq!(stored, want);
}

#[test]
fn an_encoder_of_another_length_is_refused_before_any_work() {
    let encoder = encoder();
    let mut builder = Schema::builder();
    let field = add_hash_field(&mut builder, "code", 24).unwrap();
    let index = HashIndex::create_in_ram(builder.build()).unwrap();
    let writer = index.writer(20_000_000).unwrap();
    let docs = vec![(
        TantivyDocument::default(),
        Image::Path("never-read.png".into()),
    )];
    let refused = CodeFiller::new(&encoder, field).add_documents(&writer, docs);
    assert!(matches!(
        refused,
        Err(FillError::Bits {
            encoder: 48,
            bits: 24,
            ..
        })
    ));
}
