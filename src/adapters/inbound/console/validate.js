// Validation as one types: the syntax, then the document against the live schema (fields
// and arguments that exist, required arguments given, leaf and object fields selected
// rightly, enum values, fragments and variables known). Each problem says where it is.

import { locate, parse } from "./parse.js";
import { itemType, namedType, typeName } from "./schema.js";

/** The problems of `source`: `{ message, start, end, line, column }`, in document order. */
export function validate(source, schema) {
  let doc;
  try {
    doc = parse(source);
  } catch (err) {
    if (err.start === undefined) throw err;
    return [{ message: err.message, start: err.start, end: err.end, line: err.line, column: err.column }];
  }
  if (!schema) return [];
  const problems = [];
  const report = (message, node) => {
    const at = locate(source, node.start);
    problems.push({ message, start: node.start, end: node.end === undefined ? node.start + 1 : node.end, ...at });
  };
  const fragments = new Map(doc.definitions.filter((d) => d.kind === "fragment").map((d) => [d.name.value, d]));

  const checkValue = (value, ref, defined) => {
    if (!value || !ref) return;
    if (value.kind === "variable") {
      if (defined && !defined.has(value.name.value)) report(`Variable "$${value.name.value}" is not defined.`, value.name);
      return;
    }
    if (value.kind === "null") return;
    const named = schema.type(namedType(ref));
    const inner = itemType(ref);
    if (value.kind === "list") {
      for (const item of value.values) checkValue(item, inner === ref ? ref : inner, defined);
      return;
    }
    if (!named) return;
    if (named.kind === "ENUM") {
      if (value.kind !== "enum") report(`Enum "${named.name}" cannot represent a non-enum value: ${value.raw || "an object"}.`, value);
      else if (!(named.enumValues || []).some((v) => v.name === value.raw)) report(`Value "${value.raw}" does not exist in "${named.name}" enum.`, value);
    } else if (named.kind === "INPUT_OBJECT" && value.kind === "object") {
      for (const field of value.fields) {
        const def = (named.inputFields || []).find((f) => f.name === field.name.value);
        if (!def) report(`Field "${field.name.value}" is not defined by type "${named.name}".`, field.name);
        else checkValue(field.value, def.type, defined);
      }
    } else if (named.kind === "SCALAR" && value.kind === "enum") {
      report(`${named.name} cannot represent a non-${named.name.toLowerCase()} value: ${value.raw}.`, value);
    }
  };

  const checkArguments = (args, given, owner, node, defined) => {
    for (const arg of given) {
      const def = args.find((a) => a.name === arg.name.value);
      if (!def) report(`Unknown argument "${arg.name.value}" on ${owner}.`, arg.name);
      else checkValue(arg.value, def.type, defined);
    }
    for (const def of args) {
      const required = def.type.kind === "NON_NULL" && (def.defaultValue === null || def.defaultValue === undefined);
      if (required && !given.some((a) => a.name.value === def.name)) {
        report(`${owner[0].toUpperCase() + owner.slice(1)} argument "${def.name}" of type "${typeName(def.type)}" is required, but it was not provided.`, node);
      }
    }
  };

  const checkDirectives = (directives, defined) => {
    for (const d of directives || []) {
      const def = schema.directives.find((x) => x.name === d.name.value);
      if (!def) report(`Unknown directive "@${d.name.value}".`, d.name);
      else checkArguments(def.args || [], d.arguments, `directive "@${d.name.value}"`, d.name, defined);
    }
  };

  const checkSelections = (set, parent, defined) => {
    for (const s of set.selections) {
      checkDirectives(s.directives, defined);
      if (s.kind === "spread") {
        if (!fragments.has(s.name.value)) report(`Unknown fragment "${s.name.value}".`, s.name);
        continue;
      }
      if (s.kind === "inline") {
        let type = parent;
        if (s.typeCondition) {
          type = s.typeCondition.value;
          if (!schema.type(type)) report(`Unknown type "${type}".`, s.typeCondition);
        }
        if (schema.type(type)) checkSelections(s.selectionSet, type, defined);
        continue;
      }
      const field = schema.field(parent, s.name.value);
      if (!field) {
        report(`Cannot query field "${s.name.value}" on type "${parent}".`, s.name);
        continue;
      }
      checkArguments(field.args || [], s.arguments, `field "${parent}.${field.name}"`, s.name, defined);
      const inner = namedType(field.type);
      if (schema.isLeaf(inner)) {
        if (s.selectionSet) report(`Field "${field.name}" must not have a selection since type "${typeName(field.type)}" has no subfields.`, s.name);
      } else if (!s.selectionSet) {
        report(`Field "${field.name}" of type "${typeName(field.type)}" must have a selection of subfields. Did you mean "${field.name} { ... }"?`, s.name);
      } else if (schema.type(inner)) {
        checkSelections(s.selectionSet, inner, defined);
      }
    }
  };

  for (const def of doc.definitions) {
    checkDirectives(def.directives, null);
    if (def.kind === "fragment") {
      if (!schema.type(def.typeCondition.value)) report(`Unknown type "${def.typeCondition.value}".`, def.typeCondition);
      else checkSelections(def.selectionSet, def.typeCondition.value, null);
      continue;
    }
    const root = schema.root(def.operation);
    if (!root) {
      report(`The schema does not support ${def.operation} operations.`, def);
      continue;
    }
    const defined = new Set();
    for (const v of def.variables) {
      defined.add(v.variable.value);
      let t = v.type;
      while (t.kind !== "named") t = t.of;
      if (!schema.type(t.name.value)) report(`Unknown type "${t.name.value}".`, t.name);
    }
    checkSelections(def.selectionSet, root, defined);
  }
  problems.sort((a, b) => a.start - b.start);
  return problems;
}
