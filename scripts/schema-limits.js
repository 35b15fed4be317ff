#!/usr/bin/env node
// Writes resources/schema-limits.js: the enums, numeric limits and string rules of the request
// schemas in lib/protocol, for the editor dialogs to check against, so the editor and the runtime
// cannot drift apart. Run by the build after tsc (it reads the compiled schemas in dist/);
// test/unit/schema-limits.spec.ts fails when the committed file is not what this writes.
//
// Each field's rules come from zod's JSON Schema of it; each rule's message comes from the zod
// schema itself, by parsing a value that breaks that rule, so the editor says what the runtime says.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const OUTPUT = path.join(root, "resources", "schema-limits.js");

/** The request schemas the edit dialogs fill in, by the name the editor uses. */
function requests(protocol) {
  return {
    order: protocol.OrderRequest,
    modify: protocol.ModifyRequest,
    cancel: protocol.CancelRequest,
    gtt: protocol.GttSingleRequest,
    gttOrder: protocol.GttOrder,
    gttRef: protocol.GttRef,
  };
}

function enums(protocol) {
  const names = [
    "Exchange",
    "Side",
    "OrderType",
    "Product",
    "Validity",
    "Variety",
    "OrderStatus",
    "OrderEventType",
    "GttEventType",
  ];
  return Object.fromEntries(names.map((name) => [name, [...protocol[name].options]]));
}

/** The first message zod gives for `value`, or undefined when the value passes. */
function messageFor(schema, value) {
  const result = schema.safeParse(value);
  return result.success ? undefined : result.error.issues[0]?.message;
}

const RULE_KEYS = [
  "type",
  "enum",
  "exclusiveMinimum",
  "minimum",
  "maximum",
  "minLength",
  "maxLength",
  "pattern",
];

/** One field: the JSON Schema keywords the editor checks, and zod's message for breaking each. */
function fieldRules(z, schema) {
  const json = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
  const rules = {};
  for (const key of RULE_KEYS) if (json[key] !== undefined) rules[key] = json[key];
  if (json.const !== undefined) rules.enum = [json.const];
  const probes = {};
  if (rules.type === "number" || rules.type === "integer") {
    probes.type = "not a number";
    if (rules.type === "integer") probes.integer = 1.5;
    if (rules.exclusiveMinimum !== undefined) probes.exclusiveMinimum = rules.exclusiveMinimum;
    if (rules.minimum !== undefined) probes.minimum = rules.minimum - 1;
    if (rules.maximum !== undefined) probes.maximum = rules.maximum * 2 + 2;
  } else if (rules.type === "string") {
    if (rules.enum !== undefined) probes.enum = "\u0000";
    if (rules.minLength !== undefined) probes.minLength = "";
    if (rules.maxLength !== undefined) probes.maxLength = "A".repeat(rules.maxLength + 1);
    if (rules.pattern !== undefined) probes.pattern = "\u0000";
  }
  // The editor trims only where zod does (Symbol trims, Tag does not): " A " comes back as "A".
  if (rules.type === "string" && rules.enum === undefined) {
    const padded = schema.safeParse(" A ");
    rules.trim = padded.success && padded.data === "A";
  }
  const messages = {};
  for (const [rule, value] of Object.entries(probes)) {
    const message = messageFor(schema, value);
    if (message === undefined) throw new Error(`schema-limits: a ${rule} probe passed the schema`);
    messages[rule] = message;
  }
  return { ...rules, messages };
}

/** The object schema behind optional/default wrappers and refinements. */
function shapeOf(schema) {
  let current = schema;
  while (current.shape === undefined && current._zod?.def?.innerType !== undefined) {
    current = current._zod.def.innerType;
  }
  if (current.shape === undefined) throw new Error("schema-limits: not an object schema");
  return current.shape;
}

/**
 * Broker settings the broker-config dialog checks against their zod rules, by the name the editor
 * uses: the compiled settings schemas beside the compiled lib/protocol.
 */
function settings() {
  const { KiteSettings } = require(path.join(root, "dist", "lib", "brokers", "kite-settings"));
  return { kiteSettings: { startup_budget_ms: KiteSettings.shape.startup_budget_ms } };
}

function limits(z, protocol) {
  const fields = {};
  for (const [name, schema] of Object.entries(requests(protocol))) {
    fields[name] = {};
    for (const [field, fieldSchema] of Object.entries(shapeOf(schema))) {
      if (field === "type") continue;
      fields[name][field] = fieldRules(z, fieldSchema);
    }
  }
  for (const [name, shape] of Object.entries(settings())) {
    fields[name] = {};
    for (const [field, fieldSchema] of Object.entries(shape))
      fields[name][field] = fieldRules(z, fieldSchema);
  }
  return { enums: enums(protocol), fields };
}

/**
 * The file's text for the given zod and compiled lib/protocol, formatted as `npm run lint` wants
 * it (the spec passes its own zod and protocol).
 */
async function render(z, protocol) {
  const prettier = require("prettier");
  const text = [
    "// Generated by scripts/schema-limits.js from the zod schemas in lib/protocol: do not edit.",
    "// The editor's copy of the request rules (see resources/editor.js, which reads it).",
    `window.TradingBrokerSchema = ${JSON.stringify(limits(z, protocol))};`,
    "",
  ].join("\n");
  const options = (await prettier.resolveConfig(OUTPUT)) ?? {};
  return prettier.format(text, { ...options, filepath: OUTPUT });
}

module.exports = { OUTPUT, render };

async function main() {
  const text = await render(require("zod").z, require(path.join(root, "dist", "lib", "protocol")));
  const current = fs.existsSync(OUTPUT) ? fs.readFileSync(OUTPUT, "utf8") : undefined;
  if (current !== text) {
    fs.mkdirSync(path.dirname(OUTPUT), { recursive: true });
    fs.writeFileSync(OUTPUT, text);
  }
  console.log(`schema-limits: ${path.relative(root, OUTPUT)} ${current === text ? "up to date" : "written"}`);
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
