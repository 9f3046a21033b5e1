//! The answer cache (docs/src/graphql.md, Caching): a read's answer, as the bytes sent, kept
//! for the snapshot it was read from, so the same read again costs a lookup rather than a
//! pass through async-graphql.
//!
//! Clients send the same few reads over and over, and an answer depends only on the
//! request, who asks, and the users the store shows, so it holds for as long as the store
//! shows the same snapshot. The key is the normalised request: the query text (empty for a
//! persisted query named by its hash), the variables, the operation name and the request's
//! extensions (the persisted query's hash), with the caller's access (a different credential
//! never shares an entry) and whether it came over `GET`. Every entry belongs to one
//! snapshot: a read that finds the store showing another (a write, a reload, a replica's
//! notification) empties the cache. The snapshot is told by its identity as well as its
//! revision, since a change whose history entry could not be written is published at the
//! same revision.
//!
//! Only what cannot differ between two identical requests on one snapshot is kept: a single
//! operation over HTTP (never part of a batch, never a registration of a persisted query),
//! that executed without any error, whose top-level fields are all reads of the snapshot
//! (`allUsers`, `userById`, `userByEmail`, `users`) or introspection. The history
//! (`userHistory`, `changes`) is read from the journal, not the snapshot, and mutations
//! change things, so an operation with either is never kept; nor is anything refused, over
//! its limits or its deadline.
//!
//! An answer given again is still a request like any other: the HTTP layer logs and counts
//! it, its operation is counted (`roster_graphql_requests_total`, outcome `ok`) under the
//! label it had, and its fields are on its log line; `roster_answer_cache_hits_total`
//! counts the answers given again.
//!
//! The cache is bounded in bytes (the query caches' budget, `--query-cache-mib`): each
//! entry is charged its key, its answer and its log text; one that would pass the budget
//! empties the cache first, and an answer larger than an eighth of the budget is never kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use async_graphql::Request;
use bytes::Bytes;

use super::access::Access;
use super::logging::note_fields;
use super::metrics::count_cached;
use super::parse_cache::MAX_KEY_BYTES;
use super::schema::RosterSchema;
use crate::app::AppServices;
use crate::domain::UserSnapshot;

/// Answers given again from the cache.
const HITS: &str = "roster_answer_cache_hits_total";

/// Describes the cache's metric (its HELP line).
pub fn describe_metrics() {
    metrics::describe_counter!(HITS, "GraphQL answers given again from the answer cache.");
}

/// What an entry is charged besides its key, answer and log text.
const ENTRY_OVERHEAD_BYTES: usize = 128;

/// The top-level `Query` fields whose answer depends on the snapshot alone.
const SNAPSHOT_READS: [&str; 4] = ["allUsers", "userById", "userByEmail", "users"];

/// Remembered answers, shared by every request of a schema.
pub struct AnswerCache {
    budget: usize,
    state: Mutex<Entries>,
}

/// The entries of one snapshot.
struct Entries {
    /// The snapshot the entries were read from (a weak reference, so the cache keeps no
    /// old user list alive; it still pins the address, which cannot be reused meanwhile).
    snapshot: Weak<UserSnapshot>,
    revision: u64,
    answers: HashMap<String, Arc<Answer>>,
    charged: usize,
}

/// One remembered answer.
struct Answer {
    body: Bytes,
    /// The operation label it was counted under.
    label: String,
    /// What its fields put on the request line.
    fields: String,
}

impl AnswerCache {
    /// A cache holding at most about `budget` bytes (0 keeps nothing).
    pub fn with_budget(budget: usize) -> Self {
        Self {
            budget,
            state: Mutex::new(Entries {
                snapshot: Weak::new(),
                revision: 0,
                answers: HashMap::new(),
                charged: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entries, emptied first when they belong to another snapshot than `snapshot`.
    fn entries_of(&self, snapshot: &Arc<UserSnapshot>) -> MutexGuard<'_, Entries> {
        let mut entries = self.lock();
        let same = std::ptr::eq(entries.snapshot.as_ptr(), Arc::as_ptr(snapshot))
            && entries.revision == snapshot.revision();
        if !same {
            entries.snapshot = Arc::downgrade(snapshot);
            entries.revision = snapshot.revision();
            entries.answers.clear();
            entries.charged = 0;
        }
        entries
    }

    /// Bytes held now (tests).
    #[cfg(test)]
    fn charged(&self) -> usize {
        self.lock().charged
    }
}

/// The key `request` is remembered under for a caller with `access`, unless it may not be.
fn key(request: &Request, access: Access, get: bool) -> Option<String> {
    // A request that registers a persisted query must reach the store of persisted queries.
    if request.query.len() > MAX_KEY_BYTES || (!request.extensions.is_empty() && !request.query.is_empty()) {
        return None;
    }
    let variables = serde_json::to_string(&request.variables).ok()?;
    let extensions = if request.extensions.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&request.extensions).ok()?
    };
    let operation = request.operation_name.as_deref().unwrap_or_default();
    let key = format!(
        "{access:?}\u{0}{get}\u{0}{operation}\u{0}{}\u{0}{variables}\u{0}{extensions}",
        request.query
    );
    (key.len() <= 2 * MAX_KEY_BYTES).then_some(key)
}

/// What a request's execution showed of itself, for the cache: filled by the schema's
/// extension (`pipeline`), which finds it in the request's data.
#[derive(Default)]
pub struct Ticket {
    state: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// At least one top-level field resolved.
    fields_seen: bool,
    /// A top-level field whose answer may differ between two identical requests.
    changes_or_history: bool,
    /// The operation label the request was counted under.
    label: Option<String>,
    /// What its fields put on the request line.
    fields: String,
}

impl Ticket {
    fn lock(&self) -> MutexGuard<'_, Seen> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A top-level field of type `parent` named `name` is resolving; `noted` is what it put
    /// on the request line.
    pub fn field(&self, parent: &str, name: &str, noted: String) {
        let mut seen = self.lock();
        seen.fields_seen = true;
        let reads_snapshot = parent == "Query" && (SNAPSHOT_READS.contains(&name) || name.starts_with("__"));
        if !reads_snapshot {
            seen.changes_or_history = true;
        }
        if !noted.is_empty() {
            if !seen.fields.is_empty() {
                seen.fields.push_str("; ");
            }
            seen.fields.push_str(&noted);
        }
    }

