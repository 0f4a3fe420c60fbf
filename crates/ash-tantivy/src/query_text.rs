//! Query strings bounded before tantivy parses them.
//!
//! tantivy's query grammar is a recursive-descent parser: every group
//! `( … )` and every `NOT` is another level of recursion, in the parser and
//! again in the query it builds. A string of 20,000 nested parentheses
//! overflows any thread's stack, which aborts the whole process (a server
//! included) rather than failing the one request. So the length and the
//! nesting depth of a query string are measured first, in one pass that
//! follows the grammar's quoting and escaping, and a string over either
//! limit is refused with an error naming the limit. The CLI, the server
//! and embedders all parse through [`parse_bounded`].

use tantivy::query::{Query, QueryParser, QueryParserError};

/// How long and how deeply nested a query string may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Longest query string, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of groups and `NOT`s.
    pub max_depth: usize,
}

impl Default for QueryLimits {
    /// 4,096 bytes and 32 levels: far beyond what a person types, far below
    /// what a 2 MiB thread stack holds.
    fn default() -> Self {
        Self {
            max_bytes: 4096,
            max_depth: 32,
        }
    }
}

/// Why a query string was refused.
#[derive(Debug, thiserror::Error)]
pub enum QueryTextError {
    /// Longer than [`QueryLimits::max_bytes`].
    #[error("the query is {bytes} bytes long, over the limit of {max} bytes")]
    TooLong {
        /// The string's length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// Nested deeper than [`QueryLimits::max_depth`].
    #[error("the query nests {depth} levels deep (groups and NOTs), over the limit of {max}")]
    TooDeep {
        /// The depth reached when the limit was passed.
        depth: usize,
        /// The limit.
        max: usize,
    },
    /// Within the limits, but not a valid query.
    #[error(transparent)]
    Syntax(#[from] QueryParserError),
}

/// Parses `text` with `parser` once it is within `limits`.
///
/// ```
/// use ash_tantivy::query_text::{parse_bounded, QueryLimits, QueryTextError};
/// use tantivy::schema::{Schema, TEXT};
/// let mut schema = Schema::builder();
/// let report = schema.add_text_field("report", TEXT);
/// let index = tantivy::Index::create_in_ram(schema.build());
/// let parser = tantivy::query::QueryParser::for_index(&index, vec![report]);
/// assert!(parse_bounded(&parser, "exudates AND NOT (drusen)", &QueryLimits::default()).is_ok());
/// let deep = format!("{}a{}", "(".repeat(20_000), ")".repeat(20_000));
/// assert!(matches!(
///     parse_bounded(&parser, &deep, &QueryLimits { max_bytes: 1 << 20, max_depth: 32 }),
///     Err(QueryTextError::TooDeep { .. })
/// ));
/// ```
pub fn parse_bounded(
    parser: &QueryParser,
    text: &str,
    limits: &QueryLimits,
) -> Result<Box<dyn Query>, QueryTextError> {
    check(text, limits)?;
    Ok(parser.parse_query(text)?)
}

/// Refuses a string over the limits, without parsing it.
pub(crate) fn check(text: &str, limits: &QueryLimits) -> Result<(), QueryTextError> {
    if text.len() > limits.max_bytes {
        return Err(QueryTextError::TooLong {
            bytes: text.len(),
            max: limits.max_bytes,
        });
    }
    let depth = nesting_depth(text);
    if depth > limits.max_depth {
        return Err(QueryTextError::TooDeep {
            depth,
            max: limits.max_depth,
        });
    }
    Ok(())
}

/// The deepest nesting of groups and `NOT` chains: `(`, `field:(` and each
/// `NOT` that applies to what follows it add a level; quoted phrases and
/// escaped characters add none.
pub(crate) fn nesting_depth(text: &str) -> usize {
    // The depth at which each open group's contents sit.
    let mut groups: Vec<usize> = vec![0];
    let mut pending_not = 0usize;
    let mut deepest = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let here = *groups.last().expect("never empty");
        match c {
            '(' => {
                let d = here + pending_not + 1;
                groups.push(d);
                deepest = deepest.max(d);
                pending_not = 0;
            }
            ')' => {
                if groups.len() > 1 {
                    groups.pop();
                }
                pending_not = 0;
            }
            '"' => {
                // A phrase: everything up to the closing quote is literal.
                while let Some(q) = chars.next() {
                    match q {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                pending_not = 0;
            }
            c if c.is_whitespace() => {}
            _ => {
                let mut word = String::new();
                let mut c = c;
                loop {
                    if c == '\\' {
                        word.push('\\');
                        chars.next();
                    } else {
                        word.push(c);
                    }
                    match chars.peek() {
                        Some(&n) if !n.is_whitespace() && n != '(' && n != ')' && n != '"' => {
                            c = n;
                            chars.next();
                        }
                        _ => break,
                    }
                }
                if word == "NOT" {
                    pending_not += 1;
                    deepest = deepest.max(here + pending_not);
                } else if !word.ends_with(':') {
                    pending_not = 0;
                }
            }
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_follows_groups_nots_and_quotes() {
        for (q, d) in [
            ("exudates", 0),
            ("(a)", 1),
            ("((a) OR (b))", 2),
            ("report:(a OR (b))", 2),
            ("NOT a", 1),
            ("NOT NOT NOT a", 3),
            ("NOT (NOT (a))", 4),
            ("a AND NOT b AND NOT c", 1),
            ("\"((((((\" AND x", 0),
            ("\\(\\(\\( a", 0),
            ("grade:[2 TO 4] AND eye:OS", 0),
            (")))(((", 3),
        ] {
            assert_eq!(nesting_depth(q), d, "{q}");
        }
    }

    #[test]
    fn limits_name_themselves() {
        let limits = QueryLimits::default();
        let long = "a ".repeat(3000);
        assert!(matches!(
            check(&long, &limits),
            Err(QueryTextError::TooLong { max: 4096, .. })
        ));
        let deep = format!("{}a{}", "(".repeat(33), ")".repeat(33));
        assert!(matches!(
            check(&deep, &limits),
            Err(QueryTextError::TooDeep { depth: 33, max: 32 })
        ));
        let ok = format!("{}a{}", "(".repeat(32), ")".repeat(32));
        check(&ok, &limits).unwrap();
    }
}
