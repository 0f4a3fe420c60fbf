//! The one search request grammar. The CLI's flags, a JSON body of
//! `POST /search` and its multipart form all become a [`SearchRequest`]
//! (the same fields, the same types, unknown fields refused), which
//! [`SearchRequest::check`] turns into a [`CheckedSearch`] once: k, mode,
//! weight and depth within their ranges, at most one of image, code and
//! example id. [`CheckedSearch::resolve`] then makes the query code (an
//! image's code as the caller encoded it, a hex code read for the index's
//! field, an example document's code looked up), so every front end runs
//! the same search on the same terms and refuses the same requests with
//! the same [`RequestError`].

use ash_mih::code::BinaryCode;
use ash_tantivy::hybrid::Mode;
use serde::Deserialize;
use tantivy::Searcher;

use super::{code_of, SearchError, SearchQuery};
use crate::error::ErrorKind;
use crate::store::Store;

/// Hits a search returns when it does not say.
pub const DEFAULT_K: usize = 10;

/// The image weight of `mode: weighted` when it does not say.
pub const DEFAULT_WEIGHT: f32 = 0.5;

/// A search as a client states it, before it is checked.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Query code: hex of the packed bytes (numpy `packbits` order).
    pub code: Option<String>,
    /// Query by example: the id of an indexed document.
    pub like: Option<String>,
    /// Full text (tantivy query syntax) over the text fields, BM25.
    pub text: Option<String>,
    /// Restricting query over every indexed field.
    pub filter: Option<String>,
    /// Hits wanted (default [`DEFAULT_K`]).
    pub k: Option<usize>,
    /// Only documents within this Hamming distance.
    pub radius: Option<u32>,
    /// `filter`, `rrf` or `weighted`: how text and image rank together.
    pub mode: Option<String>,
    /// The image's weight in `weighted` mode, in [0, 1].
    pub weight: Option<f32>,
    /// Fusion modes: how deep each ranking is taken.
    pub depth: Option<usize>,
    /// Also say how each segment was searched.
    pub explain: Option<bool>,
}

/// The bounds a front end holds requests to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Largest k.
    pub max_k: usize,
    /// Largest fusion depth.
    pub max_depth: usize,
}

/// What the query code comes from, when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Example {
    /// An image the caller holds (a file, an upload) and encodes.
    Image,
    /// A code as hex.
    Code(String),
    /// An indexed document's id.
    Like(String),
}

/// A request within its limits: what a search runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedSearch {
    /// Where the query code comes from.
    pub example: Option<Example>,
    /// Full text.
    pub text: Option<String>,
    /// Restricting query.
    pub filter: Option<String>,
    /// Hits wanted, at least 1.
    pub k: usize,
    /// Hamming radius.
    pub radius: Option<u32>,
    /// How text and image rank together.
    pub mode: Mode,
    /// Fusion depth, at least k.
    pub depth: Option<usize>,
    /// Whether to say how each segment was searched.
    pub explain: bool,
}

/// Why a search request was refused before it ran. Every variant is the
/// client's to fix ([`RequestError::kind`] is always invalid input); the
/// CLI names the flag and the server the field by the variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The body is not JSON, or not a search request's fields and types.
    #[error("the body is not a search request: {0}")]
    Malformed(serde_json::Error),
    /// A form field no search request has.
    #[error("unknown form field {0:?}")]
    UnknownField(String),
    /// A form's number field that is not a JSON number.
    #[error("{field} {text:?} is not a number")]
    NotANumber {
        /// The field.
        field: &'static str,
        /// What it held.
        text: String,
    },
    /// A form's `explain` that is not `true` or `false`.
    #[error("explain {0:?} is not true or false")]
    NotABool(String),
    /// k out of range.
    #[error("k must be 1 to {max}, got {got}")]
    K {
        /// The k asked for.
        got: usize,
        /// The largest allowed.
        max: usize,
    },
    /// A mode that is not one of the three.
    #[error("mode {0:?} is not filter, rrf or weighted")]
    Mode(String),
    /// A weight outside [0, 1].
    #[error("weight {0} is not in [0, 1]")]
    Weight(f32),
    /// A depth out of range.
    #[error("depth must be 1 to {max}, got {got}")]
    Depth {
        /// The depth asked for.
        got: usize,
        /// The largest allowed.
        max: usize,
    },
    /// A depth below k: the fused list could not hold k hits.
    #[error("depth must be at least k ({k}), got {depth}")]
    DepthBelowK {
        /// The depth asked for.
        depth: usize,
        /// The request's k.
        k: usize,
    },
    /// More than one of image, code and example id.
    #[error("give one of image, code and like, not several")]
    SeveralExamples,
}

