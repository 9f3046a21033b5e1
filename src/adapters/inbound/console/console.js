// Roster console: write an operation with the schema at hand (highlighting, completion,
// validation as you type, prettify), in tabs, with any headers; run queries and mutations
// over POST and subscriptions over the WebSocket (graphql-transport-ws); run them again
// from the history. Every file it loads comes from the server that served it (this one
// imports the others), so it works with no internet.

import { CodeEditor } from "./editor.js";
import { Completer } from "./complete.js";
import { Docs } from "./docs.js";
import { readHeaders } from "./headers.js";
import { History } from "./history.js";
import { chosenOperation, parse, print } from "./parse.js";
import { INTROSPECTION, Schema } from "./schema.js";
import { element } from "./store.js";
import { Tabs } from "./tabs.js";
import { validate } from "./validate.js";

const $ = (id) => document.getElementById(id);
const variablesBox = $("variables");
const headersBox = $("headers");
const authorizationBox = $("authorization");
const statusLine = $("status");
const errorList = $("errors");
const eventList = $("events");
const resultBox = $("result");
const diagnostics = $("diagnostics");
const stopButton = $("stop");

// The page is served at the GraphQL endpoint itself, so this works behind a path prefix too.
const endpoint = new URL(location.pathname, location.href).href;
const socketUrl = (() => {
  const url = new URL(endpoint);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
})();

const WELCOME = `# Ctrl+Enter (⌘+Enter) runs the operation at the cursor.
# Queries and mutations go over POST, subscriptions over
# the WebSocket. Ctrl+Space suggests what may come next;
# Shift+Ctrl+P lays the document out.

query Users {
  allUsers(limit: 10) {
    id
    name
    email
    createdAt
  }
}

subscription Changes {
  userEvents {
    kind
    at
    user { id name email }
  }
}
`;

let schema = null;

// ---- output ---------------------------------------------------------------------------

function setStatus(text, tone) {
  statusLine.textContent = text;
  statusLine.className = tone || "";
}

const pretty = (value) => JSON.stringify(value, null, 2);

function clearOutput() {
  errorList.replaceChildren();
  errorList.hidden = true;
  eventList.replaceChildren();
  eventList.hidden = true;
  resultBox.textContent = "";
}

// GraphQL errors, readably: the message, its code, where it happened.
function showErrors(errors) {
  errorList.replaceChildren();
  if (!Array.isArray(errors) || errors.length === 0) {
    errorList.hidden = true;
    return;
  }
  for (const error of errors) {
    const item = element("li", "", String(error && error.message !== undefined ? error.message : pretty(error)));
    const code = error && error.extensions && error.extensions.code;
    if (code) item.append(element("span", "code", String(code)));
    const where = [];
    if (Array.isArray(error.path)) where.push("at " + error.path.join("."));
    if (Array.isArray(error.locations)) {
      for (const at of error.locations) where.push(`line ${at.line}, column ${at.column}`);
    }
    if (where.length) item.append(element("span", "where", where.join("; ")));
    errorList.append(item);
  }
  errorList.hidden = false;
}

// ---- the editors ----------------------------------------------------------------------

let checkTimer = null;
const editor = new CodeEditor($("query"), (text) => {
  tabs.update({ query: text });
  clearTimeout(checkTimer);
  checkTimer = setTimeout(check, 120);
});
const completer = new Completer(editor, () => schema);

// Marks every problem in the editor and lists them under it, each a link to its place.
function check() {
  const problems = validate(editor.value, schema);
  editor.setMarks(problems);
  diagnostics.replaceChildren(
    ...problems.map((problem) => {
      const item = element("li");
      const place = element("button", "link", `line ${problem.line}, column ${problem.column}`);
      place.type = "button";
      place.addEventListener("click", () => {
        editor.textarea.focus();
        editor.textarea.setSelectionRange(problem.start, problem.end);
      });
      item.append(place, ": " + problem.message);
      return item;
    }),
  );
  diagnostics.hidden = problems.length === 0;
}

function prettify() {
  let doc;
  try {
    doc = parse(editor.value);
  } catch (err) {
    setStatus(`Cannot prettify: line ${err.line}, column ${err.column}: ${err.message}`, "bad");
    return;
  }
  const laidOut = print(doc);
  if (laidOut !== editor.value) editor.replace(0, editor.value.length, laidOut);
  try {
    const variables = variablesBox.value.trim();
    if (variables) variablesBox.value = pretty(JSON.parse(variables));
    tabs.update({ variables: variablesBox.value });
  } catch (_) {
    // Variables that are not JSON yet stay as typed.
  }
  setStatus("Prettified.");
}

