//! Caches of parsed and validated queries, keyed by what they depend on.
//!
//! Clients send the same few query strings over and over; the profile of a list request
//! showed the pest-based parser among the largest costs of the request itself, and
//! validation walks the whole document again with every rule. A parsed document depends
//! only on the query text; a validation result on the text, the operation name and the
//! variables, so that is its key. Each cache holds at most [`CAPACITY`] entries and starts
//! over when full, so a client sending endless distinct queries cannot grow it unbounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, ServerError, ServerResult, ValidationResult, Variables};

/// How many entries each cache keeps.
pub const CAPACITY: usize = 512;
/// Requests whose query and variables are longer than this are validated afresh rather
/// than remembered, so large payloads (a bulk update of thousands of items) cannot fill
/// the cache with megabytes of keys.
pub const MAX_KEY_BYTES: usize = 16 * 1024;

type Validated = Result<ValidationResult, Vec<ServerError>>;

/// Shares the caches between every request.
#[derive(Default)]
pub struct ParseCache {
    documents: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
    validations: Arc<Mutex<HashMap<String, Validated>>>,
}

impl ExtensionFactory for ParseCache {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CachedParse {
            documents: Arc::clone(&self.documents),
            validations: Arc::clone(&self.validations),
            key: Mutex::new(None),
        })
    }
}

struct CachedParse {
    documents: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
    validations: Arc<Mutex<HashMap<String, Validated>>>,
    /// This request's validation key, once known.
    key: Mutex<Option<String>>,
}

fn remember<V: Clone>(cache: &Mutex<HashMap<String, V>>, key: String, value: &V) {
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= CAPACITY {
        cache.clear();
    }
    cache.insert(key, value.clone());
}

#[async_trait::async_trait]
impl Extension for CachedParse {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if request.query.len() <= MAX_KEY_BYTES {
            let variables = serde_json::to_string(&request.variables).unwrap_or_default();
            let operation = request.operation_name.as_deref().unwrap_or_default();
            let key = format!("{}\u{0}{operation}\u{0}{variables}", request.query);
            if key.len() <= MAX_KEY_BYTES {
                *self.key.lock().unwrap_or_else(|p| p.into_inner()) = Some(key);
            }
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let hit = self
            .documents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(query)
            .cloned();
        if let Some(document) = hit {
            return Ok(document);
        }
        let document = next.run(ctx, query, variables).await?;
        remember(&self.documents, query.to_owned(), &document);
        Ok(document)
    }

    async fn validation(&self, ctx: &ExtensionContext<'_>, next: NextValidation<'_>) -> Validated {
        let key = self.key.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(key) = key else {
            return next.run(ctx).await;
        };
        let hit = self
            .validations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        if let Some(validated) = hit {
            return validated;
        }
        let validated = next.run(ctx).await;
        remember(&self.validations, key, &validated);
        validated
    }
}
