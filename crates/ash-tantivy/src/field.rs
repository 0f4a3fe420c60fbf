//! The `binary_hash` field as a schema declares it and documents carry it:
//! a tantivy custom field whose options hold the code length, and whose
//! value is the code's packed bytes (numpy `packbits` order).

use ash_mih::code::{self, bytes_for, BinaryCode, CodeError, MAX_BITS};
use tantivy::schema::{Field, SchemaBuilder};
use tantivy::TantivyDocument;

use crate::IndexError;

/// The custom field type name.
pub const TYPE_NAME: &str = "binary_hash";

/// Adds a `binary_hash` field of `bits` bits to a schema.
///
/// ```
/// use tantivy::schema::{Schema, STRING};
/// let mut builder = Schema::builder();
/// builder.add_text_field("id", STRING);
/// let field = ash_tantivy::add_hash_field(&mut builder, "code", 48).unwrap();
/// assert_eq!((field.name.as_str(), field.bits), ("code", 48));
/// assert!(ash_tantivy::add_hash_field(&mut Schema::builder(), "code", 0).is_err());
/// ```
pub fn add_hash_field(
    builder: &mut SchemaBuilder,
    name: &str,
    bits: usize,
) -> Result<HashField, IndexError> {
    check_bits(name, bits)?;
    let field = builder.add_custom_field(name, TYPE_NAME, serde_json::json!({ "bits": bits }));
    HashField::new(field, name, bits)
}

/// The one check of a code length, shared by declaration and reopening.
fn check_bits(name: &str, bits: usize) -> Result<(), IndexError> {
    code::check_bits(bits).map_err(|_| IndexError::BitsOutOfRange {
        field: name.to_string(),
        bits,
        max: MAX_BITS,
    })
}

/// A schema's `binary_hash` field: its handle, name and code length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashField {
    /// tantivy's handle of the field.
    pub field: Field,
    /// The field's name in the schema.
    pub name: String,
    /// Code length in bits.
    pub bits: usize,
}

impl HashField {
    /// Describes an existing field; refuses a length outside 1..=`MAX_BITS`.
    pub fn new(field: Field, name: &str, bits: usize) -> Result<Self, IndexError> {
        check_bits(name, bits)?;
        Ok(Self {
            field,
            name: name.to_string(),
            bits,
        })
    }

    /// Reads a code from the field's bytes, naming the field on error.
    pub fn parse(&self, bytes: &[u8]) -> Result<BinaryCode, IndexError> {
        if bytes.len() != bytes_for(self.bits) {
            return Err(IndexError::CodeBytes {
                field: self.name.clone(),
                bits: self.bits,
                expected: bytes_for(self.bits),
                got: bytes.len(),
            });
        }
        BinaryCode::from_packed(bytes, self.bits).map_err(|e| self.code_error(e))
    }

    /// Sets a document's code; a code of another length is refused.
    ///
    /// ```
    /// use ash_mih::code::BinaryCode;
    /// use tantivy::schema::Schema;
    /// use tantivy::TantivyDocument;
    /// let field = ash_tantivy::add_hash_field(&mut Schema::builder(), "code", 12).unwrap();
    /// let mut doc = TantivyDocument::default();
    /// field.set(&mut doc, &BinaryCode::from_hex("a5f0", 12).unwrap()).unwrap();
    /// let wrong = BinaryCode::from_hex("a5", 8).unwrap();
    /// assert!(matches!(
    ///     field.set(&mut doc, &wrong),
    ///     Err(ash_tantivy::IndexError::CodeBits { got: 8, .. })
    /// ));
    /// ```
    pub fn set(&self, doc: &mut TantivyDocument, code: &BinaryCode) -> Result<(), IndexError> {
        self.check(code)?;
        doc.add_custom(self.field, &code.to_packed());
        Ok(())
    }

    /// Refuses a code whose length is not the field's, naming both.
    pub fn check(&self, code: &BinaryCode) -> Result<(), IndexError> {
        if code.bits() != self.bits {
            return Err(IndexError::CodeBits {
                field: self.name.clone(),
                bits: self.bits,
                got: code.bits(),
            });
        }
        Ok(())
    }

    /// Parses a query code from hex, naming the field on error.
    pub fn from_hex(&self, hex: &str) -> Result<BinaryCode, IndexError> {
        BinaryCode::from_hex(hex, self.bits).map_err(|e| self.code_error(e))
    }

    fn code_error(&self, source: CodeError) -> IndexError {
        IndexError::BadCode {
            field: self.name.clone(),
            bits: self.bits,
            source,
        }
    }
}
