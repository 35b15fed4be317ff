import assert from "node:assert/strict";
import { seededRandom } from "../../lib/paper/random";
import type { PaperBroker } from "../../lib/brokers/paper-broker";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import { isTerminal } from "../../lib/protocol/orders";
import type { Guarded } from "../../lib/risk/guard";
import { guardBroker } from "../../lib/risk/guard";
import { classify, fastSettings, useCleanup } from "../support/broker-chaos";
import { PaperHost } from "../support/paper-host";
import { waitFor } from "../support/wait";
import { WsTamperProxy } from "../support/ws-tamper-proxy";

const SEED = Number(process.env.RISK_RACE_SEED ?? 20261205);

/** The gateway's account: net INFY plus every open BUY's remaining quantity. */
async function worstBuy(paper: PaperBroker): Promise<number> {
  const net = (await paper.getPositions()).reduce((sum, p) => sum + p.quantity, 0);
  let open = 0;
  for (const order of await paper.getOrderbook()) {
    if (!isTerminal(order.status) && order.side === "BUY") open += order.quantity - order.filled_quantity;
  }
  return net + open;
}

describe(`RiskGuard over a WebSocket broker whose answers are lost (seed ${SEED})`, function () {
  this.timeout(30_000);
  const cleanup = useCleanup();

  it("counts a placement whose outcome stayed unknown as exposure until the book shows it (4 rounds)", async function () {
    const random = seededRandom(SEED);
    for (let round = 0; round < 4; round++) {
      const host = await PaperHost.start();
      cleanup(() => host.close());
      const relay = await WsTamperProxy.start(host.url);
      cleanup(() => relay.close());
      // While dark, nothing comes down: answers, events and lookups' answers are all lost, but
      // requests still reach the gateway (a link that died just after sending).
      let dark = false;
      relay.tap = (direction) => (dark && direction === "down" ? null : undefined);
      const ws = new WebSocketBroker(
        fastSettings(relay.url, { heartbeat_ms: 10_000, request_timeout_ms: 100, resolve_window_ms: 300 }),
      );
      const limit = 100;
      const broker: Guarded<WebSocketBroker> = guardBroker(ws, {
        settings: { max_position_quantity: limit },
      });
      cleanup(() => broker.close());
      await broker.connect();
      const first = 51 + Math.floor(random() * 40);
      const order = {
        symbol: "INFY",
        side: "BUY",
        order_type: "LIMIT",
        price: 90,
      } as const;

      dark = true;
      const lost = await classify(broker.placeOrder({ ...order, quantity: first }));
      assert.equal(lost.kind, "failed", `round ${round}: the placement's outcome was reported known`);
      assert.equal(lost.kind === "failed" && lost.error.code, "NETWORK");
      assert.equal(await worstBuy(host.paper), first, "the lost placement reached the gateway");

      // Unknown is not "failed": room for only limit - first remains.
      const over = await classify(broker.placeOrder({ ...order, quantity: limit - first + 1 }));
      assert.equal(
        over.kind === "failed" && over.error.code,
        "RISK",
        `round ${round}: an order over the limit went out while ${first} was unknown`,
      );
      assert.match(over.kind === "failed" ? over.error.message : "", /max_position_quantity/);

      dark = false;
      const reconnects = ws.stats.reconnects;
      relay.cutAll();
      await waitFor(() => ws.stats.reconnects > reconnects, "the reconnect", 5000);
      // The reseed reads the order from the book; it then counts once, as open, not twice.
      await waitFor(
        () => broker.risk.exposure().some((row) => row.instrument === "NSE:INFY" && row.buy === first),
        `round ${round}: the guard to count ${first} once`,
        5000,
      );
      const fits = await classify(broker.placeOrder({ ...order, quantity: limit - first }));
      assert.equal(
        fits.kind,
        "accepted",
        `round ${round}: ${fits.kind === "failed" ? fits.error.message : ""}`,
      );
      const oneMore = await classify(broker.placeOrder({ ...order, quantity: 1 }));
      assert.equal(oneMore.kind === "failed" && oneMore.error.code, "RISK");
      assert.ok((await worstBuy(host.paper)) <= limit, `round ${round}: the account passed ${limit}`);
      await broker.close();
    }
  });
});
