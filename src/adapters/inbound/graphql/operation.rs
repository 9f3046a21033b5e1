//! Which operation of a document a request runs: the one rule that access control, the
//! transport's rules and the metrics all follow, so that none of them judges an operation
//! other than the one the executor runs.
//!
//! The rule is GraphQL's (and the executor's, async-graphql's `prepare_request`): with an
//! `operationName`, the operation of that name, and none when the document holds no such
//! operation (an anonymous operation has no name, so no `operationName` finds it); without
//! one, the document's only operation, and none when it holds several.

use async_graphql::Positioned;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType,
};

/// The operation a request runs.
#[derive(Clone, Copy, Debug)]
pub struct Chosen<'d> {
    /// Its name, when it has one.
    pub name: Option<&'d str>,
    pub operation: &'d Positioned<OperationDefinition>,
}

impl Chosen<'_> {
    pub fn ty(&self) -> OperationType {
        self.operation.node.ty
    }
}

/// The operation of `document` that a request asking for `requested` runs, or `None` when
/// it runs none (the executor then refuses the request).
pub fn chosen<'d>(document: &'d ExecutableDocument, requested: Option<&str>) -> Option<Chosen<'d>> {
    match (&document.operations, requested) {
        (DocumentOperations::Single(operation), None) => Some(Chosen {
            name: None,
            operation,
        }),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(operations), Some(name)) => {
            let (name, operation) = operations.get_key_value(name)?;
            Some(Chosen {
                name: Some(name.as_str()),
                operation,
            })
        }
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            let (name, operation) = operations.iter().next()?;
            Some(Chosen {
                name: Some(name.as_str()),
                operation,
            })
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(query: &str, requested: Option<&str>) -> Option<OperationType> {
        let document = async_graphql::parser::parse_query(query).unwrap();
        chosen(&document, requested).map(|chosen| chosen.ty())
    }

    #[test]
    fn the_named_operation_or_the_only_one_runs() {
        assert_eq!(ty("mutation { a }", None), Some(OperationType::Mutation));
        assert_eq!(ty("{ a }", None), Some(OperationType::Query));
        let three = "query Q { a } mutation M { b } subscription S { c }";
        assert_eq!(ty(three, Some("M")), Some(OperationType::Mutation));
        assert_eq!(ty(three, Some("Q")), Some(OperationType::Query));
        assert_eq!(ty(three, Some("S")), Some(OperationType::Subscription));
        assert_eq!(ty(three, Some("X")), None);
        assert_eq!(ty(three, None), None);
        assert_eq!(ty("mutation M { b }", None), Some(OperationType::Mutation));
    }

    #[test]
    fn an_operation_name_never_finds_an_anonymous_operation() {
        assert_eq!(ty("mutation { a }", Some("M")), None);
        assert_eq!(ty("{ a }", Some("Q")), None);
    }

    #[test]
    fn the_chosen_operation_keeps_its_name() {
        let document = async_graphql::parser::parse_query("query Q { a }").unwrap();
        assert_eq!(chosen(&document, None).unwrap().name, Some("Q"));
        let document = async_graphql::parser::parse_query("{ a }").unwrap();
        assert_eq!(chosen(&document, None).unwrap().name, None);
    }
}
