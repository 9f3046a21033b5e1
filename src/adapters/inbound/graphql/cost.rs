//! What a query document can cost, measured in time linear in its size (docs/src/http.md,
//! Limits on a query).
//!
//! async-graphql's own recursion check, complexity and depth visitors expand every fragment
//! spread in place, so a document under 1 KB whose fragments each spread the next one twice
//! takes time exponential in its size (measured: minutes of CPU, gigabytes of memory). This
//! measure walks each fragment once and remembers what it costs, so every
//! later use of it is a lookup; a spread that reaches a fragment still being measured is a
//! cycle and is refused. It runs right after parsing, before validation or execution does any
//! work proportional to the expansion.
//!
//! Three numbers come out of it:
//! - `fields`: every field the validator will visit with fragments expanded, aliases and
//!   `__typename` included, summed over the operations and the fragment definitions (which
//!   validation also walks);
//! - `depth`: how deeply fields nest, through fragments;
//! - `cost`: the most values the answer can hold. A list counts by what it can return:
//!   `allUsers(limit: 10)` multiplies its selection by 10, `allUsers` without a limit by the
//!   number of users, a connection by its page size (`first`/`last`, at most 1,000), a field
//!   taking a list argument (`bulkUpdateEmails(updates: […])`) by the list's length, and an
//!   introspection list by the longest such list in the schema. So aliasing a list 300 times
//!   costs 300 lists, not 300 fields.
//! - `passes`: how many times the operation's searches and pages go over every user,
//!   whatever their limits: once for a `search`, [`fuzzy_weight`] times for a `fuzzy` one (its
//!   typo-tolerant comparison costs more per user the larger `maxDistance` is), and 2 or 10
//!   more for a connection page with a search (its matches sorted by a timestamp, or by name
//!   or email; a page without a search walks its order's index and costs only its page). So
//!   a hundred aliases of a fuzzy search with `limit: 1`, a few kilobytes, count as a
//!   hundred passes over the list;
//! - `writes`: the mutations the costliest operation makes, each a commit of its own (which
//!   the file store pays for by writing every user again; see `limits`);
//! - `list_items`: the longest list any field is given as an argument, written inline or
//!   in a variable (`bulkUpdateEmails(updates: […])`), which `limits` caps on its own: a
//!   bulk's items are each a change the store works out.
//!
//! Nesting through spreads and inline fragments is bounded too ([`MAX_NESTING`]), which keeps
//! this walk, the validator's and the executor's recursion shallow.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::convert::Infallible;

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::registry::{MetaType, MetaTypeName, Registry};
use async_graphql::{Name, Variables};
use async_graphql_value::{ConstValue, Value};

/// How deeply selection sets, fragment spreads and inline fragments may nest in all, as
/// async-graphql's own recursion limit (which this walk replaces, since it expands every
/// spread). The standard introspection query nests about 20 levels.
pub const MAX_NESTING: usize = 32;
/// The most items a connection page holds (`users(first:)`), as the schema enforces.
pub const MAX_PAGE: u64 = 1_000;

/// What a document was measured to cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Measure {
    /// Fields with fragments expanded, over every operation and fragment definition.
    pub fields: u64,
    /// The deepest nesting of fields.
    pub depth: u64,
    /// The most values the answer of the costliest operation can hold.
    pub cost: u64,
    /// How deeply selection sets nest, through fragments: each field's selection, spread
    /// fragment and inline fragment is one level (as async-graphql counts recursion).
    pub nesting: u64,
    /// How many times the costliest operation's searches and pages go over every user,
    /// weighted by what each costs per user (the caller multiplies by the users).
    pub passes: u64,
    /// The mutations the costliest operation makes.
    pub writes: u64,
    /// The longest list given to any field argument, in any operation.
    pub list_items: u64,
}

/// What sorting a searched connection's matches costs per user, in plain substring
/// searches: about 400 ns a user by name or email and 90 ns by a timestamp, measured at
/// 100,000 users.
pub(super) const SORT_BY_TEXT: u64 = 10;
pub(super) const SORT_BY_TIME: u64 = 2;

/// The `maxDistance` of a fuzzy search when none is given, as the schema says.
const DEFAULT_MAX_DISTANCE: u64 = 2;

/// What a fuzzy search costs per user, in plain substring searches: measured at 100,000
/// users, a search examines a user in about 40 ns, a fuzzy one in about 100 ns at
/// `maxDistance: 2` and 1.15 µs at 10 (its table grows with the distance).
pub(super) fn fuzzy_weight(max_distance: u64) -> u64 {
    let distance = max_distance.min(10);
    3 + 3 * distance * distance / 10
}

/// Why a document could not be measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unmeasurable {
    /// A fragment spreads itself, directly or through others.
    Cycle(String),
    /// Spreads and selections nest deeper than [`MAX_NESTING`].
    TooNested,
    /// A list without a limit returns every user; ask again with their number.
    NeedsUserCount,
}

