// A gateway over a paper broker with no client_order_id memory of its own, started like the CLI:
// every placement reaches the broker under a fresh id, so only the gateway's idempotency index and
// its recovery stand between a retry after a crash and a second order.
import { parseArgs } from "node:util";
import type { BrokerInterface } from "../../lib/brokers/interface";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { Gateway } from "../../lib/gateway/gateway";
import type { OrderRequestInput, OrderSnapshot } from "../../lib/protocol";
import { TEST_KEY, TEST_SECRET } from "../support/gateway-client";

/** Ids in the crash test have no "Z": what follows the last one is this process's suffix. */
function original(order: OrderSnapshot): OrderSnapshot {
  const cut = order.client_order_id.lastIndexOf("Z");
  return cut < 0 ? order : { ...order, client_order_id: order.client_order_id.slice(0, cut) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string" },
      journal: { type: "string" },
      seed: { type: "string" },
      volatility: { type: "string" },
      rate: { type: "string" },
    },
  });
  const paper = new PaperBroker(
    { seed: Number(values.seed ?? 1), volatility: Number(values.volatility ?? 0) },
    { journalFile: values.journal! },
  );
  await paper.connect();
  const run = (Date.now() % 36 ** 5).toString(36);
  let next = 0;
  const overrides: Record<string, unknown> = {
    placeOrder: async (order: OrderRequestInput) =>
      original(
        await paper.placeOrder({
          ...order,
          client_order_id: `${order.client_order_id}Z${run}${(next++).toString(36)}`,
        }),
      ),
    getOrder: async (orderId: string) => original(await paper.getOrder(orderId)),
    getOrderbook: async () => (await paper.getOrderbook()).map(original),
  };
  const broker = new Proxy(paper, {
    get(target, prop) {
      if (typeof prop === "string" && prop in overrides) return overrides[prop];
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  }) as unknown as BrokerInterface;
  const rate = Number(values.rate ?? 1e6);
  const gateway = await Gateway.start({
    broker,
    port: Number(values.port ?? 0),
    credentials: new Map([
      [
        process.env.TRADING_GATEWAY_API_KEY ?? TEST_KEY,
        { secret: process.env.TRADING_GATEWAY_API_SECRET ?? TEST_SECRET },
      ],
    ]),
    durable: () => paper.flush(),
    idempotencyFile: `${values.journal!}.idempotency.jsonl`,
    rate: { perSecond: rate, burst: rate * 2 },
  });
  process.stdout.write(`gateway listening on ${gateway.url}\n`);
  process.on("SIGTERM", () => {
    void gateway
      .close()
      .then(() => paper.close())
      .then(() => process.exit(0));
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`forgetful gateway failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
