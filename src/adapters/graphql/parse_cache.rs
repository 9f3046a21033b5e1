//! A cache of parsed query documents, keyed by the query text.
//!
//! Clients send the same few query strings over and over; the profile of a list request
//! showed the pest-based parser among the largest costs of the request itself. Validation
//! still runs on every request (it depends on the schema and the variables), only parsing
//! is skipped. The cache holds at most [`CAPACITY`] documents and starts over when full,
//! so a client sending endless distinct queries cannot grow it without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerResult, Variables};

/// How many distinct query texts are kept.
pub const CAPACITY: usize = 512;

/// Shares one cache between every request.
#[derive(Default)]
pub struct ParseCache {
    documents: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
}

impl ExtensionFactory for ParseCache {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CachedParse {
            documents: Arc::clone(&self.documents),
        })
    }
}

struct CachedParse {
    documents: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
}

#[async_trait::async_trait]
impl Extension for CachedParse {
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
        let mut documents = self.documents.lock().unwrap_or_else(|p| p.into_inner());
        if documents.len() >= CAPACITY {
            documents.clear();
        }
        documents.insert(query.to_owned(), document.clone());
        Ok(document)
    }
}
