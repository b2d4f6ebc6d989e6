// Generates src/client/protocol.gen.ts from the gateway's published JSON Schema
// (docs/protocol.schema.json, itself generated from the server's pydantic models).
//   npm run gen:types            write the file
//   npm run gen:types -- --check exit 1 if the committed file is stale
// test/unit/protocol-types.test.ts runs the same comparison, so drift fails `make test`.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { renderProtocolTypes } from "./protocol-types.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const schemaPath = resolve(here, "../../docs/protocol.schema.json");
const outPath = resolve(here, "../src/client/protocol.gen.ts");

const rendered = await renderProtocolTypes(JSON.parse(readFileSync(schemaPath, "utf8")));
if (process.argv.includes("--check")) {
  const current = readFileSync(outPath, "utf8");
  if (current !== rendered) {
    console.error("src/client/protocol.gen.ts is stale: run `make schema` (or `npm run gen:types`)");
    process.exit(1);
  }
} else {
  writeFileSync(outPath, rendered);
  console.log(`wrote ${outPath}`);
}
