// Attack (atk10): a strategy's nodes in a real Node-RED trade through the pack's gateway over a slow
// link that drops frames, while the gateway restarts ten times and the user deploys in between
// (nodes-only, flows and full deploys). The oracle reads only the node outputs: every order message
// gets exactly one outcome (an order on "out" or an error on "caught"), every fill the account made
// reaches the order-events node exactly once and in the account's order, and the quotes node keeps
// quoting after each restart.
import assert from "node:assert/strict";
import type { OrderEvent } from "../../lib/protocol";
import { seededRandom } from "../../lib/paper/random";
import { JitterProxy } from "../support/jitter-proxy";
import type { PaperHost } from "../support/paper-host";
import { TEST_SECRET } from "../support/gateway-client";
import type { FlowNode, Received } from "../nodes/support";
import { TAB, WARN, collect, delay, getNode, helper, logged } from "../nodes/support";
import { NODES, assertNeverLogged, until } from "../nodes/remote-support";
import { gatewayConfig, gatewayCredentials, gatewayHostPerTest } from "../support/gateway-host";

const FILLS = new Set(["ORDER_FILLED", "ORDER_PARTIALLY_FILLED"]);

function flow(url: string, round: number): FlowNode[] {
  return [
    { id: TAB, type: "tab", label: "strategy" },
    gatewayConfig(url, {
      name: `gateway ${round}`,
      reconnect_max_ms: "200",
      queue_ttl_ms: "1500",
      request_timeout_ms: "1500",
      heartbeat_ms: "500",
    }),
    { id: "p1", type: "trading-place-order", z: TAB, name: `order ${round}`, broker: "b1", wires: [["out"]] },
    { id: "e1", type: "trading-order-events", z: TAB, name: "", broker: "b1", wires: [["events"]] },
    {
      id: "q1",
      type: "trading-quotes",
      z: TAB,
      name: "",
      broker: "b1",
      symbols: "INFY",
      wires: [["quotes"]],
    },
    { id: "c1", type: "catch", z: TAB, scope: null, uncaught: false, wires: [["caught"]] },
    { id: "out", type: "helper", z: TAB },
    { id: "events", type: "helper", z: TAB },
    { id: "quotes", type: "helper", z: TAB },
    { id: "caught", type: "helper", z: TAB },
  ];
}

/** Messages on a helper node, kept across deploys that replace it (call follow() after one). */
function lasting(id: string): { messages: Received[]; follow(): void; stop(): void } {
  const messages: Received[] = [];
  let current = collect(id);
  let seen = 0;
  const take = (): void => {
    messages.push(...current.messages.slice(seen));
    seen = current.messages.length;
  };
  return {
    get messages(): Received[] {
      take();
      return messages;
    },
    follow() {
      take();
      current.stop();
      current = collect(id);
      seen = 0;
    },
    stop() {
      take();
      current.stop();
    },
  };
}

const CREDENTIALS = gatewayCredentials;

