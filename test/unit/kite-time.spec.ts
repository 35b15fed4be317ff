import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { formatKiteTimestamp, kiteTimestampMs, parseKiteTimestamp } from "../../lib/kite/time";

const DIST = path.resolve(__dirname, "../..");

function runWithTz(tz: string, script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["-e", script],
      { env: { ...process.env, TZ: tz }, cwd: DIST, timeout: 10_000 },
      (error, stdout, stderr) => {
        if (error !== null) reject(new Error(`${error.message}\n${stderr}`));
        else resolve(stdout.trim());
      },
    );
  });
}

describe("Kite timestamps (IST, +05:30)", function () {
  it("reads wall-clock strings as IST and answers ISO UTC", function () {
    const cases: [unknown, string | undefined][] = [
      ["2024-06-12 09:15:00", "2024-06-12T03:45:00.000Z"],
      ["2024-06-12 00:10:00", "2024-06-11T18:40:00.000Z"],
      ["2024-12-31 23:59:59", "2024-12-31T18:29:59.000Z"],
      ["2024-06-12T09:15:00", "2024-06-12T03:45:00.000Z"],
      [" 2024-06-12 09:15:00 ", "2024-06-12T03:45:00.000Z"],
      ["2024-06-12T09:15:00+05:30", "2024-06-12T03:45:00.000Z"],
      ["2024-06-12T03:45:00Z", "2024-06-12T03:45:00.000Z"],
      ["2024-02-30 09:15:00", undefined],
      ["2024-13-01 09:15:00", undefined],
      ["yesterday", undefined],
      ["", undefined],
      [null, undefined],
      [undefined, undefined],
      [1718163900, undefined],
      [new Date(Number.NaN), undefined],
    ];
    for (const [input, expected] of cases) assert.equal(parseKiteTimestamp(input), expected, String(input));
  });

  it("formats epoch ms as Kite writes it, and reads that back", function () {
    const ms = Date.UTC(2024, 5, 12, 3, 45, 0);
    assert.equal(formatKiteTimestamp(ms), "2024-06-12 09:15:00");
    assert.equal(kiteTimestampMs(formatKiteTimestamp(ms)), ms);
  });

  for (const tz of ["UTC", "Asia/Kolkata", "America/New_York"]) {
    it(`gives the same instant for kiteconnect's host-local Dates under TZ=${tz}`, async function () {
      const out = await runWithTz(
        tz,
        `const t = require("./lib/kite/time.js");
         // kiteconnect's formatResponse: new Date(19-char IST string), read in the host's zone.
         const d = new Date("2024-06-12 09:15:00");
         console.log(JSON.stringify([d.toISOString(), t.parseKiteTimestamp(d), t.parseKiteTimestamp("2024-06-12 09:15:00")]));`,
      );
      const [naive, fromDate, fromString] = JSON.parse(out) as [string, string, string];
      assert.equal(fromDate, "2024-06-12T03:45:00.000Z");
      assert.equal(fromString, "2024-06-12T03:45:00.000Z");
      if (tz === "UTC")
        assert.equal(naive, "2024-06-12T09:15:00.000Z", "kiteconnect's own Date is off under UTC");
    });
  }

  for (const tz of ["UTC", "Asia/Kolkata"]) {
    it(`places an order through kiteconnect and the fake with true timestamps under TZ=${tz}`, async function () {
      this.timeout(15_000);
      const out = await runWithTz(
        tz,
        `(async () => {
          const { FakeKite } = require("./test/fakes/fake-kite.js");
          const { KiteBroker } = require("./lib/brokers/kite-broker.js");
          const { KiteSettings } = require("./lib/brokers/kite-settings.js");
          const fake = await FakeKite.start();
          const broker = new KiteBroker(KiteSettings.parse({ api_key: fake.apiKey, access_token: fake.accessToken, root: fake.restUrl, ticker_url: fake.tickerUrl }));
          await broker.connect();
          fake.setPrice("INFY", 1500);
          const before = Date.now();
          const order = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, order_type: "LIMIT", price: 1400 });
          const book = await broker.getOrderbook();
          console.log(JSON.stringify({ before, placed: order.placed_at, ts: order.timestamp, book: book[0].placed_at }));
          await broker.close();
          await fake.close();
        })().catch((e) => { console.error(e); process.exit(1); });`,
      );
      const { before, placed, ts, book } = JSON.parse(out) as {
        before: number;
        placed: string;
        ts: string;
        book: string;
      };
      for (const value of [placed, ts, book]) {
        // Kite's timestamps have whole seconds.
        assert.ok(
          Math.abs(Date.parse(value) - before) < 3000,
          `${value} is not about ${new Date(before).toISOString()}`,
        );
      }
    });
  }
});
