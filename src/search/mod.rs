//! A search as users state it (a query code, an example document's id,
//! text and filter strings, k, radius, mode) → hits with their stored
//! fields as JSON. The CLI's `search` and the server's `POST /search` are
//! this one call, on a request parsed and checked by [`request`].

pub mod request;

use std::collections::BTreeMap;

use serde::Serialize;
use tantivy::collector::TopDocs;
use tantivy::query::{Query, QueryParser, TermQuery};
use tantivy::schema::{FieldType, IndexRecordOption, Value};
use tantivy::{DocAddress, Searcher, TantivyDocument, Term};

use crate::config::ID_FIELD;
use crate::error::ErrorKind;
use crate::store::Store;
use ash_mih::code::BinaryCode;
use ash_tantivy::hybrid::{self, Mode};
use ash_tantivy::query_text::{parse_bounded, QueryLimits, QueryTextError};
use ash_tantivy::{FilterKey, FilterStats, Hit, IndexError, Remember};

/// What to search for. At least one of `code`, `like` or `text`.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub code: Option<BinaryCode>,
    /// The id of an indexed document whose code is the query.
    pub like: Option<String>,
    /// Full text, tantivy query syntax, BM25 over the text fields.
    pub text: Option<String>,
    /// Restricting query over every indexed field.
    pub filter: Option<String>,
    pub k: usize,
    pub radius: Option<u32>,
    pub mode: Option<Mode>,
    /// Fusion modes: how deep each ranking is taken (default
    /// [`hybrid::default_depth`]).
    pub depth: Option<usize>,
}

/// One result as the CLI's `--json` and the HTTP API print it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HitJson {
    pub id: serde_json::Value,
    pub distance: Option<u32>,
    pub score: f32,
    pub fields: BTreeMap<String, serde_json::Value>,
}

/// Which query string of a search an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryPart {
    /// The full-text query.
    Text,
    /// The restricting query.
    Filter,
}

impl std::fmt::Display for QueryPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QueryPart::Text => "text",
            QueryPart::Filter => "filter",
        })
    }
}

/// Why a search failed: the user's fault (bad query, unknown id) or not.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// No live document has this id (the query by example's `like`).
    #[error("no document has id {0:?}")]
    UnknownId(String),
    /// The example document has no code to search with.
    #[error("document {0:?} has no code")]
    NoCode(String),
    /// Both a query code and an example id were given.
    #[error("give a query code or an example id (like), not both")]
    CodeAndExample,
    /// Nothing to search for.
    #[error("a search needs an image, a code, an example id (like) or text")]
    NothingToSearch,
    /// A query string is over the limits or does not parse. A refused
    /// string is echoed back only when it was within the limits: it may be
    /// 40 KB of brackets.
    #[error("{part}{}: {source}", shown.as_ref().map(|q| format!(" {q:?}")).unwrap_or_default())]
    Query {
        /// Which query string.
        part: QueryPart,
        /// The string, when it is short enough to show.
        shown: Option<String>,
        /// Why it was refused.
        source: QueryTextError,
    },
    /// The query code (hex) does not read as a code of the index's field.
    #[error("code: {0}")]
    Code(IndexError),
    /// The index failed, or refused a code.
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl SearchError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SearchError::UnknownId(_) => ErrorKind::NotFound,
            SearchError::NoCode(_)
            | SearchError::CodeAndExample
            | SearchError::NothingToSearch
            | SearchError::Query { .. } => ErrorKind::InvalidInput,
            SearchError::Code(e) | SearchError::Index(e) => e.kind().into(),
        }
    }
}

/// Runs `q` on `searcher`.
pub fn search(
    store: &Store,
    searcher: &Searcher,
    q: &SearchQuery,
) -> Result<Vec<HitJson>, SearchError> {
    Ok(search_explained(store, searcher, q, None)?.0)
}

