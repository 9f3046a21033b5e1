//! The bounds on what one GraphQL request may cost (docs/src/http.md, Limits on a query),
//! enforced on every transport.
//!
//! Before parsing, the query text's bracket nesting is checked in one pass, so a pathological
//! document cannot drive the recursive parser deep. Right after parsing, the document is
//! measured ([`super::cost`]) and refused with `BAD_USER_INPUT` when its depth, its expanded
//! field count or the size of the answer it can build is over the limit: validation and
//! execution never see it. A syntax error answers a short excerpt around the error rather than
//! the parser's echo of the whole line. Execution runs under a deadline, so a request that
//! still takes too long is stopped (its future dropped), not just answered late.
//!
//! The request gate ([`super::gate`]) applies these on the schema, so the WebSocket
//! transport gets the same limits as HTTP.

use std::future::Future;
use std::time::{Duration, Instant};

use async_graphql::extensions::ExtensionContext;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Response, ServerError, ServerResult, Variables};

use super::cost::{self, MAX_NESTING, Measure, SORT_BY_TEXT, SORT_BY_TIME, Unmeasurable, fuzzy_weight};
use super::errors::ErrorCode;
use super::messages;
use crate::app::AppServices;

/// The most tokens (names, numbers, strings, punctuation) a query may have. A bulk update of
/// 10,000 items written inline has about 90,000; larger inputs belong in variables, which
/// are JSON and not parsed as GraphQL.
pub const MAX_TOKENS: usize = 100_000;
/// How long an excerpt of the query a syntax error quotes, in characters either side.
const EXCERPT_CHARS: usize = 40;

/// The limits, chosen at start (flags) and shared by every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryLimits {
    /// How deeply fields may nest.
    pub max_depth: u64,
    /// How many fields a document may select with its fragments expanded.
    pub max_fields: u64,
    /// How many values the answer may hold at most, lists counted by what they can return.
    pub max_cost: u64,
    /// How many times a query's searches, sorted pages and mutations may go over the users,
    /// weighted (see `cost`).
    pub max_scan: u64,
    /// What each mutation after an operation's first adds to its scan, per user: the file
    /// store writes every user again on each commit (about 500 ns a user at 100,000), the
    /// database store only the changed row (0).
    pub write_weight: u64,
    /// How many items one list argument may hold: a `bulkUpdateEmails` of more is refused
    /// before any of it is worked out.
    pub max_bulk_items: u64,
    /// How long one operation may execute.
    pub request_timeout: Duration,
}