describe("nodes over a gateway that restarts ten times behind a lossy link (atk10)", function () {
  this.timeout(120_000);
  let host: PaperHost | undefined;
  let proxy: JitterProxy | undefined;
  const hosts = gatewayHostPerTest({
    stop: async () => {
      await proxy?.close();
      proxy = undefined;
    },
  });

  // ATK_SEEDS=1,2,3 repeats other runs.
  const seeds = (process.env.ATK_SEEDS ?? "11,12").split(",").map(Number);
  for (const seed of seeds) {
    it(`seed ${seed}: one outcome per order, each fill once and in order, quotes after every restart`, async function () {
      const random = seededRandom(seed);
      host = await hosts.start();
      proxy = await JitterProxy.start(host.port, { minMs: 0, maxMs: 25, random });
      const made: OrderEvent[] = [];
      host.paper.on("order", (event: OrderEvent) => made.push(event));

      await helper.load(NODES, flow(proxy.url, 0), CREDENTIALS());
      const out = lasting("out");
      const caught = lasting("caught");
      const events = lasting("events");
      const quotes = lasting("quotes");
      const sent: string[] = [];
      let price = 100;

      async function quoteArrives(what: string): Promise<void> {
        const before = quotes.messages.length;
        await until(
          () => {
            price = price === 100 ? 100.05 : 100;
            host!.paper.setPrice("INFY", price);
            return quotes.messages.length > before;
          },
          () => `${what}: no quote reached the flow`,
          15_000,
        );
      }

      function placeSome(round: number, count: number): void {
        for (let i = 0; i < count; i++) {
          const id = `s${seed}r${round}n${i}`;
          sent.push(id);
          const limit = random() < 0.5;
          getNode("p1").receive({
            _msgid: id,
            payload: {
              client_order_id: id,
              symbol: "INFY",
              side: random() < 0.5 ? "BUY" : "SELL",
              quantity: 1 + Math.floor(random() * 3),
              ...(limit ? { order_type: "LIMIT", price: random() < 0.5 ? 99.5 : 100.5 } : {}),
            },
          });
        }
      }

      await quoteArrives("first deploy");
      for (let round = 1; round <= 10; round++) {
        placeSome(round, 6);
        await delay(random() * 60);
        const how = round % 3;
        if (how === 0) proxy.loseNext(random() < 0.5 ? "down" : "up", 100);
        await host.stopGateway();
        placeSome(round + 100, 2);
        await delay(50 + random() * 150);
        // Resting limits cross as the price walks while the gateway is away.
        host.paper.setPrice("INFY", 99.5);
        host.paper.setPrice("INFY", 100.5);
        host.paper.setPrice("INFY", 100);
        await host.startGateway();
        if (round % 4 === 1) {
          const type = (["nodes", "flows", "full"] as const)[(round >> 2) % 3]!;
          await helper.setFlows(flow(proxy.url, round), type, CREDENTIALS());
          // A flows or full deploy starts the helper nodes again: listen on the new ones.
          for (const c of [out, caught, events, quotes]) c.follow();
        }
        await quoteArrives(`round ${round}`);
      }

      // An order in flight when a deploy closes p1 has its outcome logged, naming its client_order_id
      // (its wires lead nowhere by then); one sent in the very turn of the close may also arrive.
      const outcomesOf = (id: string): { sent: number; logged: number } => ({
        sent: [...out.messages, ...caught.messages].filter((m) => m._msgid === id).length,
        logged: logged("p1", WARN).filter(
          (line) => line.includes(`(${id})`) || line.includes(`client_order_id ${id}`),
        ).length,
      });
      await until(
        () => sent.every((id) => outcomesOf(id).sent + outcomesOf(id).logged > 0),
        () =>
          `no outcome for ${sent.filter((id) => outcomesOf(id).sent + outcomesOf(id).logged === 0).join(",")}`,
        20_000,
      );
      const key = (event: OrderEvent): string =>
        `${event.type} ${event.order.order_id} ${event.order.filled_quantity}`;
      const fillsMade = made.filter((event) => FILLS.has(event.type));
      await until(
        () =>
          events.messages.filter((m) => FILLS.has((m.payload as OrderEvent).type)).length >= fillsMade.length,
        () => {
          const seen = new Set(events.messages.map((m) => key(m.payload as OrderEvent)));
          const missing = fillsMade.filter((event) => !seen.has(key(event)));
          return `${events.messages.length} events on the flow for ${fillsMade.length} fills made; missing ${missing
            .map((e) => `${key(e)} seq ${e.seq}`)
            .join(
              "; ",
            )}; seen ${events.messages.map((m) => `${key(m.payload as OrderEvent)} seq ${(m.payload as OrderEvent).seq}`).join("; ")}`;
        },
        20_000,
      );
      await delay(500);
      for (const c of [out, caught, events, quotes]) c.stop();

      for (const id of sent) {
        const { sent: onWires, logged: inLog } = outcomesOf(id);
        assert.ok(onWires <= 1 && inLog <= 1, `${id}: ${onWires} outcomes sent, ${inLog} logged`);
        // A note in the log beside an outcome that still reached the flow (p1 closed by a nodes
        // deploy while its Catch stayed) is a note, not a second outcome.
        if (inLog === 1) {
          const line = logged("p1", WARN).find(
            (each) => each.includes(`(${id})`) || each.includes(`client_order_id ${id}`),
          );
          assert.match(line ?? "", /after the flow stopped|sent just as the flow stopped/, `${id}: ${line}`);
        }
      }
      const strays = [...out.messages, ...caught.messages].filter((m) => !sent.includes(String(m._msgid)));
      assert.equal(strays.length, 0, "no outcome for a message never sent");
      const fillsSeen = events.messages
        .map((m) => m.payload as OrderEvent)
        .filter((event) => FILLS.has(event.type));
      // Each fill once; one order's fills in the order they happened. A reconcile reports what it
      // found in the book under one seq, so across orders only the seq order is kept.
      assert.deepEqual(fillsSeen.map(key).sort(), fillsMade.map(key).sort(), "each fill once");
      const perOrder = (list: OrderEvent[]): Map<string, string[]> => {
        const map = new Map<string, string[]>();
        for (const event of list)
          map.set(event.order.order_id, [...(map.get(event.order.order_id) ?? []), key(event)]);
        return map;
      };
      assert.deepEqual(perOrder(fillsSeen), perOrder(fillsMade), "each order's fills in order");
      const seqs = events.messages.map((m) => (m.payload as OrderEvent).seq);
      for (let i = 1; i < seqs.length; i++)
        assert.ok(seqs[i]! >= seqs[i - 1]!, `seq ${seqs[i]} after ${seqs[i - 1]}`);
      assert.ok(fillsMade.length >= 10, `fills made: ${fillsMade.length}`);
      assertNeverLogged(TEST_SECRET);
    });
  }
});
