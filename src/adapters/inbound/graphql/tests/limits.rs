//! The limits on a request's cost and time, executed on the schema directly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{run, run_with, schema};
use crate::adapters::inbound::graphql::{QueryLimits, SchemaSettings, build_schema_with};
use crate::adapters::outbound::system::{SystemClock, UuidV4Generator};
use crate::app::AppServices;
use crate::domain::{Change, ChangeOutcome, UserEvent, UserSnapshot};
use crate::ports::{RepositoryError, StorageHealth, UserRepository};

/// Asserts the answer is a refusal for the size of the answer the query could build.
fn assert_refused_for_its_values(answer: &Value) {
    assert_eq!(codes(answer), ["BAD_USER_INPUT"], "{answer}");
    let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("values"), "{answer}");
}

fn codes(answer: &Value) -> Vec<String> {
    answer["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn nested_introspection_lists_are_counted_by_what_they_return() {
    let (schema, _dir) = schema();
    let deep = "{ __schema { types { fields { type { fields { type { fields { type { fields { type { fields { name } } } } } } } } } } } }";
    let answer = run(&schema, deep).await;
    assert_refused_for_its_values(&answer);
}

#[tokio::test]
async fn aliases_and_typename_count_as_fields() {
    let (schema, _dir) = schema();
    let typenames = format!(
        "{{ {} }}",
        (0..2_001)
            .map(|n| format!("t{n}: __typename"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert_eq!(codes(&run(&schema, &typenames).await), ["BAD_USER_INPUT"]);
    let fine = format!(
        "{{ {} }}",
        (0..100)
            .map(|n| format!("t{n}: __typename"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert!(codes(&run(&schema, &fine).await).is_empty());
}

#[tokio::test]
async fn a_page_size_given_by_a_variable_or_its_default_bounds_a_connection() {
    let (schema, _dir) = schema();
    let pages = |first: &str| {
        let aliases: Vec<String> = (0..300)
            .map(|n| format!("p{n}: users{first} {{ edges {{ node {{ id }} }} }}"))
            .collect();
        format!("query($n: Int = 10) {{ {} }}", aliases.join(" "))
    };
    let answer = run_with(&schema, &pages("(first: $n)"), json!({ "n": 5 })).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let answer = run_with(&schema, &pages("(first: $n)"), json!({})).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let answer = run(&schema, &pages("").replace("query($n: Int = 10)", "query")).await;
    assert_refused_for_its_values(&answer);
}

/// A store whose reads never finish; it notes when a read is abandoned.
struct StalledStore {
    abandoned: Arc<AtomicBool>,
}

struct NotesDrop(Arc<AtomicBool>);

impl Drop for NotesDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl UserRepository for StalledStore {
    async fn snapshot(&self) -> Result<Arc<UserSnapshot>, RepositoryError> {
        let _noted = NotesDrop(Arc::clone(&self.abandoned));
        std::future::pending().await
    }

    fn latest(&self) -> Arc<UserSnapshot> {
        Arc::default()
    }

    async fn apply(&self, _change: Change) -> Result<ChangeOutcome, RepositoryError> {
        std::future::pending().await
    }

    fn health(&self) -> StorageHealth {
        StorageHealth::default()
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<UserEvent> {
        tokio::sync::broadcast::channel(1).1
    }
}

#[tokio::test]
async fn an_operation_past_its_deadline_is_stopped_and_answered_with_request_timeout() {
    let abandoned = Arc::new(AtomicBool::new(false));
    let store = Arc::new(StalledStore {
        abandoned: Arc::clone(&abandoned),
    });
    let services = AppServices::new(store, Arc::new(SystemClock), Arc::new(UuidV4Generator));
    let settings = SchemaSettings {
        limits: QueryLimits {
            request_timeout: Duration::from_millis(200),
            ..QueryLimits::default()
        },
        ..SchemaSettings::default()
    };
    let schema = build_schema_with(services, settings);
    let answer = tokio::time::timeout(
        Duration::from_secs(20),
        schema.execute("{ allUsers(limit: 1) { id } }"),
    )
    .await
    .expect("the deadline answered");
    let answer = serde_json::to_value(answer).unwrap();
    assert_eq!(codes(&answer), ["REQUEST_TIMEOUT"], "{answer}");
    assert!(
        abandoned.load(Ordering::SeqCst),
        "the stalled read was not dropped"
    );
}
