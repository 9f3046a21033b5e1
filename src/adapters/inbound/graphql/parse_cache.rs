//! Parsing, and caches of parsed and validated queries, keyed by what they depend on.
//!
//! Clients send the same few query strings over and over; the profile of a list request
//! showed the pest-based parser among the largest costs of the request itself, and
//! validation walks the whole document again with every rule. A parsed document depends
//! only on the query text; a validation result on the text, the operation name and the
//! variables, so that is its key.
//!
//! Both caches are bounded in bytes, not entries: a parsed document takes far more memory
//! than its text (a 1 MiB query of one-letter fields parsed into about 112 MB), so each entry
//! is charged [`DOCUMENT_BYTES_PER_QUERY_BYTE`] times its query's length, the worst ratio
//! measured. Queries longer than [`MAX_KEY_BYTES`] never enter either cache. A cache that
//! would grow past its budget starts over, so a client sending endless distinct queries costs
//! re-parsing, never memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{ExtensionContext, NextValidation};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, ServerError, ValidationResult};

/// Requests whose query (or query and variables) are longer than this are parsed and
/// validated afresh rather than remembered.
pub const MAX_KEY_BYTES: usize = 16 * 1024;
/// What a cached document is charged per byte of its query text.
pub const DOCUMENT_BYTES_PER_QUERY_BYTE: usize = 128;
/// What a remembered validation is charged besides its key and error messages.
const VALIDATION_OVERHEAD_BYTES: usize = 256;
/// The default budget of each cache.
pub const DEFAULT_BUDGET_BYTES: usize = 32 * 1024 * 1024;

/// What validating a request answered.
pub type Validated = Result<ValidationResult, Vec<ServerError>>;

/// Shares the caches between every request; cloning shares them too.
#[derive(Clone)]
pub struct ParseCache {
    documents: Arc<Mutex<Bounded<ExecutableDocument>>>,
    validations: Arc<Mutex<Bounded<Validated>>>,
}

impl Default for ParseCache {
    fn default() -> Self {
        Self::with_budget(DEFAULT_BUDGET_BYTES)
    }
}

impl ParseCache {
    /// Caches holding at most about `bytes` each.
    pub fn with_budget(bytes: usize) -> Self {
        Self {
            documents: Arc::new(Mutex::new(Bounded::new(bytes))),
            validations: Arc::new(Mutex::new(Bounded::new(bytes))),
        }
    }
}

/// A map whose entries' charged sizes add up to at most `budget`.
struct Bounded<V> {
    entries: HashMap<String, V>,
    charged: usize,
    budget: usize,
}

impl<V: Clone> Bounded<V> {
    fn new(budget: usize) -> Self {
        Self {
            entries: HashMap::new(),
            charged: 0,
            budget,
        }
    }

    fn get(&self, key: &str) -> Option<V> {
        self.entries.get(key).cloned()
    }

    fn insert(&mut self, key: String, value: V, bytes: usize) {
        if bytes > self.budget {
            return;
        }
        if self.charged + bytes > self.budget {
            self.entries.clear();
            self.charged = 0;
        }
        if self.entries.insert(key, value).is_none() {
            self.charged += bytes;
        }
    }
}

fn validation_bytes(key: &str, validated: &Validated) -> usize {
    let messages = match validated {
        Ok(_) => 0,
        Err(errors) => errors
            .iter()
            .map(|e| e.message.len() + VALIDATION_OVERHEAD_BYTES)
            .sum(),
    };
    key.len() + messages + VALIDATION_OVERHEAD_BYTES
}

fn remember<V: Clone>(cache: &Mutex<Bounded<V>>, key: String, value: &V, bytes: usize) {
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, value.clone(), bytes);
}

impl ParseCache {
    /// The key a request's validation is remembered under, unless it is too long to keep.
    pub fn validation_key(request: &Request) -> Option<String> {
        if request.query.len() > MAX_KEY_BYTES {
            return None;
        }
        let variables = serde_json::to_string(&request.variables).unwrap_or_default();
        let operation = request.operation_name.as_deref().unwrap_or_default();
        let key = format!("{}\u{0}{operation}\u{0}{variables}", request.query);
        (key.len() <= MAX_KEY_BYTES).then_some(key)
    }

    /// Parses (or remembers) the document. It uses the parser directly rather than
    /// async-graphql's parsing step, which then checks recursion depth by expanding every
    /// fragment spread, in exponential time on a fragment fan-out; the limits measure the
    /// document instead, in linear time.
    ///
    /// # Errors
    /// The parser's error, as it is: a syntax error, or a document that parses but cannot be
    /// one (two operations or fragments of one name, an anonymous operation among others).
    pub fn parse(&self, query: &str) -> Result<ExecutableDocument, async_graphql::parser::Error> {
        if query.len() > MAX_KEY_BYTES {
            return async_graphql::parser::parse_query(query);
        }
        let hit = self
            .documents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(query);
        if let Some(document) = hit {
            return Ok(document);
        }
        let document = async_graphql::parser::parse_query(query)?;
        let bytes = query.len() * DOCUMENT_BYTES_PER_QUERY_BYTE;
        remember(&self.documents, query.to_owned(), &document, bytes);
        Ok(document)
    }

    /// Validates through `next`, or answers what validating under `key` answered before.
    pub async fn validate(
        &self,
        key: Option<String>,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Validated {
        let Some(key) = key else {
            return next.run(ctx).await;
        };
        let hit = self
            .validations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key);
        if let Some(validated) = hit {
            return validated;
        }
        let validated = next.run(ctx).await;
        let bytes = validation_bytes(&key, &validated);
        remember(&self.validations, key, &validated, bytes);
        validated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_cache_starts_over_rather_than_grow_past_its_budget() {
        let mut cache = Bounded::new(100);
        cache.insert("a".into(), 1, 60);
        cache.insert("a".into(), 1, 60);
        assert_eq!(cache.charged, 60, "a key inserted twice is charged once");
        cache.insert("b".into(), 2, 60);
        assert_eq!((cache.get("a"), cache.get("b")), (None, Some(2)));
        assert_eq!(cache.charged, 60);
        cache.insert("c".into(), 3, 101);
        assert_eq!(
            cache.get("c"),
            None,
            "an entry over the whole budget never enters"
        );
        assert!(cache.charged <= cache.budget);
    }
}
