//! The request gate: one schema extension that applies, in order, everything decided before
//! a request does real work: the query text's bounds, the caller's access, parsing (through
//! the cache), the cost limits, validation (through the cache), and the execution deadline.
//!
//! It is one extension rather than one per concern because async-graphql calls every
//! extension's `resolve` hook for every field of every answer, overridden or not: each extra
//! extension measurably lowered read throughput. The rules themselves live in `limits`,
//! `access` and `parse_cache`.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response, ServerResult, Variables};

use super::access::{Access, AccessPolicy};
use super::limits::{QueryLimits, check_text, shorten_syntax_error};
use super::parse_cache::{ParseCache, Validated};

/// The gate's settings and the caches it shares between requests.
pub struct Gate {
    pub limits: QueryLimits,
    pub access: AccessPolicy,
    pub cache: ParseCache,
}

impl ExtensionFactory for Gate {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(GateRequest {
            limits: self.limits,
            access: self.access,
            cache: self.cache.clone(),
            operation: Mutex::new(None),
            validation_key: Mutex::new(None),
        })
    }
}

/// The gate for one request.
struct GateRequest {
    limits: QueryLimits,
    access: AccessPolicy,
    cache: ParseCache,
    /// The operation the request names, to tell whether it is a mutation.
    operation: Mutex<Option<String>>,
    /// Where this request's validation is remembered, when it may be.
    validation_key: Mutex<Option<String>>,
}

#[async_trait::async_trait]
impl Extension for GateRequest {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        check_text(&request.query)?;
        *self.operation.lock().unwrap_or_else(|p| p.into_inner()) = request.operation_name.clone();
        *self.validation_key.lock().unwrap_or_else(|p| p.into_inner()) = ParseCache::validation_key(&request);
        next.run(ctx, request).await
    }

    /// Parses without calling `next`: see [`ParseCache::parse`].
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        _next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let access = ctx.data_opt::<Access>().copied().unwrap_or_default();
        self.access.check_caller(access)?;
        let document = self
            .cache
            .parse(query)
            .map_err(|err| shorten_syntax_error(err, query))?;
        let operation = self.operation.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.access
            .check_operation(access, &document, operation.as_deref())?;
        self.limits.check_document(ctx, &document, variables).await?;
        Ok(document)
    }

    async fn validation(&self, ctx: &ExtensionContext<'_>, next: NextValidation<'_>) -> Validated {
        let key = self
            .validation_key
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.cache.validate(key, ctx, next).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        self.limits
            .with_deadline(operation_name, next.run(ctx, operation_name))
            .await
    }
}
