//! A tantivy application with its own schema and writer indexes fundus
//! photographs: [`ash_search::embed::CodeFiller`] encodes each document's
//! image with the shipped encoder and fills the `binary_hash` field beside
//! the application's own fields (the image-less sibling of
//! `crates/ash-tantivy/examples/embed_tantivy.rs`). The photographs come as
//! files and one as bytes; a broken file is left out and reported. Every
//! code is checked against the encoder run alone, and each photograph's
//! nearest neighbour is itself.
//!
//! ```text
//! cargo run --example embed_images
//! ```

use std::path::{Path, PathBuf};

use ash_encoder::{Encoder, EncoderOptions};
use ash_search::embed::{CodeFiller, Image};
use ash_tantivy::{add_hash_field, knn, HashIndex, KnnRequest};
use tantivy::schema::{Schema, Value, STORED, STRING, TEXT};
use tantivy::TantivyDocument;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let encoder = Encoder::load(
        &root.join("plugin/models/ash-synfundus-48"),
        &EncoderOptions::default(),
    )?;

    // The application's schema, plus the codes' field.
    let mut builder = Schema::builder();
    let id = builder.add_text_field("id", STRING | STORED);
    let report = builder.add_text_field("report", TEXT);
    let codes = add_hash_field(&mut builder, "ash_code", encoder.pin().bits)?;
    let dir = tempfile::tempdir()?;
    let index = HashIndex::create_in_dir(dir.path(), builder.build())?;
    let mut writer = index.writer(50_000_000)?;

    let images = root.join("tests/fixtures/ingest/images");
    let mut files: Vec<PathBuf> = (0..10)
        .map(|i| images.join(format!("case-{i:02}.png")))
        .collect();
    files.push(root.join("tests/fixtures/cc0/retina.jpg"));
    files.push(images.join("truncated.png"));
    let doc_for = |name: &str| {
        let mut doc = TantivyDocument::default();
        doc.add_text(id, name);
        doc.add_text(report, "colour fundus photograph");
        doc
    };
    let mut docs: Vec<(TantivyDocument, Image)> = files
        .iter()
        .map(|f| (doc_for(&name_of(f)), Image::Path(f.clone())))
        .collect();
    let microaneurysms = root.join("tests/fixtures/cc0/microaneurysms.png");
    docs.push((
        doc_for("microaneurysms"),
        Image::Bytes(std::fs::read(&microaneurysms)?),
    ));
    files.push(microaneurysms);

    // The hook: a few lines in the application.
    let filled = CodeFiller::new(&encoder, codes.clone())
        .batch(4)
        .add_documents(&writer, docs)?;
    writer.commit()?;
    index.reload()?;

    let broken = files.len() - 2;
    assert_eq!(filled.added, files.len() - 1);
    assert_eq!(filled.failed.len(), 1);
    assert_eq!(filled.failed[0].position, broken);
    println!(
        "indexed {} photographs; left out {} ({})",
        filled.added,
        name_of(&files[broken]),
        filled.failed[0].reason
    );

    // Each code equals the encoder's own, and finds its photograph first.
    let searcher = index.reader().searcher();
    for (position, file) in files.iter().enumerate() {
        if position == broken {
            continue;
        }
        let alone = encoder
            .encode_files(std::slice::from_ref(file), 1)
            .pop()
            .expect("one result")?;
        let hits = knn(
            &index,
            &searcher,
            &alone.code,
            &KnnRequest {
                k: files.len(),
                max_distance: Some(0),
                ..Default::default()
            },
        )?;
        // Photographs may share a code; this one must be among those at 0.
        let mut at_zero = Vec::new();
        for hit in &hits {
            let doc: TantivyDocument = searcher.doc(hit.address)?;
            at_zero.push(
                doc.get_first(id)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string(),
            );
        }
        assert!(
            at_zero.contains(&name_of(file)),
            "{}: {at_zero:?}",
            file.display()
        );
    }
    println!("every filled code equals the encoder's own and finds its photograph at distance 0");
    Ok(())
}

fn name_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}
