//! Where records come from: a JSONL file, streamed line by line, or a
//! folder of images with an optional CSV of metadata keyed by file name.
//! Both yield JSON records (`schemas/record.schema.json`), so one parser
//! and one pipeline serve both.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::IngestError;
use crate::config::{FieldKind, IndexConfig, ID_FIELD};
use ash_image::dicom::{is_dicom, DicomHeader};
use ash_image::untrusted::read_head;
use ash_image::ImageLimits;

/// One record before it is parsed.
#[derive(Debug)]
pub struct RawRecord {
    /// JSONL line, or the image's position in the folder (1-based).
    pub line: usize,
    /// What a user would open to fix it: the JSONL file or the image.
    pub input: String,
    /// Relative `image` paths are taken from here.
    pub base: PathBuf,
    pub value: Result<Value, String>,
}

/// File extensions read from an image folder; files with any other name
/// are read when they are DICOM (PACS exports often have no extension).
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "tif", "tiff", "bmp", "dcm"];

/// Longest JSONL line read; a longer one is refused as a record (and
/// skipped to its end), so one endless line cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// The records of a JSONL file, one line at a time.
pub fn jsonl(path: &Path) -> Result<impl Iterator<Item = RawRecord> + Send, IngestError> {
    let file = open_source(path)?;
    let base = path.parent().map(Path::to_owned).unwrap_or_default();
    Ok(jsonl_reader(
        BufReader::new(file),
        path.display().to_string(),
        base,
    ))
}

/// The records of several JSONL files, one after the other. Every file is
/// opened once here, so a missing one stops the ingest before anything is
/// indexed; each is then reopened in turn (thousands of shards do not hold
/// thousands of descriptors). A file that vanishes in between gives one
/// error record and reading goes on with the next.
pub fn jsonl_files(
    paths: &[PathBuf],
) -> Result<impl Iterator<Item = RawRecord> + Send + '_, IngestError> {
    for path in paths {
        open_source(path)?;
    }
    Ok(paths.iter().flat_map(|path| {
        let records: Box<dyn Iterator<Item = RawRecord> + Send> = match jsonl(path) {
            Ok(records) => Box::new(records),
            Err(e) => Box::new(std::iter::once(RawRecord {
                line: 0,
                input: path.display().to_string(),
                base: PathBuf::new(),
                value: Err(e.to_string()),
            })),
        };
        records
    }))
}

/// The records of any JSONL stream (a request body, a pipe); `input` names
/// it in error records and relative `image` paths are taken from `base`.
pub fn jsonl_reader<R: BufRead + Send>(
    reader: R,
    input: String,
    base: PathBuf,
) -> impl Iterator<Item = RawRecord> + Send {
    bounded_lines(reader).filter_map(move |(line, text)| {
        let value = match text {
            Ok(l) if l.trim().is_empty() => return None,
            Ok(l) => serde_json::from_str(&l).map_err(|e| format!("not a JSON object: {e}")),
            Err(e) => Err(e),
        };
        Some(RawRecord {
            line,
            input: input.clone(),
            base: base.clone(),
            value,
        })
    })
}

/// The lines of `reader`, at most [`MAX_LINE_BYTES`] each, numbered from
/// 1; a longer or non-UTF-8 line is an error item and reading goes on
/// after it, so one endless line cannot exhaust memory.
pub fn bounded_lines<R: BufRead>(
    reader: R,
) -> impl Iterator<Item = (usize, Result<String, String>)> {
    BoundedLines {
        reader,
        line: 0,
        done: false,
    }
}

struct BoundedLines<R> {
    reader: R,
    line: usize,
    done: bool,
}