/// Measures `document`, resolving argument variables from `variables` (or the operations'
/// defaults). `users` is the number of users, when known; without it, a document with a
/// list of every user (no limit) answers [`Unmeasurable::NeedsUserCount`].
///
/// # Errors
/// [`Unmeasurable`] for a fragment cycle, too deep a nesting, or a missing user count.
pub fn measure(
    document: &ExecutableDocument,
    registry: &Registry,
    variables: &Variables,
    users: Option<u64>,
) -> Result<Measure, Unmeasurable> {
    let mut defaults: HashMap<&str, &ConstValue> = HashMap::new();
    for (_, operation) in document.operations.iter() {
        for definition in &operation.node.variable_definitions {
            if let Some(default) = &definition.node.default_value {
                defaults
                    .entry(definition.node.name.node.as_str())
                    .or_insert(&default.node);
            }
        }
    }
    let mut walk = Walk {
        document,
        registry,
        variables,
        defaults,
        users,
        fragments: HashMap::new(),
        introspection: OnceCell::new(),
    };
    let mut total = Measure::default();
    for (name, fragment) in &document.fragments {
        let _ = fragment;
        let part = walk.fragment(name, 0)?;
        total.absorb(part);
    }
    for (_, operation) in document.operations.iter() {
        let root = match operation.node.ty {
            OperationType::Query => Some(registry.query_type.as_str()),
            OperationType::Mutation => registry.mutation_type.as_deref(),
            OperationType::Subscription => registry.subscription_type.as_deref(),
        };
        let part = walk.selection_set(&operation.node.selection_set.node, root, 1)?;
        total.absorb(part);
        total.cost = total.cost.max(part.cost);
        total.passes = total.passes.max(part.passes);
        total.writes = total.writes.max(part.writes);
    }
    if total.nesting > MAX_NESTING as u64 {
        return Err(Unmeasurable::TooNested);
    }
    Ok(total)
}

impl Measure {
    /// Adds the fields of another root (operation or fragment definition) to these.
    fn absorb(&mut self, other: Measure) {
        self.fields = self.fields.saturating_add(other.fields);
        self.depth = self.depth.max(other.depth);
        self.nesting = self.nesting.max(other.nesting);
        self.list_items = self.list_items.max(other.list_items);
    }
}

/// A fragment's measure, or the mark that it is being measured right now.
#[derive(Clone, Copy)]
enum Memo {
    InProgress,
    Done(Measure),
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    registry: &'a Registry,
    variables: &'a Variables,
    defaults: HashMap<&'a str, &'a ConstValue>,
    users: Option<u64>,
    fragments: HashMap<&'a str, Memo>,
    /// Read from the registry the first time an introspection list is met.
    introspection: OnceCell<IntrospectionBounds>,
}

impl<'a> Walk<'a> {
    fn fragment(&mut self, name: &'a Name, nesting: usize) -> Result<Measure, Unmeasurable> {
        match self.fragments.get(name.as_str()) {
            Some(Memo::Done(measure)) => return Ok(*measure),
            Some(Memo::InProgress) => return Err(Unmeasurable::Cycle(name.to_string())),
            None => {}
        }
        // An unknown fragment costs nothing here; validation reports it.
        let Some(fragment) = self.document.fragments.get(name) else {
            return Ok(Measure::default());
        };
        self.fragments.insert(name.as_str(), Memo::InProgress);
        let on = Some(fragment.node.type_condition.node.on.node.as_str());
        let measure = self.selection_set(&fragment.node.selection_set.node, on, nesting + 1)?;
        self.fragments.insert(name.as_str(), Memo::Done(measure));
        Ok(measure)
    }

