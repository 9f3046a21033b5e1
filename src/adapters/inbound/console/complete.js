// Autocompletion from the live schema: what may stand at the caret (a field of the type
// being selected, an argument of the field, a value of the argument's enum, a declared
// variable, a type, a keyword), worked out by walking the tokens before the caret.

import { tokenize } from "./parse.js";
import { itemType, namedType, typeName } from "./schema.js";

/**
 * What the caret at `offset` may be completed with: `{ start, prefix, items }`, where
 * `start`..`offset` is the partial word to replace and each item is
 * `{ label, detail, description }`; or `null` inside a comment or a string.
 */
export function suggestionsAt(source, offset, schema) {
  const tokens = tokenize(source);
  let prefix = "";
  let start = offset;
  const walked = [];
  for (const token of tokens) {
    if (token.end < offset || (token.end === offset && token.kind !== "name")) {
      if (token.kind !== "comment") walked.push(token);
      continue;
    }
    if (token.start < offset) {
      if (token.kind === "comment" || token.kind === "string" || token.kind === "block") return null;
      if (token.kind === "name") {
        prefix = source.slice(token.start, offset);
        start = token.start;
      }
    }
    break;
  }
  const context = contextAfter(walked, schema);
  const items = itemsFor(context, schema).filter((item) => matches(item.label, prefix));
  items.sort((a, b) => rank(a.label, prefix) - rank(b.label, prefix));
  return { start, prefix, items };
}

function matches(label, prefix) {
  if (!prefix) return true;
  const word = label.replace(/^\$/, "").toLowerCase();
  const wanted = prefix.toLowerCase();
  if (word.startsWith(wanted)) return true;
  // Letters in order, as in `aU` for `allUsers`.
  let at = 0;
  for (const c of word) if (c === wanted[at]) at++;
  return at === wanted.length;
}

function rank(label, prefix) {
  const word = label.replace(/^\$/, "");
  if (word.startsWith(prefix)) return 0;
  if (word.toLowerCase().startsWith(prefix.toLowerCase())) return 1;
  return 2;
}

