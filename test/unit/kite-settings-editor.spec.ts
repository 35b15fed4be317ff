import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import { numeric } from "../../nodes/shared/coerce";

const RESOURCES = path.resolve(__dirname, "..", "..", "..", "resources");

interface Editor {
  checkField(request: string, field: string, value: string, type: string): true | string;
}

/** resources/schema-limits.js and editor.js as the broker-config dialog loads them. */
function loadEditor(): Editor {
  const sandbox: Record<string, unknown> = { document: {}, $: () => ({ on: () => undefined }) };
  sandbox.window = sandbox;
  vm.createContext(sandbox);
  for (const file of ["schema-limits.js", "editor.js"]) {
    vm.runInContext(fs.readFileSync(path.join(RESOURCES, file), "utf8"), sandbox, { filename: file });
  }
  return sandbox.TradingBrokerEditor as Editor;
}

describe("broker-config dialog: the Kite start-up read budget is checked by its zod rule", function () {
  it("says what the runtime says, for every value typed", function () {
    const editor = loadEditor();
    const schema = KiteSettings.shape.startup_budget_ms;
    for (const text of ["999", "1000", "15000", "300000", "300001", "0", "-5", "1500.5", "abc", "1e4"]) {
      // What broker-config hands the schema for the text in the dialog.
      const parsed = schema.safeParse(numeric(text));
      const runtime = parsed.success ? true : `startup_budget_ms: ${parsed.error.issues[0]!.message}`;
      assert.equal(editor.checkField("kiteSettings", "startup_budget_ms", text, "num"), runtime, text);
    }
    assert.equal(editor.checkField("kiteSettings", "startup_budget_ms", "", "num"), true, "blank: default");
    assert.equal(KiteSettings.parse({ api_key: "k", access_token: "t" }).startup_budget_ms, 15_000);
  });
});
