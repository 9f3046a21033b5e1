//! The operations beside the original six (allUsers, userById and the four mutations): cursor
//! pages, userByEmail, patchUser, atomic and dry-run bulk updates, and error codes on every
//! error.

use serde_json::{Value, json};

use super::{create, run, run_with, schema};
use crate::adapters::inbound::graphql::RosterSchema;

const PAGE: &str = "query($first: Int, $after: String, $last: Int, $before: String, $order: UserOrderInput, $search: String) {
  users(first: $first, after: $after, last: $last, before: $before, orderBy: $order, search: $search) {
    edges { cursor node { name } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    totalCount
  }
}";

async fn page(schema: &RosterSchema, variables: Value) -> Value {
    let answer = run_with(schema, PAGE, variables).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    answer["data"]["users"].clone()
}

fn names(page: &Value) -> Vec<String> {
    page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn users_pages_by_cursor_and_keeps_its_place_across_deletions() {
    let (schema, _dir) = schema();
    let mut ids = Vec::new();
    for name in ["Dora", "Ann", "Cyd", "Bea", "Eve"] {
        ids.push(create(&schema, name, &format!("{}@x.com", name.to_lowercase())).await);
    }
    let by_name = json!({ "field": "NAME" });
    let one = page(&schema, json!({ "first": 2, "order": by_name })).await;
    assert_eq!(names(&one), ["Ann", "Bea"]);
    assert_eq!(one["totalCount"], 5);
    assert_eq!(one["pageInfo"]["hasNextPage"], true);
    assert_eq!(one["pageInfo"]["hasPreviousPage"], false);
    // Bea (the page's last user) and Ann are deleted; the cursor still marks the place.
    run(
        &schema,
        &format!("mutation {{ deleteUser(id: \"{}\") {{ ok }} }}", ids[3]),
    )
    .await;
    run(
        &schema,
        &format!("mutation {{ deleteUser(id: \"{}\") {{ ok }} }}", ids[1]),
    )
    .await;
    let after = one["pageInfo"]["endCursor"].clone();
    let two = page(&schema, json!({ "first": 2, "after": after, "order": by_name })).await;
    assert_eq!(names(&two), ["Cyd", "Dora"]);
    assert_eq!(
        two["pageInfo"]["hasPreviousPage"], false,
        "nothing is left before the cursor"
    );
    let back = page(
        &schema,
        json!({ "last": 1, "before": two["pageInfo"]["endCursor"], "order": by_name }),
    )
    .await;
    assert_eq!(names(&back), ["Cyd"]);
    let desc = page(
        &schema,
        json!({ "first": 1, "order": { "field": "NAME", "direction": "DESC" } }),
    )
    .await;
    assert_eq!(names(&desc), ["Eve"]);
    let empty = page(&schema, json!({ "first": 5, "search": "nobody" })).await;
    assert_eq!(empty["edges"], json!([]));
    assert_eq!(empty["pageInfo"]["startCursor"], Value::Null);
    assert_eq!(empty["totalCount"], 0);
}

#[tokio::test]
async fn users_refuses_oversized_pages_and_foreign_cursors_with_bad_user_input() {
    let (schema, _dir) = schema();
    for variables in [
        json!({ "first": 1001 }),
        json!({ "last": -1 }),
        json!({ "after": "not-a-cursor" }),
    ] {
        let answer = run_with(&schema, PAGE, variables.clone()).await;
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{variables}: {answer}"
        );
    }
    create(&schema, "Ann", "ann@x.com").await;
    let by_date = page(&schema, json!({ "first": 1 })).await;
    let cursor = by_date["pageInfo"]["endCursor"].clone();
    let answer = run_with(
        &schema,
        PAGE,
        json!({ "after": cursor, "order": { "field": "EMAIL" } }),
    )
    .await;
    let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("different orderBy"), "{answer}");
}

#[tokio::test]
async fn user_by_email_ignores_case_and_is_null_when_absent() {
    let (schema, _dir) = schema();
    create(&schema, "Ann", "Ann@Example.com").await;
    let found = run(&schema, "{ userByEmail(email: \"ANN@example.COM\") { name } }").await;
    assert_eq!(found["data"]["userByEmail"]["name"], "Ann");
    let missing = run(&schema, "{ userByEmail(email: \"bob@example.com\") { name } }").await;
    assert_eq!(missing["data"]["userByEmail"], Value::Null);
}

