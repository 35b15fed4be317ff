// Each node's editor script run as the editor runs it (resources/*.js first, then the node html's
// inline script), against a stand-in for RED and jQuery that records what it registers: every
// dialog gets the pack's shared parts from TradingBrokerEditor.registerNode, and keeps its own.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const NODES = path.join(ROOT, "nodes");

interface Definition {
  category: string;
  color: string;
  defaults: Record<string, { value: unknown; type?: string; required?: boolean; validate?: unknown }>;
  inputs: number;
  outputs: number;
  icon: string;
  paletteLabel: () => string;
  label(this: Record<string, unknown>): string;
  inputLabels?: () => string;
  outputLabels?: () => string;
  oneditprepare?: () => void;
}

/** Runs the resources and one node html's inline scripts; what they registered, by type. */
function register(dir: string): Map<string, Definition> {
  const registered = new Map<string, Definition>();
  const jquery = Object.assign(() => ({ on: () => undefined }), {
    // jQuery's shallow extend: later objects win, undefined ones are skipped.
    extend: (target: object, ...sources: (object | undefined)[]): object => {
      for (const source of sources) Object.assign(target, source);
      return target;
    },
  });
  const sandbox: Record<string, unknown> = {
    document: {},
    $: jquery,
    RED: {
      // The catalogue key itself, so a label shows which key it came from.
      _: (key: string) => key,
      nodes: { registerType: (type: string, def: Definition) => registered.set(type, def) },
      validators: { typedInput: () => () => true },
    },
  };
  sandbox.window = sandbox;
  vm.createContext(sandbox);
  for (const file of ["editor.js", "schema-limits.js"]) {
    vm.runInContext(fs.readFileSync(path.join(ROOT, "resources", file), "utf8"), sandbox, { filename: file });
  }
  const html = fs.readFileSync(path.join(NODES, dir, `${dir}.html`), "utf8");
  const inline = /<script type="text\/javascript">([\s\S]*?)<\/script>/g;
  for (const [, code] of html.matchAll(inline)) vm.runInContext(code!, sandbox, { filename: `${dir}.html` });
  return registered;
}

/** A value made in the vm's realm, as plain data of this one (deepEqual compares prototypes). */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value)) as unknown;
}

const pack = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
  "node-red": { nodes: Record<string, string> };
};
const USER_NODES = Object.keys(pack["node-red"].nodes).filter((dir) => dir !== "broker-config");

describe("editor scripts register through TradingBrokerEditor.registerNode", function () {
  for (const dir of USER_NODES) {
    it(`${dir}: the shared parts, its own icon and labels from its catalogue`, function () {
      const registered = register(dir);
      assert.equal(registered.size, 1, "one type per node html");
      const [type, def] = [...registered][0]!;
      assert.equal(type, `trading-${dir}`);
      assert.equal(def.category, "trading");
      assert.match(def.color, /^#[0-9A-F]{6}$/);
      assert.deepEqual(plain(def.defaults.name), { value: "" });
      assert.equal(def.defaults.broker?.type, "trading-broker");
      assert.ok(fs.existsSync(path.join(ROOT, "icons", def.icon)), `icons/${def.icon} exists`);
      const prefix = `node-red-contrib-trading-broker/${dir}:${type}.`;
      assert.equal(def.paletteLabel(), `${prefix}paletteLabel`);
      assert.equal(def.outputLabels?.(), `${prefix}outputLabel`);
      if (def.inputs === 0) assert.equal(def.inputLabels, undefined, "no input, no input label");
      else assert.equal(def.inputLabels?.(), `${prefix}inputLabel`);
      assert.equal(def.label.call({ name: "mine" }), "mine", "a name is the label");
      assert.ok(def.label.call({}).startsWith(`${prefix}`), "no name: a label from the catalogue");
    });
  }

  it("the node's own parts win: kill-switch's colour, momentum's optional broker, order-events' missing input", function () {
    assert.equal(register("kill-switch").get("trading-kill-switch")?.color, "#E2A1A1");
    assert.equal(register("momentum").get("trading-momentum")?.defaults.broker?.required, false);
    const events = register("order-events").get("trading-order-events")!;
    assert.equal(events.inputs, 0);
    assert.equal(register("quotes").get("trading-quotes")?.label.call({ symbols: "INFY" }), "INFY");
  });

  it("typed fields bring <prop>, <prop>Type and, where they lock, <prop>Fixed", function () {
    const expectFixed: Record<string, string[]> = {
      "place-order": [
        "symbol",
        "exchange",
        "side",
        "quantity",
        "orderType",
        "price",
        "triggerPrice",
        "product",
        "validity",
        "tag",
      ],
      "modify-order": ["orderId", "quantity", "orderType", "price", "triggerPrice", "validity"],
      "cancel-order": ["orderId"],
      gtt: ["gttId", "symbol", "exchange"],
    };
    for (const [dir, fixable] of Object.entries(expectFixed)) {
      const def = register(dir).get(`trading-${dir}`)!;
      for (const prop of fixable) {
        assert.deepEqual(plain(def.defaults[`${prop}Fixed`]), { value: false }, `${dir}.${prop}Fixed`);
        assert.equal(typeof def.defaults[prop]?.validate, "function", `${dir}.${prop} validated`);
        assert.ok(def.defaults[`${prop}Type`] !== undefined, `${dir}.${prop}Type`);
      }
      assert.equal(typeof def.oneditprepare, "function", `${dir} prepares its TypedInputs`);
    }
    const gtt = register("gtt").get("trading-gtt")!;
    assert.equal(gtt.defaults.triggerValuesFixed, undefined, "lists are not lockable");
    assert.equal(gtt.defaults.action?.value, "place");
  });
});
