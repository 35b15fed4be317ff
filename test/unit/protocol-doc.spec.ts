import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import type { z } from "zod";
import {
  ERROR_CODES,
  MAX_TRADES_PER_EVENT,
  OrderEvent,
  REQUEST_SCHEMAS,
  REQUEST_TYPES,
  Trade,
} from "../../lib/protocol";
import {
  AnsweredEvent,
  ErrorMessage,
  EventDeltaMessage,
  EventMessage,
  QuoteMessage,
  ResultMessage,
  SessionOptions,
} from "../../lib/protocol/wire";

/** docs/PROTOCOL.md and lib/protocol/wire.ts describe one protocol: these tests keep them in step. */
const doc = fs.readFileSync(path.join(__dirname, "..", "..", "..", "docs", "PROTOCOL.md"), "utf8");

/** The field names of the table under `#### TYPE`. */
function documentedFields(type: string): string[] {
  const start = doc.indexOf(`\n#### ${type}\n`);
  assert.ok(start >= 0, `docs/PROTOCOL.md has a section for ${type}`);
  const rest = doc.slice(start + 1);
  const next = rest.search(/\n#{2,4} /);
  const section = next < 0 ? rest : rest.slice(0, next);
  return Array.from(section.matchAll(/^\|\s*([a-z_]+)\s*\|/gm), (m) => m[1] as string).filter(
    (f) => f !== "field",
  );
}

/** The keys a schema accepts: an object's shape, or the union of its options' shapes. */
function schemaFields(schema: z.ZodType): string[] {
  const def = (
    schema as unknown as { def: { type: string; options?: z.ZodType[]; shape?: Record<string, unknown> } }
  ).def;
  if (def.type === "union") return Array.from(new Set((def.options ?? []).flatMap(schemaFields)));
  assert.ok(def.shape !== undefined, `schema of type ${def.type} has a shape`);
  return Object.keys(def.shape);
}

describe("docs/PROTOCOL.md matches lib/protocol/wire.ts", function () {
  for (const type of REQUEST_TYPES) {
    it(`documents ${type} with exactly the schema's fields`, function () {
      assert.deepEqual(documentedFields(type).sort(), schemaFields(REQUEST_SCHEMAS[type]).sort());
    });
  }

  const pushes: [string, z.ZodType][] = [
    ["RESULT", ResultMessage],
    ["ERROR", ErrorMessage],
    ["EVENT", EventMessage],
    ["QUOTE", QuoteMessage],
    ["EVENT_DELTA", EventDeltaMessage],
  ];
  for (const [type, schema] of pushes) {
    it(`documents ${type} with exactly the schema's fields`, function () {
      assert.deepEqual(documentedFields(type).sort(), schemaFields(schema).sort());
    });
  }

  it("names every field of an EVENT_DELTA's event, and the AUTH options", function () {
    const start = doc.indexOf("\n#### EVENT_DELTA\n");
    const section = doc.slice(start, doc.indexOf("\n#### ", start + 1));
    const list = section.slice(section.indexOf("The `event` object has:"));
    const named = Array.from(list.matchAll(/^- (.*?):/gm), (m) => m[1] ?? "").join(" ");
    const fields = Array.from(named.matchAll(/`([a-z_]+)`/g), (m) => m[1]);
    assert.deepEqual(fields.sort(), schemaFields(EventDeltaMessage.shape.event).sort());
    const v11 = doc.slice(doc.indexOf("## 8. Version 1.1"));
    for (const option of schemaFields(SessionOptions)) assert.ok(v11.includes(`options.${option}`), option);
  });

  it("names every field of an answered event (section 8)", function () {
    const v11 = doc.slice(doc.indexOf("## 8. Version 1.1"));
    const list = v11.slice(v11.indexOf("- Each entry of `events` has:"));
    const items = list.slice(0, list.indexOf("\n\n"));
    const named = Array.from(items.matchAll(/^ {2}- (.*?):/gm), (m) => m[1] ?? "").join(" ");
    const fields = Array.from(named.matchAll(/`([a-z_]+)`/g), (m) => m[1]);
    assert.deepEqual(fields.sort(), schemaFields(AnsweredEvent).sort());
  });

  it("documents no message type the schemas lack", function () {
    const documented = Array.from(doc.matchAll(/^#### ([A-Z_]+)$/gm), (m) => m[1]);
    assert.deepEqual(documented.sort(), [...REQUEST_TYPES, ...pushes.map(([t]) => t)].sort());
  });

  it("documents the order event's and the trade's fields exactly (section 2.3)", function () {
    const start = doc.indexOf("\n### 2.3 ");
    assert.ok(start >= 0, "docs/PROTOCOL.md has section 2.3");
    const section = doc.slice(start, doc.indexOf("\n## 3.", start));
    // The tables of the section, in order: the order event's, then the trade's.
    const tables = section
      .split("\n\n")
      .filter((block) => block.startsWith("|"))
      .map((table) =>
        Array.from(table.matchAll(/^\|\s*([a-z_]+)\s*\|/gm), (m) => m[1] as string).filter(
          (f) => f !== "field",
        ),
      );
    assert.equal(tables.length, 2);
    assert.deepEqual(tables[0]!.sort(), schemaFields(OrderEvent).sort());
    assert.deepEqual(tables[1]!.sort(), schemaFields(Trade).sort());
    assert.match(section, new RegExp(`optional, 1–${MAX_TRADES_PER_EVENT};`));
  });

  it("lists every error code, and only those", function () {
    const start = doc.indexOf("## 3. Error codes");
    const section = doc.slice(start, doc.indexOf("## 4.", start));
    const listed = Array.from(section.matchAll(/^\|\s*([A-Z_]+)\s*\|/gm), (m) => m[1]);
    assert.deepEqual(listed.sort(), [...ERROR_CODES].sort());
  });
});
