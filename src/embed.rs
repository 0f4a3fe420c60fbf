//! Codes for someone else's tantivy documents: the ingestion hook for an
//! application that has its own schema, its own `IndexWriter` and images
//! (files or bytes) beside its documents.
//!
//! How it works: [`CodeFiller::add_documents`] takes `(document, image)`
//! pairs. A producer thread cuts them into batches and decodes each batch's
//! images in parallel (rayon), within the encoder's image limits; this
//! thread encodes a batch while the next one is decoded (a channel of one
//! batch), sets each code into the document's `binary_hash` field and adds
//! the document to the writer. An image that cannot be decoded or encoded
//! leaves its document out and is reported by its position; committing
//! stays the application's.
//!
//! ```no_run
//! use ash_encoder::{Encoder, EncoderOptions};
//! use ash_search::embed::{CodeFiller, Image};
//! use ash_tantivy::{add_hash_field, HashIndex};
//! use tantivy::schema::{Schema, STORED, STRING};
//! use tantivy::TantivyDocument;
//!
//! let encoder = Encoder::load("plugin/models/ash-synfundus-48".as_ref(), &EncoderOptions::default())?;
//! let mut schema = Schema::builder();
//! let id = schema.add_text_field("id", STRING | STORED);
//! let codes = add_hash_field(&mut schema, "ash_code", encoder.pin().bits)?;
//! let index = HashIndex::create_in_ram(schema.build())?;
//! let mut writer = index.writer(50_000_000)?;
//! let mut doc = TantivyDocument::default();
//! doc.add_text(id, "case-00");
//! let docs = vec![(doc, Image::Path("case-00.png".into()))];
//! let filled = CodeFiller::new(&encoder, codes).add_documents(&writer, docs)?;
//! assert!(filled.failed.is_empty());
//! writer.commit()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::PathBuf;
use std::sync::mpsc::sync_channel;

use ash_encoder::{EncodeFailure, Encoder};
use ash_tantivy::{HashField, IndexError};
use rayon::prelude::*;
use tantivy::{IndexWriter, TantivyDocument};

/// Images per inference batch when the caller does not say.
pub const DEFAULT_BATCH: usize = 32;

/// Where a document's image is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// A file, read as an untrusted one (a regular file within the limits).
    Path(PathBuf),
    /// An encoded image (PNG, JPEG, TIFF, BMP, DICOM) held in memory.
    Bytes(Vec<u8>),
}

/// One document left out, and why.
#[derive(Debug)]
pub struct Failed {
    /// Its position in the input, from 0.
    pub position: usize,
    /// Why its image has no code.
    pub reason: EncodeFailure,
}

/// What [`CodeFiller::add_documents`] did.
#[derive(Debug, Default)]
pub struct Filled {
    /// Documents added to the writer, each with its code.
    pub added: usize,
    /// Documents left out because their image has no code.
    pub failed: Vec<Failed>,
}

/// Why adding documents stopped, or never started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FillError {
    /// The encoder's codes are not the field's length.
    #[error("the encoder makes {encoder}-bit codes; field {field:?} holds {bits}-bit codes")]
    Bits {
        /// The encoder's code length.
        encoder: usize,
        /// The field.
        field: String,
        /// The field's code length.
        bits: usize,
    },
    /// The writer failed.
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl From<tantivy::TantivyError> for FillError {
    fn from(e: tantivy::TantivyError) -> Self {
        FillError::Index(e.into())
    }
}

/// Fills a `binary_hash` field from images, through an encoder.
pub struct CodeFiller<'a> {
    encoder: &'a Encoder,
    field: HashField,
    batch: usize,
}

/// A batch on its way from the decoder to the encoder.
type Decoded = Vec<(usize, TantivyDocument, Result<Vec<f32>, EncodeFailure>)>;

impl<'a> CodeFiller<'a> {
    /// Codes from `encoder` into `field`, [`DEFAULT_BATCH`] images a run.
    pub fn new(encoder: &'a Encoder, field: HashField) -> Self {
        Self {
            encoder,
            field,
            batch: DEFAULT_BATCH,
        }
    }

    /// Images per inference batch (at least 1).
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Encodes each pair's image, sets the code into its document and adds
    /// the document to `writer`; documents whose image fails are left out
    /// and reported. The caller commits.
    pub fn add_documents<I>(&self, writer: &IndexWriter, docs: I) -> Result<Filled, FillError>
    where
        I: IntoIterator<Item = (TantivyDocument, Image)>,
        I::IntoIter: Send,
    {
        // Refuse an encoder of another length before decoding anything.
        if self.encoder.pin().bits != self.field.bits {
            return Err(FillError::Bits {
                encoder: self.encoder.pin().bits,
                field: self.field.name.clone(),
                bits: self.field.bits,
            });
        }
        let preprocessor = self.encoder.preprocessor();
        let batch = self.batch;
        let (tx, rx) = sync_channel::<Decoded>(1);
        let mut docs = docs.into_iter().enumerate();
        std::thread::scope(|scope| {
            scope.spawn(move || loop {
                let chunk: Vec<_> = docs.by_ref().take(batch).collect();
                if chunk.is_empty() {
                    return;
                }
                let decoded: Decoded = chunk
                    .into_par_iter()
                    .map(|(position, (doc, image))| {
                        let tensor = match &image {
                            Image::Path(path) => preprocessor.load(path),
                            Image::Bytes(bytes) => preprocessor.tensor(bytes),
                        };
                        (position, doc, tensor.map_err(EncodeFailure::from))
                    })
                    .collect();
                if tx.send(decoded).is_err() {
                    return; // the encoder side stopped on an error
                }
            });
            let mut filled = Filled::default();
            for decoded in rx {
                self.add_batch(writer, decoded, &mut filled)?;
            }
            Ok(filled)
        })
    }

    fn add_batch(
        &self,
        writer: &IndexWriter,
        decoded: Decoded,
        filled: &mut Filled,
    ) -> Result<(), FillError> {
        let (meta, tensors): (Vec<_>, Vec<_>) = decoded
            .into_iter()
            .map(|(position, doc, tensor)| ((position, doc), tensor))
            .unzip();
        let encoded = self.encoder.encode_prepared(tensors);
        for ((position, mut doc), result) in meta.into_iter().zip(encoded) {
            match result {
                Ok(encoded) => {
                    self.field.set(&mut doc, &encoded.code)?;
                    writer.add_document(doc)?;
                    filled.added += 1;
                }
                Err(reason) => filled.failed.push(Failed { position, reason }),
            }
        }
        Ok(())
    }
}