/** The state of the document after `tokens`: what kind of thing comes next, and where. */
export function contextAfter(tokens, schema) {
  // Frames: { kind: "selection", type }, { kind: "arguments", args, expect, argument },
  // { kind: "list", type }, { kind: "object", fields, expect, field }, { kind: "variables" }.
  const stack = [];
  let operation = null; // "query" | "mutation" | "subscription" | "fragment"
  let fragmentType = null;
  let variables = [];
  let lastField = null;
  let pendingType = null; // from `... on Type` or a fragment's type condition
  let afterOn = false;
  let afterSpread = false;
  let afterDollar = false;
  let afterAt = false;
  let directive = null;
  let typePosition = false; // after `:` in variable definitions
  const top = () => stack[stack.length - 1];
  const valueType = () => {
    const frame = top();
    if (!frame) return undefined;
    if (frame.kind === "arguments" && frame.expect === "value") return frame.argument ? frame.argument.type : null;
    if (frame.kind === "object" && frame.expect === "value") return frame.field ? frame.field.type : null;
    if (frame.kind === "list") return frame.type;
    return undefined;
  };
  const valueDone = () => {
    const frame = top();
    if (frame && (frame.kind === "arguments" || frame.kind === "object")) frame.expect = "name";
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    const frame = top();
    const v = t.value;
    if (afterDollar) {
      afterDollar = false;
      if (t.kind === "name") {
        if (frame && frame.kind === "variables") variables.push(v);
        else valueDone();
        continue;
      }
    }
    if (afterAt) {
      afterAt = false;
      if (t.kind === "name") {
        directive = schema.directives.find((d) => d.name === v) || null;
        continue;
      }
    }
    if (t.kind === "punct" || t.kind === "spread") {
      if (v === "$") {
        afterDollar = true;
        continue;
      }
      if (v === "@") {
        afterAt = true;
        continue;
      }
      if (v === "...") {
        afterSpread = true;
        continue;
      }
      if (v === "(") {
        if (!frame && operation && operation !== "fragment") stack.push({ kind: "variables" });
        else if (directive) stack.push({ kind: "arguments", args: directive.args || [], expect: "name", argument: null });
        else if (frame && frame.kind === "selection") stack.push({ kind: "arguments", args: (lastField && lastField.args) || [], expect: "name", argument: null });
        else stack.push({ kind: "arguments", args: [], expect: "name", argument: null });
        directive = null;
        continue;
      }
      if (v === ")") {
        stack.pop();
        typePosition = false;
        continue;
      }
      if (v === ":") {
        if (frame && (frame.kind === "arguments" || frame.kind === "object")) frame.expect = "value";
        if (frame && frame.kind === "variables") typePosition = true;
        continue;
      }
      if (v === "=") {
        typePosition = false;
        continue;
      }
      if (v === "[") {
        if (frame && frame.kind === "variables") continue;
        stack.push({ kind: "list", type: itemType(valueType()) });
        continue;
      }
      if (v === "]") {
        if (frame && frame.kind === "list") {
          stack.pop();
          valueDone();
        }
        continue;
      }
      if (v === "{") {
        const type = valueType();
        if (type !== undefined) {
          const input = schema.type(namedType(type));
          stack.push({ kind: "object", fields: (input && input.inputFields) || [], expect: "name", field: null });
          continue;
        }
        let selected;
        if (!frame) selected = operation === "fragment" ? fragmentType : schema.root(operation || "query");
        else if (pendingType) selected = pendingType;
        else if (afterSpread) selected = frame.type;
        else selected = lastField ? namedType(lastField.type) : null;
        stack.push({ kind: "selection", type: selected });
        pendingType = null;
        afterSpread = false;
        lastField = null;
        directive = null;
        continue;
      }
      if (v === "}") {
        const closed = stack.pop();
        if (closed && closed.kind === "object") valueDone();
        if (!stack.length) {
          operation = null;
          fragmentType = null;
          variables = [];
        }
        lastField = null;
        continue;
      }
      continue;
    }
    if (t.kind === "name") {
      if (!frame) {
        if (["query", "mutation", "subscription", "fragment"].includes(v) && !operation) {
          operation = v;
          variables = [];
        } else if (operation === "fragment" && v === "on") afterOn = true;
        else if (afterOn) {
          fragmentType = v;
          afterOn = false;
        }
        continue;
      }
      if (frame.kind === "variables") {
        typePosition = false;
        continue;
      }
      if (frame.kind === "selection") {
        if (afterSpread) {
          if (v === "on") afterOn = true;
          else afterSpread = false; // a named fragment spread
          continue;
        }
        if (afterOn) {
          pendingType = v;
          afterOn = false;
          afterSpread = true;
          continue;
        }
        const next = tokens[i + 1];
        if (next && next.value === ":") continue; // an alias
        lastField = schema.field(frame.type, v) || null;
        continue;
      }
      if (frame.kind === "arguments" || frame.kind === "object") {
        if (frame.expect === "name") {
          const list = frame.kind === "arguments" ? frame.args : frame.fields;
          const found = list.find((a) => a.name === v) || null;
          if (frame.kind === "arguments") frame.argument = found;
          else frame.field = found;
        } else valueDone();
        continue;
      }
      continue; // a value inside a list
    }
    valueDone(); // a number or a string
  }
  const frame = top();
  if (afterDollar) return { kind: "variable", variables };
  if (afterAt) return { kind: "directive" };
  if (!frame) return afterOn ? { kind: "type", composite: true } : operation ? { kind: "none" } : { kind: "definition" };
  if (frame.kind === "variables") return typePosition ? { kind: "type", composite: false } : { kind: "none" };
  if (frame.kind === "selection") {
    if (afterOn) return { kind: "type", composite: true };
    if (afterSpread) return { kind: "none" };
    return { kind: "field", type: frame.type };
  }
  if (frame.kind === "arguments") {
    if (frame.expect === "name") return { kind: "argument", args: frame.args };
    return { kind: "value", type: frame.argument ? frame.argument.type : null, variables };
  }
  if (frame.kind === "object") {
    if (frame.expect === "name") return { kind: "argument", args: frame.fields };
    return { kind: "value", type: frame.field ? frame.field.type : null, variables };
  }
  return { kind: "value", type: frame.type, variables };
}

function itemsFor(context, schema) {
  switch (context.kind) {
    case "definition":
      return ["query", "mutation", "subscription", "fragment"].map((label) => ({ label, detail: "keyword" }));
    case "field":
      return schema.fields(context.type).map((field) => ({
        label: field.name,
        detail: typeName(field.type),
        description: field.description,
        deprecated: field.isDeprecated,
      }));
    case "argument":
      return context.args.map((arg) => ({ label: arg.name, detail: typeName(arg.type), description: arg.description }));
    case "value": {
      const items = [];
      const type = schema.type(namedType(context.type));
      if (type && type.kind === "ENUM") {
        for (const value of type.enumValues || []) items.push({ label: value.name, detail: type.name, description: value.description });
      }
      if (type && type.name === "Boolean") items.push({ label: "true", detail: "Boolean" }, { label: "false", detail: "Boolean" });
      for (const name of context.variables || []) items.push({ label: "$" + name, detail: "variable" });
      return items;
    }
    case "variable":
      return context.variables.map((name) => ({ label: name, detail: "variable" }));
    case "type":
      return [...schema.types.values()]
        .filter((type) => !type.name.startsWith("__"))
        .filter((type) => (context.composite ? ["OBJECT", "INTERFACE", "UNION"] : ["SCALAR", "ENUM", "INPUT_OBJECT"]).includes(type.kind))
        .map((type) => ({ label: type.name, detail: type.kind.toLowerCase().replace("_", " "), description: type.description }));
    case "directive":
      return schema.directives.map((d) => ({ label: d.name, detail: "directive", description: d.description }));
    default:
      return [];
  }
}