/// The most items a bulk update may hold unless a flag says otherwise.
pub const DEFAULT_MAX_BULK_ITEMS: u64 = 10_000;

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_depth: 20,
            max_fields: 2_000,
            max_cost: 1_000_000,
            max_scan: 4_000_000,
            write_weight: 10,
            max_bulk_items: DEFAULT_MAX_BULK_ITEMS,
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl QueryLimits {
    /// Refuses a document whose depth, expanded field count, answer size or scan is over
    /// the limits, in time linear in its size; answers its measure and its scan (how many
    /// times it goes over the users, weighted).
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the limit and the document's figure.
    pub async fn check_document(
        &self,
        ctx: &ExtensionContext<'_>,
        document: &ExecutableDocument,
        variables: &Variables,
    ) -> ServerResult<(Measure, u64)> {
        let registry = &ctx.schema_env.registry;
        let mut users = None;
        let measured = match cost::measure(document, registry, variables, None) {
            Err(Unmeasurable::NeedsUserCount) => {
                let count = user_count(ctx).await;
                users = Some(count);
                cost::measure(document, registry, variables, Some(count))
            }
            other => other,
        };
        let measure = measured.map_err(|why| refuse(&unmeasurable_message(&why)))?;
        // Before anything that costs: a bulk is refused for its size alone.
        if measure.list_items > self.max_bulk_items {
            return Err(refuse(&format!(
                "A list argument holds {} items (bulkUpdateEmails' updates); at most {} are allowed \
                 (--max-bulk-items). Split it into several requests.",
                measure.list_items, self.max_bulk_items
            )));
        }
        // One commit per operation is what any write costs; each further one is counted.
        let passes = measure
            .passes
            .saturating_add(measure.writes.saturating_sub(1).saturating_mul(self.write_weight));
        let scan = if passes == 0 {
            0
        } else {
            let users = match users {
                Some(users) => users,
                None => user_count(ctx).await,
            };
            passes.saturating_mul(users)
        };
        if measure.depth > self.max_depth {
            return Err(refuse(&format!(
                "Query is nested too deep: its fields nest {} levels; at most {} are allowed.",
                measure.depth, self.max_depth
            )));
        }
        if measure.fields > self.max_fields {
            return Err(refuse(&format!(
                "The query selects {} fields with its fragments expanded; at most {} are allowed.",
                measure.fields, self.max_fields
            )));
        }
        if measure.cost > self.max_cost {
            return Err(refuse(&cost_message(document, measure.cost, self.max_cost)));
        }
        if scan > self.max_scan {
            let writes = match self.write_weight {
                0 => String::new(),
                weight => format!(", {weight} for each mutation after the first"),
            };
            return Err(refuse(&format!(
                "The query would go over the users {scan} times (per user: 1 for a search, {} to {} \
                 for a fuzzy search by its maxDistance, {SORT_BY_TIME} or {SORT_BY_TEXT} more for \
                 sorting a searched page by a timestamp or by name or email{writes}); at most {} are allowed \
                 (--max-query-scan). Use fewer of them, a smaller maxDistance, or separate requests.",
                fuzzy_weight(0),
                fuzzy_weight(10),
                self.max_scan
            )));
        }
        Ok((measure, scan))
    }

    /// Runs an operation under the deadline (or the earlier `shared` one, a batch's);
    /// past it the operation's future is dropped (its work stops at its next await) and the
    /// answer is `REQUEST_TIMEOUT`.
    pub async fn with_deadline(
        &self,
        operation: Option<&str>,
        shared: Option<Instant>,
        execution: impl Future<Output = Response>,
    ) -> Response {
        let timeout = self.request_timeout;
        let own = Instant::now() + timeout;
        let deadline = shared.map_or(own, |shared| shared.min(own));
        match tokio::time::timeout_at(deadline.into(), execution).await {
            Ok(response) => response,
            Err(_) => {
                tracing::warn!(
                    operation = operation.unwrap_or_default(),
                    timeout_s = timeout.as_secs_f64(),
                    "request stopped at its deadline"
                );
                Response::from_errors(vec![ErrorCode::RequestTimeout.server_error(format!(
                    "The request ran longer than {} s and was stopped.",
                    timeout.as_secs_f64()
                ))])
            }
        }
    }
}

/// Why a document's answer is too large, in the words of what it asks: introspection lists
/// count as the schema's longest such list, lists of users by what they can return.
fn cost_message(document: &ExecutableDocument, cost: u64, max: u64) -> String {
    let (introspection, users) = root_kinds(document);
    if introspection && !users {
        return format!(
            "The introspection answer could hold {cost} values (each introspection list counted as \
             long as the longest such list in the schema, so every nested list multiplies); at most \
             {max} are allowed. Nest fewer lists (fields, args, interfaces, possibleTypes, enumValues, \
             inputFields) under types, or ask for one type with __type(name: …)."
        );
    }
    let also = if introspection {
        " Introspection lists count as the longest such list in the schema."
    } else {
        ""
    };
    format!(
        "The answer could hold {cost} values (lists counted by what they can return: every user \
         for a list without a limit); at most {max} are allowed. Use limit, first or fewer aliases.{also}"
    )
}

