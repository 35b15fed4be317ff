// Quote subscriptions were capped per connection (3,000) and per api key (9,000), but not per
// gateway: every key added could hold 9,000 more, and every tick is pushed once per subscription.
// A gateway-wide cap, maxSymbolsPerGateway (default 30,000), now refuses past it naming the limit.
import assert from "node:assert/strict";
import { Gateway } from "../../lib/gateway";
import type { PaperGateway } from "../support/gateway-client";
import { GatewayClient, startPaperGateway } from "../support/gateway-client";

const KEYS = 14;
const keyOf = (k: number): string => `key-${k}`;
const secretOf = (k: number): string => `secret-${k}-0123456789`;

async function waitFor(check: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("Gateway: a gateway-wide quote subscription cap", function () {
  this.timeout(60_000);
  let paper: PaperGateway | undefined;
  const clients: GatewayClient[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await paper?.close();
    paper = undefined;
  });

  async function start(options: { maxSymbolsPerGateway?: number } = {}): Promise<PaperGateway> {
    paper = await startPaperGateway(
      {
        rate: { perSecond: 1e6, burst: 1e6 },
        credentials: new Map(Array.from({ length: KEYS }, (_, k) => [keyOf(k), { secret: secretOf(k) }])),
        ...options,
      },
      { settings: { interval_ms: 1000 } },
    );
    return paper;
  }

  async function open(k: number): Promise<GatewayClient> {
    const client = await GatewayClient.open(paper!.url, { apiKey: keyOf(k), secret: secretOf(k) });
    clients.push(client);
    return client;
  }

  it("14 keys at 3,000 symbols each: the gateway holds 30,000 by default, refuses the rest naming the limit, still serves", async function () {
    const made = await start();
    const probe = await open(KEYS - 1);
    let granted = 0;
    const refusals: string[] = [];
    for (let k = 0; k < KEYS - 1; k++) {
      const client = await open(k);
      const reply = await client.request({
        type: "SUBSCRIBE",
        symbols: Array.from({ length: 3000 }, (_, i) => `K${k}x${i}`),
      });
      if (reply.type === "RESULT") granted += 3000;
      else {
        assert.equal(reply.error?.code, "VALIDATION", JSON.stringify(reply));
        refusals.push(reply.error?.message ?? "");
      }
      assert.equal((await probe.request({ type: "PING" })).type, "RESULT", `after key ${k}`);
    }
    assert.equal(granted, 30_000);
    assert.equal(refusals.length, KEYS - 1 - 10);
    for (const message of refusals) {
      assert.equal(
        message,
        "symbols: this gateway (over all its api keys and connections) may hold at most 30000 subscriptions (it holds 30000, this adds 3000); unsubscribe some first",
      );
    }
    // Full: one more is refused whoever asks, and quotes still flow to what is held.
    const probeSymbols = await probe.request({ type: "SUBSCRIBE", symbols: ["P1"] });
    assert.equal(probeSymbols.error?.code, "VALIDATION");
    made.broker.setPrice("K3x7", 321);
    // clients[4] is key 3's connection (clients[0] is the probe): its quotes still come, to it alone.
    const quote = await clients[4]!.next(
      (m) => m.type === "QUOTE" && m.quote?.symbol === "K3x7" && m.quote.last_price === 321,
      5000,
    );
    assert.equal(quote.quote?.exchange, "NSE");
    for (const [i, client] of clients.entries()) {
      if (i === 4) continue;
      assert.ok(
        !client.received.some((m) => m.type === "QUOTE" && m.quote?.symbol === "K3x7"),
        `client ${i}`,
      );
    }
  });

  it("frees its count as connections close or unsubscribe, over 20 rounds of many keys", async function () {
    await start({ maxSymbolsPerGateway: 50 });
    for (let round = 0; round < 20; round++) {
      const open5 = await Promise.all([0, 1, 2, 3, 4].map((k) => open((k + round) % KEYS)));
      for (const [i, client] of open5.entries()) {
        const symbols = Array.from({ length: 10 }, (_, s) => `R${round}c${i}s${s}`);
        assert.equal((await client.call({ type: "SUBSCRIBE", symbols })).symbols.length, 10);
      }
      const extra = await open((round + 7) % KEYS);
      const over = await extra.request({ type: "SUBSCRIBE", symbols: ["X"] });
      assert.match(
        over.error?.message ?? "",
        /this gateway .* may hold at most 50 subscriptions \(it holds 50, this adds 1\)/,
      );
      // One symbol let go: one may be taken, by any key.
      await open5[0]!.call({ type: "UNSUBSCRIBE", symbols: [`R${round}c0s0`] });
      assert.deepEqual((await extra.call({ type: "SUBSCRIBE", symbols: ["X"] })).symbols, ["NSE:X"]);
      // A connection's close gives back all it held.
      for (const client of [...open5, extra]) {
        await client.close();
        clients.splice(clients.indexOf(client), 1);
      }
      await waitFor(() => paper!.gateway.connections === 0, "the closes");
    }
    const last = await open(0);
    const fifty = Array.from({ length: 50 }, (_, i) => `L${i}`);
    await assert.rejects(
      last.call({ type: "SUBSCRIBE", symbols: [...fifty, "L50"] }),
      /at most 50 subscriptions/,
    );
    assert.equal((await last.call({ type: "SUBSCRIBE", symbols: fifty })).symbols.length, 50);
  });

  it("the option is checked: maxSymbolsPerGateway must be a number from 0", async function () {
    const made = await start();
    await assert.rejects(
      Gateway.start({ broker: made.broker, credentials: new Map(), maxSymbolsPerGateway: -5 }),
      /gateway option maxSymbolsPerGateway must be a number from 0, got -5/,
    );
  });
});
