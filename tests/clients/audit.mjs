// graphql-http's server audit (GraphQL over HTTP conformance) against the Roster at argv[2].
// Fails on any MUST ("error") or SHOULD ("warn") failure; prints the MAYs not taken.
import { auditServer } from "graphql-http";

const url = `${process.argv[2]}/graphql`;
const results = await auditServer({ url });
const failed = results.filter((r) => r.status === "error" || r.status === "warn");
const notices = results.filter((r) => r.status === "notice");
const passed = results.filter((r) => r.status === "ok");

for (const r of notices) console.log(`MAY not taken: ${r.id} ${r.name}: ${r.reason}`);
for (const r of failed) {
  let body = "";
  try {
    body = await r.response.text();
  } catch {}
  console.log(`FAILED ${r.status === "error" ? "MUST" : "SHOULD"}: ${r.id} ${r.name}: ${r.reason}`);
  console.log(`  answered ${r.response.status} ${r.response.headers.get("content-type")}: ${body.slice(0, 300)}`);
}
console.log(`graphql-http audit: ${passed.length} passed, ${failed.length} failed, ${notices.length} MAY not taken`);
process.exit(failed.length === 0 ? 0 : 1);
