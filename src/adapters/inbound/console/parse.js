// GraphQL source as tokens and as a tree: the lexer feeds the highlighter and completion,
// the parser feeds validation and prettify. Both keep where everything is, as offsets into
// the source and as line and column (1-based, as servers report them).

const PUNCTUATORS = "!$&()[]{}:=@|";

/** Line and column (1-based) of `offset` in `source`. */
export function locate(source, offset) {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < source.length; i++) {
    if (source[i] === "\n") {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Every token of `source`, comments included, never failing: what it cannot read becomes an
 * `invalid` token and an unfinished string a string marked `unterminated`. Whitespace and
 * commas lie between tokens. Kinds: punct, spread, name, int, float, string, block,
 * comment, invalid.
 */
export function tokenize(source) {
  const tokens = [];
  const n = source.length;
  let i = 0;
  const isNameStart = (c) => /[A-Za-z_]/.test(c);
  const isName = (c) => /[A-Za-z0-9_]/.test(c);
  const isDigit = (c) => c >= "0" && c <= "9";
  while (i < n) {
    const c = source[i];
    if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "," || c === "\ufeff") {
      i++;
      continue;
    }
    const start = i;
    let kind;
    let unterminated = false;
    if (c === "#") {
      while (i < n && source[i] !== "\n" && source[i] !== "\r") i++;
      kind = "comment";
    } else if (source.startsWith("...", i)) {
      i += 3;
      kind = "spread";
    } else if (PUNCTUATORS.includes(c)) {
      i++;
      kind = "punct";
    } else if (isNameStart(c)) {
      while (i < n && isName(source[i])) i++;
      kind = "name";
    } else if (c === "-" || isDigit(c)) {
      i++;
      while (i < n && isDigit(source[i])) i++;
      kind = "int";
      if (source[i] === "." && isDigit(source[i + 1] || "")) {
        i++;
        while (i < n && isDigit(source[i])) i++;
        kind = "float";
      }
      if ((source[i] === "e" || source[i] === "E") && /[-+0-9]/.test(source[i + 1] || "")) {
        i += 2;
        while (i < n && isDigit(source[i])) i++;
        kind = "float";
      }
      if (source.slice(start, i) === "-") kind = "invalid";
    } else if (source.startsWith('"""', i)) {
      i += 3;
      while (i < n && !source.startsWith('"""', i)) i += source.startsWith('\\"""', i) ? 4 : 1;
      unterminated = i >= n;
      i = Math.min(n, i + 3);
      kind = "block";
    } else if (c === '"') {
      i++;
      while (i < n && source[i] !== '"' && source[i] !== "\n") i += source[i] === "\\" ? 2 : 1;
      unterminated = source[i] !== '"';
      if (!unterminated) i++;
      i = Math.min(i, n);
      kind = "string";
    } else {
      i++;
      kind = "invalid";
    }
    const token = { kind, value: source.slice(start, i), start, end: i };
    if (unterminated) token.unterminated = true;
    tokens.push(token);
  }
  return tokens;
}

/** A syntax error at `offset`, with its line and column. */
export class GraphQLSyntaxError extends Error {
  constructor(message, source, start, end) {
    super(message);
    this.start = start;
    this.end = end;
    Object.assign(this, locate(source, start));
  }
}

/**
 * The document's tree, or a thrown SyntaxError at the first mistake. Nodes carry `start`
 * and `end`; names are `{ value, start, end }`. Comments just before a definition or a
 * selection are kept on it (`comments`) so that prettify does not lose them.
 */
export function parse(source) {
  const all = tokenize(source);
  const tokens = all.filter((t) => t.kind !== "comment");
  const commentsBefore = new Map();
  {
    let pending = [];
    for (const t of all) {
      if (t.kind === "comment") pending.push(t.value);
      else if (pending.length) {
        commentsBefore.set(t.start, pending);
        pending = [];
      }
    }
  }
  let at = 0;
  const end = { kind: "eof", value: "end of the document", start: source.length, end: source.length };
  const peek = (offset = 0) => tokens[at + offset] || end;
  const fail = (message, token = peek()) => {
    throw new GraphQLSyntaxError(message, source, token.start, Math.max(token.end, token.start + 1));
  };
  const describe = (t) => (t.kind === "eof" ? "the end of the document" : `"${t.value}"`);
  for (const t of tokens) {
    if (t.kind === "invalid") fail(`Unexpected character ${JSON.stringify(t.value)}.`, t);
    if (t.unterminated) fail(t.kind === "block" ? "Unterminated block string." : "Unterminated string.", t);
  }
  const is = (value, offset = 0) => {
    const t = peek(offset);
    return (t.kind === "punct" || t.kind === "spread") && t.value === value;
  };
  const isName = (value) => peek().kind === "name" && (value === undefined || peek().value === value);
  const expect = (value) => {
    if (!is(value)) fail(`Expected "${value}", found ${describe(peek())}.`);
    return tokens[at++];
  };
  const name = () => {
    const t = peek();
    if (t.kind !== "name") fail(`Expected a name, found ${describe(t)}.`);
    at++;
    return { value: t.value, start: t.start, end: t.end };
  };
  const comments = () => commentsBefore.get(peek().start) || [];

  function document() {
    const definitions = [];
    if (peek().kind === "eof") fail("The document has no operation.");
    while (peek().kind !== "eof") definitions.push(definition());
    return { kind: "document", definitions };
  }

  function definition() {
    const leading = comments();
    const start = peek().start;
    if (is("{")) {
      const selectionSet = selections();
      return { kind: "operation", operation: "query", name: null, variables: [], directives: [], selectionSet, start, end: selectionSet.end, comments: leading };
    }
    if (isName("query") || isName("mutation") || isName("subscription")) {
      const operation = tokens[at++].value;
      const opName = isName() ? name() : null;
      const variables = is("(") ? variableDefinitions() : [];
      const dirs = directives();
      const selectionSet = selections();
      return { kind: "operation", operation, name: opName, variables, directives: dirs, selectionSet, start, end: selectionSet.end, comments: leading };
    }
    if (isName("fragment")) {
      at++;
      const fragmentName = name();
      if (fragmentName.value === "on") fail('A fragment cannot be named "on".', fragmentName);
      if (!isName("on")) fail(`Expected "on", found ${describe(peek())}.`);
      at++;
      const typeCondition = name();
      const dirs = directives();
      const selectionSet = selections();
      return { kind: "fragment", name: fragmentName, typeCondition, directives: dirs, selectionSet, start, end: selectionSet.end, comments: leading };
    }
    return fail(`Expected an operation or a fragment, found ${describe(peek())}.`);
  }

  function variableDefinitions() {
    expect("(");
    const list = [];
    while (!is(")")) {
      const start = peek().start;
      expect("$");
      const variable = name();
      expect(":");
      const varType = type();
      const defaultValue = is("=") ? (at++, value(true)) : null;
      list.push({ variable, type: varType, defaultValue, directives: directives(), start });
      if (peek().kind === "eof") fail(`Expected ")", found the end of the document.`);
    }
    expect(")");
    return list;
  }

  function type() {
    let result;
    const start = peek().start;
    if (is("[")) {
      at++;
      const of = type();
      expect("]");
      result = { kind: "list", of, start };
    } else {
      result = { kind: "named", name: name(), start };
    }
    if (is("!")) {
      at++;
      result = { kind: "nonnull", of: result, start };
    }
    return result;
  }

  function directives() {
    const list = [];
    while (is("@")) {
      const start = tokens[at++].start;
      const directiveName = name();
      list.push({ name: directiveName, arguments: is("(") ? args(false) : [], start });
    }
    return list;
  }

  function selections() {
    const open = expect("{");
    const list = [];
    while (!is("}")) {
      if (peek().kind === "eof") fail(`Expected "}", found the end of the document.`);
      list.push(selection());
    }
    const close = expect("}");
    if (!list.length) fail("A selection set cannot be empty.", close);
    return { kind: "selectionSet", selections: list, start: open.start, end: close.end };
  }

  function selection() {
    const leading = comments();
    const start = peek().start;
    if (is("...")) {
      at++;
      if (isName() && peek().value !== "on") {
        return { kind: "spread", name: name(), directives: directives(), start, comments: leading };
      }
      let typeCondition = null;
      if (isName("on")) {
        at++;
        typeCondition = name();
      }
      const dirs = directives();
      return { kind: "inline", typeCondition, directives: dirs, selectionSet: selections(), start, comments: leading };
    }
    let alias = null;
    let fieldName = name();
    if (is(":")) {
      at++;
      alias = fieldName;
      fieldName = name();
    }
    const fieldArgs = is("(") ? args(false) : [];
    const dirs = directives();
    const selectionSet = is("{") ? selections() : null;
    return { kind: "field", alias, name: fieldName, arguments: fieldArgs, directives: dirs, selectionSet, start, comments: leading };
  }

  function args(constant) {
    expect("(");
    const list = [];
    while (!is(")")) {
      if (peek().kind === "eof") fail(`Expected ")", found the end of the document.`);
      const argName = name();
      expect(":");
      list.push({ name: argName, value: value(constant) });
    }
    if (!list.length) fail("An argument list cannot be empty.");
    expect(")");
    return list;
  }

  function value(constant) {
    const t = peek();
    const start = t.start;
    if (is("$")) {
      if (constant) fail("A variable is not allowed in a default value.");
      at++;
      return { kind: "variable", name: name(), start };
    }
    if (is("[")) {
      at++;
      const values = [];
      while (!is("]")) {
        if (peek().kind === "eof") fail(`Expected "]", found the end of the document.`);
        values.push(value(constant));
      }
      at++;
      return { kind: "list", values, start };
    }
    if (is("{")) {
      at++;
      const fields = [];
      while (!is("}")) {
        if (peek().kind === "eof") fail(`Expected "}", found the end of the document.`);
        const fieldName = name();
        expect(":");
        fields.push({ name: fieldName, value: value(constant) });
      }
      at++;
      return { kind: "object", fields, start };
    }
    if (t.kind === "int" || t.kind === "float" || t.kind === "string" || t.kind === "block") {
      at++;
      return { kind: t.kind, raw: t.value, start, end: t.end };
    }
    if (t.kind === "name") {
      at++;
      const kind = t.value === "true" || t.value === "false" ? "boolean" : t.value === "null" ? "null" : "enum";
      return { kind, raw: t.value, start, end: t.end };
    }
    return fail(`Expected a value, found ${describe(t)}.`);
  }

  return document();
}

// ---- printing ---------------------------------------------------------------------------

/** The document laid out the one canonical way: two spaces a level, one selection a line. */
export function print(doc) {
  return doc.definitions.map(printDefinition).join("\n\n") + "\n";
}

function printComments(comments, indent) {
  return (comments || []).map((c) => indent + c + "\n").join("");
}

function printDefinition(def) {
  const head = [];
  if (def.kind === "fragment") {
    head.push(`fragment ${def.name.value} on ${def.typeCondition.value}`);
  } else {
    const plain = !def.name && !def.variables.length && !def.directives.length && def.operation === "query";
    if (!plain) {
      let text = def.operation + (def.name ? " " + def.name.value : "");
      if (def.variables.length) {
        text +=
          "(" +
          def.variables
            .map((v) => `$${v.variable.value}: ${printType(v.type)}` + (v.defaultValue ? ` = ${printValue(v.defaultValue)}` : "") + printDirectives(v.directives))
            .join(", ") +
          ")";
      }
      head.push(text);
    }
  }
  const directives = printDirectives(def.directives);
  const prefix = head.length ? head[0] + directives + " " : "";
  return printComments(def.comments, "") + prefix + printSelections(def.selectionSet, "");
}

function printSelections(set, indent) {
  const inner = indent + "  ";
  const lines = set.selections.map((s) => printComments(s.comments, inner) + inner + printSelection(s, inner));
  return "{\n" + lines.join("\n") + "\n" + indent + "}";
}

function printSelection(s, indent) {
  if (s.kind === "spread") return `...${s.name.value}${printDirectives(s.directives)}`;
  if (s.kind === "inline") {
    return "..." + (s.typeCondition ? ` on ${s.typeCondition.value}` : "") + printDirectives(s.directives) + " " + printSelections(s.selectionSet, indent);
  }
  let text = (s.alias ? s.alias.value + ": " : "") + s.name.value + printArguments(s.arguments) + printDirectives(s.directives);
  if (s.selectionSet) text += " " + printSelections(s.selectionSet, indent);
  return text;
}

function printArguments(list) {
  if (!list.length) return "";
  return "(" + list.map((a) => `${a.name.value}: ${printValue(a.value)}`).join(", ") + ")";
}

function printDirectives(list) {
  return (list || []).map((d) => ` @${d.name.value}${printArguments(d.arguments)}`).join("");
}

function printType(t) {
  if (t.kind === "nonnull") return printType(t.of) + "!";
  if (t.kind === "list") return "[" + printType(t.of) + "]";
  return t.name.value;
}

function printValue(v) {
  switch (v.kind) {
    case "variable":
      return "$" + v.name.value;
    case "list":
      return "[" + v.values.map(printValue).join(", ") + "]";
    case "object":
      return "{" + v.fields.map((f) => `${f.name.value}: ${printValue(f.value)}`).join(", ") + "}";
    default:
      return v.raw;
  }
}

// ---- which operation to run -------------------------------------------------------------

/**
 * The operations of a document with where each spans (`{ type, name, start, end }`), read
 * from the tokens alone so that it works on a document that does not parse yet.
 */
export function operationsIn(source) {
  const operations = [];
  let depth = 0;
  let parens = 0;
  let current = null;
  let expectName = false;
  let inFragment = false;
  for (const t of tokenize(source)) {
    if (t.kind === "comment") continue;
    if (t.kind === "name") {
      if (depth === 0 && parens === 0) {
        if (expectName) current.name = t.value;
        else if (!current && !inFragment) {
          if (t.value === "query" || t.value === "mutation" || t.value === "subscription") {
            current = { type: t.value, name: null, start: t.start };
            operations.push(current);
            expectName = true;
            continue;
          }
          if (t.value === "fragment") inFragment = true;
        }
      }
      expectName = false;
      continue;
    }
    expectName = false;
    if (t.kind !== "punct") continue;
    if (t.value === "(") parens++;
    else if (t.value === ")") parens = Math.max(0, parens - 1);
    else if (parens === 0 && t.value === "{") {
      if (depth === 0 && !current && !inFragment) {
        current = { type: "query", name: null, start: t.start };
        operations.push(current);
      }
      depth++;
    } else if (parens === 0 && t.value === "}") {
      depth = Math.max(0, depth - 1);
      if (depth === 0) {
        if (current) current.end = t.end;
        current = null;
        inFragment = false;
      }
    }
  }
  for (const op of operations) if (op.end === undefined) op.end = source.length;
  return operations;
}

/** The operation under the caret, else the last one before it, else the first. */
export function chosenOperation(source, caret) {
  const operations = operationsIn(source);
  if (operations.length <= 1) return operations[0] || { type: "query", name: null };
  const before = operations.filter((op) => op.start <= caret);
  return before.find((op) => caret <= op.end) || before[before.length - 1] || operations[0];
}