    fn selection_set(
        &mut self,
        set: &'a SelectionSet,
        parent: Option<&'a str>,
        nesting: usize,
    ) -> Result<Measure, Unmeasurable> {
        if nesting > MAX_NESTING {
            return Err(Unmeasurable::TooNested);
        }
        let mut total = Measure::default();
        for selection in &set.items {
            let part = match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let meta = parent
                        .and_then(|parent| self.registry.types.get(parent))
                        .and_then(|ty| ty.field_by_name(field.name.node.as_str()));
                    let child_type = meta.map(|meta| MetaTypeName::concrete_typename(&meta.ty));
                    let children = if field.selection_set.node.items.is_empty() {
                        Measure::default()
                    } else {
                        self.selection_set(&field.selection_set.node, child_type, nesting + 1)?
                    };
                    let (items, passes) = match (parent, meta) {
                        (Some(parent), Some(meta)) => (
                            self.items(parent, field.name.node.as_str(), &meta.ty, &field.arguments)?,
                            self.passes(parent, child_type, &field.arguments)
                                // A user's history is found by reading all of it.
                                + u64::from(parent == "Query" && field.name.node == "userHistory"),
                        ),
                        _ => (1, 0),
                    };
                    let write =
                        u64::from(parent.is_some() && parent == self.registry.mutation_type.as_deref());
                    let list_items = self.longest_list(&field.arguments).unwrap_or(0);
                    Measure {
                        fields: children.fields.saturating_add(1),
                        depth: children.depth.saturating_add(1),
                        cost: items.saturating_mul(children.cost.saturating_add(1)),
                        nesting: children.nesting,
                        passes: items.saturating_mul(children.passes).saturating_add(passes),
                        writes: items.saturating_mul(children.writes).saturating_add(write),
                        list_items: list_items.max(children.list_items),
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let part = self.fragment(&spread.node.fragment_name.node, nesting)?;
                    // A remembered fragment may be used deeper than where it was measured.
                    if (nesting as u64).saturating_add(part.nesting) > MAX_NESTING as u64 {
                        return Err(Unmeasurable::TooNested);
                    }
                    part
                }
                Selection::InlineFragment(inline) => {
                    let on = inline
                        .node
                        .type_condition
                        .as_ref()
                        .map(|condition| condition.node.on.node.as_str())
                        .or(parent);
                    self.selection_set(&inline.node.selection_set.node, on, nesting + 1)?
                }
            };
            total.fields = total.fields.saturating_add(part.fields);
            total.depth = total.depth.max(part.depth);
            total.cost = total.cost.saturating_add(part.cost);
            total.nesting = total.nesting.max(part.nesting);
            total.passes = total.passes.saturating_add(part.passes);
            total.writes = total.writes.saturating_add(part.writes);
            total.list_items = total.list_items.max(part.list_items);
        }
        total.nesting = total.nesting.saturating_add(1);
        Ok(total)
    }

    /// How many times a field's selection can repeat in the answer.
    fn items(
        &self,
        parent: &str,
        field: &str,
        ty: &str,
        arguments: &[(Positioned<Name>, Positioned<Value>)],
    ) -> Result<u64, Unmeasurable> {
        let is_list = MetaTypeName::create(ty).is_list();
        let returns = MetaTypeName::concrete_typename(ty);
        let resolved = |name: &str| argument(arguments, name).map(|value| self.resolve(value));
        if parent.starts_with("__") {
            if !is_list {
                return Ok(1);
            }
            let bounds = self
                .introspection
                .get_or_init(|| IntrospectionBounds::of(self.registry));
            return Ok(bounds.items(field));
        }
        if returns.ends_with("Connection") {
            let page = [resolved("first"), resolved("last")]
                .into_iter()
                .flatten()
                .filter_map(count)
                .min()
                .unwrap_or(MAX_PAGE);
            return Ok(page.min(MAX_PAGE));
        }
        // Lists inside a connection or a payload were counted at the field above them.
        if parent.ends_with("Connection") || parent.ends_with("Payload") {
            return Ok(1);
        }
        let longest_list_argument = self.longest_list(arguments);
        if !is_list {
            return Ok(longest_list_argument.unwrap_or(1).max(1));
        }
        if let Some(limit) = resolved("limit").and_then(count) {
            return Ok(self.users.map_or(limit, |users| users.min(limit)));
        }
        // Every list Roster serves is a list of users.
        self.users.ok_or(Unmeasurable::NeedsUserCount)
    }

    /// How many times a field's `search` or `fuzzy` argument and a connection's sorting go
    /// over every user, weighted; a field without either goes over none.
    fn passes(
        &self,
        parent: &str,
        returns: Option<&str>,
        arguments: &[(Positioned<Name>, Positioned<Value>)],
    ) -> u64 {
        if parent.starts_with("__") {
            return 0;
        }
        let given = |name: &str| {
            argument(arguments, name)
                .map(|value| self.resolve(value))
                .filter(|value| !matches!(value, Resolved::Unknown))
        };
        let mut weight = 0;
        if given("search").is_some() {
            weight += 1;
        }
        if given("fuzzy").is_some() {
            let distance = given("maxDistance")
                .and_then(count)
                .unwrap_or(DEFAULT_MAX_DISTANCE);
            weight += fuzzy_weight(distance);
        }
        // A page without a search walks its order's index: it costs its page, not a pass.
        // With one, the matches are sorted.
        if weight > 0 && returns.is_some_and(|returns| returns.ends_with("Connection")) {
            weight += self.sort_weight(arguments);
        }
        weight
    }

    /// What ordering a connection's users costs per user: by name or email (text, compared
    /// without case) or by an order only known when the query runs, [`SORT_BY_TEXT`]; by a
    /// timestamp, the default, [`SORT_BY_TIME`].
    fn sort_weight(&self, arguments: &[(Positioned<Name>, Positioned<Value>)]) -> u64 {
        // The order with its variables filled in (a missing one reads as null).
        let order = argument(arguments, "orderBy").map(|order| {
            order
                .clone()
                .into_const_with(|name| {
                    Ok::<_, Infallible>(self.variable(&name).cloned().unwrap_or(ConstValue::Null))
                })
                .unwrap_or(ConstValue::Null)
        });
        let field = match &order {
            None | Some(ConstValue::Null) => return SORT_BY_TIME,
            Some(ConstValue::Object(order)) => order.get("field"),
            Some(_) => None,
        };
        // An enum written in the query, or a string in JSON variables.
        let name = match field {
            Some(ConstValue::Enum(name)) => name.as_str(),
            Some(ConstValue::String(name)) => name.as_str(),
            _ => "",
        };
        if matches!(name, "CREATED_AT" | "UPDATED_AT") {
            SORT_BY_TIME
        } else {
            SORT_BY_TEXT
        }
    }

    /// The length of the longest list among a field's arguments, if it has one.
    fn longest_list(&self, arguments: &[(Positioned<Name>, Positioned<Value>)]) -> Option<u64> {
        arguments
            .iter()
            .filter_map(|(_, value)| match self.resolve(&value.node) {
                Resolved::List(len) => Some(len),
                _ => None,
            })
            .max()
    }

    /// A variable's value, or its default.
    fn variable(&self, name: &Name) -> Option<&ConstValue> {
        self.variables
            .get(name)
            .or_else(|| self.defaults.get(name.as_str()).copied())
    }

    fn resolve(&self, value: &Value) -> Resolved {
        match value {
            Value::Variable(name) => self.variable(name).map_or(Resolved::Unknown, Resolved::of_const),
            Value::Number(number) => Resolved::Int(number.as_i64()),
            Value::List(items) => Resolved::List(items.len() as u64),
            Value::Null => Resolved::Unknown,
            _ => Resolved::Other,
        }
    }
}

