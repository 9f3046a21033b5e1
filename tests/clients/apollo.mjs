// Apollo Client (core, no React) against the Roster at argv[2]: a query over POST, a query
// over GET (useGETForQueries), a BatchHttpLink batch, and automatic persisted queries with
// PersistedQueryLink. Every request is recorded, so each check also asserts what went over
// the wire, not only what came back.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { BatchHttpLink } from "@apollo/client/link/batch-http";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";

const uri = `${process.argv[2]}/graphql`;

/** A fetch that records each request's method, URL, parsed body and answer status. */
function recorder() {
  const sent = [];
  const fetchFn = async (input, init = {}) => {
    const response = await fetch(input, init);
    sent.push({
      method: (init.method || "GET").toUpperCase(),
      url: String(input),
      body: init.body ? JSON.parse(init.body) : undefined,
      status: response.status,
    });
    return response;
  };
  return { sent, fetchFn };
}

const client = (link) => new ApolloClient({ link, cache: new InMemoryCache() });

const USERS = gql`
  query Users($limit: Int) {
    allUsers(limit: $limit) {
      id
      name
    }
  }
`;
const CREATE = gql`
  mutation Create($name: String!, $email: String!) {
    createUser(userData: { name: $name, email: $email }) {
      ok
      user {
        id
        name
      }
    }
  }
`;
const BY_ID = gql`
  query ById($id: ID!) {
    userById(id: $id) {
      name
    }
  }
`;

async function postQuery() {
  const { sent, fetchFn } = recorder();
  const apollo = client(new HttpLink({ uri, fetch: fetchFn }));
  const { data } = await apollo.query({ query: USERS, variables: { limit: 10 } });
  assert.deepEqual(data.allUsers.map((u) => u.name), ["Ann", "Bob"]);
  assert.equal(sent.length, 1);
  assert.equal(sent[0].method, "POST");
  const created = await apollo.mutate({ mutation: CREATE, variables: { name: "Cy", email: "cy@x.com" } });
  assert.equal(created.data.createUser.ok, true);
  console.log("ok: a query and a mutation over POST");
}

async function getQuery() {
  const { sent, fetchFn } = recorder();
  const apollo = client(new HttpLink({ uri, fetch: fetchFn, useGETForQueries: true }));
  const { data } = await apollo.query({ query: USERS, variables: { limit: 1 } });
  assert.deepEqual(data.allUsers.map((u) => u.name), ["Ann"]);
  assert.equal(sent[0].method, "GET");
  assert.match(sent[0].url, /\?query=/);
  assert.match(decodeURIComponent(sent[0].url), /"limit":1/);
  // Mutations still go over POST with useGETForQueries.
  const created = await apollo.mutate({ mutation: CREATE, variables: { name: "Di", email: "di@x.com" } });
  assert.equal(created.data.createUser.ok, true);
  assert.equal(sent.at(-1).method, "POST");
  console.log("ok: a query over GET (useGETForQueries), its mutation over POST");
}

async function batch() {
  const { sent, fetchFn } = recorder();
  const apollo = client(new BatchHttpLink({ uri, fetch: fetchFn, batchMax: 10, batchInterval: 50 }));
  const created = await apollo.mutate({ mutation: CREATE, variables: { name: "Ed", email: "ed@x.com" } });
  const id = created.data.createUser.user.id;
  sent.length = 0;
  const [users, one, two] = await Promise.all([
    apollo.query({ query: USERS, variables: { limit: 2 } }),
    apollo.query({ query: BY_ID, variables: { id } }),
    apollo.query({ query: BY_ID, variables: { id: "no-such-id" } }),
  ]);
  assert.equal(sent.length, 1, "one HTTP request for the three queries");
  assert.ok(Array.isArray(sent[0].body) && sent[0].body.length === 3, JSON.stringify(sent[0].body));
  assert.deepEqual(users.data.allUsers.map((u) => u.name), ["Ann", "Bob"]);
  assert.equal(one.data.userById.name, "Ed");
  assert.equal(two.data.userById, null);
  console.log("ok: three queries in one BatchHttpLink batch, answered in order");
}

async function persisted() {
  const sha256 = (text) => createHash("sha256").update(text).digest("hex");
  const link = (fetchFn, options = {}) =>
    ApolloLink.from([new PersistedQueryLink({ sha256, ...options }), new HttpLink({ uri, fetch: fetchFn })]);

  const first = recorder();
  const { data } = await client(link(first.fetchFn)).query({ query: USERS, variables: { limit: 2 } });
  assert.deepEqual(data.allUsers.map((u) => u.name), ["Ann", "Bob"]);
  assert.equal(first.sent.length, 2, "the hash alone, then the query with it");
  assert.equal(first.sent[0].body.query, undefined);
  assert.ok(first.sent[0].body.extensions.persistedQuery.sha256Hash);
  assert.equal(typeof first.sent[1].body.query, "string");

  // A new client (no state of its own) now gets the answer from the hash alone.
  const second = recorder();
  const again = await client(link(second.fetchFn)).query({ query: USERS, variables: { limit: 2 } });
  assert.deepEqual(again.data.allUsers.map((u) => u.name), ["Ann", "Bob"]);
  assert.equal(second.sent.length, 1, JSON.stringify(second.sent));
  assert.equal(second.sent[0].body.query, undefined);

  // And over GET with useGETForHashedQueries.
  const third = recorder();
  const viaGet = await client(link(third.fetchFn, { useGETForHashedQueries: true })).query({
    query: USERS,
    variables: { limit: 2 },
  });
  assert.equal(viaGet.data.allUsers.length, 2);
  assert.equal(third.sent.length, 1, JSON.stringify(third.sent));
  assert.equal(third.sent[0].method, "GET");
  assert.doesNotMatch(third.sent[0].url, /[?&]query=/);
  console.log("ok: automatic persisted queries: registered once, then by hash over POST and GET");
}

await postQuery();
await getQuery();
await batch();
await persisted();
console.log("apollo: 4 passed, 0 failed");