impl RequestError {
    /// The class of this error: always the caller's input.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

/// The form fields, by the JSON type each stands for.
const NUMBER_FIELDS: [&str; 4] = ["k", "radius", "depth", "weight"];
const TEXT_FIELDS: [&str; 5] = ["code", "like", "text", "filter", "mode"];

impl SearchRequest {
    /// A request from a JSON body.
    ///
    /// ```
    /// use ash_search::search::request::SearchRequest;
    /// let r = SearchRequest::from_json(br#"{"like": "case-01", "k": 5}"#).unwrap();
    /// assert_eq!((r.like.as_deref(), r.k), (Some("case-01"), Some(5)));
    /// assert!(SearchRequest::from_json(br#"{"colour": "red"}"#).is_err());
    /// ```
    pub fn from_json(bytes: &[u8]) -> Result<Self, RequestError> {
        // Through a `Value`, as a form is, so that the same request is
        // refused with the same words whichever way it came.
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(RequestError::Malformed)?;
        serde_json::from_value(value).map_err(RequestError::Malformed)
    }

    /// A request from a form's text fields, meaning exactly what the same
    /// JSON means and refused the same way (`k=2.9` as `"k": 2.9`,
    /// `radius=-1` as `"radius": -1`): numbers are read with JSON's
    /// grammar, `explain` is `true` or `false`, the rest is text. Empty
    /// fields are absent.
    ///
    /// ```
    /// use ash_search::search::request::SearchRequest;
    /// let r = SearchRequest::from_form([("k", "3"), ("mode", "rrf"), ("text", "")]).unwrap();
    /// assert_eq!((r.k, r.mode.as_deref(), r.text), (Some(3), Some("rrf"), None));
    /// assert!(SearchRequest::from_form([("k", "2.9")]).is_err());
    /// ```
    pub fn from_form<'a>(
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, RequestError> {
        let mut object = serde_json::Map::new();
        for (name, text) in fields {
            if text.is_empty() {
                continue;
            }
            object.insert(name.to_string(), form_value(name, text)?);
        }
        serde_json::from_value(serde_json::Value::Object(object)).map_err(RequestError::Malformed)
    }