    /// The request was answered and counted under `label`.
    pub fn counted(&self, label: String) {
        self.lock().label = Some(label);
    }
}

/// One request's use of the cache, from before it runs to its answer.
pub struct Attempt<'a> {
    /// The cache, the request's key and the snapshot it reads, when it may be cached.
    keyed: Option<(&'a AnswerCache, String, Arc<UserSnapshot>)>,
    ticket: Arc<Ticket>,
    started: Instant,
}

impl<'a> Attempt<'a> {
    /// Looks `request` up for a caller with `access` (over `GET` if `get`).
    pub async fn begin(schema: &'a RosterSchema, request: &Request, access: Access, get: bool) -> Self {
        let started = Instant::now();
        let ticket = Arc::default();
        let Some(cache) = schema.data::<AnswerCache>().filter(|cache| cache.budget > 0) else {
            return Self {
                keyed: None,
                ticket,
                started,
            };
        };
        let snapshot = match schema.data::<AppServices>() {
            Some(services) => services.list_users.snapshot().await.ok(),
            None => None,
        };
        let keyed = snapshot.and_then(|snapshot| Some((cache, key(request, access, get)?, snapshot)));
        Self {
            keyed,
            ticket,
            started,
        }
    }

    /// The remembered answer's body, if there is one; it is counted and its fields noted
    /// for the request line as its first answer's were.
    pub fn hit(&self) -> Option<Bytes> {
        let (cache, key, snapshot) = self.keyed.as_ref()?;
        let answer = cache.entries_of(snapshot).answers.get(key).cloned()?;
        note_fields(&answer.fields);
        count_cached(&answer.label, self.started.elapsed());
        metrics::counter!(HITS).increment(1);
        Some(answer.body.clone())
    }

    /// `request` with the ticket its execution fills in.
    pub fn watch(&self, request: Request) -> Request {
        if self.keyed.is_some() {
            request.data(Arc::clone(&self.ticket))
        } else {
            request
        }
    }

    /// Keeps the answer, when it may be kept: `executed` and `response` without errors.
    /// Gives the body `answer` serialises to whenever it did serialise it, kept or not.
    pub fn keep(
        &self,
        executed: bool,
        response: &async_graphql::Response,
        answer: &impl serde::Serialize,
    ) -> Option<Bytes> {
        if !self.wants(executed, response) {
            return None;
        }
        let body = Bytes::from(serde_json::to_vec(answer).ok()?);
        self.store(body.clone());
        Some(body)
    }

    /// Whether the answer may be kept: a cacheable request, `executed`, `response`
    /// without errors, only snapshot reads.
    pub fn wants(&self, executed: bool, response: &async_graphql::Response) -> bool {
        if self.keyed.is_none() || !executed || !response.errors.is_empty() {
            return false;
        }
        let seen = self.ticket.lock();
        seen.fields_seen && !seen.changes_or_history && seen.label.is_some()
    }

    /// The most bytes one kept answer may take with its key: an eighth of the budget.
    pub fn entry_limit(&self) -> usize {
        self.keyed.as_ref().map_or(0, |(cache, _, _)| cache.budget / 8)
    }

