//! One ingest record (`schemas/record.schema.json`) → one tantivy document,
//! checked against the record schema and the index configuration.

use std::path::{Path, PathBuf};

use tantivy::schema::{Field, Schema};
use tantivy::time::format_description::well_known::Rfc3339;
use tantivy::time::{Date, Month, OffsetDateTime};
use tantivy::{DateTime, TantivyDocument};

use crate::config::{FieldKind, IndexConfig, FRAME_FIELD, ID_FIELD, IMAGE_FIELD};
use crate::store::Store;
use ash_tantivy::HashField;

/// Why a record with a frame cannot go into an index made before frames.
const NO_FRAME_FIELD: &str =
    "this index was made before frames were stored: index frames after `init` of a new index";

/// The JSON Schema of a record.
pub const RECORD_SCHEMA: &str = include_str!("../../schemas/record.schema.json");

/// Longest id, in characters (also `maxLength` in the record schema). Ids
/// are tantivy terms, which are dropped silently beyond 65,530 bytes, so
/// without a limit a long id would be neither replaced nor skipped.
pub const MAX_ID_CHARS: usize = 1024;

/// Longest keyword value, in bytes: tantivy indexes terms up to 65,530
/// bytes and drops longer ones without a word, which would leave the
/// value stored but never found by a filter.
pub const MAX_KEYWORD_BYTES: usize = 65_530;

/// A refused record: its id when known, and why.
pub type Refusal = (Option<String>, String);

/// A record that fits: its id, its document (without a code when the
/// record names an image) and the image to encode, if any.
#[derive(Debug)]
pub struct Parsed {
    pub id: String,
    pub doc: TantivyDocument,
    pub image: Option<PathBuf>,
    /// The image's frame to encode, from 0 (the record's `frame` less one).
    pub frame: u32,
}

/// Parses records for one index.
pub struct RecordParser {
    config: IndexConfig,
    schema: Schema,
    hash: HashField,
}

/// The record schema's validator, compiled once per process.
fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(RECORD_SCHEMA).expect("bundled schema is JSON");
        jsonschema::validator_for(&schema).expect("bundled schema is valid")
    })
}

impl RecordParser {
    /// A parser for the records of `store`'s index.
    pub fn new(store: &Store) -> Self {
        Self {
            config: store.config.clone(),
            schema: store.index.schema(),
            hash: store.index.field().clone(),
        }
    }

    /// A JSONL line; a relative `image` path is taken from `base`.
    pub fn parse(&self, line: &str, base: &Path) -> Result<Parsed, Refusal> {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| (None, format!("not a JSON object: {e}")))?;
        self.parse_value(value, base)
    }

    /// The record's id and document, or why it was refused.
    pub fn parse_value(&self, value: serde_json::Value, base: &Path) -> Result<Parsed, Refusal> {
        let id = checked_id(&value)?;
        let Some(obj) = value.as_object() else {
            return Err((None, "a record is a JSON object with a string id".into()));
        };
        let obj = self.with_dicom_header(obj, base);
        let mut parsed = Parsed {
            id,
            doc: TantivyDocument::new(),
            image: None,
            frame: 0,
        };
        for (key, v) in obj.iter() {
            self.add_entry(&mut parsed, key, v, base)
                .map_err(|reason| (Some(parsed.id.clone()), reason))?;
        }
        Ok(parsed)
    }

    /// The record's fields, with those its DICOM image's header fills in
    /// (an unreadable header is left to the decoder, which names why).
    fn with_dicom_header<'a>(
        &self,
        obj: &'a serde_json::Map<String, serde_json::Value>,
        base: &Path,
    ) -> std::borrow::Cow<'a, serde_json::Map<String, serde_json::Value>> {
        let header = obj
            .get(IMAGE_FIELD)
            .and_then(|v| v.as_str())
            .and_then(|image| super::dicom::header(&base.join(image)).ok().flatten());
        match header {
            Some(header) => {
                let mut filled = obj.clone();
                super::dicom::fill_fields(&mut filled, &header, &self.config);
                std::borrow::Cow::Owned(filled)
            }
            None => std::borrow::Cow::Borrowed(obj),
        }
    }

    /// Adds one of the record's entries to `parsed`: the code, the image
    /// (its path made absolute), the frame, or a field of the index.
    fn add_entry(
        &self,
        parsed: &mut Parsed,
        key: &str,
        v: &serde_json::Value,
        base: &Path,
    ) -> Result<(), String> {
        let doc = &mut parsed.doc;
        match key {
            "code" => {
                let code = self
                    .hash
                    .from_hex(v.as_str().unwrap_or_default())
                    .map_err(|e| e.to_string())?;
                self.hash.set(doc, &code).map_err(|e| e.to_string())?;
            }
            IMAGE_FIELD => {
                let path = std::path::absolute(base.join(v.as_str().unwrap_or_default()))
                    .map_err(|e| format!("image path: {e}"))?;
                if let Ok(field) = self.schema.get_field(IMAGE_FIELD) {
                    doc.add_text(field, path.to_string_lossy());
                }
                parsed.image = Some(path);
            }
            FRAME_FIELD => {
                // The schema bounds it to 1..=65535.
                let n = v.as_u64().unwrap_or(1);
                parsed.frame = (n - 1) as u32;
                let field = self
                    .schema
                    .get_field(FRAME_FIELD)
                    .map_err(|_| NO_FRAME_FIELD.to_string())?;
                doc.add_u64(field, n);
            }
            _ if v.is_null() => {}
            name => {
                let f = self.config.field(name).ok_or_else(|| {
                    format!("unknown field {name:?} (not in the index configuration)")
                })?;
                let field = self.schema.get_field(name).map_err(|e| e.to_string())?;
                add_value(doc, field, f.kind, v).map_err(|e| format!("field {name}: {e}"))?;
            }
        }
        Ok(())
    }
}

