// The live schema, as introspection tells it, with the few questions the editor asks of it.

export const INTROSPECTION = `query ConsoleSchema {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types {
      kind name description
      fields(includeDeprecated: true) {
        name description isDeprecated deprecationReason
        args { name description defaultValue type { ...TypeRef } }
        type { ...TypeRef }
      }
      inputFields { name description defaultValue type { ...TypeRef } }
      enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
    }
    directives { name description args { name description defaultValue type { ...TypeRef } } }
  }
}
fragment TypeRef on __Type {
  kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } }
}`;

/** A type reference as GraphQL writes it: `[User!]!`. */
export function typeName(ref) {
  if (!ref) return "";
  if (ref.kind === "NON_NULL") return typeName(ref.ofType) + "!";
  if (ref.kind === "LIST") return "[" + typeName(ref.ofType) + "]";
  return ref.name;
}

/** The named type under any list and non-null wrappers. */
export function namedType(ref) {
  while (ref && ref.ofType) ref = ref.ofType;
  return ref && ref.name;
}

/** One level of list taken off (and the non-null around it): a list item's type. */
export function itemType(ref) {
  if (ref && ref.kind === "NON_NULL") ref = ref.ofType;
  return ref && ref.kind === "LIST" ? ref.ofType : ref;
}

const TYPENAME = { name: "__typename", description: "The name of the object's type.", args: [], type: { kind: "NON_NULL", ofType: { kind: "SCALAR", name: "String" } } };

export class Schema {
  constructor(introspection) {
    this.raw = introspection;
    this.types = new Map(introspection.types.map((type) => [type.name, type]));
    this.directives = introspection.directives || [];
  }

  type(name) {
    return name ? this.types.get(name) : undefined;
  }

  /** The root type's name for `query`, `mutation` or `subscription`, if the schema has one. */
  root(operation) {
    const root = this.raw[operation + "Type"];
    return root ? root.name : null;
  }

  /** The fields one may select on type `name`, `__typename` included (and `__schema` and `__type` on the query root). */
  fields(name) {
    const type = this.type(name);
    if (!type || !["OBJECT", "INTERFACE", "UNION"].includes(type.kind)) return [];
    const fields = [...(type.fields || []), TYPENAME];
    if (name === this.root("query")) {
      fields.push(
        { name: "__schema", description: "The schema itself.", args: [], type: { kind: "NON_NULL", ofType: { kind: "OBJECT", name: "__Schema" } } },
        {
          name: "__type",
          description: "One type, by name.",
          args: [{ name: "name", type: { kind: "NON_NULL", ofType: { kind: "SCALAR", name: "String" } } }],
          type: { kind: "OBJECT", name: "__Type" },
        },
      );
    }
    return fields;
  }

  field(typeName, fieldName) {
    return this.fields(typeName).find((field) => field.name === fieldName);
  }

  /** Whether a type has no fields to select (scalars and enums). */
  isLeaf(name) {
    const type = this.type(name);
    return !!type && (type.kind === "SCALAR" || type.kind === "ENUM");
  }

  /** The types a variable may have: scalars, enums and input objects. */
  inputTypes() {
    return [...this.types.values()].filter((type) => ["SCALAR", "ENUM", "INPUT_OBJECT"].includes(type.kind));
  }
}