const tabs = new Tabs($("tabs"), $("new-tab"), WELCOME, (tab) => {
  editor.value = tab.query;
  variablesBox.value = tab.variables || "";
  completer.close();
});

const history = new History($("history"), $("clear-history"), (entry) => {
  editor.value = entry.query;
  variablesBox.value = entry.variables || "";
  tabs.update({ query: entry.query, variables: variablesBox.value });
  run(entry.operationName);
});

const docs = new Docs($("docs"), $("docs-trail"), $("docs-search"), (text) => {
  const box = editor.textarea;
  editor.replace(box.selectionStart, box.selectionEnd, text);
});

// ---- running --------------------------------------------------------------------------

let socket = null;
let running = null;

function stopSubscription(reason) {
  if (socket) {
    const closing = socket;
    socket = null;
    if (closing.readyState === WebSocket.OPEN) {
      try {
        closing.send(JSON.stringify({ id: "1", type: "complete" }));
      } catch (_) {
        // The socket is going away anyway.
      }
    }
    closing.close(1000, "stopped");
    if (reason) setStatus(reason);
  }
  stopButton.hidden = true;
}

function readVariables() {
  const text = variablesBox.value.trim();
  if (!text) return {};
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`Variables are not valid JSON: ${err.message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error("Variables must be a JSON object, such as {\"id\": \"…\"}.");
  }
  return value;
}

/** Runs the operation at the caret, or the one named `operationName` (from the history). */
function run(operationName) {
  stopSubscription();
  if (running) running.abort();
  clearOutput();
  completer.close();
  const query = editor.value;
  let variables;
  let headers;
  try {
    variables = readVariables();
    headers = readHeaders(authorizationBox, headersBox);
  } catch (err) {
    setStatus(err.message, "bad");
    return;
  }
  let operation = chosenOperation(query, editor.textarea.selectionStart);
  if (typeof operationName === "string") {
    operation = { ...operation, name: operationName };
    const named = new RegExp(`\\b(query|mutation|subscription)\\s+${operationName}\\b`).exec(query);
    if (named) operation.type = named[1];
  }
  const request = { query, variables };
  if (operation.name) request.operationName = operation.name;
  const label = operation.name ? `${operation.type} ${operation.name}` : `anonymous ${operation.type}`;
  history.add({ query, variables: variablesBox.value, operationName: operation.name || null, label });
  if (operation.type === "subscription") subscribe(request, label, headers);
  else post(request, label, headers);
}

async function post(request, label, extraHeaders) {
  const controller = new AbortController();
  running = controller;
  const headers = {
    "Content-Type": "application/json",
    Accept: "application/graphql-response+json, application/json;q=0.9",
    ...extraHeaders,
  };
  setStatus(`Running ${label}…`);
  const started = performance.now();
  let response;
  let text;
  try {
    response = await fetch(endpoint, {
      method: "POST",
      headers,
      body: JSON.stringify(request),
      signal: controller.signal,
      credentials: "same-origin",
    });
    text = await response.text();
  } catch (err) {
    if (controller.signal.aborted) return;
    setStatus(`${label}: the request failed (${err.message}). Is the server running?`, "bad");
    return;
  } finally {
    if (running === controller) running = null;
  }
  const elapsed = Math.round(performance.now() - started);
  let body = null;
  try {
    body = JSON.parse(text);
  } catch (_) {
    body = null;
  }
  const errors = body && Array.isArray(body.errors) ? body.errors : [];
  const failed = !response.ok || errors.length > 0;
  const summary = errors.length === 1 ? "1 error" : `${errors.length} errors`;
  setStatus(
    `${label}: HTTP ${response.status} ${response.statusText || ""}`.trimEnd() + ` in ${elapsed} ms` + (errors.length ? `, ${summary}` : ""),
    failed ? "bad" : "ok",
  );
  showErrors(errors);
  resultBox.textContent = body === null ? text : pretty(body);
}

function subscribe(request, label, headers) {
  let acknowledged = false;
  let count = 0;
  const ws = new WebSocket(socketUrl, "graphql-transport-ws");
  socket = ws;
  stopButton.hidden = false;
  setStatus(`${label}: connecting to ${socketUrl}…`);
  const send = (message) => ws.send(JSON.stringify(message));
  ws.addEventListener("open", () => {
    // A browser cannot set a WebSocket's headers; they go in connection_init instead.
    send({ type: "connection_init", payload: headers });
  });
  ws.addEventListener("message", (message) => {
    if (socket !== ws) return;
    let data;
    try {
      data = JSON.parse(message.data);
    } catch (_) {
      setStatus(`${label}: the server sent something that is not JSON`, "bad");
      return;
    }
    switch (data.type) {
      case "connection_ack":
        acknowledged = true;
        send({ id: "1", type: "subscribe", payload: request });
        setStatus(`${label}: subscribed over ${socketUrl}; events appear below as they arrive`, "ok");
        break;
      case "next": {
        count++;
        eventList.hidden = false;
        const item = element("li");
        item.append(element("time", "", new Date().toLocaleTimeString()));
        const payload = data.payload || {};
        if (Array.isArray(payload.errors) && payload.errors.length) {
          item.append(element("pre", "", payload.errors.map((e) => e.message).join("\n")));
        }
        item.append(element("pre", "event", pretty(payload.data !== undefined ? payload.data : payload)));
        eventList.append(item);
        item.scrollIntoView({ block: "nearest" });
        setStatus(`${label}: ${count} event${count === 1 ? "" : "s"} so far`, "ok");
        break;
      }
      case "error":
        showErrors(data.payload);
        setStatus(`${label}: the server refused the subscription`, "bad");
        stopSubscription();
        break;
      case "complete":
        setStatus(`${label}: the server ended the subscription after ${count} event${count === 1 ? "" : "s"}`);
        stopSubscription();
        break;
      case "ping":
        send({ type: "pong" });
        break;
      default:
        break;
    }
  });
  ws.addEventListener("close", (event) => {
    if (socket !== ws) return;
    socket = null;
    stopButton.hidden = true;
    const why = event.reason ? `${event.code} ${event.reason}` : `code ${event.code}`;
    setStatus(
      acknowledged
        ? `${label}: the connection closed (${why}) after ${count} event${count === 1 ? "" : "s"}`
        : `${label}: the WebSocket at ${socketUrl} closed before the subscription started (${why})`,
      "bad",
    );
  });
}

// ---- the schema -----------------------------------------------------------------------

async function loadSchema() {
  let headers;
  try {
    headers = readHeaders(authorizationBox, headersBox);
  } catch (_) {
    headers = {};
  }
  try {
    const response = await fetch(endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...headers },
      body: JSON.stringify({ query: INTROSPECTION, operationName: "ConsoleSchema" }),
      credentials: "same-origin",
    });
    const body = await response.json().catch(() => null);
    if (!response.ok || !body || !body.data || !body.data.__schema) {
      const reason = body && Array.isArray(body.errors) && body.errors.length ? body.errors[0].message : `HTTP ${response.status}`;
      throw new Error(reason);
    }
    schema = new Schema(body.data.__schema);
    docs.show(schema);
    check();
    setStatus("Ready. Ctrl+Enter runs the operation at the cursor.");
  } catch (err) {
    const reload = element("button", "", "Reload the schema");
    reload.type = "button";
    reload.addEventListener("click", loadSchema);
    $("docs").replaceChildren(
      element("p", "", `The schema could not be loaded (${err.message}). Set the Authorization header if the server needs one, then reload it.`),
      reload,
    );
    setStatus("Ready, without the schema.", "bad");
  }
}

// ---- wiring ---------------------------------------------------------------------------

editor.value = tabs.current().query;
variablesBox.value = tabs.current().variables || "";
variablesBox.addEventListener("input", () => tabs.update({ variables: variablesBox.value }));
$("run").addEventListener("click", () => run());
$("prettify").addEventListener("click", prettify);
stopButton.addEventListener("click", () => stopSubscription("Stopped."));
for (const box of [authorizationBox, headersBox]) {
  box.addEventListener("change", () => {
    if (!schema) loadSchema();
  });
}
for (const [button, panel, other, otherPanel] of [
  ["show-docs", "docs-panel", "show-history", "history-panel"],
  ["show-history", "history-panel", "show-docs", "docs-panel"],
]) {
  $(button).addEventListener("click", () => {
    $(panel).hidden = false;
    $(otherPanel).hidden = true;
    $(button).setAttribute("aria-pressed", "true");
    $(other).setAttribute("aria-pressed", "false");
  });
}
document.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    run();
  } else if ((event.key === "P" || event.key === "p") && event.shiftKey && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    prettify();
  }
});
// Two spaces for Tab in the editors; Escape first lets Tab move focus on as usual.
let tabMovesFocus = false;
for (const box of [editor.textarea, variablesBox, headersBox]) {
  box.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      tabMovesFocus = true;
      return;
    }
    if (event.key === "Tab" && !event.shiftKey && !tabMovesFocus && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      box.setRangeText("  ", box.selectionStart, box.selectionEnd, "end");
      box.dispatchEvent(new Event("input"));
      return;
    }
    tabMovesFocus = false;
  });
}
loadSchema();
