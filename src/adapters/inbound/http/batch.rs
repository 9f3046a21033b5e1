//! Batches: a `POST /graphql` body that is a JSON array of operations (what Apollo's
//! `BatchHttpLink` and gql's `execute_batch` send) is answered with an array of responses in
//! the same order.
//!
//! The operations run one after another, in order, so a batch's mutations apply in the order
//! given. A batch is bounded like one request: at most `--max-batch-size` operations, one
//! body under the body limit, one deadline, and one share of the token, field and cost limits
//! (the request gate charges each operation to the batch's [`Batch`]). A mutation inside needs
//! the write token like any other; a refusal for want of a token answers the whole batch 401.
//! A malformed item, an empty batch or one over the size answers 400 and runs nothing.
//! Each operation reserves its own share of the answer budget; one refused for want of room
//! (`OVERLOADED`) is one item of the answer, the others still run.

use std::sync::Arc;

use axum::response::Response;

use super::errors::{bad_request, unauthorized};
use super::exchange::{Exchange, request_from_object};
use crate::adapters::inbound::graphql::{Batch, RosterSchema};

/// Runs a batch of `items` (the body's array) and answers it.
pub async fn run(
    exchange: &Exchange,
    schema: &RosterSchema,
    items: Vec<serde_json::Value>,
    max_size: usize,
) -> Response {
    if items.is_empty() {
        return exchange.relabel(bad_request("The batch is empty: send at least one operation."));
    }
    if items.len() > max_size {
        return exchange.relabel(bad_request(format!(
            "The batch holds {} operations; at most {max_size} are allowed in one request.",
            items.len()
        )));
    }
    let mut requests = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let serde_json::Value::Object(members) = item else {
            return exchange.relabel(bad_request(format!(
                "batch[{index}] must be a JSON object with a \"query\" string."
            )));
        };
        match request_from_object(members) {
            Ok(request) => requests.push(request),
            Err(why) => return exchange.relabel(bad_request(format!("batch[{index}]: {why}"))),
        }
    }
    let batch = Arc::new(Batch::new());
    let mut answers = Vec::with_capacity(requests.len());
    for request in requests {
        let outcome = exchange.execute(schema, request, Some(&batch)).await;
        if let Some(message) = outcome.unauthenticated() {
            return exchange.relabel(unauthorized(message, false));
        }
        // Written at once: only the JSON of earlier operations waits for the later ones.
        answers.push(outcome.written().await);
    }
    exchange.batch_answer(answers)
}
