// Syntax highlighting: the source's tokens, each a span whose class says what it is, laid
// over the editor's textarea. Where validation found a mistake the span is marked too.

import { tokenize } from "./parse.js";

const KEYWORDS = new Set(["query", "mutation", "subscription", "fragment"]);

/**
 * What each token is, by the little that surrounds it: a keyword, a field, an argument or
 * alias (a name before a colon), a type, a variable, a directive, a value, or punctuation.
 */
export function classify(tokens) {
  const classes = [];
  let depth = 0; // selection-set depth
  let parens = 0;
  let variableParens = false; // the parentheses of an operation's variable definitions
  let afterOperation = false;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    const previous = i > 0 ? tokens[i - 1] : null;
    const next = tokens[i + 1];
    let kind = t.kind;
    if (t.kind === "punct" || t.kind === "spread") {
      kind = "punct";
      if (t.value === "{") depth++;
      else if (t.value === "}") depth = Math.max(0, depth - 1);
      else if (t.value === "(") {
        if (parens === 0) variableParens = depth === 0 && afterOperation;
        parens++;
      } else if (t.value === ")") parens = Math.max(0, parens - 1);
      if (t.value === "$" && next && next.kind === "name" && next.start === t.end) kind = "variable";
      if (t.value === "{" && depth === 1) afterOperation = false;
    } else if (t.kind === "name") {
      const prev = previous && previous.value;
      if (depth === 0 && parens === 0 && KEYWORDS.has(t.value)) {
        kind = "keyword";
        afterOperation = t.value !== "fragment";
      } else if (t.value === "on" && previous && (previous.kind === "spread" || (previous.kind === "name" && i > 1 && tokens[i - 2].value === "fragment"))) {
        kind = "keyword";
      } else if (prev === "$") kind = "variable";
      else if (prev === "@") kind = "directive";
      else if (prev === "on" || (variableParens && parens > 0 && (prev === ":" || prev === "[") && !(next && next.value === ":"))) kind = "type";
      else if (previous && previous.kind === "name" && previous.value === "fragment") kind = "def";
      else if (next && next.value === ":") kind = "attribute";
      else if (parens > 0 || (previous && (prev === ":" || prev === "=" || prev === "["))) {
        kind = t.value === "true" || t.value === "false" || t.value === "null" ? "atom" : "enum";
      } else if (depth === 0 && previous && classes[i - 1] === "keyword") kind = "def";
      else kind = "field";
    } else if (t.kind === "block") kind = "string";
    else if (t.kind === "float") kind = "int";
    classes.push(kind);
  }
  return classes;
}

/**
 * `source` as a fragment of spans (class `t-<kind>`), with the tokens that overlap any of
 * `marks` (`{ start, end, message }`) marked. A mark past the last token shows at the end.
 */
export function highlight(source, marks = []) {
  const tokens = tokenize(source);
  const classes = classify(tokens);
  const fragment = document.createDocumentFragment();
  let at = 0;
  const shown = new Set();
  const markOf = (start, end) => marks.find((m) => m.start < end && start < Math.max(m.end, m.start + 1));
  tokens.forEach((token, index) => {
    if (token.start > at) fragment.append(source.slice(at, token.start));
    const span = document.createElement("span");
    span.className = "t-" + classes[index];
    span.textContent = token.value;
    const mark = markOf(token.start, token.end);
    if (mark) {
      span.classList.add("mark");
      span.title = mark.message;
      shown.add(mark);
    }
    fragment.append(span);
    at = token.end;
  });
  if (at < source.length) fragment.append(source.slice(at));
  for (const mark of marks) {
    if (shown.has(mark)) continue;
    // Nothing to underline (the document ended too soon): a marked space at the end.
    const span = document.createElement("span");
    span.className = "mark eof";
    span.title = mark.message;
    span.textContent = " ";
    fragment.append(span);
  }
  // A pre drops a final newline's empty line; a space keeps the last line as tall as the rest.
  fragment.append(" ");
  return fragment;
}
