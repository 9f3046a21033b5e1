// The request headers: the Authorization box and any others as a JSON object, sent with
// every POST and in the WebSocket's connection_init.

/** The headers to send, or a thrown Error saying what is wrong with the JSON. */
export function readHeaders(authorizationBox, headersBox) {
  const headers = {};
  const text = headersBox.value.trim();
  if (text) {
    let value;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new Error(`Headers are not valid JSON: ${err.message}`);
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new Error('Headers must be a JSON object, such as {"X-Request-Id": "…"}.');
    }
    for (const [name, given] of Object.entries(value)) {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new Error(`"${name}" is not a header name.`);
      if (typeof given !== "string" && typeof given !== "number") throw new Error(`The header ${name} must be a string.`);
      headers[name] = String(given);
    }
  }
  const authorization = authorizationBox.value.trim();
  if (authorization) {
    for (const name of Object.keys(headers)) if (name.toLowerCase() === "authorization") delete headers[name];
    headers.Authorization = authorization;
  }
  return headers;
}
