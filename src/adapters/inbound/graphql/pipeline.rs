//! The schema's one extension: every hook a request passes through, in one place.
//!
//! async-graphql calls every extension's `resolve` hook for every field of every answer,
//! whatever the extension does, and each extension cost about 8% of the instructions of a
//! ten-user list request. So there is exactly one, and it only sequences the pieces, which
//! live where their rules are: the request gate (`gate`: persisted queries, text bounds,
//! tokens, parsing, transport rules, cost limits, validation, the deadline), the request
//! metrics and error codes (`metrics`), the field log (`logging`) and the schema's
//! description (`description`). It also tells the answer cache (`answer_cache`) what an
//! operation resolved and how it was counted.
//!
//! Order within each hook: metrics outermost (they see every error with its final code),
//! then the log, then the gate, which parses the document itself.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextRequest, NextResolve, NextSubscribe, NextValidation, ResolveInfo,
};
use async_graphql::futures_util::stream::BoxStream;
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response, ServerError, ServerResult, ValidationResult, Value, Variables};

use super::answer_cache::Ticket;
use super::description;
use super::errors;
use super::gate::{Gate, GateRequest};
use super::logging::FieldLogging;
use super::metrics::{Measured, RequestMetrics};
use super::shared_events;

/// What every request shares: the gate's settings and caches, the metrics' labels.
pub struct Pipeline {
    pub gate: Gate,
    pub metrics: RequestMetrics,
}

impl ExtensionFactory for Pipeline {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PipelineRequest {
            gate: self.gate.for_request(),
            measured: self.metrics.for_request(),
            log: FieldLogging::default(),
        })
    }
}

/// One request's pass through the pipeline.
struct PipelineRequest {
    gate: GateRequest,
    measured: Measured,
    log: FieldLogging,
}

#[async_trait::async_trait]
impl Extension for PipelineRequest {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        self.measured.request(next.run(ctx)).await
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        self.measured.stream(next.run(ctx, stream))
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.measured.requested(&request);
        let request = self.gate.prepare(request)?;
        next.run(ctx, request).await
    }

    /// The gate parses; async-graphql's own parser is never called (see `gate`).
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        _next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        self.log.remember(variables);
        let document = self.gate.parse(ctx, query, variables).await?;
        self.measured.parsed(&document);
        shared_events::note_document(ctx.data_opt(), &document);
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = self.gate.validate(ctx, next).await;
        self.measured.validated(&result);
        result
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = self.gate.execute(ctx, operation_name, next).await;
        // The request's own data (the ticket) is in reach from here on, not in `request`.
        // Only a clean answer is kept, and only a clean answer earns a label slot.
        if response.errors.is_empty()
            && let Some(ticket) = ctx.data_opt::<Arc<Ticket>>()
        {
            ticket.counted(self.measured.label());
        }
        response
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if let Some(ours) = description::answer(&info) {
            return Ok(Some(ours));
        }
        // The name borrows the query document, not `info`, so it outlives the call below.
        let (field, definition) = (info.name, info.field);
        let top_level = info.path_node.parent.is_none();
        let noted = self.log.field(&info);
        if top_level && let Some(ticket) = ctx.data_opt::<Arc<Ticket>>() {
            ticket.field(info.parent_type, field, noted);
        }
        let result = next.run(ctx, info).await.map_err(|mut error| {
            errors::code_field_error(&mut error, definition);
            error
        });
        FieldLogging::outcome(field, &result);
        result
    }
}