    /// Checks the request against `limits`; `image` says whether the
    /// caller holds an image to search with.
    ///
    /// ```
    /// use ash_search::search::request::{RequestError, RequestLimits, SearchRequest};
    /// let limits = RequestLimits { max_k: 50, max_depth: 500 };
    /// let r = SearchRequest { like: Some("a".into()), k: Some(51), ..Default::default() };
    /// assert!(matches!(r.check(false, &limits), Err(RequestError::K { got: 51, max: 50 })));
    /// let r = SearchRequest { code: Some("00ff".into()), ..Default::default() };
    /// assert!(matches!(r.check(true, &limits), Err(RequestError::SeveralExamples)));
    /// ```
    pub fn check(self, image: bool, limits: &RequestLimits) -> Result<CheckedSearch, RequestError> {
        let k = self.k.unwrap_or(DEFAULT_K);
        if k == 0 || k > limits.max_k {
            return Err(RequestError::K {
                got: k,
                max: limits.max_k,
            });
        }
        let mode = match self.mode.as_deref().unwrap_or("filter") {
            "filter" => Mode::Filter,
            "rrf" => Mode::Rrf,
            "weighted" => match self.weight.unwrap_or(DEFAULT_WEIGHT) {
                w if (0.0..=1.0).contains(&w) => Mode::Weighted(w),
                w => return Err(RequestError::Weight(w)),
            },
            other => return Err(RequestError::Mode(other.to_string())),
        };
        if let Some(depth) = self.depth {
            if depth == 0 || depth > limits.max_depth {
                return Err(RequestError::Depth {
                    got: depth,
                    max: limits.max_depth,
                });
            }
            if depth < k {
                return Err(RequestError::DepthBelowK { depth, k });
            }
        }
        let example = match (image, self.code, self.like) {
            (false, None, None) => None,
            (true, None, None) => Some(Example::Image),
            (false, Some(hex), None) => Some(Example::Code(hex)),
            (false, None, Some(id)) => Some(Example::Like(id)),
            _ => return Err(RequestError::SeveralExamples),
        };
        Ok(CheckedSearch {
            example,
            text: self.text,
            filter: self.filter,
            k,
            radius: self.radius,
            mode,
            depth: self.depth,
            explain: self.explain.unwrap_or(false),
        })
    }
}

impl CheckedSearch {
    /// The query this search runs, its code resolved: `image_code` for an
    /// image (the caller encodes it: the CLI from a file, the server from
    /// an upload within its budget), a hex code read for the index's
    /// field, an example document's code looked up in `searcher`.
    pub fn resolve(
        &self,
        store: &Store,
        searcher: &Searcher,
        image_code: Option<BinaryCode>,
    ) -> Result<SearchQuery, SearchError> {
        let code = match &self.example {
            None => None,
            Some(Example::Image) => image_code,
            Some(Example::Code(hex)) => Some(
                store
                    .index
                    .field()
                    .from_hex(hex)
                    .map_err(SearchError::Code)?,
            ),
            Some(Example::Like(id)) => Some(code_of(store, searcher, id)?),
        };
        Ok(SearchQuery {
            code,
            like: None,
            text: self.text.clone(),
            filter: self.filter.clone(),
            k: self.k,
            radius: self.radius,
            mode: Some(self.mode),
            depth: self.depth,
        })
    }
}

/// A form field as the JSON value it stands for.
fn form_value(name: &str, text: &str) -> Result<serde_json::Value, RequestError> {
    if let Some(field) = NUMBER_FIELDS.iter().find(|f| **f == name) {
        return serde_json::from_str::<serde_json::Number>(text)
            .map(serde_json::Value::Number)
            .map_err(|_| RequestError::NotANumber {
                field,
                text: text.to_string(),
            });
    }
    match name {
        "explain" => match text {
            "true" => Ok(serde_json::Value::Bool(true)),
            "false" => Ok(serde_json::Value::Bool(false)),
            _ => Err(RequestError::NotABool(text.to_string())),
        },
        _ if TEXT_FIELDS.contains(&name) => Ok(serde_json::Value::String(text.to_string())),
        _ => Err(RequestError::UnknownField(name.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RequestLimits = RequestLimits {
        max_k: 50,
        max_depth: 500,
    };

    fn like(id: &str) -> SearchRequest {
        SearchRequest {
            like: Some(id.into()),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_k_10_filter_mode_no_explain() {
        let c = like("a").check(false, &LIMITS).unwrap();
        assert_eq!(c.example, Some(Example::Like("a".into())));
        assert_eq!(
            (c.k, c.mode, c.depth, c.explain),
            (10, Mode::Filter, None, false)
        );
        let w = SearchRequest {
            mode: Some("weighted".into()),
            ..like("a")
        };
        assert_eq!(w.check(false, &LIMITS).unwrap().mode, Mode::Weighted(0.5));
    }

    #[test]
    fn every_range_is_refused_by_its_variant() {
        type Refused = fn(&RequestError) -> bool;
        let cases: Vec<(SearchRequest, Refused)> = vec![
            (
                SearchRequest {
                    k: Some(0),
                    ..like("a")
                },
                |e| matches!(e, RequestError::K { got: 0, .. }),
            ),
            (
                SearchRequest {
                    k: Some(51),
                    ..like("a")
                },
                |e| matches!(e, RequestError::K { got: 51, max: 50 }),
            ),
            (
                SearchRequest {
                    mode: Some("best".into()),
                    ..like("a")
                },
                |e| matches!(e, RequestError::Mode(m) if m == "best"),
            ),
            (
                SearchRequest {
                    mode: Some("weighted".into()),
                    weight: Some(1.5),
                    ..like("a")
                },
                |e| matches!(e, RequestError::Weight(_)),
            ),
            (
                SearchRequest {
                    depth: Some(0),
                    ..like("a")
                },
                |e| matches!(e, RequestError::Depth { got: 0, .. }),
            ),
            (
                SearchRequest {
                    depth: Some(501),
                    ..like("a")
                },
                |e| matches!(e, RequestError::Depth { got: 501, max: 500 }),
            ),
            (
                SearchRequest {
                    k: Some(5),
                    depth: Some(4),
                    ..like("a")
                },
                |e| matches!(e, RequestError::DepthBelowK { depth: 4, k: 5 }),
            ),
            (
                SearchRequest {
                    code: Some("00".into()),
                    ..like("a")
                },
                |e| matches!(e, RequestError::SeveralExamples),
            ),
        ];
        for (request, is) in cases {
            let e = request.clone().check(false, &LIMITS).unwrap_err();
            assert!(is(&e), "{request:?}: {e}");
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
        assert!(matches!(
            like("a").check(true, &LIMITS),
            Err(RequestError::SeveralExamples)
        ));
        // A weight outside weighted mode is not used, so not refused.
        let ignored = SearchRequest {
            weight: Some(7.0),
            ..like("a")
        };
        assert_eq!(ignored.check(false, &LIMITS).unwrap().mode, Mode::Filter);
    }

    /// Bodies a hostile client sends: nested past serde_json's depth limit,
    /// cut short, of the wrong types, huge numbers. Each is refused as
    /// malformed, never a panic.
    #[test]
    fn hostile_bodies_are_refused_as_malformed() {
        let deep = format!(
            "{{\"like\": {}1{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        for body in [
            deep.as_bytes(),
            br#"{"like": "case-01", "k": "#,
            br#"{"k": "ten"}"#,
            br#"{"k": 1e400}"#,
            br#"{"radius": 99999999999}"#,
            br#"{"explain": "yes"}"#,
            br#"["like", "case-01"]"#,
            b"\xff\xfe",
        ] {
            assert!(
                matches!(
                    SearchRequest::from_json(body),
                    Err(RequestError::Malformed(_))
                ),
                "{}",
                String::from_utf8_lossy(&body[..body.len().min(40)])
            );
        }
    }

    #[test]
    fn a_form_means_what_the_same_json_means() {
        let form = SearchRequest::from_form([
            ("like", "case-01"),
            ("k", "7"),
            ("radius", "3"),
            ("mode", "weighted"),
            ("weight", "0.25"),
            ("depth", "70"),
            ("explain", "true"),
            ("filter", "grade:2"),
        ])
        .unwrap();
        let json = SearchRequest::from_json(
            br#"{"like": "case-01", "k": 7, "radius": 3, "mode": "weighted", "weight": 0.25,
                 "depth": 70, "explain": true, "filter": "grade:2"}"#,
        )
        .unwrap();
        assert_eq!(form, json);
        for (field, text) in [("k", "2.9"), ("radius", "-1")] {
            assert!(matches!(
                SearchRequest::from_form([(field, text)]),
                Err(RequestError::Malformed(_))
            ));
        }
        assert!(matches!(
            SearchRequest::from_form([("k", "many")]),
            Err(RequestError::NotANumber { field: "k", .. })
        ));
        assert!(matches!(
            SearchRequest::from_form([("explain", "yes")]),
            Err(RequestError::NotABool(_))
        ));
        assert!(matches!(
            SearchRequest::from_form([("colour", "red")]),
            Err(RequestError::UnknownField(f)) if f == "colour"
        ));
    }
}
