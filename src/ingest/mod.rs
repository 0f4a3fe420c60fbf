//! Ingestion: records (JSONL) → validated documents → the index, with a
//! per-record error report. A record that cannot be used is reported with
//! its line, id, input and reason, and the rest goes on.

pub mod records;

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::Serialize;
use tantivy::Term;

use crate::index::IndexError;
use crate::store::Store;
use records::RecordParser;

/// Documents between commits: a crash loses at most this many.
pub const COMMIT_EVERY: usize = 10_000;

/// One record that was not indexed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordError {
    pub line: usize,
    pub id: Option<String>,
    pub input: String,
    pub reason: String,
}

/// What an ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestReport {
    pub indexed: usize,
    pub failed: usize,
}

/// Indexes every usable record of a JSONL file; a record whose id is
/// already indexed replaces it. `on_error` sees each refused record.
pub fn ingest_jsonl(
    store: &Store,
    path: &Path,
    on_error: &mut dyn FnMut(RecordError),
) -> Result<IngestReport, IndexError> {
    let file =
        File::open(path).map_err(|e| IndexError::Invalid(format!("{}: {e}", path.display())))?;
    let parser = RecordParser::new(store)?;
    let mut writer = store.index.writer(100_000_000)?;
    let mut report = IngestReport::default();
    let mut seen: HashSet<String> = HashSet::new();
    let input = path.display().to_string();
    let mut pending = 0;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line_no = i + 1;
        let line =
            line.map_err(|e| IndexError::Invalid(format!("{}:{line_no}: {e}", path.display())))?;
        if line.trim().is_empty() {
            continue;
        }
        let outcome = parser.parse(&line).and_then(|(id, doc)| {
            if seen.insert(id.clone()) {
                Ok((id, doc))
            } else {
                Err((Some(id), "duplicate id in this batch".to_string()))
            }
        });
        match outcome {
            Ok((id, doc)) => {
                writer.delete_term(Term::from_field_text(store.id_field, &id));
                writer.add_document(doc)?;
                report.indexed += 1;
                pending += 1;
                if pending == COMMIT_EVERY {
                    writer.commit()?;
                    pending = 0;
                }
            }
            Err((id, reason)) => {
                report.failed += 1;
                on_error(RecordError {
                    line: line_no,
                    id,
                    input: input.clone(),
                    reason,
                });
            }
        }
    }
    writer.commit()?;
    writer.wait_merging_threads()?;
    Ok(report)
}