// ---- the list under the caret -----------------------------------------------------------

/**
 * The suggestion list of a CodeEditor. It opens as one types a name (or on Ctrl+Space),
 * moves with the arrow keys, takes the chosen item with Tab, Enter or a click, and closes
 * with Escape or when nothing fits.
 */
export class Completer {
  constructor(editor, schemaOf) {
    this.editor = editor;
    this.schemaOf = schemaOf;
    this.list = document.createElement("ul");
    this.list.id = "completions";
    this.list.setAttribute("role", "listbox");
    this.list.hidden = true;
    editor.wrapper.append(this.list);
    this.items = [];
    this.chosen = 0;
    this.range = null;
    const box = editor.textarea;
    box.addEventListener("keydown", (event) => this.key(event), true);
    box.addEventListener("input", (event) => {
      const typed = event.data || "";
      if (/^[A-Za-z0-9_$@]$/.test(typed) || (!this.list.hidden && event.inputType === "deleteContentBackward")) this.open(false);
      else this.close();
    });
    // Closed when the focus has really gone (a click on the list keeps it in the editor).
    box.addEventListener("blur", () =>
      setTimeout(() => {
        if (document.activeElement !== box) this.close();
      }, 150),
    );
    box.addEventListener("click", () => this.close());
  }

  get isOpen() {
    return !this.list.hidden;
  }

  /** Shows what fits at the caret; `always` shows it even before anything is typed. */
  open(always) {
    const schema = this.schemaOf();
    const box = this.editor.textarea;
    if (!schema || box.selectionStart !== box.selectionEnd) return this.close();
    const offset = box.selectionStart;
    const found = suggestionsAt(box.value, offset, schema);
    if (!found || !found.items.length || (!always && !found.prefix && box.value[offset - 1] !== "$")) return this.close();
    // Nothing to offer when the word is already whole and nothing longer fits.
    if (!always && found.items.length === 1 && found.items[0].label === found.prefix) return this.close();
    this.items = found.items.slice(0, 50);
    this.range = { start: found.start, end: offset };
    this.chosen = 0;
    this.list.replaceChildren(
      ...this.items.map((item, index) => {
        const li = document.createElement("li");
        li.setAttribute("role", "option");
        li.dataset.index = String(index);
        const label = document.createElement("span");
        label.className = "label" + (item.deprecated ? " deprecated" : "");
        label.textContent = item.label;
        const detail = document.createElement("span");
        detail.className = "detail";
        detail.textContent = item.detail || "";
        li.append(label, detail);
        if (item.description) li.title = item.description;
        li.addEventListener("mousedown", (event) => {
          event.preventDefault(); // keep the focus in the editor
          this.chosen = index;
          this.accept();
        });
        return li;
      }),
    );
    const at = this.editor.coordinates(found.start);
    this.list.style.left = Math.max(0, at.left) + "px";
    this.list.style.top = at.top + "px";
    this.list.hidden = false;
    this.highlightChosen();
  }

  close() {
    this.list.hidden = true;
    this.items = [];
  }

  highlightChosen() {
    [...this.list.children].forEach((li, index) => li.setAttribute("aria-selected", String(index === this.chosen)));
    const li = this.list.children[this.chosen];
    if (li) li.scrollIntoView({ block: "nearest" });
  }

  accept() {
    const item = this.items[this.chosen];
    if (!item || !this.range) return this.close();
    const box = this.editor.textarea;
    let { start, end } = this.range;
    let label = item.label;
    // A variable's `$` is already typed when completing after it.
    if (label.startsWith("$") && box.value[start - 1] === "$") label = label.slice(1);
    if (label.startsWith("$") && start === end && box.value[end - 1] === "$") start = end - 1;
    // Take the rest of the word too, when completing in the middle of one.
    while (end < box.value.length && /[A-Za-z0-9_]/.test(box.value[end])) end++;
    this.close();
    this.editor.replace(start, end, label);
  }

  key(event) {
    if (event.key === " " && event.ctrlKey) {
      event.preventDefault();
      event.stopImmediatePropagation();
      this.open(true);
      return;
    }
    if (!this.isOpen) return;
    if (event.ctrlKey || event.metaKey || event.altKey) {
      this.close();
      return;
    }
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: 8, PageUp: -8 };
    if (event.key in moves) {
      event.preventDefault();
      event.stopImmediatePropagation();
      this.chosen = Math.min(this.items.length - 1, Math.max(0, this.chosen + moves[event.key]));
      this.highlightChosen();
    } else if (event.key === "Tab" || event.key === "Enter") {
      event.preventDefault();
      event.stopImmediatePropagation();
      this.accept();
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopImmediatePropagation();
      this.close();
    }
  }
}