/// Whether the document's operations select introspection (`__schema`, `__type`) and
/// whether they select anything else but `__typename`, at their roots.
fn root_kinds(document: &ExecutableDocument) -> (bool, bool) {
    fn walk(document: &ExecutableDocument, set: &SelectionSet, depth: usize, kinds: &mut (bool, bool)) {
        if depth > MAX_NESTING {
            return;
        }
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => match field.node.name.node.as_str() {
                    "__typename" => {}
                    "__schema" | "__type" => kinds.0 = true,
                    _ => kinds.1 = true,
                },
                Selection::InlineFragment(inline) => {
                    walk(document, &inline.node.selection_set.node, depth + 1, kinds)
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                        walk(document, &fragment.node.selection_set.node, depth + 1, kinds);
                    }
                }
            }
        }
    }
    let mut kinds = (false, false);
    for (_, operation) in document.operations.iter() {
        walk(document, &operation.node.selection_set.node, 0, &mut kinds);
    }
    kinds
}

fn refuse(message: &str) -> ServerError {
    ErrorCode::BadUserInput.server_error(message)
}

fn unmeasurable_message(why: &Unmeasurable) -> String {
    match why {
        Unmeasurable::Cycle(name) => {
            format!("Fragment \"{name}\" spreads itself, directly or through others.")
        }
        Unmeasurable::TooNested => {
            format!("Selections and fragment spreads nest more than {MAX_NESTING} levels deep.")
        }
        Unmeasurable::NeedsUserCount => "The query's cost could not be measured.".to_owned(),
    }
}

/// The number of users, which a list without a limit can return; 0 when the store cannot be
/// read (the resolver will say so).
async fn user_count(ctx: &ExtensionContext<'_>) -> u64 {
    match ctx.data::<AppServices>() {
        Ok(services) => services
            .check_health
            .execute()
            .await
            .users
            .map_or(0, |users| users as u64),
        Err(_) => 0,
    }
}

