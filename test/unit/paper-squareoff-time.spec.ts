// The 15:20 square-off's orders, fills, events and journal carry 15:20 IST, the time it ran for,
// also when a broker closed over it catches it up on reopen (issue 12; paperfuzz11 saw the fills
// stamped with the reopen's time instead).
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { PaperSettingsInput } from "../../lib/paper/settings";
import type { OrderEvent } from "../../lib/protocol";

const MINUTE = 60_000;
// ManualClock starts at Monday 2026-01-05 09:15 IST (03:45 UTC); 15:20 IST is 09:50 UTC.
const SQUARE_OFF = "2026-01-05T09:50:00.000Z";

describe("paper broker under NSE's rules: square-off timestamps", function () {
  let dir: string;
  let settings: PaperSettingsInput;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "nse-sqoff-time-"));
    const csv = path.join(dir, "quotes.csv");
    fs.writeFileSync(csv, "timestamp,symbol,price\n2026-01-05T03:45:00Z,TCS,3000\n");
    settings = {
      starting_cash: 10_000_000,
      quote_source: "csv",
      csv_file: csv,
      replay_loop: false,
      slippage_bps: 0,
      market: "nse",
    };
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function journaled(clock: ManualClock): PaperBroker {
    return new PaperBroker(settings, { clock, journalFile: path.join(dir, "account.jsonl") });
  }

  async function squareOffStamps(broker: PaperBroker, events: OrderEvent[]): Promise<string[]> {
    const fills = events.filter((e) => e.order.tag === "SQUAREOFF" && e.type === "ORDER_FILLED");
    assert.equal(fills.length, 1, `one SQUAREOFF fill: ${events.map((e) => e.type).join(",")}`);
    const fill = fills[0]!;
    const order = (await broker.getOrderbook()).find((o) => o.tag === "SQUAREOFF");
    assert.ok(order !== undefined);
    return [
      fill.timestamp,
      fill.trades?.[0]?.timestamp ?? "no trade",
      fill.order.placed_at,
      order.placed_at,
      order.timestamp,
    ];
  }

  // Closed at `closeAfter` minutes past the open, reopened `reopenAfter` minutes past it (15:20 is
  // 365 minutes past 09:15); then the clock runs on to 15:25.
  const cases = [
    { name: "closed over 15:20, reopened at 15:22", closeAfter: 355, reopenAfter: 367 },
    { name: "closed over 15:20, reopened at 15:29", closeAfter: 60, reopenAfter: 374 },
    { name: "reopened at 15:10, live at 15:20", closeAfter: 300, reopenAfter: 355 },
  ];
  for (const c of cases) {
    it(`stamps the square-off at 15:20 IST when ${c.name}, and a later reopen reads it so`, async function () {
      const clock = new ManualClock();
      let broker = journaled(clock);
      await broker.connect();
      broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
      const buy = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 90,
        order_type: "MARKET",
        product: "MIS",
      });
      assert.equal(buy.status, "FILLED");
      clock.advance(c.closeAfter * MINUTE);
      await broker.close();
      clock.advance((c.reopenAfter - c.closeAfter) * MINUTE);
      broker = journaled(clock);
      const events: OrderEvent[] = [];
      broker.on("order", (e) => events.push(e));
      await broker.connect();
      clock.advance((370 - c.reopenAfter) * MINUTE);
      await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        order_type: "LIMIT",
        price: 1400,
        product: "CNC",
      });
      await broker.flush();
      try {
        const mis = (await broker.getPositions()).find((p) => p.product === "MIS");
        assert.equal(mis?.quantity, 0, "MIS position squared off");
        assert.deepEqual(await squareOffStamps(broker, events), Array(5).fill(SQUARE_OFF));
      } finally {
        await broker.close();
      }
      // The journal carries it too.
      broker = journaled(clock);
      await broker.connect();
      try {
        const order = (await broker.getOrderbook()).find((o) => o.tag === "SQUAREOFF");
        assert.equal(order?.placed_at, SQUARE_OFF);
        assert.equal(order?.timestamp, SQUARE_OFF);
      } finally {
        await broker.close();
      }
    });
  }
});