    /// Keeps `body`, the answer serialised elsewhere, for a request [`Attempt::wants`]
    /// said may be kept; an answer over [`Attempt::entry_limit`] is not kept.
    pub fn store(&self, body: Bytes) {
        let Some((cache, key, snapshot)) = self.keyed.as_ref() else {
            return;
        };
        let (label, fields) = {
            let seen = self.ticket.lock();
            let Some(label) = seen.label.clone() else {
                return;
            };
            (label, seen.fields.clone())
        };
        let bytes = key.len() + body.len() + label.len() + fields.len() + ENTRY_OVERHEAD_BYTES;
        if bytes > cache.budget / 8 {
            return;
        }
        let mut entries = cache.lock();
        // Kept only while the store still shows the snapshot it was read from.
        let current = std::ptr::eq(entries.snapshot.as_ptr(), Arc::as_ptr(snapshot))
            && entries.revision == snapshot.revision();
        if current {
            if entries.charged + bytes > cache.budget {
                entries.answers.clear();
                entries.charged = 0;
            }
            let kept = Arc::new(Answer { body, label, fields });
            if entries.answers.insert(key.clone(), kept).is_none() {
                entries.charged += bytes;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str) -> Request {
        Request::new(query)
    }

    #[test]
    fn the_key_holds_variables_operation_credential_and_method() {
        let base = key(&request("{ a }"), Access::Read, false).unwrap();
        let with_variables =
            request("{ a }").variables(async_graphql::Variables::from_json(serde_json::json!({ "x": 1 })));
        let others = [
            key(&with_variables, Access::Read, false),
            key(&request("{ a }").operation_name("A"), Access::Read, false),
            key(&request("{ a }"), Access::Write, false),
            key(&request("{ a }"), Access::Anonymous, false),
            key(&request("{ a }"), Access::Read, true),
            key(&request("{ b }"), Access::Read, false),
        ];
        for other in others {
            assert_ne!(other.unwrap(), base);
        }
        assert_eq!(key(&request("{ a }"), Access::Read, false).unwrap(), base);
    }

    #[test]
    fn long_queries_and_persisted_query_registrations_are_not_keyed() {
        assert!(key(&request(&"a".repeat(MAX_KEY_BYTES + 1)), Access::Read, false).is_none());
        let mut registering = request("{ a }");
        registering
            .extensions
            .insert("persistedQuery".into(), async_graphql::Value::from("x"));
        assert!(key(&registering, Access::Read, false).is_none());
        let mut by_hash = request("");
        by_hash
            .extensions
            .insert("persistedQuery".into(), async_graphql::Value::from("x"));
        assert!(key(&by_hash, Access::Read, false).is_some());
    }

    fn attempt<'a>(cache: &'a AnswerCache, key: &str, snapshot: &Arc<UserSnapshot>) -> Attempt<'a> {
        let ticket = Ticket::default();
        ticket.field("Query", "allUsers", "allUsers{}".into());
        ticket.counted("allUsers".into());
        Attempt {
            keyed: Some((cache, key.to_owned(), Arc::clone(snapshot))),
            ticket: Arc::new(ticket),
            started: Instant::now(),
        }
    }

    fn ok() -> async_graphql::Response {
        async_graphql::Response::new(async_graphql::Value::Null)
    }

    #[test]
    fn a_new_snapshot_empties_the_cache_and_the_budget_is_kept() {
        let cache = AnswerCache::with_budget(8 * 4096);
        let first = Arc::new(UserSnapshot::default().at_revision(1));
        assert!(attempt(&cache, "k", &first).hit().is_none());
        attempt(&cache, "k", &first).keep(true, &ok(), &"answer").unwrap();
        assert_eq!(attempt(&cache, "k", &first).hit().unwrap(), "\"answer\"");
        // Same revision, another snapshot (a change whose history could not be written).
        let same_revision = Arc::new(UserSnapshot::default().at_revision(1));
        assert!(attempt(&cache, "k", &same_revision).hit().is_none());
        assert!(attempt(&cache, "k", &first).hit().is_none());
        // Entries of about 1 KiB fill the budget, then it starts over, never passing it.
        let big = "x".repeat(1000);
        for n in 0..100 {
            attempt(&cache, &format!("k{n}"), &first).keep(true, &ok(), &big);
            assert!(cache.charged() <= cache.budget, "{}", cache.charged());
        }
        assert!(cache.charged() > 0);
        // An answer over an eighth of the budget is answered but not kept.
        let huge = "x".repeat(cache.budget / 8);
        assert!(attempt(&cache, "huge", &first).keep(true, &ok(), &huge).is_some());
        assert!(attempt(&cache, "huge", &first).hit().is_none());
    }

    #[test]
    fn errors_writes_history_and_unexecuted_requests_are_not_kept() {
        let cache = AnswerCache::with_budget(1 << 20);
        let snapshot = Arc::new(UserSnapshot::default());
        let mut failed = ok();
        failed.errors.push(async_graphql::ServerError::new("no", None));
        assert!(
            attempt(&cache, "e", &snapshot)
                .keep(true, &failed, &"x")
                .is_none()
        );
        assert!(attempt(&cache, "n", &snapshot).keep(false, &ok(), &"x").is_none());
        for (parent, field) in [
            ("Mutation", "createUser"),
            ("Query", "changes"),
            ("Query", "userHistory"),
        ] {
            let attempt = attempt(&cache, field, &snapshot);
            attempt.ticket.field(parent, field, String::new());
            assert!(attempt.keep(true, &ok(), &"x").is_none(), "{field}");
            assert!(self::attempt(&cache, field, &snapshot).hit().is_none(), "{field}");
        }
        assert!(attempt(&cache, "e", &snapshot).hit().is_none());
        assert_eq!(cache.charged(), 0);
    }
}