/// [`search`], with what each side of the search did in each segment.
/// `stats`, when given, remembers what each filter kept per segment so
/// later searches with the same filter and text plan better (cost only).
pub fn search_explained(
    store: &Store,
    searcher: &Searcher,
    q: &SearchQuery,
    stats: Option<&FilterStats>,
) -> Result<(Vec<HitJson>, hybrid::Explain), SearchError> {
    let code = match (&q.code, &q.like) {
        (Some(c), None) => {
            store.index.field().check(c)?;
            Some(*c)
        }
        (None, Some(id)) => Some(code_of(store, searcher, id)?),
        (None, None) => None,
        (Some(_), Some(_)) => return Err(SearchError::CodeAndExample),
    };
    if code.is_none() && q.text.is_none() {
        return Err(SearchError::NothingToSearch);
    }
    let text = q
        .text
        .as_deref()
        .map(|t| parse(store, t, text_fields(store), QueryPart::Text))
        .transpose()?;
    let filter = q
        .filter
        .as_deref()
        .map(|t| parse(store, t, indexed_fields(store), QueryPart::Filter))
        .transpose()?;
    let key = FilterKey::new(q.filter.as_deref(), q.text.as_deref());
    let (hits, explain) = hybrid::search_explained(
        &store.index,
        searcher,
        &hybrid::Request {
            code: code.as_ref(),
            text,
            filter,
            k: q.k,
            radius: q.radius,
            mode: q.mode.unwrap_or(Mode::Filter),
            depth: q.depth,
            remember: stats.map(|stats| Remember { stats, key: &key }),
            ..Default::default()
        },
    )?;
    let hits = hits
        .iter()
        .map(|h| hit_json(store, searcher, h))
        .collect::<Result<_, _>>()?;
    Ok((hits, explain))
}

fn text_fields(store: &Store) -> Vec<tantivy::schema::Field> {
    store
        .index
        .schema()
        .fields()
        .filter(|(_, e)| {
            matches!(e.field_type(), FieldType::Str(o)
                if o.get_indexing_options().is_some_and(|i| i.tokenizer() != "raw"))
        })
        .map(|(f, _)| f)
        .collect()
}

fn indexed_fields(store: &Store) -> Vec<tantivy::schema::Field> {
    store
        .index
        .schema()
        .fields()
        .filter(|(_, e)| e.is_indexed())
        .map(|(f, _)| f)
        .collect()
}

fn parse(
    store: &Store,
    q: &str,
    fields: Vec<tantivy::schema::Field>,
    part: QueryPart,
) -> Result<Box<dyn Query>, SearchError> {
    let parser = QueryParser::for_index(store.index.index(), fields);
    parse_bounded(&parser, q, &QueryLimits::default()).map_err(|source| SearchError::Query {
        part,
        shown: matches!(source, QueryTextError::Syntax(_)).then(|| q.to_string()),
        source,
    })
}

/// Where the live document with this id is.
pub fn find(
    store: &Store,
    searcher: &Searcher,
    id: &str,
) -> Result<Option<DocAddress>, IndexError> {
    let term = Term::from_field_text(store.id_field, id);
    let found = searcher.search(
        &TermQuery::new(term, IndexRecordOption::Basic),
        &TopDocs::with_limit(1).order_by_score(),
    )?;
    Ok(found.first().map(|(_, a)| *a))
}

/// The code of the indexed document with this id.
pub fn code_of(store: &Store, searcher: &Searcher, id: &str) -> Result<BinaryCode, SearchError> {
    let address =
        find(store, searcher, id)?.ok_or_else(|| SearchError::UnknownId(id.to_string()))?;
    let codes = store
        .index
        .codes(searcher.segment_reader(address.segment_ord))?;
    codes
        .code(address.doc_id)
        .ok_or_else(|| SearchError::NoCode(id.to_string()))
}

/// A document's stored fields as JSON (the first value of each field).
pub fn fields_json(
    store: &Store,
    searcher: &Searcher,
    address: DocAddress,
) -> Result<BTreeMap<String, serde_json::Value>, IndexError> {
    let doc: TantivyDocument = searcher.doc(address)?;
    let schema = store.index.schema();
    let mut fields = BTreeMap::new();
    for (field, value) in doc.field_values() {
        let name = schema.get_field_name(field).to_string();
        fields.entry(name).or_insert_with(|| value_json(&value));
    }
    Ok(fields)
}

fn hit_json(store: &Store, searcher: &Searcher, hit: &Hit) -> Result<HitJson, SearchError> {
    let mut fields = fields_json(store, searcher, hit.address)?;
    let id = fields.remove(ID_FIELD).unwrap_or(serde_json::Value::Null);
    Ok(HitJson {
        id,
        distance: hit.distance,
        score: hit.score,
        fields,
    })
}

fn value_json<'a>(v: &impl Value<'a>) -> serde_json::Value {
    if let Some(s) = v.as_str() {
        serde_json::json!(s)
    } else if let Some(i) = v.as_i64() {
        serde_json::json!(i)
    } else if let Some(u) = v.as_u64() {
        serde_json::json!(u)
    } else if let Some(f) = v.as_f64() {
        serde_json::json!(f)
    } else if let Some(b) = v.as_bool() {
        serde_json::json!(b)
    } else if let Some(d) = v.as_datetime() {
        let t = d.into_utc();
        serde_json::json!(t
            .format(&tantivy::time::format_description::well_known::Rfc3339)
            .unwrap_or_default())
    } else {
        serde_json::Value::Null
    }
}
