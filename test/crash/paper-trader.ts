// A child process that trades on a journaled paper account as fast as it can and prints, the
// moment it happens, every event it hears (E/G) and every order it is told was taken (A). The
// crash test SIGKILLs it at random moments and checks the journal against what it printed. Writes
// to a pipe are synchronous on Linux, so a printed line is never lost with the process.
import fs from "node:fs";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { seededRandom } from "../../lib/paper/random";
import type { OrderRequestInput } from "../../lib/protocol";

const [file = "", seedText = "1", tag = "t"] = process.argv.slice(2);
const random = seededRandom(Number(seedText));
const out = (line: string) => fs.writeSync(1, `${line}\n`);

export const TRADER_SETTINGS = {
  volatility: 0.01,
  interval_ms: 10,
  spread_bps: 10,
  slippage_bps: 5,
  retention: 1_000_000,
  max_fill_per_quote: 3,
  starting_cash: 1e9,
};

async function main(): Promise<void> {
  const broker = new PaperBroker(
    { ...TRADER_SETTINGS, seed: Number(seedText) },
    { journalFile: file, compactEvery: 300 },
  );
  broker.on("order", (e) =>
    out(`E ${e.seq} ${e.order.order_id} ${e.order.client_order_id} ${e.type} ${e.order.status}`),
  );
  broker.on("gtt", (e) => out(`G ${e.seq} ${e.gtt.gtt_id} ${e.type}`));
  await broker.connect();
  out("READY");
  const live: string[] = [];
  for (let n = 0; ;) {
    const ops: Promise<unknown>[] = [];
    for (let k = 0; k < 8; k++) {
      const clientId = `${tag}x${n++}`;
      const symbol = random() < 0.5 ? "INFY" : "TCS";
      const side = random() < 0.5 ? "BUY" : "SELL";
      const roll = random();
      const request: OrderRequestInput =
        roll < 0.4
          ? { symbol, side, quantity: 1 + Math.floor(random() * 5), client_order_id: clientId }
          : {
              symbol,
              side,
              quantity: 1 + Math.floor(random() * 5),
              order_type: "LIMIT",
              price: Math.round((95 + random() * 10) * 100) / 100,
              validity: roll > 0.9 ? "IOC" : "DAY",
              client_order_id: clientId,
            };
      ops.push(
        broker.placeOrder(request).then(
          (order) => {
            out(`A ${order.order_id} ${clientId}`);
            if (order.status === "OPEN") live.push(order.order_id);
          },
          () => undefined,
        ),
      );
      if (live.length > 0 && random() < 0.3) {
        const id = live.splice(Math.floor(random() * live.length), 1)[0]!;
        ops.push(
          (random() < 0.5
            ? broker.cancelOrder(id)
            : broker.modifyOrder(id, { price: Math.round((95 + random() * 10) * 100) / 100 })
          ).catch(() => undefined),
        );
      }
    }
    await Promise.all(ops);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    out(`FAILED ${(error as Error).message}`);
    process.exit(2);
  });
}
