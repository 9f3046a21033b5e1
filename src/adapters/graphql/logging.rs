//! Field logging (SPEC §6): one `info` line per top-level field with its arguments, the
//! reference's "middleware logging of field names and args"; nested fields at `debug`;
//! resolver errors with their field.
//!
//! Arguments are logged with variables substituted, so `createUser(userData: $u)` logs
//! the values actually used. The extension is created per request and keeps that
//! request's variables.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextResolve, ResolveInfo,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerResult, Value, Variables};

/// Installs [`FieldLogging`] on every request.
pub struct FieldLogger;

impl ExtensionFactory for FieldLogger {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(FieldLogging::default())
    }
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
            let _ = write!(text, "{separator}{}: {value}", name.node);
        }
        text.push('}');
        text
    }
}

#[async_trait::async_trait]
impl Extension for FieldLogging {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        // Only the `info` line uses the variables; do not copy them when it is off.
        if tracing::enabled!(tracing::Level::INFO) {
            *self.variables.lock().unwrap_or_else(|p| p.into_inner()) = variables.clone();
        }
        next.run(ctx, query, variables).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        // The name borrows the query document, not `info`, so it outlives the call below.
        let field = info.name;
        if info.path_node.parent.is_none() && !info.is_for_introspection {
            tracing::info!(field = %field, args = %self.describe_arguments(&info), "graphql field");
        } else {
            tracing::debug!(field = %field, path = %info.path_node, "graphql field");
        }
        let result = next.run(ctx, info).await;
        if let Err(err) = &result {
            tracing::warn!(field = %field, error = %err.message, "graphql field failed");
        }
        result
    }
}
