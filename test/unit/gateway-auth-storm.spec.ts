// A misbehaving client reconnecting in a tight loop with a bad secret, from 8 loopback addresses at
// once. The gateway refused each AUTH and, past maxUnauthenticatedClosesPerIp closes in a second,
// each address's upgrades; but every refused AUTH wrote a warning line (up to ~65 a second per
// address, without bound as addresses were added; here 8 addresses for 1.5 s wrote 380 lines).
// Now such warnings are written at most once a second, naming how many were left out.
// Never a secret or a signature in them. A good client's PING latency and the RSS are printed.
import assert from "node:assert/strict";
import { WebSocket } from "ws";
import type { PaperGateway } from "../support/gateway-client";
import {
  GatewayClient,
  newNonce,
  sign,
  startPaperGateway,
  TEST_KEY,
  TEST_SECRET,
} from "../support/gateway-client";

const WRONG_SECRET = "wrong-secret-9876543210";

/** One connection from `address` that sends an AUTH signed with the wrong secret; its close code or HTTP status. */
function badAuth(url: string, address: string): Promise<string> {
  return new Promise<string>((resolve) => {
    const ws = new WebSocket(url, "trading-broker.v1", { localAddress: address });
    const timestamp = Date.now();
    const nonce = newNonce();
    ws.on("error", () => resolve("error"));
    ws.once("unexpected-response", (_request, response) => {
      ws.terminate();
      resolve(String(response.statusCode));
    });
    ws.once("open", () =>
      ws.send(
        JSON.stringify({
          type: "AUTH",
          id: "a1",
          api_key: TEST_KEY,
          timestamp,
          nonce,
          signature: sign(WRONG_SECRET, TEST_KEY, timestamp, nonce),
        }),
      ),
    );
    ws.once("close", (code) => resolve(String(code)));
  });
}

describe("Gateway: a client reconnecting in a tight loop with a bad secret", function () {
  this.timeout(30_000);
  let made: PaperGateway | undefined;

  afterEach(async () => {
    await made?.close();
    made = undefined;
  });

  it("8 addresses x 1.5 s of bad AUTHs: refused, rate limited per address, at most a warning a second, no secret logged", async function () {
    made = await startPaperGateway();
    const good = await GatewayClient.open(made.url);
    const rss = process.memoryUsage().rss;
    const outcomes = new Map<string, number>();
    const pings: number[] = [];
    const start = performance.now();
    const until = start + 1500;
    let stop = false;
    const pinging = (async () => {
      while (!stop) {
        const sent = performance.now();
        await good.call({ type: "PING" });
        pings.push(performance.now() - sent);
      }
    })();
    await Promise.all(
      Array.from({ length: 8 }, async (_, a) => {
        while (performance.now() < until) {
          const outcome = await badAuth(made!.url, `127.0.9.${a + 2}`);
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        }
      }),
    );
    stop = true;
    await pinging;
    const seconds = (performance.now() - start) / 1000;
    const warnings = made.logs.filter((line) => line.level !== "info");
    pings.sort((a, b) => a - b);
    const at = (q: number): string =>
      pings[Math.min(pings.length - 1, Math.floor(q * pings.length))]!.toFixed(2);
    const attempts = [...outcomes.values()].reduce((sum, n) => sum + n, 0);
    console.log(
      `      ${attempts} bad AUTH connections in ${seconds.toFixed(1)} s: ${JSON.stringify(Object.fromEntries(outcomes))}; ${warnings.length} warning lines; good client's PING p50 ${at(0.5)} / p99 ${at(0.99)} ms over ${pings.length}; RSS ${(rss / 1e6).toFixed(0)} -> ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`,
    );
    // Refused with 4001 (bad credentials), and past the per-address bound with 429 at the upgrade.
    assert.ok((outcomes.get("4001") ?? 0) > 0, JSON.stringify(Object.fromEntries(outcomes)));
    assert.ok(
      (outcomes.get("4001") ?? 0) <= 8 * 64 * Math.ceil(seconds + 1),
      `AUTH refusals not bounded per address: ${JSON.stringify(Object.fromEntries(outcomes))}`,
    );
    // At most one line a second of each kind (refused AUTH; refused upgrades; ...): six kinds.
    const authLines = warnings.filter((line) => /AUTH refused/.test(line.message));
    assert.ok(
      authLines.length <= Math.ceil(seconds) + 1,
      `${authLines.length} AUTH refusal lines in ${seconds.toFixed(1)} s`,
    );
    assert.ok(
      warnings.length <= 6 * (Math.ceil(seconds) + 1),
      `${warnings.length} warning lines in ${seconds.toFixed(1)} s`,
    );
    assert.match(
      warnings[0]?.message ?? "",
      /AUTH refused on connection .*: api key or signature is invalid/,
    );
    for (const line of made.logs) {
      assert.ok(!line.message.includes(WRONG_SECRET) && !line.message.includes(TEST_SECRET), line.message);
      assert.doesNotMatch(line.message, /[0-9a-f]{64}/, "no signature in the log");
    }
    // Still served, and a new client still gets in.
    assert.equal((await good.call({ type: "PING" })).seq, 0);
    const later = await GatewayClient.open(made.url);
    await later.close();
    await good.close();
  });
});
