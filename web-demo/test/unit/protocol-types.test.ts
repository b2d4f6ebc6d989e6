// The client's types come from the gateway's published schema: this fails when
// docs/protocol.schema.json changes and src/client/protocol.gen.ts was not regenerated
// (`make schema`), and when the schema gains a server frame the client does not handle.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { expect, test } from "vitest";
import { renderProtocolTypes } from "../../scripts/protocol-types.mjs";
import { HANDLED_SERVER_TYPES } from "../../src/client";
import { webDemoDir } from "../support/gateway";

const schema = JSON.parse(readFileSync(resolve(webDemoDir, "../docs/protocol.schema.json"), "utf8"));

function frameTypes(union: string): string[] {
  const refs: { $ref: string }[] = schema.$defs[union].oneOf ?? schema.$defs[union].anyOf;
  return refs.map((r) => schema.$defs[r.$ref.split("/").pop()!].properties.type.const as string);
}

test("src/client/protocol.gen.ts is generated from the current docs/protocol.schema.json", async () => {
  const committed = readFileSync(resolve(webDemoDir, "src/client/protocol.gen.ts"), "utf8");
  const fresh: string = await renderProtocolTypes(schema);
  expect(committed, "stale: run `make schema` (or `npm run gen:types` in web-demo/)").toBe(fresh);
});

test("the client handles every server frame type the schema publishes", () => {
  const published = frameTypes("ServerMessage");
  expect(published.length).toBeGreaterThan(5);
  expect(published.filter((t) => !HANDLED_SERVER_TYPES.has(t))).toEqual([]);
});

test("the client sends only frame types the schema accepts", () => {
  const accepted = new Set(frameTypes("ClientMessage"));
  for (const sent of ["response.create", "response.cancel", "response.resume", "ping"]) {
    expect(accepted.has(sent), sent).toBe(true);
  }
});
