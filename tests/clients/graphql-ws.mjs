// graphql-ws (the graphql-transport-ws protocol) against the Roster at argv[2]: a
// subscription receives the event of a user created over HTTP while it is open.
import assert from "node:assert/strict";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const base = process.argv[2];
const client = createClient({
  url: `${base.replace(/^http/, "ws")}/graphql`,
  webSocketImpl: WebSocket,
  retryAttempts: 0,
});

const events = [];
let failure = null;
const done = new Promise((resolve) => {
  client.subscribe(
    { query: "subscription { userEvents(kinds: [CREATED]) { kind user { name email } } }" },
    {
      next: (message) => {
        events.push(message);
        resolve();
      },
      error: (err) => {
        failure = err;
        resolve();
      },
      complete: resolve,
    },
  );
});

// The server has the subscription once it has read the subscribe message; until the first
// event arrives, create a user every 200 ms (bounded), so no sleep has to guess how long that takes.
const create = (n) =>
  fetch(`${base}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      query: "mutation($u: UserInput!) { createUser(userData: $u) { ok } }",
      variables: { u: { name: `Sub ${n}`, email: `sub${n}@x.com` } },
    }),
  });
for (let n = 0; events.length === 0 && failure === null && n < 50; n++) {
  await create(n);
  await Promise.race([done, new Promise((r) => setTimeout(r, 200))]);
}
await client.dispose();

assert.equal(failure, null, `the subscription failed: ${JSON.stringify(failure)}`);
assert.ok(events.length > 0, "no event arrived");
const event = events[0].data.userEvents;
assert.equal(event.kind, "CREATED");
assert.match(event.user.name, /^Sub \d+$/);
console.log(`ok: a subscription received ${JSON.stringify(event)}`);
console.log("graphql-ws: 1 passed, 0 failed");
