// What a caller or listener gets is a plain view, never the engine's order: with the journal on, a
// terminal order's view is built only when it is announced (lib/paper/views.ts laterView), so these
// check that the late view is still a copy, with exactly the fields of the snapshot and the state of
// the moment it reports.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import type { OrderEvent, OrderSnapshot } from "../../lib/protocol";
import { OrderSnapshot as OrderSnapshotSchema } from "../../lib/protocol/orders";

const ENGINE_FIELDS = ["reserved", "filled_value", "client_id_given", "release_at", "charges"];

function assertPlainView(view: OrderSnapshot, where: string): void {
  for (const field of ENGINE_FIELDS) assert.ok(!(field in view), `${where}: has engine field ${field}`);
  OrderSnapshotSchema.strict().parse(view);
}

for (const journaled of [false, true]) {
  describe(`PaperBroker views ${journaled ? "with" : "without"} the journal`, function () {
    let dir: string;
    let broker: PaperBroker;
    const events: OrderEvent[] = [];

    beforeEach(async function () {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-views-"));
      events.length = 0;
      broker = new PaperBroker(
        { volatility: 0, spread_bps: 0, slippage_bps: 0, retention: 50 },
        journaled ? { journalFile: path.join(dir, "a.jsonl") } : {},
      );
      await broker.connect();
      broker.setPrice("INFY", 100);
      broker.on("order", (event) => events.push(event));
    });
    afterEach(async function () {
      await broker.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it("hands out copies with the snapshot's fields only, each as of its own moment", async function () {
      // Many at once, so they share a write; past the retention, so views outlive their orders.
      const placed = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          broker.placeOrder({ symbol: "INFY", side: i % 2 === 0 ? "BUY" : "SELL", quantity: 1 + (i % 3) }),
        ),
      );
      assert.equal(events.length, 400);
      for (const [i, order] of placed.entries()) {
        assertPlainView(order, `result ${i}`);
        assert.equal(order.status, "FILLED");
        assert.equal(order.filled_quantity, 1 + (i % 3));
      }
      for (const [i, event] of events.entries()) {
        assertPlainView(event.order, `event ${i}`);
        assert.equal(event.order.status, i % 2 === 0 ? "OPEN" : "FILLED", `event ${i} ${event.type}`);
        assert.equal(event.order.filled_quantity, i % 2 === 0 ? 0 : event.order.quantity);
        assert.notEqual(event.order, placed[i >> 1], "an event shares its view with the result");
      }
      // Changing what was handed out changes nothing inside.
      const last = placed[placed.length - 1]!;
      last.status = "REJECTED";
      last.filled_quantity = 0;
      events[events.length - 1]!.order.average_price = 1;
      const inside = await broker.getOrder(last.order_id);
      assert.equal(inside.status, "FILLED");
      assert.equal(inside.average_price, 100);
    });

    it("a resting order's result stays as placed when a quote fills it before the answer", async function () {
      const resting = broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 5,
        order_type: "LIMIT",
        price: 99,
      });
      // A few microtasks place it; the journal's fsync (I/O) cannot finish in them, so with the journal
      // on this quote fills the order before its answer is let out.
      for (let i = 0; i < 20; i += 1) await Promise.resolve();
      assert.equal(events.length, journaled ? 0 : 1);
      broker.setPrice("INFY", 98);
      const order = await resting;
      assertPlainView(order, "result");
      assert.equal(order.status, "OPEN");
      assert.equal(order.filled_quantity, 0);
      await broker.flush();
      const filled = events.find((e) => e.type === "ORDER_FILLED");
      assert.ok(filled !== undefined);
      assertPlainView(filled.order, "fill event");
      assert.equal(filled.order.status, "FILLED");
      const cancelled = await broker
        .cancelOrder(order.order_id)
        .then(() => "cancelled")
        .catch((error: { code?: string }) => error.code);
      assert.equal(cancelled, "ORDER_TERMINAL");
      assert.equal(events[0]!.order.status, "OPEN");
    });
  });
}
