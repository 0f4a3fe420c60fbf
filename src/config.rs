//! The index configuration (`schemas/index.schema.json`) and the tantivy
//! schema it becomes. Validated against the JSON Schema first, then for
//! what a JSON Schema cannot say (the `id` field, unique names).

use serde::{Deserialize, Serialize};
use tantivy::schema::{
    DateOptions, NumericOptions, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED,
    STRING, TEXT,
};

use ash_encoder::manifest::EncoderPin;
use ash_tantivy::{add_hash_field, IndexError};

/// The JSON Schema of the configuration.
pub const INDEX_SCHEMA: &str = include_str!("../schemas/index.schema.json");

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The text is not JSON.
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
    /// The JSON does not fit `schemas/index.schema.json`; every problem is listed.
    #[error("does not fit schemas/index.schema.json: {}", .0.join("; "))]
    Schema(Vec<String>),
    /// A field uses a name the index reserves.
    #[error("field name {0:?} is reserved (every index stores the record's image path in \"image\" and its DICOM frame in \"frame\")")]
    ReservedName(String),
    /// Two fields share a name.
    #[error("field name {0:?} is used twice")]
    DuplicateName(String),
    /// The `id` field is missing or not a stored, indexed keyword.
    #[error("the configuration needs a field \"id\" of type keyword, stored and indexed")]
    IdField,
    /// The DICOM mapping names a field the index does not have.
    #[error("dicom.fields maps to {0:?}, which is not a field of this index")]
    DicomField(String),
    /// The DICOM mapping names an attribute the DICOM dictionary does not know.
    #[error("dicom: {0:?} is not a DICOM attribute keyword (e.g. PatientID, ImageLaterality)")]
    DicomKeyword(String),
}

/// The configuration schema's validator, compiled once per process.
fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(INDEX_SCHEMA).expect("the bundled schema is JSON");
        jsonschema::validator_for(&schema).expect("the bundled schema is valid")
    })
}

/// One metadata field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    Text,
    Keyword,
    Integer,
    Float,
    Date,
    Boolean,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldKind,
    #[serde(default)]
    pub stored: bool,
    #[serde(default)]
    pub fast: bool,
    #[serde(default = "yes")]
    pub indexed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HashConfig {
    pub name: String,
    pub bits: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<EncoderRef>,
}

/// The encoder of an index: a plugin directory as a user writes it in a
/// configuration, or the pin an index records once it has read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EncoderRef {
    Pinned(EncoderPin),
    Dir(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexConfig {
    pub fields: Vec<FieldConfig>,
    pub hash: HashConfig,
    /// How DICOM files' headers become ids and fields.
    #[serde(default)]
    pub dicom: DicomMapping,
}

/// How a DICOM file's header becomes a document: the attribute whose value
/// is its id (when the record or the CSV gives none), and for each field
/// the attributes that fill it, the first present winning. Only the
/// attributes named here are read, so names and other direct identifiers
/// are never stored unless a field maps them. `fields` left out: the
/// ophthalmology default ([`DicomMapping::DEFAULT_FIELDS`]) for the fields
/// this index has. Values a record or CSV gives take precedence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DicomMapping {
    #[serde(default = "sop_instance_uid")]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<std::collections::BTreeMap<String, Vec<String>>>,
    /// Which frames of a multi-frame object become documents.
    #[serde(default)]
    pub frames: FrameMode,
}

/// Which frames of a multi-frame DICOM object are indexed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameMode {
    /// The first frame stands for the object: one document, id as mapped.
    /// The default, since the frames of an ophthalmic photograph (a stereo
    /// pair, a short series) are views of one eye at one visit.
    #[default]
    First,
    /// Each frame is a document of its own, id `<id>-f<n>` (n from 1) and
    /// the frame number in the `frame` field; single-frame objects keep
    /// their id.
    Each,
}

fn sop_instance_uid() -> String {
    "SOPInstanceUID".into()
}

impl Default for DicomMapping {
    fn default() -> Self {
        Self {
            id: sop_instance_uid(),
            fields: None,
            frames: FrameMode::First,
        }
    }
}

impl DicomMapping {
    /// The default for ophthalmology: field ← attributes, in order.
    pub const DEFAULT_FIELDS: &'static [(&'static str, &'static [&'static str])] = &[
        ("patient_id", &["PatientID"]),
        ("eye", &["ImageLaterality", "Laterality"]),
        (
            "acquired",
            &["AcquisitionDateTime", "ContentDate", "StudyDate"],
        ),
        ("modality", &["Modality"]),
        ("manufacturer", &["Manufacturer"]),
        ("device", &["ManufacturerModelName"]),
        ("report", &["StudyDescription"]),
        ("study_uid", &["StudyInstanceUID"]),
        ("series_uid", &["SeriesInstanceUID"]),
    ];

    /// (field, attributes) for an index with `config`'s fields.
    pub fn resolved(&self, config: &IndexConfig) -> Vec<(String, Vec<String>)> {
        match &self.fields {
            Some(map) => map.iter().map(|(f, a)| (f.clone(), a.clone())).collect(),
            None => Self::DEFAULT_FIELDS
                .iter()
                .filter(|(f, _)| config.field(f).is_some())
                .map(|(f, a)| (f.to_string(), a.iter().map(|k| k.to_string()).collect()))
                .collect(),
        }
    }
}

