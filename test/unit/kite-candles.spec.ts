import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { candlesToCsv, warmupPrices } from "../../lib/kite/candles";
import { parseQuoteCsv } from "../../lib/paper/csv-replay-feed";
import { rejectsWithCode } from "../contract/broker-contract";
import type { KiteHarness } from "../fakes/kite-harness";
import { startKite } from "../fakes/kite-harness";

/** Issue 10, historical candles: Kite's candles to a CSV the paper broker replays, and a warm-up. */
describe("KiteBroker: historical candles", function () {
  let h: KiteHarness;
  afterEach(async function () {
    await h.close();
  });

  it("fetches candles with true instants; from/to go to Kite as IST wall clock", async function () {
    h = await startKite();
    const candles = await h.broker.getCandles({
      symbol: "NSE:INFY",
      interval: "5minute",
      from: "2026-12-04T03:45:00Z", // 09:15 IST
      to: "2026-12-04T04:45:00Z",
    });
    assert.equal(candles.length, 13);
    assert.equal(candles[0]!.timestamp, "2026-12-04T03:45:00.000Z");
    assert.equal(candles[12]!.close, 112);
    const request = h.fake.requests.find((r) => r.path.startsWith("/instruments/historical/"))!;
    assert.equal(request.path, `/instruments/historical/${h.fake.tokenOf("INFY")}/5minute`);
    assert.equal(request.query.from, "2026-12-04 09:15:00");
    assert.deepEqual(warmupPrices(candles, 3), [110, 111, 112]);
  });

  it("refuses a bad interval, a reversed or too long span, an unknown symbol; sends nothing for them", async function () {
    h = await startKite();
    const base = { symbol: "INFY", from: "2026-12-01T00:00:00Z", to: "2026-12-02T00:00:00Z" };
    await rejectsWithCode(
      h.broker.getCandles({ ...base, interval: "2minute" }),
      "VALIDATION",
      /interval: must be one of/,
    );
    await rejectsWithCode(
      h.broker.getCandles({ ...base, interval: "minute", from: "2026-12-03T00:00:00Z" }),
      "VALIDATION",
      /span/,
    );
    await rejectsWithCode(
      h.broker.getCandles({ ...base, interval: "minute", from: "2026-06-01T00:00:00Z" }),
      "VALIDATION",
      /at most 60 days/,
    );
    await rejectsWithCode(h.broker.getCandles({ ...base, symbol: "NOSUCH", interval: "day" }), "VALIDATION");
    assert.equal(h.fake.requests.filter((r) => r.path.startsWith("/instruments/historical")).length, 0);
  });

  it("writes a CSV that the paper broker's replay reads back as the same prices", async function () {
    h = await startKite();
    const candles = await h.broker.getCandles({
      symbol: "INFY",
      interval: "minute",
      from: "2026-12-04T03:45:00Z",
      to: "2026-12-04T03:54:00Z",
    });
    const dir = await mkdtemp(path.join(os.tmpdir(), "kite-candles-"));
    try {
      const file = path.join(dir, "infy.csv");
      await writeFile(file, candlesToCsv("NSE:INFY", candles));
      const rows = parseQuoteCsv(await readFile(file, "utf8"), file);
      assert.equal(rows.length, 10);
      assert.deepEqual(
        rows.map((r) => [new Date(r.time).toISOString(), r.exchange, r.symbol, r.price]),
        candles.map((c) => [c.timestamp, "NSE", "INFY", c.close]),
      );
      assert.throws(() => candlesToCsv("NSE:A,B", candles), /cannot go in a CSV/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
