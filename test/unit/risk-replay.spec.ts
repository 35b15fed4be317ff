import assert from "node:assert/strict";
import type { BrokerInterface } from "../../lib/brokers/interface";
import { KiteBroker } from "../../lib/brokers/kite-broker";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import type { OrderSnapshot, Position } from "../../lib/protocol";
import { isTerminal } from "../../lib/protocol";
import type { Guarded } from "../../lib/risk/guard";
import { guardBroker } from "../../lib/risk/guard";
import { FakeKite } from "../fakes/fake-kite";
import { fastSettings, useCleanup } from "../support/broker-chaos";
import { PaperHost } from "../support/paper-host";
import { waitFor } from "../support/wait";
import { WsTamperProxy } from "../support/ws-tamper-proxy";

type Row = { instrument: string; net: number; buy: number; sell: number };

/** What the guard should hold: the account's own positions and the rest of its open orders. */
function truth(positions: readonly Position[], book: readonly OrderSnapshot[]): Row[] {
  const rows = new Map<string, Row>();
  const row = (exchange: string, symbol: string): Row => {
    const instrument = `${exchange}:${symbol}`;
    let r = rows.get(instrument);
    if (r === undefined) {
      r = { instrument, net: 0, buy: 0, sell: 0 };
      rows.set(instrument, r);
    }
    return r;
  };
  for (const p of positions) row(p.exchange, p.symbol).net += p.quantity;
  for (const o of book) {
    if (isTerminal(o.status)) continue;
    const r = row(o.exchange, o.symbol);
    if (o.side === "BUY") r.buy += o.quantity - o.filled_quantity;
    else r.sell += o.quantity - o.filled_quantity;
  }
  return sorted([...rows.values()].filter((r) => r.net !== 0 || r.buy !== 0 || r.sell !== 0));
}

function sorted(rows: Row[]): Row[] {
  return [...rows].sort((a, b) => a.instrument.localeCompare(b.instrument));
}

async function accountTruth(broker: BrokerInterface): Promise<Row[]> {
  return truth(await broker.getPositions(), await broker.getOrderbook());
}

