//! Field logging (docs/src/operations.md, Logs): every top-level field with its arguments, the
//! names of the fields a client asked for and the values it gave them; nested fields at
//! `debug`; resolver errors with their field.
//!
//! A query's top-level fields over HTTP go on the request's own line (`fields=allUsers{limit:
//! 10}`) rather than a line each: a read is then one line, and a line cost about as much as
//! the rest of a cached read. The HTTP layer collects them with [`noting_fields`]. A
//! mutation's fields, and every field of an operation over the WebSocket (which outlives
//! its upgrade request's line), keep an `info` line each (`graphql field`).
//!
//! Arguments are logged with variables substituted, so `createUser(userData: $u)` logs
//! the values actually used: a [`FieldLogging`] lives as long as its request (inside the
//! schema's one extension, `pipeline`) and keeps that request's variables. A value longer than [`MAX_LOGGED_CHARS`] is logged cut short with
//! its full length, so a 1 MB `search` string is a short line, not a 1 MB one; error
//! messages are cut the same way. Line and paragraph separators and bidirectional controls
//! are written escaped, so a value cannot fake a line or reorder one.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::Mutex;

use async_graphql::extensions::ResolveInfo;
use async_graphql::{ServerResult, Value, Variables};

/// The most characters of one argument value (or error message) a log line shows.
pub const MAX_LOGGED_CHARS: usize = 256;

/// `text` as a log line may show it: cut to [`MAX_LOGGED_CHARS`] characters with its length,
/// separators and bidirectional controls escaped.
pub fn loggable(text: &str) -> String {
    bounded(&text)
}

/// Renders `value` into at most [`MAX_LOGGED_CHARS`] characters, then counts the rest
/// without keeping it: `"abc…" (1048576 chars)`.
fn bounded(value: &impl std::fmt::Display) -> String {
    let mut text = Bounded::default();
    let _ = write!(text, "{value}");
    if text.chars <= MAX_LOGGED_CHARS {
        return text.kept;
    }
    format!("{}… ({} chars)", text.kept, text.chars)
}

/// A writer that keeps the first [`MAX_LOGGED_CHARS`] characters and counts them all.
#[derive(Default)]
struct Bounded {
    kept: String,
    chars: usize,
}

impl std::fmt::Write for Bounded {
    fn write_str(&mut self, piece: &str) -> std::fmt::Result {
        for ch in piece.chars() {
            if self.chars < MAX_LOGGED_CHARS {
                if reorders_or_breaks_lines(ch) {
                    let _ = write!(self.kept, "\\u{{{:04X}}}", u32::from(ch));
                } else {
                    self.kept.push(ch);
                }
            }
            self.chars += 1;
        }
        Ok(())
    }
}

/// Characters a client could use to make a log line lie about itself: the line and
/// paragraph separators (a new line to many viewers) and the bidirectional controls (which
/// reorder what follows). A log shows them escaped, as `\u{202E}`.
fn reorders_or_breaks_lines(ch: char) -> bool {
    matches!(ch, '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

tokio::task_local! {
    /// The top-level query fields of the HTTP request running on this task, for its line.
    static NOTED: RefCell<String>;
}

/// Runs `request` (one HTTP request) noting its queries' top-level fields with their
/// arguments, and gives them beside its output (empty when there were none).
pub async fn noting_fields<F: Future>(request: F) -> (F::Output, String) {
    NOTED
        .scope(RefCell::new(String::new()), async move {
            let output = request.await;
            let noted = NOTED.try_with(RefCell::take).unwrap_or_default();
            (output, noted)
        })
        .await
}

/// Adds `fields` (as [`FieldLogging`] notes them) to the request line, when this task runs
/// an HTTP request and `info` is on; false when there is no such line.
pub fn note_fields(fields: &str) -> bool {
    NOTED
        .try_with(|noted| {
            if !fields.is_empty() && tracing::enabled!(tracing::Level::INFO) {
                let mut noted = noted.borrow_mut();
                if !noted.is_empty() {
                    noted.push_str("; ");
                }
                noted.push_str(fields);
            }
        })
        .is_ok()
}

/// Whether this task runs an HTTP request whose line takes its queries' fields.
fn on_request_line() -> bool {
    NOTED.try_with(|_| ()).is_ok()
}

/// The per-request logger.
#[derive(Default)]
pub struct FieldLogging {
    variables: Mutex<Variables>,
}

impl FieldLogging {
    fn describe_arguments(&self, info: &ResolveInfo<'_>) -> String {
        let variables = self.variables.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = String::from("{");
        for (at, (name, value)) in info.field.arguments.iter().enumerate() {
            let value = value
                .node
                .clone()
                .into_const_with(|var| Ok::<_, ()>(variables.get(&var).cloned().unwrap_or(Value::Null)))
                .unwrap_or(Value::Null);
            let separator = if at == 0 { "" } else { ", " };
            let _ = write!(text, "{separator}{}: {}", name.node, bounded(&value));
        }
        text.push('}');
        text
    }
}

impl FieldLogging {
    /// Keeps the request's variables for the `info` line, only when that line is on.
    pub fn remember(&self, variables: &Variables) {
        if tracing::enabled!(tracing::Level::INFO) {
            *self.variables.lock().unwrap_or_else(|p| p.into_inner()) = variables.clone();
        }
    }

    /// Logs a field about to resolve: a top-level one at `info` with its arguments (a query's
    /// over HTTP on the request line, see [`noting_fields`]), any other at `debug`. Gives what
    /// it noted for the request line (empty when nothing), so a cached answer can note it
    /// again.
    pub fn field(&self, info: &ResolveInfo<'_>) -> String {
        if info.path_node.parent.is_none() && !info.is_for_introspection {
            if info.parent_type == "Query" && on_request_line() {
                if !tracing::enabled!(tracing::Level::INFO) {
                    return String::new();
                }
                let noted = format!("{}{}", info.name, self.describe_arguments(info));
                note_fields(&noted);
                return noted;
            }
            tracing::info!(field = %info.name, args = %self.describe_arguments(info), "graphql field");
        } else {
            tracing::debug!(field = %info.name, path = %info.path_node, "graphql field");
        }
        String::new()
    }

    /// Logs a field that failed, with its error cut short.
    pub fn outcome(field: &str, result: &ServerResult<Option<Value>>) {
        if let Err(err) = result {
            tracing::warn!(field = %field, error = %bounded(&err.message), "graphql field failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_to_the_limit_with_their_length() {
        let long = Value::from("x".repeat(1_000_000));
        let text = bounded(&long);
        assert!(text.chars().count() < MAX_LOGGED_CHARS + 40, "{}", text.len());
        assert!(text.ends_with("… (1000002 chars)"), "{text}");
        assert_eq!(bounded(&Value::from("short")), "\"short\"");
    }

    #[test]
    fn separators_and_bidi_controls_are_logged_escaped() {
        let sneaky = Value::from("ok\u{2028}FAKE LINE\u{2029}\u{202E}desrever\u{2066}x");
        let text = bounded(&sneaky);
        assert_eq!(
            text,
            "\"ok\\u{2028}FAKE LINE\\u{2029}\\u{202E}desrever\\u{2066}x\""
        );
        for raw in ['\u{2028}', '\u{2029}', '\u{202E}', '\u{2066}'] {
            assert!(!text.contains(raw), "{text:?}");
        }
    }
}
