//! The request gate: everything decided before a request does real work, applied in order
//! by the schema's one extension (`pipeline`): a persisted query's text, the query text's
//! bounds, the caller's access, parsing (through the cache), what the transport runs (GET
//! runs queries only, HTTP no subscriptions), the cost limits (a batch's shared too),
//! validation (through the cache), and the execution deadline. The rules themselves live in
//! `limits`, `access`, `over_http`, `persisted` and `parse_cache`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{ExtensionContext, NextExecute, NextValidation};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response, ServerError, ServerResult, Value, Variables};

use super::access::{Access, AccessPolicy};
use super::answer_budget::{AnswerBudget, AnswerTicket, off_the_workers};
use super::errors::{ErrorCode, coded};
use super::limits::{QueryLimits, check_text, parse_error};
use super::operation::chosen;
use super::over_http::OverHttp;
use super::parse_cache::{ParseCache, Validated};
use super::persisted::PersistedQueries;
use super::typename;

/// The gate's settings and the caches it shares between requests.
pub struct Gate {
    pub limits: QueryLimits,
    pub access: AccessPolicy,
    pub cache: ParseCache,
    pub persisted: PersistedQueries,
    /// The memory answers may take at once, shared by every request.
    pub answers: AnswerBudget,
}

impl Gate {
    /// The gate for one request.
    pub fn for_request(&self) -> GateRequest {
        GateRequest {
            limits: self.limits,
            access: self.access,
            cache: self.cache.clone(),
            persisted: self.persisted.clone(),
            operation: Mutex::new(None),
            validation_key: Mutex::new(None),
            tokens: AtomicUsize::new(0),
            unseen: Mutex::new(Vec::new()),
            answers: self.answers.clone(),
            answer_cost: AtomicU64::new(0),
        }
    }
}

/// The gate for one request.
pub struct GateRequest {
    limits: QueryLimits,
    access: AccessPolicy,
    cache: ParseCache,
    persisted: PersistedQueries,
    /// The operation the request names, to tell whether it is a mutation.
    operation: Mutex<Option<String>>,
    /// Where this request's validation is remembered, when it may be.
    validation_key: Mutex<Option<String>>,
    /// The query's tokens, counted before parsing, for a batch's shared limit.
    tokens: AtomicUsize,
    /// What validation cannot see wrong with the document's `__typename` fields.
    unseen: Mutex<Vec<ServerError>>,
    answers: AnswerBudget,
    /// The values the answer can hold, measured when parsing, reserved before execution.
    answer_cost: AtomicU64,
}

impl GateRequest {
    /// Resolves a persisted query and checks the query text's bounds.
    pub fn prepare(&self, mut request: Request) -> ServerResult<Request> {
        let register = self.persisted.resolve(&mut request)?;
        let tokens = check_text(&request.query)?;
        if let Some(hash) = register {
            self.persisted.remember(hash, &request.query);
        }
        self.tokens.store(tokens, Ordering::Relaxed);
        // The transport's ticket, if it brought one (it keeps the reservation until the
        // answer is written); else one of the request's own.
        if !request
            .data
            .contains_key(&std::any::TypeId::of::<Arc<AnswerTicket>>())
        {
            request.data.insert(Arc::new(AnswerTicket::default()));
        }
        *self.operation.lock().unwrap_or_else(|p| p.into_inner()) = request.operation_name.clone();
        *self.validation_key.lock().unwrap_or_else(|p| p.into_inner()) = ParseCache::validation_key(&request);
        Ok(request)
    }

    /// Checks the caller, parses (without async-graphql's own parse: see
    /// [`ParseCache::parse`]) and applies the transport's rules and the cost limits.
    pub async fn parse(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
    ) -> ServerResult<ExecutableDocument> {
        let access = ctx.data_opt::<Access>().copied().unwrap_or_default();
        self.access.check_caller(access)?;
        let over_http = ctx.data_opt::<Arc<OverHttp>>();
        let batch = over_http.and_then(|http| http.batch());
        if let Some(batch) = batch {
            batch.charge_tokens(self.tokens.load(Ordering::Relaxed))?;
        }
        let document = self
            .cache
            .parse(query)
            .map_err(|err| coded(parse_error(err, query), ErrorCode::BadUserInput))?;
        let operation = self.operation.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let ty = chosen(&document, operation.as_deref()).map(|chosen| chosen.ty());
        if let Some(http) = over_http {
            http.check_operation(ty)?;
        }
        self.access.check_operation(access, ty)?;
        let (measure, scan) = self.limits.check_document(ctx, &document, variables).await?;
        if let Some(batch) = batch {
            batch.charge(&self.limits, &measure, scan)?;
        }
        self.answers.admit(measure.cost)?;
        self.answer_cost.store(measure.cost, Ordering::Relaxed);
        // Validation must see `__typename`'s directives (see `typename`).
        Ok(match typename::prepare(&document, &ctx.schema_env.registry) {
            Some((validated, unseen)) => {
                *self.unseen.lock().unwrap_or_else(|p| p.into_inner()) = unseen;
                validated
            }
            None => document,
        })
    }

    /// Validates through the cache.
    pub async fn validate(&self, ctx: &ExtensionContext<'_>, next: NextValidation<'_>) -> Validated {
        let key = self
            .validation_key
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let unseen = std::mem::take(&mut *self.unseen.lock().unwrap_or_else(|p| p.into_inner()));
        let validated = match (self.cache.validate(key, ctx, next).await, unseen.is_empty()) {
            (validated, true) => validated,
            (Ok(_), false) => Err(unseen),
            (Err(mut errors), false) => {
                errors.extend(unseen);
                errors.sort_by_key(|error| error.locations.first().map(|at| (at.line, at.column)));
                Err(errors)
            }
        };
        // async-graphql's validation errors carry no code: a document that does not
        // validate is the client's.
        validated.map_err(|errors| {
            errors
                .into_iter()
                .map(|error| coded(error, ErrorCode::BadUserInput))
                .collect()
        })
    }

    /// Runs the operation under its deadline (a batch's shared one too).
    pub async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let ticket = ctx.data_opt::<Arc<AnswerTicket>>();
        if let Some(ticket) = ticket {
            let cost = self.answer_cost.load(Ordering::Relaxed);
            let reserved = self
                .answers
                .reserve(ticket, cost, self.limits.request_timeout)
                .await;
            if let Err(refused) = reserved {
                return Response::from_errors(vec![refused]);
            }
        }
        let over_http = ctx.data_opt::<Arc<OverHttp>>();
        let shared = over_http.and_then(|http| {
            http.mark_executed();
            http.batch()
                .map(|batch| batch.deadline(self.limits.request_timeout))
        });
        let run = self
            .limits
            .with_deadline(operation_name, shared, next.run(ctx, operation_name));
        let mut response = off_the_workers(ticket.is_some_and(|ticket| ticket.is_big()), run).await;
        // async-graphql answers an operation whose every field was skipped (`@skip`,
        // `@include`) with null data; it selected nothing, so its data is an empty object.
        if response.data == Value::Null && response.errors.is_empty() {
            response.data = Value::Object(Default::default());
        }
        response
    }
}
