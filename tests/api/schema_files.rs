//! The checked-in schema files are ones every client can read, and they are the live schema:
//! `schema.graphql` parses with the parsers Rust clients use (graphql-parser, which
//! graphql_client builds on, and cynic's), `schema.json` is the live introspection answer,
//! and the types, fields, arguments and enum values of all three agree.
//!
//! `UPDATE_SCHEMA_FILES=1 cargo test schema_files` rewrites `schema.json` from the live
//! schema (`schema.graphql` comes from `roster --print-schema`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::helpers::{assert_no_errors, spawn_app};

/// The introspection every client generator sends: every type with its fields, their
/// arguments and types (nested lists and non-nulls), input fields and enum values.
const INTROSPECTION: &str = r"
query IntrospectionQuery {
  __schema {
    description
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description isRepeatable locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }
}
";

/// What a type is made of, the same way whichever source it came from: for each named type
/// (built-in scalars and introspection types left out), its members as `name(arg: Type, …):
/// Type` for fields, `name: Type` for input fields and `name` for enum values, sorted.
type Shape = BTreeMap<String, Vec<String>>;

const BUILT_IN: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];

fn counts(name: &str) -> bool {
    !name.starts_with("__") && !BUILT_IN.contains(&name)
}

fn type_ref(value: &Value) -> String {
    match value["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", type_ref(&value["ofType"])),
        Some("LIST") => format!("[{}]", type_ref(&value["ofType"])),
        _ => value["name"].as_str().unwrap_or_default().to_owned(),
    }
}

fn input(value: &Value) -> String {
    format!(
        "{}: {}",
        value["name"].as_str().unwrap_or_default(),
        type_ref(&value["type"])
    )
}

fn field(name: &str, args: Vec<String>, ty: String) -> String {
    if args.is_empty() {
        format!("{name}: {ty}")
    } else {
        format!("{name}({}): {ty}", args.join(", "))
    }
}

fn introspected_shape(schema: &Value) -> Shape {
    let mut shape = Shape::new();
    for ty in schema["types"].as_array().expect("types") {
        let name = ty["name"].as_str().expect("a named type");
        if !counts(name) {
            continue;
        }
        let list = |key: &str| ty[key].as_array().cloned().unwrap_or_default();
        let mut members: Vec<String> = list("fields")
            .iter()
            .map(|f| {
                let args = f["args"].as_array().into_iter().flatten().map(input).collect();
                field(f["name"].as_str().unwrap_or_default(), args, type_ref(&f["type"]))
            })
            .collect();
        members.extend(list("inputFields").iter().map(input));
        members.extend(
            list("enumValues")
                .iter()
                .map(|v| v["name"].as_str().unwrap_or_default().to_owned()),
        );
        members.sort();
        shape.insert(name.to_owned(), members);
    }
    shape
}

fn graphql_parser_shape(sdl: &str) -> Shape {
    use graphql_parser::schema::{Definition, TypeDefinition};
    let document =
        graphql_parser::parse_schema::<String>(sdl).unwrap_or_else(|err| panic!("graphql-parser: {err}"));
    let input =
        |value: &graphql_parser::schema::InputValue<String>| format!("{}: {}", value.name, value.value_type);
    let mut shape = Shape::new();
    for definition in &document.definitions {
        let Definition::TypeDefinition(ty) = definition else {
            continue;
        };
        let fields = |fields: &[graphql_parser::schema::Field<String>]| -> Vec<String> {
            fields
                .iter()
                .map(|f| {
                    field(
                        &f.name,
                        f.arguments.iter().map(input).collect(),
                        f.field_type.to_string(),
                    )
                })
                .collect()
        };
        let (name, mut members) = match ty {
            TypeDefinition::Scalar(t) => (&t.name, Vec::new()),
            TypeDefinition::Object(t) => (&t.name, fields(&t.fields)),
            TypeDefinition::Interface(t) => (&t.name, fields(&t.fields)),
            TypeDefinition::Union(t) => (&t.name, Vec::new()),
            TypeDefinition::Enum(t) => (&t.name, t.values.iter().map(|v| v.name.clone()).collect()),
            TypeDefinition::InputObject(t) => (&t.name, t.fields.iter().map(input).collect()),
        };
        if counts(name) {
            members.sort();
            shape.insert(name.clone(), members);
        }
    }
    shape
}

fn cynic_parser_shape(sdl: &str) -> Shape {
    use cynic_parser::type_system::{Definition, TypeDefinition};
    let document =
        cynic_parser::parse_type_system_document(sdl).unwrap_or_else(|err| panic!("cynic-parser: {err}"));
    let mut shape = Shape::new();
    for definition in document.definitions() {
        let Definition::Type(ty) = definition else {
            continue;
        };
        let input = |value: cynic_parser::type_system::InputValueDefinition<'_>| {
            format!("{}: {}", value.name(), value.ty())
        };
        let mut members: Vec<String> = match ty {
            TypeDefinition::Object(t) => t
                .fields()
                .map(|f| field(f.name(), f.arguments().map(input).collect(), f.ty().to_string()))
                .collect(),
            TypeDefinition::Interface(t) => t
                .fields()
                .map(|f| field(f.name(), f.arguments().map(input).collect(), f.ty().to_string()))
                .collect(),
            TypeDefinition::Enum(t) => t.values().map(|v| v.value().to_owned()).collect(),
            TypeDefinition::InputObject(t) => t.fields().map(input).collect(),
            TypeDefinition::Scalar(_) | TypeDefinition::Union(_) => Vec::new(),
        };
        if counts(ty.name()) {
            members.sort();
            shape.insert(ty.name().to_owned(), members);
        }
    }
    shape
}

fn checked_in(name: &str) -> (std::path::PathBuf, String) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{name} is checked in: {err}"));
    (path, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_files_parse_with_the_rust_clients_parsers_and_are_the_live_schema() {
    let app = spawn_app().await;
    let live = app.gql(INTROSPECTION, Value::Null).await;
    assert_no_errors(&live);

    let (json_path, json_text) = checked_in("schema.json");
    let rendered = format!("{}\n", serde_json::to_string_pretty(&live).unwrap());
    if std::env::var_os("UPDATE_SCHEMA_FILES").is_some() && json_text != rendered {
        std::fs::write(&json_path, &rendered).unwrap();
    } else {
        let file: Value = serde_json::from_str(&json_text).expect("schema.json is JSON");
        assert!(
            file == live,
            "schema.json is not the live introspection: run `UPDATE_SCHEMA_FILES=1 cargo test schema_files`"
        );
    }

    let expected = introspected_shape(&live["data"]["__schema"]);
    assert!(
        expected.contains_key("User") && expected.contains_key("UserEventKind"),
        "{expected:?}"
    );
    let (_, sdl) = checked_in("schema.graphql");
    assert_eq!(
        graphql_parser_shape(&sdl),
        expected,
        "schema.graphql through graphql-parser"
    );
    assert_eq!(
        cynic_parser_shape(&sdl),
        expected,
        "schema.graphql through cynic-parser"
    );
}
