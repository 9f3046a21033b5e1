// The docs explorer: the schema's roots, types, fields, arguments and enum values, with a
// trail back and a search over all of their names.

import { button, element } from "./store.js";
import { namedType, typeName } from "./schema.js";

export class Docs {
  /** `insert(text)` puts a field's name at the editor's caret. */
  constructor(container, trailBar, searchBox, insert) {
    this.container = container;
    this.trailBar = trailBar;
    this.insert = insert;
    this.schema = null;
    this.trail = [];
    searchBox.addEventListener("input", () => this.search(searchBox.value));
  }

  show(schema) {
    this.schema = schema;
    this.trail = [];
    this.home();
  }

  typeLink(ref) {
    const span = element("span");
    if (!ref) return span;
    const text = typeName(ref);
    const name = namedType(ref);
    const at = text.indexOf(name);
    span.append(text.slice(0, at), button("link", name, () => this.open(name)), text.slice(at + name.length));
    return span;
  }

  fieldItem(field, owner) {
    const item = element("li");
    if (owner) item.append(button("link", `${owner}.`, () => this.open(owner)));
    const name = button("link field", field.name, () => this.insert(field.name));
    name.title = `Insert ${field.name} at the cursor`;
    item.append(name);
    if (field.args && field.args.length) {
      item.append("(");
      field.args.forEach((arg, index) => {
        if (index) item.append(", ");
        item.append(`${arg.name}: `, this.typeLink(arg.type));
        if (arg.defaultValue !== null && arg.defaultValue !== undefined) item.append(` = ${arg.defaultValue}`);
      });
      item.append(")");
    }
    if (field.type) item.append(": ", this.typeLink(field.type));
    if (field.isDeprecated) item.append(element("span", "where", `deprecated: ${field.deprecationReason || ""}`));
    if (field.description) item.append(element("p", "", field.description));
    return item;
  }

  showTrail() {
    this.trailBar.replaceChildren(
      button("link", "Schema", () => {
        this.trail = [];
        this.home();
      }),
    );
    this.trail.forEach((name, index) => {
      this.trailBar.append(
        " › ",
        button("link", name, () => {
          this.trail = this.trail.slice(0, index);
          this.open(name);
        }),
      );
    });
  }

  home() {
    this.showTrail();
    const parts = [];
    for (const [label, operation] of [
      ["Queries", "query"],
      ["Mutations", "mutation"],
      ["Subscriptions", "subscription"],
    ]) {
      const type = this.schema.type(this.schema.root(operation));
      if (!type) continue;
      const list = element("ul");
      for (const field of type.fields || []) list.append(this.fieldItem(field));
      parts.push(element("h3", "", label), list);
    }
    const list = element("ul");
    for (const type of this.schema.types.values()) {
      if (type.name.startsWith("__")) continue;
      const item = element("li");
      item.append(button("link", type.name, () => this.open(type.name)), element("span", "where", kindOf(type)));
      list.append(item);
    }
    parts.push(element("h3", "", "Types"), list);
    this.container.replaceChildren(...parts);
  }

  open(name) {
    const type = this.schema && this.schema.type(name);
    if (!type) return;
    if (this.trail[this.trail.length - 1] !== name) this.trail.push(name);
    this.showTrail();
    const parts = [element("h2", "", type.name), element("p", "", type.description || kindOf(type))];
    for (const [label, list] of [
      ["Fields", type.fields],
      ["Input fields", type.inputFields],
      ["Values", (type.enumValues || []).map((value) => ({ ...value, type: null }))],
    ]) {
      if (!list || !list.length) continue;
      const ul = element("ul");
      for (const field of list) ul.append(this.fieldItem(field));
      parts.push(element("h3", "", label), ul);
    }
    this.container.replaceChildren(...parts);
  }

  /** Types, fields, input fields, arguments and enum values whose names hold `text`. */
  search(text) {
    if (!this.schema) return;
    const needle = text.trim().toLowerCase();
    if (!needle) {
      if (this.trail.length) this.open(this.trail[this.trail.length - 1]);
      else this.home();
      return;
    }
    const hit = (name) => name.toLowerCase().includes(needle);
    const groups = { Types: [], Fields: [], Arguments: [], "Enum values": [] };
    for (const type of this.schema.types.values()) {
      if (type.name.startsWith("__")) continue;
      if (hit(type.name)) {
        const item = element("li");
        item.append(button("link", type.name, () => this.open(type.name)), element("span", "where", kindOf(type)));
        groups.Types.push(item);
      }
      for (const field of [...(type.fields || []), ...(type.inputFields || [])]) {
        if (hit(field.name)) groups.Fields.push(this.fieldItem(field, type.name));
        for (const arg of field.args || []) {
          if (!hit(arg.name)) continue;
          const item = element("li", "argument");
          item.append(
            button("link", `${type.name}.`, () => this.open(type.name)),
            button("link", field.name, () => this.insert(field.name)),
            "(",
            element("strong", "", arg.name),
            ": ",
            this.typeLink(arg.type),
            ")",
          );
          if (arg.description) item.append(element("p", "", arg.description));
          groups.Arguments.push(item);
        }
      }
      for (const value of type.enumValues || []) {
        if (!hit(value.name)) continue;
        const item = element("li", "enum-value");
        item.append(button("link", `${type.name}.`, () => this.open(type.name)), button("link field", value.name, () => this.insert(value.name)));
        if (value.description) item.append(element("p", "", value.description));
        groups["Enum values"].push(item);
      }
    }
    const parts = [];
    for (const [label, items] of Object.entries(groups)) {
      if (!items.length) continue;
      const list = element("ul");
      list.append(...items);
      parts.push(element("h3", "", label), list);
    }
    this.container.replaceChildren(...(parts.length ? parts : [element("p", "", `Nothing in the schema matches “${text.trim()}”.`)]));
  }
}

function kindOf(type) {
  return type.kind.toLowerCase().replace("_", " ");
}