/// Refuses, in one pass over the text and before the parser sees it, a query whose brackets
/// nest deeper than any document the limits allow (the parser is recursive) or that has more
/// than [`MAX_TOKENS`] tokens (parsing a megabyte of one-letter fields takes a second and
/// 120 MB, only for the document to be refused for its field count). Strings count as one
/// token and comments as none. Answers the number of tokens.
pub fn check_text(query: &str) -> ServerResult<usize> {
    let bytes = query.as_bytes();
    let mut depth = 0usize;
    let mut tokens = 0usize;
    let mut in_word = false;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        let word = byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80;
        if word && !in_word || !word && !matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b',' | b'#') {
            tokens += 1;
        }
        in_word = word;
        match byte {
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(refuse(&format!(
                        "Brackets nest more than {MAX_NESTING} levels deep."
                    )));
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            b'#' => {
                while at < bytes.len() && bytes[at] != b'\n' && bytes[at] != b'\r' {
                    at += 1;
                }
            }
            b'"' if bytes[at..].starts_with(b"\"\"\"") => {
                at += 3;
                while at < bytes.len() && !bytes[at..].starts_with(b"\"\"\"") {
                    // `\"""` is an escaped triple quote inside a block string.
                    at += if bytes[at..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                at += 2;
            }
            b'"' => {
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        at += 1;
    }
    if tokens > MAX_TOKENS {
        return Err(refuse(&format!(
            "The query has more than {MAX_TOKENS} tokens; send large inputs as variables."
        )));
    }
    Ok(tokens)
}

/// The error for a document the parser refused: a syntax error shortened
/// ([`shorten_syntax_error`]); a document that parses but cannot be one (two operations or
/// fragments of one name, an anonymous operation among others) said as such, at the places
/// involved.
pub fn parse_error(err: async_graphql::parser::Error, query: &str) -> ServerError {
    match messages::document(&err) {
        Some(message) => {
            let mut error = ServerError::new(message, None);
            error.locations = err.positions().collect();
            error
        }
        None => shorten_syntax_error(err.into(), query),
    }
}

/// Replaces the parser's message (which echoes the whole offending line with caret padding,
/// 2 MB for a 1 MB one-line query) by the position, what was expected, and a short excerpt.
pub fn shorten_syntax_error(mut err: ServerError, query: &str) -> ServerError {
    let expected = err
        .message
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("= "))
        .map(|text| truncate_chars(text, 120));
    let Some(at) = err.locations.first().copied() else {
        err.message = truncate_chars(&err.message, 200);
        return err;
    };
    let excerpt = excerpt(query, at.line, at.column);
    err.message = match expected {
        Some(expected) => format!(
            "Syntax error at line {}, column {}: {expected}; near \"{excerpt}\"",
            at.line, at.column
        ),
        None => format!(
            "Syntax error at line {}, column {}, near \"{excerpt}\"",
            at.line, at.column
        ),
    };
    err
}

/// Up to [`EXCERPT_CHARS`] characters either side of `line:column` (both counted from 1).
fn excerpt(query: &str, line: usize, column: usize) -> String {
    let text = query.lines().nth(line.saturating_sub(1)).unwrap_or_default();
    let at = column.saturating_sub(1);
    let start = at.saturating_sub(EXCERPT_CHARS);
    text.chars()
        .skip(start)
        .take(at - start + 1 + EXCERPT_CHARS)
        .collect()
}

fn truncate_chars(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let mut kept: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        kept.push('…');
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_megabyte_of_one_letter_fields_is_too_many_tokens_but_a_long_string_is_one() {
        assert!(check_text(&format!("{{ {} }}", "a ".repeat(100_001))).is_err());
        assert!(check_text(&format!("{{ {} }}", "a ".repeat(99_000))).is_ok());
        let string = format!("{{ allUsers(search: \"{}\") {{ id }} }}", "a b ".repeat(250_000));
        assert!(check_text(&string).is_ok());
        let commas = format!("{{ allUsers {{ id{} }} }}", ",".repeat(500_000));
        assert!(check_text(&commas).is_ok());
    }

    #[test]
    fn nesting_counts_brackets_outside_strings_and_comments() {
        let deep = format!("{{ a(x: {}1{}) }}", "[".repeat(70), "]".repeat(70));
        assert!(check_text(&deep).is_err());
        let quoted = format!("{{ a(x: \"{}\") }} # {}", "[".repeat(200), "{".repeat(200));
        assert!(check_text(&quoted).is_ok());
        let escaped = format!("{{ a(x: \"\\\"{}\") }}", "(".repeat(200));
        assert!(check_text(&escaped).is_ok());
        let block = format!("{{ a(x: \"\"\"a \"{}\" b\"\"\") }}", "{".repeat(200));
        assert!(check_text(&block).is_ok());
    }

    #[tokio::test]
    async fn a_shared_deadline_that_has_passed_stops_the_operation_at_once() {
        let limits = QueryLimits::default();
        let passed = Instant::now();
        let stuck = std::future::pending::<Response>();
        let response = tokio::time::timeout(
            Duration::from_secs(10),
            limits.with_deadline(Some("Late"), Some(passed), stuck),
        )
        .await
        .expect("the batch's deadline, not the operation's 30 s, applies");
        let code = response.errors[0]
            .extensions
            .as_ref()
            .and_then(|ext| ext.get("code").cloned());
        assert_eq!(code, Some(async_graphql::Value::from("REQUEST_TIMEOUT")));
    }

    #[test]
    fn an_excerpt_keeps_forty_characters_either_side() {
        let line = format!("{}X{}", "a".repeat(100), "b".repeat(100));
        let got = excerpt(&line, 1, 101);
        assert_eq!(got, format!("{}X{}", "a".repeat(40), "b".repeat(40)));
        assert_eq!(excerpt("{ a", 1, 1), "{ a");
    }
}
