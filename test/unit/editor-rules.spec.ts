// The edit dialogs check field values with resources/editor.js against resources/schema-limits.js,
// which scripts/schema-limits.js generates from the zod schemas. These specs run both browser files
// in a sandbox and hold the editor to the runtime: the generated file is current, and for any text
// typed into a field the dialog and the schema agree on valid or not, with the same message.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";
import fc from "fast-check";
import type { ZodType } from "zod";
import { z } from "zod";
import * as protocol from "../../lib/protocol";
import { numericOrAsIs } from "../../nodes/shared/coerce";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const RESOURCES = path.join(ROOT, "resources");

// scripts/ is plain JavaScript outside the TypeScript build: required from the source tree.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const generator = require(path.join(ROOT, "scripts", "schema-limits.js")) as {
  OUTPUT: string;
  render(zod: typeof z, schemas: typeof protocol): Promise<string>;
};

interface FieldRules {
  type: string;
  enum?: string[];
  messages: Record<string, string>;
}

interface EditorApi {
  checkField(request: string, field: string, value: string, type: string): true | string;
  enumOf(name: string): string[];
  EVALUATED: string[];
}

interface Sandbox {
  window: Sandbox;
  TradingBrokerEditor?: EditorApi;
  TradingBrokerSchema?: {
    fields: Record<string, Record<string, FieldRules>>;
    enums: Record<string, string[]>;
  };
}

/** Both files as the editor loads them, in either order: Node-RED does not fix one. */
function loadEditor(order: "schema-first" | "editor-first"): Sandbox {
  const sandbox = {} as Sandbox;
  sandbox.window = sandbox;
  // The page around the script: editor.js binds one delegated click handler through jQuery at load.
  Object.assign(sandbox, { document: {}, $: () => ({ on: () => undefined }) });
  vm.createContext(sandbox);
  const files = ["schema-limits.js", "editor.js"];
  if (order === "editor-first") files.reverse();
  for (const file of files) {
    vm.runInContext(fs.readFileSync(path.join(RESOURCES, file), "utf8"), sandbox, { filename: file });
  }
  return sandbox;
}

/** The zod schema of one request field, as the generator names them. */
const REQUESTS: Record<string, { shape: Record<string, ZodType> }> = {
  order: protocol.OrderRequest,
  modify: protocol.ModifyRequest,
  cancel: protocol.CancelRequest,
  gtt: protocol.GttSingleRequest,
  gttOrder: protocol.GttOrder,
  gttRef: protocol.GttRef,
};

/** What the runtime hands the schema for text typed into the dialog with TypedInput `type`. */
function runtimeValue(text: string, type: string, numeric: boolean): unknown {
  if (!numeric) return text;
  return type === "num" ? Number(text) : numericOrAsIs(text);
}

function runtimeVerdict(schema: ZodType, value: unknown): true | string {
  const result = schema.safeParse(value);
  return result.success ? true : (result.error.issues[0]?.message ?? "invalid");
}

const interesting = fc.constantFrom(
  "0",
  "1",
  "1.5",
  "-1",
  "1e3",
  "1e999",
  "0x10",
  " 7 ",
  "10000000",
  "10000001",
  "1000000000000",
  "1000000000001",
  "abc",
  " INFY ",
  "BSE:INFY",
  "a".repeat(64),
  "a".repeat(65),
  "abcdefghij0123456789",
  "abcdefghij0123456789x",
  "tag with space",
  "NSE",
  "nse",
  "LIMIT",
  "SL-M",
  "BUY",
  "IOC",
  "CNC",
);
const text = fc.oneof(
  interesting,
  fc.string({ maxLength: 80 }),
  fc.integer({ min: -5, max: 20_000_000 }).map(String),
  fc.double({ noNaN: true }).map(String),
  fc.stringMatching(/^[A-Za-z0-9&_.:-]{1,70}$/),
);

describe("editor rules (resources/editor.js, resources/schema-limits.js)", function () {
  it("schema-limits.js is what scripts/schema-limits.js writes from the current schemas", async function () {
    const expected = await generator.render(z, protocol);
    const actual = fs.readFileSync(generator.OUTPUT, "utf8");
    assert.equal(actual, expected, "run `npm run build` (it regenerates resources/schema-limits.js)");
  });

  it("carries every enum the schemas define, and loads in either order", function () {
    for (const order of ["schema-first", "editor-first"] as const) {
      const editor = loadEditor(order).TradingBrokerEditor!;
      assert.deepEqual([...editor.enumOf("Exchange")], [...protocol.Exchange.options]);
      assert.deepEqual([...editor.enumOf("OrderType")], [...protocol.OrderType.options]);
      assert.deepEqual([...editor.enumOf("OrderStatus")], [...protocol.OrderStatus.options]);
      assert.deepEqual([...editor.enumOf("OrderEventType")], [...protocol.OrderEventType.options]);
      assert.deepEqual([...editor.enumOf("GttEventType")], [...protocol.GttEventType.options]);
    }
  });

  it("defines its API once however often the node html loads it", function () {
    const sandbox = loadEditor("schema-first");
    const first = sandbox.TradingBrokerEditor;
    vm.runInContext(fs.readFileSync(path.join(RESOURCES, "editor.js"), "utf8"), sandbox);
    assert.equal(sandbox.TradingBrokerEditor, first);
  });

  it("modify-order's quantity gets the whole-number check place-order's has", function () {
    const editor = loadEditor("schema-first").TradingBrokerEditor!;
    for (const request of ["order", "modify"]) {
      assert.equal(editor.checkField(request, "quantity", "1.5", "num"), "quantity: must be a whole number");
      assert.equal(editor.checkField(request, "quantity", "0", "num"), "quantity: must be greater than 0");
      assert.equal(editor.checkField(request, "quantity", "2", "num"), true);
      assert.equal(editor.checkField(request, "quantity", "qty", "msg"), true, "evaluated at run time");
    }
  });

  it("agrees with the zod schema on every field, for any text typed, with the runtime's message", function () {
    const sandbox = loadEditor("editor-first");
    const editor = sandbox.TradingBrokerEditor!;
    const fields = sandbox.TradingBrokerSchema!.fields;
    let compared = 0;
    for (const [request, schema] of Object.entries(REQUESTS)) {
      for (const [field, rules] of Object.entries(fields[request]!)) {
        const numeric = rules.type === "number" || rules.type === "integer";
        if (!numeric && rules.type !== "string") continue; // trigger_values, orders: JSON, checked at run time
        const fieldSchema = schema.shape[field]!;
        const types = numeric ? ["num", "str"] : ["str", "option"];
        fc.assert(
          fc.property(text, fc.constantFrom(...types), (typed, type) => {
            fc.pre(typed.trim() !== ""); // blank: not set, the payload or the default decides
            const runtime = runtimeVerdict(fieldSchema, runtimeValue(typed, type, numeric));
            const dialog = editor.checkField(request, field, typed, type);
            assert.equal(
              dialog,
              runtime === true ? true : `${field}: ${runtime}`,
              `${request}.${field} = ${JSON.stringify(typed)} (${type})`,
            );
            compared++;
          }),
          { numRuns: 300 },
        );
      }
    }
    assert.ok(compared > 3000, `compared ${compared} values`);
  });
});
