//! DICOM headers as documents: the id and the fields an index's
//! [`DicomMapping`] names, converted to each field's type. Values a record
//! or a CSV already gives are kept; only the attributes the mapping names
//! are read.
//!
//! Conversions: `ImageLaterality`/`Laterality` R, L, B become OD, OS, OU
//! (the eye as ophthalmology writes it); DA and DT values (`20260314`,
//! `20260314101500`) become dates for date fields; numbers are parsed for
//! integer and float fields; anything that does not convert is left as
//! text, so the record parser names the problem as for any record.
//!
//! [`DicomMapping`]: crate::config::DicomMapping

use std::path::Path;

use serde_json::{Map, Value};

use crate::config::{FieldKind, FrameMode, IndexConfig, FRAME_FIELD, ID_FIELD};
use ash_image::dicom::{is_dicom, DicomHeader};
use ash_image::untrusted::read_head;
use ash_image::{ImageError, ImageLimits};

/// The header of `path`: `Ok(None)` when it is not DICOM, an error when it
/// is but its structure is refused (truncated, nested too deep, sizes
/// that the bytes do not bear out).
pub fn header(path: &Path) -> Result<Option<DicomHeader>, ImageError> {
    if !is_dicom(&read_head(path, 132)?) {
        return Ok(None);
    }
    DicomHeader::open(path, ImageLimits::default().max_file_bytes).map(Some)
}

/// The document id the mapping takes from a header.
pub fn id(header: &DicomHeader, config: &IndexConfig) -> Option<String> {
    header.value(&config.dicom.id)
}

/// How many of the object's frames become documents: all of them with
/// `"frames": "each"`, else one.
pub fn frames_indexed(header: &DicomHeader, config: &IndexConfig) -> u32 {
    match config.dicom.frames {
        FrameMode::Each => header.frames().max(1),
        FrameMode::First => 1,
    }
}

/// The document id of frame `n` (from 1) of a multi-frame object.
pub fn frame_id(id: &str, n: u32) -> String {
    format!("{id}-f{n}")
}

/// The records of an object's `frames` frames: `record` itself when there
/// is one, else a copy per frame with the frame's id and number.
///
/// ```
/// use ash_search::ingest::dicom::per_frame;
/// let record = serde_json::json!({"id": "1.2.3", "image": "a.dcm"});
/// let frames = per_frame(record, 2);
/// assert_eq!(frames[1], serde_json::json!({"id": "1.2.3-f2", "image": "a.dcm", "frame": 2}));
/// ```
pub fn per_frame(record: Value, frames: u32) -> Vec<Value> {
    if frames <= 1 {
        return vec![record];
    }
    let id = record
        .get(ID_FIELD)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    (1..=frames)
        .map(|n| {
            let mut copy = record.clone();
            if let Some(obj) = copy.as_object_mut() {
                obj.insert(ID_FIELD.into(), Value::from(frame_id(&id, n)));
                obj.insert(FRAME_FIELD.into(), Value::from(n));
            }
            copy
        })
        .collect()
}

/// Adds the mapped fields `record` does not have yet.
pub fn fill_fields(record: &mut Map<String, Value>, header: &DicomHeader, config: &IndexConfig) {
    for (field, keywords) in config.dicom.resolved(config) {
        if record.get(&field).is_some_and(|v| !v.is_null()) {
            continue;
        }
        let Some(kind) = config.field(&field).map(|f| f.kind) else {
            continue;
        };
        let found = keywords
            .iter()
            .find_map(|k| header.value(k).map(|v| (k.as_str(), v)));
        if let Some((keyword, text)) = found {
            record.insert(field, convert(keyword, &text, kind));
        }
    }
}

fn convert(keyword: &str, text: &str, kind: FieldKind) -> Value {
    let text = match (keyword, text) {
        ("ImageLaterality" | "Laterality", "R") => "OD",
        ("ImageLaterality" | "Laterality", "L") => "OS",
        ("ImageLaterality" | "Laterality", "B") => "OU",
        _ => text,
    };
    match kind {
        FieldKind::Date => dicom_date(text).map_or_else(|| text.into(), Value::from),
        FieldKind::Integer => text
            .trim()
            .parse::<i64>()
            .map_or_else(|_| text.into(), Value::from),
        FieldKind::Float => text
            .trim()
            .parse::<f64>()
            .map_or_else(|_| text.into(), Value::from),
        FieldKind::Boolean => match text.trim().to_ascii_uppercase().as_str() {
            "Y" | "YES" | "TRUE" | "1" => Value::Bool(true),
            "N" | "NO" | "FALSE" | "0" => Value::Bool(false),
            _ => text.into(),
        },
        FieldKind::Text | FieldKind::Keyword => text.into(),
    }
}

/// `YYYYMMDD…` (DA, or the start of a DT) as `YYYY-MM-DD`.
fn dicom_date(text: &str) -> Option<String> {
    let digits = text
        .get(..8)
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))?;
    Some(format!(
        "{}-{}-{}",
        &digits[..4],
        &digits[4..6],
        &digits[6..8]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laterality_dates_and_numbers_convert_and_the_rest_stays_text() {
        assert_eq!(convert("ImageLaterality", "R", FieldKind::Keyword), "OD");
        assert_eq!(convert("Laterality", "L", FieldKind::Keyword), "OS");
        assert_eq!(convert("Laterality", "B", FieldKind::Keyword), "OU");
        assert_eq!(convert("Modality", "R", FieldKind::Keyword), "R");
        assert_eq!(
            convert("StudyDate", "20260314", FieldKind::Date),
            "2026-03-14"
        );
        assert_eq!(
            convert("AcquisitionDateTime", "20260314101500.123", FieldKind::Date),
            "2026-03-14"
        );
        assert_eq!(convert("StudyDate", "2026", FieldKind::Date), "2026");
        assert_eq!(convert("InstanceNumber", "7", FieldKind::Integer), 7);
        assert_eq!(
            convert("InstanceNumber", "seven", FieldKind::Integer),
            "seven"
        );
        assert_eq!(
            convert("BurnedInAnnotation", "NO", FieldKind::Boolean),
            false
        );
    }
}