/// The value a field's argument `name` is given in the document, if any.
fn argument<'v>(arguments: &'v [(Positioned<Name>, Positioned<Value>)], name: &str) -> Option<&'v Value> {
    arguments
        .iter()
        .find(|(key, _)| key.node.as_str() == name)
        .map(|(_, value)| &value.node)
}

/// An argument's value, as far as the measure cares.
enum Resolved {
    Int(Option<i64>),
    List(u64),
    Unknown,
    Other,
}

impl Resolved {
    fn of_const(value: &ConstValue) -> Self {
        match value {
            ConstValue::Number(number) => Self::Int(number.as_i64()),
            ConstValue::List(items) => Self::List(items.len() as u64),
            ConstValue::Null => Self::Unknown,
            _ => Self::Other,
        }
    }
}

/// A count argument: a non-negative integer (a negative one is refused by the resolver, so
/// it yields nothing).
fn count(value: Resolved) -> Option<u64> {
    match value {
        Resolved::Int(Some(n)) => Some(u64::try_from(n).unwrap_or(0)),
        _ => None,
    }
}

/// The longest lists introspection can return, from the schema itself.
struct IntrospectionBounds {
    types: u64,
    fields: u64,
    input_fields: u64,
    enum_values: u64,
    arguments: u64,
    directives: u64,
}

impl IntrospectionBounds {
    fn of(registry: &Registry) -> Self {
        let mut bounds = Self {
            types: registry.types.len() as u64,
            fields: 1,
            input_fields: 1,
            enum_values: 1,
            arguments: 1,
            directives: registry.directives.len() as u64,
        };
        for ty in registry.types.values() {
            match ty {
                MetaType::Object { fields, .. } | MetaType::Interface { fields, .. } => {
                    bounds.fields = bounds.fields.max(fields.len() as u64);
                    for field in fields.values() {
                        bounds.arguments = bounds.arguments.max(field.args.len() as u64);
                    }
                }
                MetaType::InputObject { input_fields, .. } => {
                    bounds.input_fields = bounds.input_fields.max(input_fields.len() as u64);
                }
                MetaType::Enum { enum_values, .. } => {
                    bounds.enum_values = bounds.enum_values.max(enum_values.len() as u64);
                }
                _ => {}
            }
        }
        for directive in registry.directives.values() {
            bounds.arguments = bounds.arguments.max(directive.args.len() as u64);
        }
        bounds
    }

    fn items(&self, field: &str) -> u64 {
        match field {
            "fields" => self.fields,
            "inputFields" => self.input_fields,
            "enumValues" => self.enum_values,
            "args" => self.arguments,
            "directives" => self.directives,
            // `types`, `interfaces`, `possibleTypes`, `locations` and anything newer.
            _ => self.types.max(self.directives),
        }
    }
}
