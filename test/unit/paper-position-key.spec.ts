// positionKey (lib/paper/ledger.ts) reuses the last key it made when asked for the same parts again
// (a fill, its admission and its position all ask for one key): the reuse must never hand out a key
// for other parts, whatever the order of the calls and however the part strings were built.
import assert from "node:assert/strict";
import fc from "fast-check";
import type { PositionState } from "../../lib/paper/account-state";
import { positionKey } from "../../lib/paper/ledger";
import { PaperBroker } from "../../lib/brokers/paper-broker";

const PRODUCTS: PositionState["product"][] = ["CNC", "MIS", "NRML"];

describe("positionKey", function () {
  it("is exchange:symbol:product for any sequence of calls, repeats and look-alike parts included", function () {
    const part = fc.oneof(
      fc.constantFrom("NSE", "BSE", "NFO", "INFY", "TCS", "A", "A:B", "B", "", ":"),
      fc.string({ maxLength: 6 }),
    );
    const call = fc.record({ exchange: part, symbol: part, product: fc.constantFrom(...PRODUCTS) });
    fc.assert(
      fc.property(fc.array(call, { minLength: 1, maxLength: 40 }), (calls) => {
        for (const { exchange, symbol, product } of calls) {
          // Fresh string objects each time: equal text, not the same reference, must still match.
          const key = positionKey(exchange.split("").join(""), `${symbol}`, product);
          assert.equal(key, `${exchange}:${symbol}:${product}`);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("keeps the positions of interleaved instruments and products apart in the broker", async function () {
    const broker = new PaperBroker({ volatility: 0, spread_bps: 0, slippage_bps: 0, starting_cash: 1e9 });
    await broker.connect();
    try {
      broker.setPrice("INFY", 100);
      broker.setPrice("TCS", 200);
      broker.setPrice("BSE:INFY", 101);
      const expected = new Map<string, number>();
      const instruments = [
        { exchange: "NSE", symbol: "INFY" },
        { exchange: "NSE", symbol: "TCS" },
        { exchange: "BSE", symbol: "INFY" },
      ] as const;
      for (let i = 0; i < 300; i += 1) {
        const { exchange, symbol } = instruments[(i * 7) % 3]!;
        const product = PRODUCTS[(i * 5) % 3] === "NRML" ? "MIS" : PRODUCTS[(i * 5) % 3]!;
        const quantity = 1 + (i % 4);
        const order = await broker.placeOrder({ exchange, symbol, side: "BUY", quantity, product });
        assert.equal(order.status, "FILLED");
        const name = `${exchange}:${symbol}:${product}`;
        expected.set(name, (expected.get(name) ?? 0) + quantity);
      }
      const positions = await broker.getPositions();
      const seen = new Map(positions.map((p) => [`${p.exchange}:${p.symbol}:${p.product}`, p.quantity]));
      assert.deepEqual(seen, expected);
    } finally {
      await broker.close();
    }
  });
});
