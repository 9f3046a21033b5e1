//! Automatic persisted queries (Apollo's APQ): a client sends a query's SHA-256 instead of its
//! text; if the hash is unknown it gets `PersistedQueryNotFound` (code
//! `PERSISTED_QUERY_NOT_FOUND`, both of which Apollo's link recognises) and sends the text
//! with the hash once, which registers it.
//!
//! async-graphql's `ApolloPersistedQueries` extension is not used: it stores parsed documents
//! (a parsed document takes up to about 128 times its text, see `parse_cache`) in a cache
//! bounded in entries only, parses registering queries itself before any limit is checked, and
//! hands async-graphql the parsed document, which skips the request gate's parsing step, and so
//! the token check, the access check and the cost limits. Here the store keeps query *text*,
//! bounded in entries and in bytes (queries over [`MAX_PERSISTED_QUERY_BYTES`] are not kept), and
//! a resolved query goes through the gate exactly as if it had been sent in full.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_graphql::{Request, ServerResult, Value};
use sha2::{Digest, Sha256};

use super::errors::ErrorCode;

/// The most queries the store keeps.
pub const MAX_PERSISTED_QUERIES: usize = 4096;
/// Queries longer than this are run but not kept: their clients send them in full each time.
pub const MAX_PERSISTED_QUERY_BYTES: usize = 64 * 1024;
/// The message Apollo's link matches, besides the code.
pub const NOT_FOUND: &str = "PersistedQueryNotFound";

/// A SHA-256 digest.
type Hash = [u8; 32];

/// The persisted queries, shared by every request; cloning shares them too.
#[derive(Clone)]
pub struct PersistedQueries {
    store: Arc<Mutex<Store>>,
}

impl PersistedQueries {
    /// A store of at most [`MAX_PERSISTED_QUERIES`] queries and `bytes` of query text.
    pub fn with_budget(bytes: usize) -> Self {
        Self {
            store: Arc::new(Mutex::new(Store::new(MAX_PERSISTED_QUERIES, bytes))),
        }
    }

    /// Reads the request's `persistedQuery` extension: a hash alone is replaced by the query
    /// it stands for; a hash with its query is checked against it. Answers the hash to
    /// [`remember`](Self::remember) once the query has passed the checks on its text.
    ///
    /// # Errors
    /// `PERSISTED_QUERY_NOT_FOUND` for an unknown hash; `BAD_USER_INPUT` for a malformed
    /// extension or a hash that is not the query's.
    pub fn resolve(&self, request: &mut Request) -> ServerResult<Option<Hash>> {
        let Some(extension) = request.extensions.get("persistedQuery") else {
            return Ok(None);
        };
        let hash = requested_hash(extension)?;
        if request.query.is_empty() {
            let known = self.lock().get(&hash);
            return match known {
                Some(query) => {
                    request.query = query.to_string();
                    Ok(None)
                }
                None => Err(ErrorCode::PersistedQueryNotFound.server_error(NOT_FOUND)),
            };
        }
        let actual: Hash = Sha256::digest(request.query.as_bytes()).into();
        if actual != hash {
            return Err(bad(
                "provided sha does not match query: persistedQuery.sha256Hash must be the SHA-256 of the query text, in hex.",
            ));
        }
        Ok(Some(hash))
    }