impl<R: BufRead> Iterator for BoundedLines<R> {
    type Item = (usize, Result<String, String>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut buf = Vec::new();
        let limit = MAX_LINE_BYTES as u64 + 1;
        let read = (&mut self.reader).take(limit).read_until(b'\n', &mut buf);
        match read {
            Ok(0) => {
                self.done = true;
                return None;
            }
            Ok(_) => {}
            Err(e) => {
                self.done = true;
                self.line += 1;
                return Some((self.line, Err(format!("cannot read this line: {e}"))));
            }
        }
        self.line += 1;
        if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            // Skip the rest of the over-long line.
            loop {
                let mut rest = Vec::new();
                match (&mut self.reader)
                    .take(1 << 20)
                    .read_until(b'\n', &mut rest)
                {
                    Ok(0) | Err(_) => {
                        self.done = true;
                        break;
                    }
                    Ok(_) if rest.last() == Some(&b'\n') => break,
                    Ok(_) => {}
                }
            }
            return Some((
                self.line,
                Err(format!("line longer than {MAX_LINE_BYTES} bytes")),
            ));
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        Some((
            self.line,
            String::from_utf8(buf).map_err(|_| "this line is not UTF-8".to_string()),
        ))
    }
}

/// Counts the non-empty lines of a JSONL file (for the progress bar).
pub fn count_lines(path: &Path) -> u64 {
    open_source(path).map_or(0, |f| {
        bounded_lines(BufReader::new(f))
            .filter(|(_, line)| !matches!(line, Ok(l) if l.trim().is_empty()))
            .count() as u64
    })
}

/// Every file under `dir` (sorted, hidden files left out), except `skip`,
/// and the folders below it that could not be read; links are followed,
/// each folder entered and each file listed once
/// (`ash_image::untrusted::walk`), so link loops end.
pub fn list_files(
    dir: &Path,
    skip: Option<&Path>,
) -> Result<ash_image::untrusted::Walked, IngestError> {
    let skip = skip.and_then(|p| p.canonicalize().ok());
    let mut walked = ash_image::untrusted::walk(dir).map_err(read_error(dir))?;
    if skip.is_some() {
        walked.files.retain(|path| path.canonicalize().ok() != skip);
    }
    Ok(walked)
}

/// What a folder's file is, from its first bytes: an image by its
/// extension, a DICOM object (whatever its name) with its header, or an
/// error record's reason (not a regular file, a refused DICOM structure,
/// another format).
fn examine(path: &Path) -> Result<Option<DicomHeader>, String> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let head = read_head(path, 132).map_err(|e| e.to_string())?;
    if is_dicom(&head) || ext == "dcm" {
        let header = DicomHeader::open(path, ImageLimits::default().max_file_bytes)
            .map_err(|e| format!("DICOM object refused: {e}"))?;
        return Ok(Some(header));
    }
    if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
        return Ok(None);
    }
    Err(format!(
        "unsupported format (extension {ext:?}; images are {}, and DICOM files of any name)",
        IMAGE_EXTENSIONS.join(", ")
    ))
}

/// A metadata row that names no image: its CSV line and the reason.
pub type Orphan = (usize, String);

