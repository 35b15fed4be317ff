import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { KiteBroker } from "../../lib/brokers/kite-broker";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import { InstrumentCache, tradingDay } from "../../lib/kite/instrument-cache";
import { SymbolList } from "../../lib/protocol/quotes";
import { OrderRequest } from "../../lib/protocol/orders";
import type { KiteHarness } from "../fakes/kite-harness";
import { startKite } from "../fakes/kite-harness";

/** Issue 10, defect 4: index names have spaces. */
describe("Index symbols (NSE:NIFTY 50)", function () {
  it("the symbol schema takes single spaces between words and still refuses the rest", function () {
    for (const ok of ["NSE:NIFTY 50", "NSE:NIFTY BANK", "NSE:INDIA VIX", "NIFTY 50", "M&M", "BSE:SENSEX"]) {
      assert.ok(SymbolList.safeParse([ok]).success, ok);
    }
    for (const bad of ["NIFTY  50", "NIFTY\t50", "NIFTY\n50", "NIFTY 50;", " ", "A<b>"]) {
      const parsed = SymbolList.safeParse([bad]);
      assert.ok(!parsed.success, JSON.stringify(bad));
    }
    const refused = OrderRequest.safeParse({ symbol: "NIFTY  50", side: "BUY", quantity: 1 });
    assert.ok(!refused.success);
    assert.match(refused.error.issues[0]!.message, /single spaces between words/);
  });

  describe("through the broker and the fake's ticker", function () {
    let h: KiteHarness;
    afterEach(async function () {
      await h.close();
    });

    it("streams NSE:NIFTY 50, NSE:NIFTY BANK and NSE:INDIA VIX as quotes", async function () {
      h = await startKite();
      h.fake.setPrice("NSE:NIFTY 50", 24500.5);
      h.fake.setPrice("NSE:NIFTY BANK", 52000.25);
      h.fake.setPrice("NSE:INDIA VIX", 13.45);
      await h.broker.subscribeQuotes(["NSE:NIFTY 50", "NSE:NIFTY BANK", "NSE:INDIA VIX"]);
      await h.log.until(() => new Set(h.log.quotes.map((q) => q.symbol)).size === 3, "three index quotes");
      const last = new Map(h.log.quotes.map((q) => [q.symbol, q.last_price]));
      assert.deepEqual(Object.fromEntries(last), {
        "NIFTY 50": 24500.5,
        "NIFTY BANK": 52000.25,
        "INDIA VIX": 13.45,
      });
      for (const q of h.log.quotes) assert.equal(q.exchange, "NSE");
    });
  });
});

/** Issue 10, defect 6: the instrument list is downloaded once per trading day, not per redeploy. */
describe("Instrument list cache on disk (trading day, IST)", function () {
  let dir: string;
  let h: KiteHarness | undefined;
  beforeEach(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), "kite-instruments-"));
  });
  afterEach(async function () {
    await h?.close();
    h = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it("the trading day turns at 08:30 IST (03:00 UTC), whatever the host's zone", function () {
    assert.equal(tradingDay(Date.parse("2026-12-04T02:59:59Z")), "2026-12-03");
    assert.equal(tradingDay(Date.parse("2026-12-04T03:00:00Z")), "2026-12-04");
    assert.equal(tradingDay(Date.parse("2026-12-04T18:29:59Z")), "2026-12-04");
    assert.equal(
      tradingDay(Date.parse("2026-12-04T18:30:00Z")),
      "2026-12-04",
      "IST midnight is not the turn",
    );
  });

  it("ten brokers in a row (redeploys) download each exchange's list once", async function () {
    this.timeout(30_000);
    h = await startKite({ cache_dir: dir });
    const fake = h.fake;
    fake.setPrice("INFY", 1500);
    await h.broker.subscribeQuotes(["NSE:INFY"]);
    for (let i = 0; i < 9; i++) {
      await h.broker.close();
      const broker: KiteBroker = new KiteBroker(
        KiteSettings.parse({
          api_key: fake.apiKey,
          access_token: fake.accessToken,
          root: fake.restUrl,
          ticker_url: fake.tickerUrl,
          cache_dir: dir,
        }),
      );
      h = {
        ...h,
        broker,
        close: async () => {
          await broker.close();
          await fake.close();
        },
      };
      await broker.connect();
      await broker.subscribeQuotes(["NSE:INFY", "NSE:NIFTY 50"]);
    }
    const downloads = fake.requests.filter((r) => r.path.startsWith("/instruments"));
    assert.equal(downloads.length, 1);
    // The open broker's ledger lock (ledger-lock.ts) is not a download.
    const files = (await readdir(dir)).filter((name) => !name.endsWith(".lock"));
    assert.deepEqual(files, [`kite-instruments-NSE-${tradingDay(Date.now())}.json`]);
  });

  it("yesterday's file is not used, and goes when today's is written; a corrupt file is downloaded over", async function () {
    let now = Date.parse("2026-12-03T10:00:00Z");
    const cache = new InstrumentCache(dir, () => now);
    const row = {
      instrument_token: 408065,
      exchange: "NSE",
      tradingsymbol: "INFY",
      name: "INFOSYS",
      segment: "NSE",
      instrument_type: "EQ",
      lot_size: 1,
      tick_size: 0.05,
      expiry: "",
      strike: 0,
    };
    await cache.write("NSE", [row]);
    assert.deepEqual(await cache.read("NSE"), [row]);
    now += 86_400_000;
    assert.equal(await cache.read("NSE"), undefined);
    await cache.write("NSE", [row]);
    assert.deepEqual(await readdir(dir), ["kite-instruments-NSE-2026-12-04.json"]);
    await writeFile(path.join(dir, "kite-instruments-NSE-2026-12-04.json"), "{not json");
    assert.equal(await cache.read("NSE"), undefined);
    assert.equal(await cache.read("../../etc"), undefined, "an exchange name never becomes a path");
  });
});