/// Adds the indexed, stored and fast flags a field asks for (a macro: the
/// flag types are not public in tantivy, so no generic function can name them).
macro_rules! with_flags {
    ($opts:expr, $f:expr) => {{
        let mut opts = $opts;
        if $f.indexed {
            opts = opts | INDEXED;
        }
        if $f.stored {
            opts = opts | STORED;
        }
        if $f.fast {
            opts = opts | FAST;
        }
        opts
    }};
}

/// The name of the required unique-id field.
pub const ID_FIELD: &str = "id";

/// A stored field every index has: the absolute path of the record's
/// image, so that results can be shown as pictures.
pub const IMAGE_FIELD: &str = "image";

/// A stored field every index has: the frame (from 1) of a multi-frame
/// DICOM image the document stands for, when it is not the first.
pub const FRAME_FIELD: &str = "frame";

impl IndexConfig {
    /// Parses and validates a configuration; every problem is listed.
    ///
    /// ```
    /// use ash_search::config::{ConfigError, IndexConfig};
    /// let ok = r#"{"fields": [{"name": "id", "type": "keyword", "stored": true}],
    ///              "hash": {"name": "code", "bits": 48}}"#;
    /// assert_eq!(IndexConfig::from_json(ok).unwrap().hash.bits, 48);
    /// let twice = r#"{"fields": [{"name": "id", "type": "keyword", "stored": true},
    ///                            {"name": "code", "type": "text"}],
    ///                 "hash": {"name": "code", "bits": 48}}"#;
    /// assert!(matches!(IndexConfig::from_json(twice), Err(ConfigError::DuplicateName(n)) if n == "code"));
    /// ```
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(ConfigError::NotJson)?;
        let problems: Vec<String> = validator()
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if !problems.is_empty() {
            return Err(ConfigError::Schema(problems));
        }
        // The schema has been checked, so this can only fail on what it
        // cannot say (a number too large for usize, say).
        let config: IndexConfig =
            serde_json::from_value(value).map_err(|e| ConfigError::Schema(vec![e.to_string()]))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if let Some(f) = self
            .fields
            .iter()
            .find(|f| f.name == IMAGE_FIELD || f.name == FRAME_FIELD)
        {
            return Err(ConfigError::ReservedName(f.name.clone()));
        }
        let mut names: Vec<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
        names.push(&self.hash.name);
        let mut sorted = names.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(ConfigError::DuplicateName(w[0].to_string()));
        }
        match self.fields.iter().find(|f| f.name == ID_FIELD) {
            Some(f) if f.kind == FieldKind::Keyword && f.stored && f.indexed => {}
            _ => return Err(ConfigError::IdField),
        }
        let known = ash_image::dicom::is_keyword;
        if !known(&self.dicom.id) {
            return Err(ConfigError::DicomKeyword(self.dicom.id.clone()));
        }
        for (field, keywords) in self.dicom.fields.iter().flatten() {
            if self.field(field).is_none() || field == ID_FIELD {
                return Err(ConfigError::DicomField(field.clone()));
            }
            if let Some(k) = keywords.iter().find(|k| !known(k)) {
                return Err(ConfigError::DicomKeyword(k.clone()));
            }
        }
        Ok(())
    }

    /// The tantivy schema: metadata fields, then the hash field.
    pub fn schema(&self) -> Result<Schema, IndexError> {
        let mut b = Schema::builder();
        for f in &self.fields {
            let name = f.name.as_str();
            match f.kind {
                FieldKind::Text | FieldKind::Keyword => {
                    let mut opts = if f.kind == FieldKind::Text {
                        TEXT
                    } else {
                        STRING
                    };
                    if !f.indexed {
                        opts = TextOptions::default();
                    } else if f.kind == FieldKind::Text {
                        opts = opts.set_indexing_options(
                            TextFieldIndexing::default()
                                .set_tokenizer("en_stem")
                                .set_index_option(
                                    tantivy::schema::IndexRecordOption::WithFreqsAndPositions,
                                ),
                        );
                    }
                    if f.stored {
                        opts = opts | STORED;
                    }
                    if f.fast && f.kind == FieldKind::Keyword {
                        opts = opts | FAST;
                    }
                    b.add_text_field(name, opts);
                }
                FieldKind::Integer => {
                    b.add_i64_field(name, with_flags!(NumericOptions::default(), f));
                }
                FieldKind::Float => {
                    b.add_f64_field(name, with_flags!(NumericOptions::default(), f));
                }
                FieldKind::Boolean => {
                    b.add_bool_field(name, with_flags!(NumericOptions::default(), f));
                }
                FieldKind::Date => {
                    b.add_date_field(name, with_flags!(DateOptions::default(), f));
                }
            }
        }
        b.add_text_field(IMAGE_FIELD, STORED);
        b.add_u64_field(FRAME_FIELD, STORED);
        add_hash_field(&mut b, &self.hash.name, self.hash.bits)?;
        Ok(b.build())
    }

    /// The configuration of a metadata field.
    pub fn field(&self, name: &str) -> Option<&FieldConfig> {
        self.fields.iter().find(|f| f.name == name)
    }
}
