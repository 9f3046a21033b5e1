// Roster console: write an operation with the schema at hand, run queries and mutations over
// POST and subscriptions over the WebSocket (graphql-transport-ws). Everything it loads comes
// from the server that served it, so it works with no internet.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const queryBox = $("query");
  const variablesBox = $("variables");
  const authorizationBox = $("authorization");
  const statusLine = $("status");
  const errorList = $("errors");
  const eventList = $("events");
  const resultBox = $("result");
  const docs = $("docs");
  const docsTrail = $("docs-trail");
  const docsSearch = $("docs-search");
  const stopButton = $("stop");

  // The page is served at the GraphQL endpoint itself, so this works behind a path prefix too.
  const endpoint = new URL(location.pathname, location.href).href;
  const socketUrl = (() => {
    const url = new URL(endpoint);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  })();

  const STORED_QUERY = "roster.console.query";
  const STORED_VARIABLES = "roster.console.variables";
  const WELCOME = `# Ctrl+Enter (⌘+Enter) runs the operation at the cursor.
# Queries and mutations go over POST, subscriptions over
# the WebSocket. Click a field on the right to insert it.

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

  // ---- small helpers -------------------------------------------------------------------

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setStatus(text, tone) {
    statusLine.textContent = text;
    statusLine.className = tone || "";
  }

  function store(key, value) {
    try {
      localStorage.setItem(key, value);
    } catch (_) {
      // Storage may be off (private windows, policies); the console works without it.
    }
  }

  function stored(key) {
    try {
      return localStorage.getItem(key);
    } catch (_) {
      return null;
    }
  }

  function pretty(value) {
    return JSON.stringify(value, null, 2);
  }

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

  // ---- which operation to run ----------------------------------------------------------

  // The operations in a document, with where each one spans, found by a small scanner that
  // skips comments, strings and block strings; a full parser is not needed to choose one.
  function operationsIn(source) {
    const operations = [];
    let depth = 0;
    let parens = 0;
    let current = null;
    let expectName = false;
    let inFragment = false;
    let i = 0;
    const n = source.length;
    while (i < n) {
      const c = source[i];
      if (c === "#") {
        while (i < n && source[i] !== "\n") i++;
        continue;
      }
      if (c === '"') {
        if (source.startsWith('"""', i)) {
          i += 3;
          while (i < n && !source.startsWith('"""', i)) i += source[i] === "\\" ? 2 : 1;
          i += 3;
        } else {
          i++;
          while (i < n && source[i] !== '"' && source[i] !== "\n") i += source[i] === "\\" ? 2 : 1;
          i++;
        }
        continue;
      }
      if (c === "(") parens++;
      else if (c === ")") parens = Math.max(0, parens - 1);
      else if (parens === 0 && c === "{") {
        if (depth === 0 && !current && !inFragment) {
          current = { type: "query", name: null, start: i };
          operations.push(current);
        }
        expectName = false;
        depth++;
      } else if (parens === 0 && c === "}") {
        depth = Math.max(0, depth - 1);
        if (depth === 0) {
          if (current) current.end = i + 1;
          current = null;
          inFragment = false;
        }
      } else if (depth === 0 && parens === 0 && /[A-Za-z_]/.test(c)) {
        let j = i;
        while (j < n && /[A-Za-z0-9_]/.test(source[j])) j++;
        const word = source.slice(i, j);
        if (expectName) {
          current.name = word;
          expectName = false;
        } else if (!current && !inFragment) {
          if (word === "query" || word === "mutation" || word === "subscription") {
            current = { type: word, name: null, start: i };
            operations.push(current);
            expectName = true;
          } else if (word === "fragment") {
            inFragment = true;
          }
        }
        i = j;
        continue;
      } else if (c === "@" || c === "$") {
        expectName = false;
      }
      i++;
    }
    for (const op of operations) if (op.end === undefined) op.end = n;
    return operations;
  }

  function chosenOperation(source, caret) {
    const operations = operationsIn(source);
    if (operations.length <= 1) return operations[0] || { type: "query", name: null };
    // The operation under the cursor, else the last one that starts before it.
    const before = operations.filter((op) => op.start <= caret);
    return before.find((op) => caret <= op.end) || before[before.length - 1] || operations[0];
  }

  // ---- running -------------------------------------------------------------------------

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

  function run() {
    stopSubscription();
    if (running) running.abort();
    clearOutput();
    const query = queryBox.value;
    let variables;
    try {
      variables = readVariables();
    } catch (err) {
      setStatus(err.message, "bad");
      return;
    }
    const operation = chosenOperation(query, queryBox.selectionStart);
    const request = { query, variables };
    if (operation.name) request.operationName = operation.name;
    const label = operation.name ? `${operation.type} ${operation.name}` : `anonymous ${operation.type}`;
    const authorization = authorizationBox.value.trim();
    if (operation.type === "subscription") subscribe(request, label, authorization);
    else post(request, label, authorization);
  }

  async function post(request, label, authorization) {
    const controller = new AbortController();
    running = controller;
    const headers = {
      "Content-Type": "application/json",
      Accept: "application/graphql-response+json, application/json;q=0.9",
    };
    if (authorization) headers.Authorization = authorization;
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
      `${label}: HTTP ${response.status} ${response.statusText || ""}`.trimEnd() +
        ` in ${elapsed} ms` +
        (errors.length ? `, ${summary}` : ""),
      failed ? "bad" : "ok",
    );
    showErrors(errors);
    resultBox.textContent = body === null ? text : pretty(body);
  }

  function subscribe(request, label, authorization) {
    let acknowledged = false;
    let count = 0;
    const ws = new WebSocket(socketUrl, "graphql-transport-ws");
    socket = ws;
    stopButton.hidden = false;
    setStatus(`${label}: connecting to ${socketUrl}…`);
    const send = (message) => ws.send(JSON.stringify(message));
    ws.addEventListener("open", () => {
      send({ type: "connection_init", payload: authorization ? { Authorization: authorization } : {} });
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

  // ---- the schema at hand --------------------------------------------------------------

  const INTROSPECTION = `query ConsoleSchema {
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
  }
}
fragment TypeRef on __Type {
  kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } }
}`;

  let schema = null;
  let types = new Map();
  let trail = [];

  async function loadSchema() {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    const authorization = authorizationBox.value.trim();
    if (authorization) headers.Authorization = authorization;
    try {
      const response = await fetch(endpoint, {
        method: "POST",
        headers,
        body: JSON.stringify({ query: INTROSPECTION, operationName: "ConsoleSchema" }),
        credentials: "same-origin",
      });
      const body = await response.json().catch(() => null);
      if (!response.ok || !body || !body.data || !body.data.__schema) {
        const reason = body && Array.isArray(body.errors) && body.errors.length ? body.errors[0].message : `HTTP ${response.status}`;
        throw new Error(reason);
      }
      schema = body.data.__schema;
      types = new Map(schema.types.map((type) => [type.name, type]));
      trail = [];
      showHome();
      setStatus("Ready. Ctrl+Enter runs the operation at the cursor.");
    } catch (err) {
      docs.replaceChildren(
        element("p", "", `The schema could not be loaded (${err.message}). Set the Authorization header if the server needs one, then reload it.`),
        reloadButton(),
      );
      setStatus("Ready, without the schema.", "bad");
    }
  }

  function reloadButton() {
    const button = element("button", "", "Reload the schema");
    button.type = "button";
    button.addEventListener("click", loadSchema);
    return button;
  }

  function typeName(ref) {
    if (!ref) return "";
    if (ref.kind === "NON_NULL") return typeName(ref.ofType) + "!";
    if (ref.kind === "LIST") return "[" + typeName(ref.ofType) + "]";
    return ref.name;
  }

  function namedType(ref) {
    while (ref && ref.ofType) ref = ref.ofType;
    return ref && ref.name;
  }

  // A type reference as text with its named type as a link (enum values have none).
  function typeLink(ref) {
    if (!ref) return element("span");
    const text = typeName(ref);
    const name = namedType(ref);
    const span = element("span");
    const at = text.indexOf(name);
    span.append(text.slice(0, at));
    const link = element("button", "link", name);
    link.type = "button";
    link.addEventListener("click", () => openType(name));
    span.append(link, text.slice(at + name.length));
    return span;
  }

  function insertAtCursor(text) {
    const start = queryBox.selectionStart;
    const end = queryBox.selectionEnd;
    queryBox.setRangeText(text, start, end, "end");
    queryBox.focus();
    store(STORED_QUERY, queryBox.value);
  }

  function fieldItem(field, insertable) {
    const item = element("li");
    const name = element("button", "link field", field.name);
    name.type = "button";
    if (insertable) {
      name.title = `Insert ${field.name} at the cursor`;
      name.addEventListener("click", () => insertAtCursor(field.name));
    } else {
      name.disabled = true;
    }
    item.append(name);
    if (field.args && field.args.length) {
      item.append("(");
      field.args.forEach((arg, index) => {
        if (index) item.append(", ");
        item.append(`${arg.name}: `, typeLink(arg.type));
        if (arg.defaultValue !== null && arg.defaultValue !== undefined) item.append(` = ${arg.defaultValue}`);
      });
      item.append(")");
    }
    if (field.type) item.append(": ", typeLink(field.type));
    if (field.isDeprecated) item.append(element("span", "where", `deprecated: ${field.deprecationReason || ""}`));
    if (field.description) item.append(element("p", "", field.description));
    return item;
  }

  function showTrail() {
    docsTrail.replaceChildren();
    const home = element("button", "link", "Schema");
    home.type = "button";
    home.addEventListener("click", () => {
      trail = [];
      showHome();
    });
    docsTrail.append(home);
    trail.forEach((name, index) => {
      docsTrail.append(" › ");
      const link = element("button", "link", name);
      link.type = "button";
      link.addEventListener("click", () => {
        trail = trail.slice(0, index);
        openType(name);
      });
      docsTrail.append(link);
    });
  }

  function showHome() {
    showTrail();
    const parts = [];
    for (const [label, root] of [
      ["Queries", schema.queryType],
      ["Mutations", schema.mutationType],
      ["Subscriptions", schema.subscriptionType],
    ]) {
      const type = root && types.get(root.name);
      if (!type) continue;
      parts.push(element("h3", "", label));
      const list = element("ul");
      for (const field of type.fields || []) list.append(fieldItem(field, true));
      parts.push(list);
    }
    parts.push(element("h3", "", "Types"));
    const list = element("ul");
    for (const type of schema.types) {
      if (type.name.startsWith("__")) continue;
      const item = element("li");
      const link = element("button", "link", type.name);
      link.type = "button";
      link.addEventListener("click", () => openType(type.name));
      item.append(link, element("span", "where", type.kind.toLowerCase().replace("_", " ")));
      list.append(item);
    }
    parts.push(list);
    docs.replaceChildren(...parts);
  }

  function openType(name) {
    const type = types.get(name);
    if (!type) return;
    if (trail[trail.length - 1] !== name) trail.push(name);
    showTrail();
    const parts = [element("h2", "", `${type.name}`)];
    parts.push(element("p", "", type.description || type.kind.toLowerCase().replace("_", " ")));
    if (type.fields && type.fields.length) {
      parts.push(element("h3", "", "Fields"));
      const list = element("ul");
      for (const field of type.fields) list.append(fieldItem(field, true));
      parts.push(list);
    }
    if (type.inputFields && type.inputFields.length) {
      parts.push(element("h3", "", "Input fields"));
      const list = element("ul");
      for (const field of type.inputFields) list.append(fieldItem(field, true));
      parts.push(list);
    }
    if (type.enumValues && type.enumValues.length) {
      parts.push(element("h3", "", "Values"));
      const list = element("ul");
      for (const value of type.enumValues) list.append(fieldItem({ ...value, type: null }, true));
      parts.push(list);
    }
    docs.replaceChildren(...parts);
  }

  function search(text) {
    const needle = text.trim().toLowerCase();
    if (!schema) return;
    if (!needle) {
      if (trail.length) openType(trail[trail.length - 1]);
      else showHome();
      return;
    }
    const list = element("ul");
    for (const type of schema.types) {
      if (type.name.startsWith("__")) continue;
      if (type.name.toLowerCase().includes(needle)) {
        const item = element("li");
        const link = element("button", "link", type.name);
        link.type = "button";
        link.addEventListener("click", () => openType(type.name));
        item.append(link);
        list.append(item);
      }
      for (const field of [...(type.fields || []), ...(type.inputFields || [])]) {
        if (!field.name.toLowerCase().includes(needle)) continue;
        const item = fieldItem(field, true);
        const owner = element("button", "link", `${type.name}.`);
        owner.type = "button";
        owner.addEventListener("click", () => openType(type.name));
        item.prepend(owner);
        list.append(item);
      }
    }
    docs.replaceChildren(list.childElementCount ? list : element("p", "", `Nothing in the schema matches “${text.trim()}”.`));
  }

  // ---- wiring --------------------------------------------------------------------------

  queryBox.value = stored(STORED_QUERY) || WELCOME;
  variablesBox.value = stored(STORED_VARIABLES) || "";
  // Setting a value puts the caret at the end; the first operation is the natural default.
  queryBox.setSelectionRange(0, 0);
  queryBox.addEventListener("input", () => store(STORED_QUERY, queryBox.value));
  variablesBox.addEventListener("input", () => store(STORED_VARIABLES, variablesBox.value));
  $("run").addEventListener("click", run);
  stopButton.addEventListener("click", () => stopSubscription("Stopped."));
  docsSearch.addEventListener("input", () => search(docsSearch.value));
  authorizationBox.addEventListener("change", () => {
    if (!schema) loadSchema();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      run();
    }
  });
  // Two spaces for Tab in the editors; Escape first lets Tab move focus on as usual.
  let tabMovesFocus = false;
  for (const box of [queryBox, variablesBox]) {
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
})();
