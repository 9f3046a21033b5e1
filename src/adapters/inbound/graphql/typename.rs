//! What async-graphql's validation does not see of a `__typename` field.
//!
//! Its validator never visits a `__typename` field (it answers it without a schema field to
//! check against), so no rule looks at its arguments, its directives, their arguments or the
//! variables they use: `{ __typename @aa }` and `{ __typename @skip(if: $undefined) }` were
//! accepted, `@include(if: "x")` skipped the field without a word, and
//! `query($x: Boolean!) { __typename @skip(if: $x) }` was refused for not using `$x`.
//!
//! So before validation the gate hands async-graphql an equivalent document: each
//! `__typename` that carries directives is moved into an inline fragment without a type
//! condition that carries them instead (`__typename @skip(if: $x)` becomes
//! `... @skip(if: $x) { __typename }`, which selects and skips exactly the same). The
//! validator visits an inline fragment's directives, so every rule about directives,
//! their arguments and variables applies, with its own words and positions. What no rewrite
//! can show it is checked here: arguments on `__typename` (it takes none), a selection
//! under it (it is a `String!`), and a directive that may not be used on a field (an inline
//! fragment's rules would judge it by the wrong location).

use async_graphql::ServerError;
use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, InlineFragment, Selection, SelectionSet,
};
use async_graphql::registry::__DirectiveLocation;
use async_graphql::registry::Registry;

const TYPENAME: &str = "__typename";

/// The document validation should see, and what it cannot see wrong there, when a
/// `__typename` in `document` carries arguments, directives or a selection; `None` when none
/// does (the document is then used as it is, without a copy).
pub fn prepare(
    document: &ExecutableDocument,
    registry: &Registry,
) -> Option<(ExecutableDocument, Vec<ServerError>)> {
    let needs_it = document
        .operations
        .iter()
        .map(|(_, operation)| &operation.node.selection_set.node)
        .chain(
            document
                .fragments
                .values()
                .map(|fragment| &fragment.node.selection_set.node),
        )
        .any(needs_attention);
    if !needs_it {
        return None;
    }
    let mut document = document.clone();
    let mut errors = Vec::new();
    match &mut document.operations {
        DocumentOperations::Single(operation) => {
            rewrite(&mut operation.node.selection_set.node, registry, &mut errors)
        }
        DocumentOperations::Multiple(operations) => {
            for operation in operations.values_mut() {
                rewrite(&mut operation.node.selection_set.node, registry, &mut errors);
            }
        }
    }
    for fragment in document.fragments.values_mut() {
        rewrite(&mut fragment.node.selection_set.node, registry, &mut errors);
    }
    Some((document, errors))
}

/// Whether a `__typename` anywhere under `set` carries arguments, directives or a selection.
/// (The query text's nesting was bounded before parsing, so the recursion is shallow.)
fn needs_attention(set: &SelectionSet) -> bool {
    set.items.iter().any(|selection| match &selection.node {
        Selection::Field(field) => {
            let field = &field.node;
            if field.name.node == TYPENAME {
                !field.arguments.is_empty()
                    || !field.directives.is_empty()
                    || !field.selection_set.node.items.is_empty()
            } else {
                needs_attention(&field.selection_set.node)
            }
        }
        Selection::InlineFragment(inline) => needs_attention(&inline.node.selection_set.node),
        Selection::FragmentSpread(_) => false,
    })
}

fn rewrite(set: &mut SelectionSet, registry: &Registry, errors: &mut Vec<ServerError>) {
    for selection in &mut set.items {
        match &mut selection.node {
            Selection::Field(field) if field.node.name.node == TYPENAME => {
                check(&field.node, field.pos, registry, errors);
                let (wrapped, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut field.node.directives)
                    .into_iter()
                    .filter(|directive| allowed_on_a_field(directive.node.name.node.as_str(), registry))
                    .partition(|directive| {
                        allowed_on_an_inline_fragment(directive.node.name.node.as_str(), registry)
                    });
                field.node.directives = kept;
                if wrapped.is_empty() {
                    continue;
                }
                let pos = selection.pos;
                let wrapper = Selection::InlineFragment(Positioned::new(
                    InlineFragment {
                        type_condition: None,
                        directives: wrapped,
                        selection_set: Positioned::new(SelectionSet { items: Vec::new() }, pos),
                    },
                    pos,
                ));
                let typename = std::mem::replace(&mut selection.node, wrapper);
                if let Selection::InlineFragment(inline) = &mut selection.node {
                    inline
                        .node
                        .selection_set
                        .node
                        .items
                        .push(Positioned::new(typename, pos));
                }
            }
            Selection::Field(field) => rewrite(&mut field.node.selection_set.node, registry, errors),
            Selection::InlineFragment(inline) => {
                rewrite(&mut inline.node.selection_set.node, registry, errors)
            }
            Selection::FragmentSpread(_) => {}
        }
    }
}

/// Reports what the validator will not see of this `__typename`.
fn check(
    field: &async_graphql::parser::types::Field,
    pos: async_graphql::Pos,
    registry: &Registry,
    errors: &mut Vec<ServerError>,
) {
    for (name, _) in &field.arguments {
        errors.push(ServerError::new(
            format!(
                "Unknown argument \"{}\" on field \"{TYPENAME}\": it takes no arguments.",
                name.node
            ),
            Some(name.pos),
        ));
    }
    if !field.selection_set.node.items.is_empty() {
        errors.push(ServerError::new(
            format!(
                "Field \"{TYPENAME}\" must not have a selection since type \"String!\" has no subfields."
            ),
            Some(pos),
        ));
    }
    for directive in &field.directives {
        let name = directive.node.name.node.as_str();
        if !allowed_on_a_field(name, registry) {
            errors.push(ServerError::new(
                format!("Directive \"{name}\" may not be used on \"FIELD\"."),
                Some(directive.pos),
            ));
        }
    }
}

/// Whether the directive `name` may sit on a field; an unknown one is for the validator to
/// report.
fn allowed_on_a_field(name: &str, registry: &Registry) -> bool {
    registry
        .directives
        .get(name)
        .is_none_or(|directive| directive.locations.contains(&__DirectiveLocation::FIELD))
}

/// Whether the validator judges the directive `name` on an inline fragment as it would on a
/// field: an unknown one is unknown in both places.
fn allowed_on_an_inline_fragment(name: &str, registry: &Registry) -> bool {
    registry.directives.get(name).is_none_or(|directive| {
        directive
            .locations
            .contains(&__DirectiveLocation::INLINE_FRAGMENT)
    })
}
