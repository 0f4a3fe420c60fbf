//! The `binary_hash` segment component: a tantivy `SegmentPlugin` that
//! writes each segment's codes as `<segment>.mih` (the `mih` format) and the
//! docs that carry no code as `<segment>.mihnone` (a serialized
//! `RoaringBitmap`), and rebuilds both on merge from the source segments'
//! alive docs, in the order tantivy stacks them.

use std::any::Any;
use std::io::Write;

use roaring::RoaringBitmap;
use tantivy::directory::TerminatingWrite;
use tantivy::index::SegmentComponent;
use tantivy::indexer::doc_id_mapping::{DocIdMapping, MappingType};
use tantivy::schema::{FieldType, Schema};
use tantivy::{
    DocId, PluginMergeContext, PluginWriter, PluginWriterContext, Segment, SegmentPlugin,
    TantivyDocument, TantivyError,
};

use super::segment::SegmentCodes;
use super::{HashField, IndexError};
use ash_mih::code::{words_for, BinaryCode};
use ash_mih::MihBuilder;

/// Extension of the code table file.
pub const EXT_TABLE: &str = "mih";
/// Extension of the file listing docs without a code.
pub const EXT_NONE: &str = "mihnone";

/// The plugin. Register it on every open (`HashIndex` does).
#[derive(Debug, Clone)]
pub struct BinaryHashPlugin {
    field: HashField,
}

impl BinaryHashPlugin {
    /// The plugin for `field` (the schema's one `binary_hash` field).
    pub fn new(field: HashField) -> Self {
        Self { field }
    }
}

fn component(ext: &str) -> SegmentComponent {
    SegmentComponent::Custom(ext.to_string())
}

fn no_sorting() -> TantivyError {
    TantivyError::InvalidArgument(
        "binary_hash fields do not support index sorting: codes are stored in doc-id order".into(),
    )
}

impl SegmentPlugin for BinaryHashPlugin {
    fn extensions(&self) -> &[&str] {
        &[EXT_TABLE, EXT_NONE]
    }

    fn create_writer(&self, _ctx: &PluginWriterContext) -> tantivy::Result<Box<dyn PluginWriter>> {
        Ok(Box::new(CodeWriter {
            field: self.field.clone(),
            words: Vec::new(),
            none: RoaringBitmap::new(),
            num_docs: 0,
        }))
    }

    fn merge(&self, ctx: PluginMergeContext) -> tantivy::Result<()> {
        if ctx.doc_id_mapping.mapping_type() == MappingType::Shuffled {
            return Err(no_sorting());
        }
        let w = words_for(self.field.bits);
        let mut words = Vec::new();
        let mut none = RoaringBitmap::new();
        let mut new_doc = 0u32;
        for reader in ctx.readers {
            let codes = SegmentCodes::open(reader, &self.field)?;
            for doc in reader.doc_ids_alive() {
                match codes.code(doc) {
                    Some(code) => words.extend_from_slice(code.words()),
                    None => {
                        words.extend(std::iter::repeat_n(0, w));
                        none.insert(new_doc);
                    }
                }
                new_doc += 1;
            }
        }
        write_files(ctx.target_segment, &self.field, words, &none)
    }
}

/// Accumulates one segment's codes in doc-id order.
struct CodeWriter {
    field: HashField,
    words: Vec<u64>,
    none: RoaringBitmap,
    num_docs: u32,
}

impl PluginWriter for CodeWriter {
    fn add_document(
        &mut self,
        doc_id: DocId,
        doc: &dyn tantivy::schema::document::ErasedDocument,
        _schema: &Schema,
    ) -> tantivy::Result<()> {
        // Doc ids arrive in order; a gap would be docs this writer never saw.
        while self.num_docs < doc_id {
            self.push(None);
        }
        let code = match doc.as_any().downcast_ref::<TantivyDocument>() {
            Some(doc) => doc
                .get_all(self.field.field)
                .find_map(|v| tantivy::schema::Value::as_custom(&v).map(<[u8]>::to_vec)),
            None => {
                return Err(TantivyError::InvalidArgument(
                    "binary_hash fields need TantivyDocument documents".into(),
                ))
            }
        };
        let code = match code {
            Some(bytes) => Some(
                self.field
                    .parse(&bytes)
                    .map_err(|e| TantivyError::InvalidArgument(e.to_string()))?,
            ),
            None => None,
        };
        self.push(code.as_ref());
        Ok(())
    }

    fn serialize(
        self: Box<Self>,
        segment: &Segment,
        doc_id_map: Option<&DocIdMapping>,
    ) -> tantivy::Result<()> {
        if doc_id_map.is_some() {
            return Err(no_sorting());
        }
        let mut this = *self;
        let max_doc = segment.meta().max_doc();
        while this.num_docs < max_doc {
            this.push(None);
        }
        write_files(segment, &this.field, this.words, &this.none)
    }

    fn mem_usage(&self) -> usize {
        self.words.len() * 8 + self.none.serialized_size()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl CodeWriter {
    fn push(&mut self, code: Option<&BinaryCode>) {
        match code {
            Some(c) => self.words.extend_from_slice(c.words()),
            None => {
                self.words
                    .extend(std::iter::repeat_n(0, words_for(self.field.bits)));
                self.none.insert(self.num_docs);
            }
        }
        self.num_docs += 1;
    }
}

fn write_files(
    segment: &Segment,
    field: &HashField,
    words: Vec<u64>,
    none: &RoaringBitmap,
) -> tantivy::Result<()> {
    let table = MihBuilder::new(field.bits)
        .and_then(|b| b.build_words(words))
        .map_err(|e| TantivyError::InvalidArgument(format!("field {}: {e}", field.name)))?;
    let mut out = segment.open_write(component(EXT_TABLE))?;
    out.write_all(&table)?;
    out.terminate()?;
    let mut out = segment.open_write(component(EXT_NONE))?;
    let mut bytes = Vec::with_capacity(none.serialized_size());
    none.serialize_into(&mut bytes)?;
    out.write_all(&bytes)?;
    out.terminate()?;
    Ok(())
}

/// The `binary_hash` field of a schema, if it has exactly one.
pub fn find_hash_field(schema: &Schema) -> Result<HashField, IndexError> {
    let mut found = Vec::new();
    for (field, entry) in schema.fields() {
        if let FieldType::Custom(opts) = entry.field_type() {
            if opts.type_name() == super::TYPE_NAME {
                let bits = opts.params()["bits"].as_u64().unwrap_or(0) as usize;
                found.push(HashField::new(field, entry.name(), bits)?);
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(IndexError::NoHashField),
        n => Err(IndexError::ManyHashFields(n)),
    }
}