#[tokio::test]
async fn patch_user_changes_only_given_fields_and_refuses_a_stale_version() {
    let (schema, _dir) = schema();
    let id = create(&schema, "Ann", "ann@x.com").await;
    let read = run(&schema, &format!("{{ userById(id: \"{id}\") {{ updatedAt }} }}")).await;
    let seen = read["data"]["userById"]["updatedAt"].clone();
    let patch =
        "mutation($i: PatchUserInput!) { patchUser(input: $i) { ok message user { name email updatedAt } } }";
    let first = run_with(
        &schema,
        patch,
        json!({ "i": { "id": id, "name": "Anne", "expectedUpdatedAt": seen } }),
    )
    .await;
    assert_eq!(first["data"]["patchUser"]["ok"], true, "{first}");
    assert_eq!(first["data"]["patchUser"]["user"]["email"], "ann@x.com");
    let stale = run_with(
        &schema,
        patch,
        json!({ "i": { "id": id, "email": "new@x.com", "expectedUpdatedAt": seen } }),
    )
    .await;
    let payload = &stale["data"]["patchUser"];
    assert_eq!(payload["ok"], false);
    assert_eq!(
        payload["message"],
        "Conflict: the user changed since it was read."
    );
    assert_eq!(payload["user"]["name"], "Anne", "the current user is included");
    assert_eq!(payload["user"]["email"], "ann@x.com", "nothing changed");
    let unknown = run_with(&schema, patch, json!({ "i": { "id": "nope", "name": "X" } })).await;
    assert_eq!(unknown["data"]["patchUser"]["message"], "Not found.");
}

#[tokio::test]
async fn bulk_updates_can_be_atomic_or_dry_runs_and_list_coded_failures() {
    let (schema, _dir) = schema();
    let a = create(&schema, "A", "a@x.com").await;
    let b = create(&schema, "B", "b@x.com").await;
    let bulk = "mutation($u: [EmailUpdateInput!]!, $atomic: Boolean!, $dry: Boolean!) {
      bulkUpdateEmails(updates: $u, atomic: $atomic, dryRun: $dry) {
        ok updatedCount failed dryRun message failures { id email code message }
      }
    }";
    let updates = json!([
        { "id": a, "email": "new-a@x.com" },
        { "id": b, "email": "NEW-A@x.com" },
        { "id": "ghost", "email": "g@x.com" },
        { "id": b, "email": "not an email" }
    ]);
    let emails = |answer: &Value| answer["data"]["bulkUpdateEmails"].clone();
    let atomic = emails(
        &run_with(
            &schema,
            bulk,
            json!({ "u": updates, "atomic": true, "dry": false }),
        )
        .await,
    );
    assert_eq!(atomic["ok"], false);
    assert_eq!(atomic["updatedCount"], 0);
    let codes: Vec<&str> = atomic["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["CONFLICT", "NOT_FOUND", "BAD_USER_INPUT"]);
    assert_eq!(atomic["failures"][1]["email"], "g@x.com");
    let still = run(&schema, &format!("{{ userById(id: \"{a}\") {{ email }} }}")).await;
    assert_eq!(
        still["data"]["userById"]["email"], "a@x.com",
        "an atomic batch with a failure changes nothing"
    );

    let dry = emails(
        &run_with(
            &schema,
            bulk,
            json!({ "u": updates, "atomic": false, "dry": true }),
        )
        .await,
    );
    assert_eq!(
        (
            dry["ok"].clone(),
            dry["updatedCount"].clone(),
            dry["dryRun"].clone()
        ),
        (json!(true), json!(1), json!(true))
    );
    let still = run(&schema, &format!("{{ userById(id: \"{a}\") {{ email }} }}")).await;
    assert_eq!(
        still["data"]["userById"]["email"], "a@x.com",
        "a dry run changes nothing"
    );

    let clean = json!([{ "id": a, "email": "x@x.com" }, { "id": b, "email": "y@x.com" }]);
    let applied = emails(&run_with(&schema, bulk, json!({ "u": clean, "atomic": true, "dry": false })).await);
    assert_eq!(
        (applied["ok"].clone(), applied["updatedCount"].clone()),
        (json!(true), json!(2))
    );
}

#[tokio::test]
async fn every_error_carries_a_code() {
    let (schema, _dir) = schema();
    for query in [
        "{ nope }",
        "{ allUsers(limit: \"x\") { id } }",
        "query { ",
        "{ allUsers(limit: -1) { id } }",
    ] {
        let answer = run(&schema, query).await;
        let errors = answer["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{query}: {answer}"));
        for error in errors {
            assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{query}: {answer}");
        }
    }
}

#[tokio::test]
async fn cached_parsing_and_validation_still_judge_every_request() {
    let (schema, _dir) = schema();
    create(&schema, "Ann", "ann@x.com").await;
    let query = "query($l: Int) { allUsers(limit: $l) { name } }";
    for _ in 0..2 {
        let ok = run_with(&schema, query, json!({ "l": 1 })).await;
        assert_eq!(ok["data"]["allUsers"], json!([{ "name": "Ann" }]), "{ok}");
        let bad = run_with(&schema, query, json!({ "l": "one" })).await;
        assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{bad}");
        let unknown = run(&schema, "{ nope }").await;
        assert_eq!(
            unknown["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{unknown}"
        );
    }
}