/** A small seeded generator, so a failing cycle can be replayed from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("RiskGuard: replayed and synthesized fills after a reconnect count once", function () {
  this.timeout(120_000);
  const cleanup = useCleanup();

  it("holds the account's real positions and open orders over 20 reconnect cycles (WebSocket, gateway on 127.0.0.1)", async function () {
    const seed = 20261204;
    const rnd = random(seed);
    const host = await PaperHost.start();
    cleanup(() => host.close());
    host.paper.setPrice("TCS", 200);
    const proxy = await WsTamperProxy.start(host.url);
    cleanup(() => proxy.close());
    // Swallowing event frames on a live link makes the client repair a seq gap (RESUME).
    let swallow = 0;
    proxy.tap = (direction, text) => {
      if (direction !== "down" || !text.includes('"type":"EVENT"') || rnd() >= swallow) return undefined;
      const parsed = JSON.parse(text) as Record<string, unknown> | Record<string, unknown>[];
      const kept = (Array.isArray(parsed) ? parsed : [parsed]).filter((m) => m.type !== "EVENT");
      return kept.length === 0 ? null : JSON.stringify(kept.length === 1 ? kept[0] : kept);
    };
    const ws = new WebSocketBroker(fastSettings(proxy.url));
    const broker: Guarded<WebSocketBroker> = guardBroker(ws);
    cleanup(() => broker.close());
    await broker.connect();
    const symbols = [
      { symbol: "INFY", price: 100 },
      { symbol: "TCS", price: 200 },
    ];

    for (let cycle = 0; cycle < 20; cycle++) {
      const label = `cycle ${cycle} (seed ${seed})`;
      swallow = rnd() < 0.3 ? 0.5 : 0;
      // Through the guard: orders that rest (to fill while the link is down) and some that fill now.
      for (const { symbol, price } of symbols) {
        await broker.placeOrder({
          symbol,
          side: "BUY",
          quantity: 1 + Math.floor(rnd() * 5),
          order_type: "LIMIT",
          price: price - 1,
        });
        await broker.placeOrder({
          symbol,
          side: "SELL",
          quantity: 1 + Math.floor(rnd() * 5),
          order_type: "LIMIT",
          price: price + 1,
        });
        if (rnd() < 0.5) {
          await broker.placeOrder({
            symbol,
            side: rnd() < 0.5 ? "BUY" : "SELL",
            quantity: 1 + Math.floor(rnd() * 3),
          });
        }
      }
      swallow = 0;
      // The link goes: either the connection is cut, or the gateway itself restarts (its replay
      // buffer then starts empty and the client reconciles from the order book, synthesizing fills).
      const restart = rnd() < 0.4;
      if (restart) await host.stopGateway();
      else proxy.cutAll();
      // Meanwhile the account moves: resting orders fill, other orders are placed straight on it.
      for (const { symbol, price } of symbols) {
        const move = rnd();
        if (move < 0.35) host.paper.setPrice(symbol, price - 2);
        else if (move < 0.7) host.paper.setPrice(symbol, price + 2);
        await sleep(Math.floor(rnd() * 30));
        host.paper.setPrice(symbol, price);
        if (rnd() < 0.6) {
          await host.paper.placeOrder({
            symbol,
            side: rnd() < 0.5 ? "BUY" : "SELL",
            quantity: 1 + Math.floor(rnd() * 4),
          });
        }
      }
      await sleep(Math.floor(rnd() * 60));
      if (restart) await host.startGateway();
      await waitFor(
        () => ws.state === "connected" && ws.lastSeq >= host.paper.lastSeq,
        `${label}: the client to reconnect and catch up`,
        10_000,
      );
      const expected = await accountTruth(host.paper);
      let held: Row[] = [];
      await waitFor(
        () => {
          held = sorted(broker.risk.exposure());
          return JSON.stringify(held) === JSON.stringify(expected);
        },
        `${label}: the guard to hold the account's exposure`,
        5000,
      ).catch((error: Error) => {
        assert.deepEqual(held, expected, `${label}: ${error.message}`);
      });
      // Whatever is still on its way (late replays, synthesized events) must not move it again.
      await sleep(20 + Math.floor(rnd() * 80));
      assert.deepEqual(sorted(broker.risk.exposure()), await accountTruth(host.paper), `${label}: later`);
    }
  });

  it("does not lose a fill that lands between the positions read and the order-book read (paper, 20 trials)", async function () {
    const rnd = random(7);
    for (let trial = 0; trial < 20; trial++) {
      const paper = new PaperBroker({ seed: trial, volatility: 0, spread_bps: 0, slippage_bps: 0 });
      await paper.connect();
      paper.setPrice("INFY", 100);
      // History before the guard starts: a position and a resting order.
      await paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 3 });
      await paper.placeOrder({ symbol: "INFY", side: "SELL", quantity: 2, order_type: "LIMIT", price: 103 });
      // A fill lands right after each of the first `races` positions reads, before the book is read.
      let races = 1 + Math.floor(rnd() * 3);
      const raced: string[] = [];
      const getPositions = paper.getPositions.bind(paper);
      paper.getPositions = async () => {
        const positions = await getPositions();
        if (races > 0) {
          races -= 1;
          const side = rnd() < 0.5 ? "BUY" : "SELL";
          raced.push((await paper.placeOrder({ symbol: "INFY", side, quantity: 1 + trial })).order_id);
        }
        return positions;
      };
      const broker = guardBroker(paper);
      try {
        await broker.connect();
        assert.ok(raced.length > 0, "the race was run");
        assert.deepEqual(
          sorted(broker.risk.exposure()),
          await accountTruth(paper),
          `trial ${trial}: ${raced.length} fills raced the seed`,
        );
      } finally {
        await broker.close();
      }
    }
  });

  it("does not lose a fill that lands between the seed's reads on Kite (fake Kite on 127.0.0.1, 5 trials)", async function () {
    const rnd = random(11);
    for (let trial = 0; trial < 5; trial++) {
      const fake = await FakeKite.start();
      cleanup(() => fake.close());
      fake.setPrice("NSE:INFY", 1500);
      // History on the account: a position, and an order resting below the market.
      await fake.paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 4 });
      await fake.paper.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 2,
        order_type: "LIMIT",
        price: 1400,
      });
      const kite = new KiteBroker(
        KiteSettings.parse({
          api_key: fake.apiKey,
          access_token: fake.accessToken,
          root: fake.restUrl,
          ticker_url: fake.tickerUrl,
        }),
      );
      let races = 1 + Math.floor(rnd() * 2);
      const raced: string[] = [];
      const getPositions = kite.getPositions.bind(kite);
      kite.getPositions = async () => {
        const positions = await getPositions();
        if (races > 0) {
          races -= 1;
          // Straight on the account, as another app or the Kite web would.
          const side = rnd() < 0.5 ? "BUY" : "SELL";
          raced.push((await fake.paper.placeOrder({ symbol: "INFY", side, quantity: 1 + trial })).order_id);
        }
        return positions;
      };
      const broker = guardBroker(kite);
      cleanup(() => broker.close());
      await broker.connect();
      assert.ok(raced.length > 0, "the race was run");
      const expected = await accountTruth(kite);
      let held: Row[] = [];
      // The order updates of the raced fills may still be on their way: they must not count again.
      await waitFor(
        () => {
          held = sorted(broker.risk.exposure());
          return JSON.stringify(held) === JSON.stringify(expected);
        },
        `trial ${trial}: the guard to hold the account's exposure`,
        5000,
      ).catch((error: Error) => assert.deepEqual(held, expected, error.message));
      await sleep(100);
      assert.deepEqual(sorted(broker.risk.exposure()), await accountTruth(kite), `trial ${trial}: later`);
    }
  });
});
