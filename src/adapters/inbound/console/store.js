// localStorage, quietly: storage may be off (private windows, policies) and the console
// works without it, forgetting on reload.

export function save(key, value) {
  try {
    localStorage.setItem(key, typeof value === "string" ? value : JSON.stringify(value));
  } catch (_) {
    // Not kept; nothing else to do.
  }
}

export function load(key) {
  try {
    return localStorage.getItem(key);
  } catch (_) {
    return null;
  }
}

export function loadJson(key, fallback) {
  const text = load(key);
  if (text === null) return fallback;
  try {
    return JSON.parse(text);
  } catch (_) {
    return fallback;
  }
}

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function button(className, text, onClick) {
  const node = element("button", className, text);
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
}