    /// Keeps `query` under `hash`, unless it is too long to keep.
    pub fn remember(&self, hash: Hash, query: &str) {
        if query.len() <= MAX_PERSISTED_QUERY_BYTES {
            self.lock().insert(hash, query);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn bad(message: &str) -> async_graphql::ServerError {
    ErrorCode::BadUserInput.server_error(message)
}

/// The hash of a `{"version": 1, "sha256Hash": "<64 hex digits>"}` extension.
fn requested_hash(extension: &Value) -> ServerResult<Hash> {
    let Value::Object(fields) = extension else {
        return Err(bad(
            "extensions.persistedQuery must be an object with version and sha256Hash.",
        ));
    };
    match fields.get("version") {
        Some(Value::Number(version)) if version.as_u64() == Some(1) => {}
        _ => {
            return Err(bad(
                "Only version 1 of persisted queries is supported: send \"version\": 1.",
            ));
        }
    }
    match fields.get("sha256Hash") {
        Some(Value::String(hex)) => {
            parse_hex(hex).ok_or_else(|| bad("persistedQuery.sha256Hash must be 64 hexadecimal digits."))
        }
        _ => Err(bad("extensions.persistedQuery must have a sha256Hash string.")),
    }
}

fn parse_hex(text: &str) -> Option<Hash> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (byte, pair) in hash.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(hash)
}

/// Query texts by hash; the oldest go first when a bound is reached.
struct Store {
    queries: HashMap<Hash, Arc<str>>,
    order: VecDeque<Hash>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl Store {
    fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            queries: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    fn get(&self, hash: &Hash) -> Option<Arc<str>> {
        self.queries.get(hash).cloned()
    }

    fn insert(&mut self, hash: Hash, query: &str) {
        if query.len() > self.max_bytes || self.queries.contains_key(&hash) {
            return;
        }
        while self.queries.len() >= self.max_entries || self.bytes + query.len() > self.max_bytes {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(gone) = self.queries.remove(&oldest) {
                self.bytes -= gone.len();
            }
        }
        self.queries.insert(hash, Arc::from(query));
        self.order.push_back(hash);
        self.bytes += query.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(hash: &Hash) -> String {
        hash.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn persisted(hash: &str) -> Request {
        let mut request = Request::new("");
        let extension = serde_json::json!({ "version": 1, "sha256Hash": hash });
        request
            .extensions
            .insert("persistedQuery".into(), Value::from_json(extension).unwrap());
        request
    }

    #[test]
    fn a_hash_is_unknown_until_its_query_is_sent_with_it() {
        let queries = PersistedQueries::with_budget(1024);
        let query = "{ allUsers { id } }";
        let hash: Hash = Sha256::digest(query).into();
        let err = queries.resolve(&mut persisted(&hex(&hash))).unwrap_err();
        assert_eq!(err.message, NOT_FOUND);

        let mut full = persisted(&hex(&hash).to_uppercase());
        full.query = query.into();
        let register = queries.resolve(&mut full).unwrap();
        assert_eq!(register, Some(hash));
        queries.remember(hash, query);

        let mut short = persisted(&hex(&hash));
        assert_eq!(queries.resolve(&mut short).unwrap(), None);
        assert_eq!(short.query, query);
    }

    #[test]
    fn a_hash_that_is_not_the_querys_or_a_malformed_extension_is_refused() {
        let queries = PersistedQueries::with_budget(1024);
        let mut wrong = persisted(&"0".repeat(64));
        wrong.query = "{ a }".into();
        assert!(
            queries
                .resolve(&mut wrong)
                .unwrap_err()
                .message
                .contains("does not match")
        );
        assert!(queries.resolve(&mut persisted("abc")).is_err());
        let mut old = Request::new("");
        let extension = serde_json::json!({ "version": 2, "sha256Hash": "0".repeat(64) });
        old.extensions
            .insert("persistedQuery".into(), Value::from_json(extension).unwrap());
        assert!(
            queries
                .resolve(&mut old)
                .unwrap_err()
                .message
                .contains("version 1")
        );
    }

    #[test]
    fn the_store_keeps_within_its_entries_and_bytes_dropping_the_oldest() {
        let mut store = Store::new(2, 10);
        store.insert([1; 32], "aaaa");
        store.insert([2; 32], "bbbb");
        store.insert([3; 32], "cccc");
        assert!(
            store.get(&[1; 32]).is_none(),
            "over the entry bound, the oldest goes"
        );
        assert_eq!(store.queries.len(), 2);
        store.insert([4; 32], "dddddddd");
        assert_eq!(store.bytes, 8);
        assert!(store.get(&[4; 32]).is_some() && store.get(&[3; 32]).is_none());
        store.insert([5; 32], "eleven bytes");
        assert!(
            store.get(&[5; 32]).is_none(),
            "a query over the whole budget is not kept"
        );
        assert!(store.bytes <= 10);
    }
}