/** Issue 10, instruments: what the exchange would refuse is refused before anything is sent. */
describe("KiteBroker: lot and tick checks from the instrument list", function () {
  let h: KiteHarness;
  afterEach(async function () {
    await h.close();
  });

  const posts = (): number => h.fake.requests.filter((r) => r.method === "POST").length;

  it("refuses a quantity off the lot, a price off the tick, an index and an unknown symbol; sends none", async function () {
    h = await startKite();
    h.fake.setPrice("NFO:NIFTY26DECFUT", 24600);
    h.fake.setPrice("INFY", 1500);
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { symbol: "NIFTY26DECFUT", exchange: "NFO", quantity: 50, order_type: "LIMIT", price: 24600 },
        /^quantity: must be a multiple of NFO:NIFTY26DECFUT's lot size 75 \(got 50\)$/,
      ],
      [
        { symbol: "NIFTY26DECFUT", exchange: "NFO", quantity: 75, order_type: "LIMIT", price: 24600.05 },
        /^price: must be a multiple of NFO:NIFTY26DECFUT's tick size 0.1/,
      ],
      [{ symbol: "INFY", quantity: 1, order_type: "LIMIT", price: 1500.03 }, /^price: .*tick size 0.05/],
      [
        { symbol: "INFY", quantity: 1, order_type: "SL", price: 1500, trigger_price: 1499.99 },
        /^trigger_price: .*tick size 0.05/,
      ],
      [{ symbol: "NIFTY 50", quantity: 1 }, /is an index/],
      [{ symbol: "NOSUCH", quantity: 1 }, /not in Kite's instrument list/],
    ];
    for (const [fields, pattern] of cases) {
      await assert.rejects(
        h.broker.placeOrder({ side: "BUY", ...fields } as never),
        (error: { code: string; message: string }) =>
          error.code === "VALIDATION" && pattern.test(error.message),
        JSON.stringify(fields),
      );
    }
    assert.equal(posts(), 0, "nothing refused was sent");
    // Whole lots and prices on the tick go through (floating point: 1500.05 / 0.05 is not exact).
    await h.broker.placeOrder({
      symbol: "NIFTY26DECFUT",
      exchange: "NFO",
      side: "BUY",
      quantity: 150,
      order_type: "LIMIT",
      price: 24500.1,
    });
    const open = await h.broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 3,
      order_type: "LIMIT",
      price: 1400.05,
    });
    assert.equal(posts(), 2);
    await assert.rejects(h.broker.modifyOrder(open.order_id, { price: 1400.01 }), /tick size/);
    assert.equal(h.fake.requests.filter((r) => r.method === "PUT").length, 0);
    const downloads = h.fake.requests.filter((r) => r.path.startsWith("/instruments"));
    assert.deepEqual(downloads.map((r) => r.path).sort(), ["/instruments/NFO", "/instruments/NSE"]);
  });
});

describe("KiteBroker: instrument lookup", function () {
  let h: KiteHarness;
  afterEach(async function () {
    await h.close();
  });

  it("finds by exact symbol first, then by text in symbol or name, with lot, tick, expiry and segment", async function () {
    h = await startKite();
    const [future] = await h.broker.findInstruments({ exchange: "NFO", text: "NIFTY26DECFUT" });
    assert.deepEqual(
      { ...future, instrument_token: undefined },
      {
        instrument_token: undefined,
        exchange: "NFO",
        tradingsymbol: "NIFTY26DECFUT",
        name: "NIFTY26DECFUT, Ltd",
        segment: "NFO-FUT",
        instrument_type: "FUT",
        lot_size: 75,
        tick_size: 0.1,
        expiry: "2026-12-29",
        strike: 0,
      },
    );
    const nifty = await h.broker.findInstruments({ text: "nifty" });
    assert.deepEqual(
      nifty.map((i) => i.tradingsymbol),
      ["NIFTY 50", "NIFTY BANK"],
    );
    assert.equal(nifty[0]!.segment, "INDICES");
    assert.equal((await h.broker.findInstruments({ text: "INFY", limit: 1 })).length, 1);
    assert.deepEqual(await h.broker.findInstruments({ text: "NO SUCH THING" }), []);
    assert.equal(
      h.fake.requests.filter((r) => r.path.startsWith("/instruments")).length,
      2,
      "one list per exchange",
    );
  });
});