/// The record's id, once the record fits `schemas/record.schema.json` and
/// the id is within [`MAX_ID_CHARS`].
fn checked_id(value: &serde_json::Value) -> Result<String, Refusal> {
    let id = value
        .get(ID_FIELD)
        .and_then(|v| v.as_str())
        .map(str::to_string);
    if let Some(long) = id.as_deref().filter(|i| i.chars().count() > MAX_ID_CHARS) {
        let shown: String = long.chars().take(64).chain("…".chars()).collect();
        return Err((
            Some(shown),
            format!(
                "id of {} characters is over the limit of {MAX_ID_CHARS}",
                long.chars().count()
            ),
        ));
    }
    let problems: Vec<String> = validator()
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    if !problems.is_empty() {
        return Err((
            id,
            format!(
                "does not fit schemas/record.schema.json: {}",
                problems.join("; ")
            ),
        ));
    }
    id.ok_or_else(|| (None, "a record is a JSON object with a string id".into()))
}

fn add_value(
    doc: &mut TantivyDocument,
    field: Field,
    kind: FieldKind,
    v: &serde_json::Value,
) -> Result<(), String> {
    let wrong = |want: &str| format!("expected {want}, got {v}");
    match kind {
        FieldKind::Text => doc.add_text(field, v.as_str().ok_or_else(|| wrong("a string"))?),
        FieldKind::Keyword => {
            let s = v.as_str().ok_or_else(|| wrong("a string"))?;
            if s.len() > MAX_KEYWORD_BYTES {
                return Err(format!(
                    "a keyword of {} bytes is over the limit of {MAX_KEYWORD_BYTES} bytes",
                    s.len()
                ));
            }
            doc.add_text(field, s)
        }
        FieldKind::Integer => doc.add_i64(field, v.as_i64().ok_or_else(|| wrong("an integer"))?),
        FieldKind::Float => doc.add_f64(field, v.as_f64().ok_or_else(|| wrong("a number"))?),
        FieldKind::Boolean => {
            doc.add_bool(field, v.as_bool().ok_or_else(|| wrong("true or false"))?)
        }
        FieldKind::Date => doc.add_date(
            field,
            parse_date(v.as_str().ok_or_else(|| wrong("a date string"))?)?,
        ),
    }
    Ok(())
}

/// RFC 3339 (`2024-03-18T09:30:00Z`) or a plain date (`2024-03-18`, midnight UTC).
pub fn parse_date(s: &str) -> Result<DateTime, String> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(DateTime::from_utc(t));
    }
    let bad = || format!("{s:?} is not a date (use YYYY-MM-DD or RFC 3339)");
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts[..] else {
        return Err(bad());
    };
    let (y, m, d): (i32, u8, u8) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    let month = Month::try_from(m).map_err(|_| bad())?;
    let date = Date::from_calendar_date(y, month, d).map_err(|_| bad())?;
    Ok(DateTime::from_utc(date.midnight().assume_utc()))
}