/// The records of an image folder: id = the `id` column or the file stem,
/// metadata from the CSV row whose `file` column (else its first column)
/// is the image's file name. Rows that name no image are reported too.
pub fn image_folder(
    dir: &Path,
    metadata: Option<&Path>,
    config: &IndexConfig,
) -> Result<(Vec<RawRecord>, Vec<Orphan>), IngestError> {
    let mut rows = match metadata {
        Some(csv) => read_metadata(csv, config)?,
        None => HashMap::new(),
    };
    let walked = list_files(dir, metadata)?;
    let files = walked.files;
    let mut records = Vec::with_capacity(files.len());
    for (folder, e) in walked.unreadable {
        records.push(RawRecord {
            line: 0,
            input: folder.display().to_string(),
            base: dir.to_owned(),
            value: Err(format!("cannot read this folder: {e}")),
        });
    }
    for (i, path) in files.iter().enumerate() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(path)
            .to_string_lossy()
            .to_string();
        let row = rows.remove(&rel).or_else(|| rows.remove(&name));
        let examined = examine(path);
        let frames = match &examined {
            Ok(Some(header)) => super::dicom::frames_indexed(header, config),
            _ => 1,
        };
        let value = examined.map(|header| {
            let mut obj = row.map(|(_, o)| o).unwrap_or_default();
            if !obj.contains_key(ID_FIELD) {
                let from_header = header.as_ref().and_then(|h| super::dicom::id(h, config));
                let stem = path.file_stem().map(|s| s.to_string_lossy().to_string());
                let id = from_header.or(stem).unwrap_or(name);
                obj.insert(ID_FIELD.into(), Value::from(id));
            }
            obj.insert(
                "image".into(),
                Value::from(path.to_string_lossy().to_string()),
            );
            Value::Object(obj)
        });
        let values = match value {
            Ok(v) => super::dicom::per_frame(v, frames)
                .into_iter()
                .map(Ok)
                .collect(),
            Err(e) => vec![Err(e)],
        };
        for value in values {
            records.push(RawRecord {
                line: i + 1,
                input: path.display().to_string(),
                base: dir.to_owned(),
                value,
            });
        }
    }
    let mut orphans: Vec<Orphan> = rows
        .into_iter()
        .map(|(file, (line, _))| {
            (
                line,
                format!(
                    "metadata row for {file:?}: no such image in {}",
                    dir.display()
                ),
            )
        })
        .collect();
    orphans.sort();
    Ok((records, orphans))
}

/// CSV rows keyed by file name: (line, typed fields).
type MetadataRows = HashMap<String, (usize, Map<String, Value>)>;

/// A source file (JSONL), opened only if it is a regular file: a FIFO
/// would block the open, be read up by the line count, or never end.
fn open_source(path: &Path) -> Result<File, IngestError> {
    ash_image::untrusted::open_regular(path).map_err(|e| IngestError::Read {
        path: path.to_owned(),
        source: match e {
            ash_image::untrusted::FileError::Io(io) => io,
            other => std::io::Error::new(std::io::ErrorKind::InvalidInput, other.to_string()),
        },
    })
}

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> IngestError + '_ {
    move |source| IngestError::Read {
        path: path.to_owned(),
        source,
    }
}

fn read_metadata(path: &Path, config: &IndexConfig) -> Result<MetadataRows, IngestError> {
    let fail = |e: &dyn std::fmt::Display| IngestError::Metadata {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let mut reader = csv::Reader::from_reader(open_source(path)?);
    let headers = reader.headers().map_err(|e| fail(&e))?.clone();
    let key = headers.iter().position(|h| h == "file").unwrap_or(0);
    let mut rows = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| fail(&e))?;
        let mut obj = Map::new();
        for (col, (name, cell)) in headers.iter().zip(record.iter()).enumerate() {
            if col == key || cell.is_empty() {
                continue;
            }
            let kind = config.field(name).map(|f| f.kind);
            obj.insert(name.to_string(), typed(cell, kind));
        }
        if rows.insert(record[key].to_string(), (line, obj)).is_some() {
            return Err(fail(&format!(
                "line {line}: file {:?} appears twice",
                &record[key]
            )));
        }
    }
    Ok(rows)
}

/// A CSV cell as the JSON value its field's type asks for; a cell that
/// does not parse stays a string, so the record parser names the problem.
fn typed(cell: &str, kind: Option<FieldKind>) -> Value {
    match kind {
        Some(FieldKind::Integer) => cell
            .trim()
            .parse::<i64>()
            .map_or_else(|_| cell.into(), Value::from),
        Some(FieldKind::Float) => cell
            .trim()
            .parse::<f64>()
            .map_or_else(|_| cell.into(), Value::from),
        Some(FieldKind::Boolean) => match cell.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Value::Bool(true),
            "false" | "0" | "no" => Value::Bool(false),
            _ => cell.into(),
        },
        _ => cell.into(),
    }
}
