// --max-connections reaches the gateway's maxConnections; a bad value is a usage error naming the
// flag and its rule, never a gateway started without its cap.
import assert from "node:assert/strict";
import { parseCli } from "../../lib/gateway/cli";

describe("gateway CLI: --max-connections", function () {
  const env = { TRADING_GATEWAY_API_KEY: "key", TRADING_GATEWAY_API_SECRET: "secret" };
  const parse = (...argv: string[]) => parseCli(argv, env, "/tmp");

  it("is left to the gateway's default when not given, and read as a whole number when given", function () {
    const plain = parse();
    assert.ok(plain !== "help");
    assert.equal(plain.maxConnections, undefined);
    const given = parse("--max-connections", "50");
    assert.ok(given !== "help");
    assert.equal(given.maxConnections, 50);
  });

  for (const bad of ["0", "-3", "2.5", "many", ""]) {
    it(`refuses --max-connections ${JSON.stringify(bad)} naming the flag and its rule`, function () {
      assert.throws(() => parse(`--max-connections=${bad}`), /^Error: --max-connections must be an integer/);
    });
  }
});
