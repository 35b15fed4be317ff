// Issue 12's invariants as fast-check properties over the PaperBroker's public API: status
// sequences, fill prices by the rules, admission on place and modify (cash and CNC holdings never
// negative), the cash identity to the paisa, exactly one terminal event, idempotency, IOC never
// resting, and a journaled broker reopened at random points = its never-restarted twin. Each runs
// twice: in the relaxed market, and under NSE's rules (settings.market "nse": charges in the cash
// identity, finite liquidity, Kite's margin, tick and band admission).
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { PaperSettingsInput } from "../../lib/paper/settings";
import type { OrderEvent, OrderRequestInput, OrderSnapshot } from "../../lib/protocol";
import { canTransition } from "../../lib/protocol/state-machine";
import { isTerminal } from "../../lib/protocol/orders";

const SYMBOLS = ["INFY", "TCS"] as const;
const START = 100_000;
const SETTINGS: PaperSettingsInput = {
  seed: 1,
  volatility: 0,
  spread_bps: 0,
  slippage_bps: 0,
  interval_ms: 86_400_000,
  starting_cash: START,
};

type Command =
  | { kind: "quote"; symbol: number; paise: number; spread: number }
  | {
      kind: "place";
      symbol: number;
      side: "BUY" | "SELL";
      quantity: number;
      type: "MARKET" | "LIMIT" | "SL" | "SL-M";
      offset: number;
      gap: number;
      product: "CNC" | "MIS";
      validity: "DAY" | "IOC";
      clientId: number;
    }
  | {
      kind: "modify";
      pick: number;
      quantity: number | undefined;
      offset: number | undefined;
      validity: "DAY" | "IOC" | undefined;
    }
  | { kind: "cancel"; pick: number }
  | { kind: "reopen" };

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("quote" as const),
      symbol: fc.nat(1),
      paise: fc.integer({ min: 9000, max: 11000 }),
      spread: fc.nat(30),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("place" as const),
      symbol: fc.nat(1),
      side: fc.constantFrom("BUY" as const, "SELL" as const),
      quantity: fc.integer({ min: 1, max: 40 }),
      type: fc.constantFrom("MARKET" as const, "LIMIT" as const, "SL" as const, "SL-M" as const),
      offset: fc.integer({ min: -300, max: 300 }),
      gap: fc.integer({ min: 1, max: 300 }),
      product: fc.constantFrom("CNC" as const, "MIS" as const),
      validity: fc.constantFrom("DAY" as const, "DAY" as const, "IOC" as const),
      clientId: fc.integer({ min: -1, max: 6 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("modify" as const),
      pick: fc.nat(),
      quantity: fc.option(fc.integer({ min: 1, max: 80 }), { nil: undefined }),
      offset: fc.option(fc.integer({ min: -300, max: 300 }), { nil: undefined }),
      validity: fc.option(fc.constantFrom("DAY" as const, "IOC" as const), { nil: undefined }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("cancel" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("reopen" as const) }) },
);

const rupees = (paise: number) => paise / 100;

/** Every run starts with both instruments priced, so orders have something to fill against. */
const OPENING: Command[] = [
  { kind: "quote", symbol: 0, paise: 10_000, spread: 5 },
  { kind: "quote", symbol: 1, paise: 10_000, spread: 0 },
];

/** What the runs exercised, so a property that passes by doing nothing is caught. */
const tally = {
  operations: 0,
  fills: 0,
  rejected: 0,
  refusedModifies: 0,
  reopens: 0,
  duplicates: 0,
  walkQuotes: 0,
  charged: 0,
  depthFills: 0,
};

/** The fill a quote offers under NSE's rules: the touch moved onto the 0.05 tick against the taker. */
function tickTouch(side: "BUY" | "SELL", rupeesPrice: number): number {
  const paise = Math.round(rupeesPrice * 100);
  return (side === "BUY" ? Math.ceil(paise / 5) * 5 : Math.floor(paise / 5) * 5) / 100;
}

/** Runs the commands on one broker, checking every invariant after each; returns its final state. */
class Driver {
  readonly events: OrderEvent[] = [];
  readonly #last = new Map<string, { bid: number; ask: number; last: number }>();
  readonly #clientIds = new Map<string, string>();
  broker: PaperBroker;
  readonly #make: () => PaperBroker;
  readonly #nse: boolean;
  /** Under NSE's rules: the size a quote offers at its touch (and at each of 5 levels behind it). */
  readonly #touch: number;

  /** `touch`: the market is NSE's, with this touch size; absent: relaxed. */
  constructor(make: () => PaperBroker, touch?: number) {
    this.#make = make;
    this.#nse = touch !== undefined;
    this.#touch = touch ?? 0;
    this.broker = this.#listen(make());
  }

  #listen(broker: PaperBroker): PaperBroker {
    broker.on("order", (event) => this.events.push(event));
    // Quotes outside a "quote" command are the walk's steps.
    broker.on("quote", (quote) => {
      if (this.#quoting) return;
      tally.walkQuotes++;
      // Later fills are checked against the price the walk moved to.
      const last = quote.last_price;
      this.#last.set(quote.symbol, { bid: quote.bid ?? last, ask: quote.ask ?? last, last });
    });
    return broker;
  }

  #quoting = false;

  /** Connects and subscribes to every symbol, as a flow does again after each restart. */
  async start(): Promise<void> {
    await this.broker.connect();
    await this.broker.subscribeQuotes([...SYMBOLS]);
  }

  async run(c: Command, reopen: boolean): Promise<void> {
    const broker = this.broker;
    tally.operations++;
    switch (c.kind) {
      case "quote": {
        const symbol = SYMBOLS[c.symbol]!;
        const bid = rupees(c.paise - c.spread);
        const ask = rupees(c.paise + c.spread);
        this.#last.set(symbol, { bid, ask, last: rupees(c.paise) });
        const before = this.events.length;
        this.#quoting = true;
        try {
          broker.setPrice(symbol, rupees(c.paise), { bid, ask });
        } finally {
          this.#quoting = false;
        }
        await broker.flush();
        const filled = this.#checkFills(this.events.slice(before), { bid, ask });
        if (this.#nse) {
          // One quote offers its touch and 5 levels as large behind it, per side, to all orders together.
          const most = this.#touch * 6;
          assert.ok(filled.BUY <= most && filled.SELL <= most, `one quote filled ${JSON.stringify(filled)}`);
        }
        return;
      }
      case "place": {
        const symbol = SYMBOLS[c.symbol]!;
        const quote = this.#last.get(symbol);
        const base = Math.round((quote?.last ?? 100) * 100);
        const request: OrderRequestInput = {
          symbol,
          side: c.side,
          quantity: c.quantity,
          order_type: c.type,
          product: c.product,
          validity: c.validity,
        };
        if (c.type === "LIMIT") request.price = rupees(Math.max(1, base + c.offset));
        if (c.type === "SL" || c.type === "SL-M") {
          // On the right side of the market; an SL's limit at or beyond its trigger.
          const trigger = c.side === "BUY" ? base + c.gap : Math.max(2, base - c.gap);
          request.trigger_price = rupees(trigger);
          if (c.type === "SL")
            request.price = rupees(
              c.side === "BUY" ? trigger + Math.abs(c.offset) : Math.max(1, trigger - Math.abs(c.offset)),
            );
        }
        if (c.clientId >= 0) request.client_order_id = `cid${c.clientId}`;
        const before = this.events.length;
        try {
          const order = await broker.placeOrder(request);
          if (request.client_order_id !== undefined) {
            const earlier = this.#clientIds.get(request.client_order_id);
            if (earlier !== undefined)
              assert.equal(order.order_id, earlier, "a repeated client_order_id answers with the same order");
            this.#clientIds.set(request.client_order_id, order.order_id);
          }
        } catch (error) {
          assert.equal((error as { code?: string }).code, "DUPLICATE_ORDER", (error as Error).message);
          tally.duplicates++;
        }
        tally.rejected += this.events.slice(before).filter((e) => e.type === "ORDER_REJECTED").length;
        if (quote !== undefined) this.#checkFills(this.events.slice(before), quote);
        return;
      }
      case "modify":
      case "cancel": {
        const live = (await broker.getOrderbook()).filter((o) => !isTerminal(o.status));
        const order = live[c.pick % Math.max(1, live.length)];
        if (order === undefined) return;
        const before = this.events.length;
        if (c.kind === "cancel") {
          await broker.cancelOrder(order.order_id);
          return;
        }
        const changes: Record<string, unknown> = {};
        if (c.quantity !== undefined) changes.quantity = c.quantity;
        if (c.validity !== undefined) changes.validity = c.validity;
        if (c.offset !== undefined && order.price !== undefined) {
          const price = Math.max(1, Math.round(order.price * 100) + c.offset);
          if (order.order_type === "LIMIT") changes.price = rupees(price);
        }
        if (Object.keys(changes).length === 0) return;
        try {
          await broker.modifyOrder(order.order_id, changes);
        } catch (error) {
          const code = (error as { code?: string }).code ?? "";
          assert.ok(
            ["VALIDATION", "INSUFFICIENT_FUNDS", "ORDER_REJECTED", "NO_QUOTE"].includes(code),
            (error as Error).message,
          );
          assert.equal(this.events.length, before, "a refused modify announces nothing");
          tally.refusedModifies++;
        }
        const quote = this.#last.get(order.symbol);
        if (quote !== undefined) this.#checkFills(this.events.slice(before), quote);
        return;
      }
      case "reopen": {
        if (!reopen) return;
        tally.reopens++;
        await broker.close();
        this.broker = this.#listen(this.#make());
        await this.start();
        return;
      }
    }
  }

  /**
   * Fill prices by the rules: the touch for MARKET, the touch or better within a limit; under
   * NSE's rules the touch is on the tick and a MARKET order may walk up to 5 ticks. Returns the
   * quantity filled per side.
   */
  #checkFills(events: OrderEvent[], quote: { bid: number; ask: number }): { BUY: number; SELL: number } {
    const filled = { BUY: 0, SELL: 0 };
    const filledBefore = new Map<string, { qty: number; value: number }>();
    for (const e of this.events) {
      if (events.includes(e)) break;
      filledBefore.set(e.order.order_id, {
        qty: e.order.filled_quantity,
        value: e.order.filled_quantity * e.order.average_price,
      });
    }
    for (const e of events) {
      const prior = filledBefore.get(e.order.order_id) ?? { qty: 0, value: 0 };
      const qty = e.order.filled_quantity - prior.qty;
      const value = e.order.filled_quantity * e.order.average_price;
      filledBefore.set(e.order.order_id, { qty: e.order.filled_quantity, value });
      if (qty <= 0) continue;
      tally.fills++;
      filled[e.order.side] += qty;
      const price = Math.round(((value - prior.value) / qty) * 100) / 100;
      const raw = e.order.side === "BUY" ? quote.ask : quote.bid;
      const touch = this.#nse ? tickTouch(e.order.side, raw) : raw;
      const what = `${e.order.order_id} ${e.order.side} ${e.order.order_type} filled at ${price}, the touch is ${touch}`;
      if (this.#nse && (e.order.order_type === "MARKET" || e.order.order_type === "SL-M")) {
        const away = e.order.side === "BUY" ? price - touch : touch - price;
        assert.ok(away >= -1e-9 && away <= 0.25 + 1e-9, what);
        if (away > 1e-9) tally.depthFills++;
      } else {
        assert.equal(price, touch, what);
      }
      if (e.order.price !== undefined && e.order.order_type !== "SL-M") {
        assert.ok(
          e.order.side === "BUY" ? price <= e.order.price : price >= e.order.price,
          `fill ${price} beyond limit ${e.order.price}`,
        );
      }
    }
    return filled;
  }

  /** The invariants that hold between any two operations. */
  async checkInvariants(): Promise<void> {
    const broker = this.broker;
    const [account, positions, book] = [
      await broker.getAccount(),
      await broker.getPositions(),
      await broker.getOrderbook(),
    ];
    let held = 0;
    let realized = 0;
    let charges = 0;
    for (const p of positions) {
      held += p.quantity * p.average_price;
      realized += p.realized_pnl;
      charges += p.charges ?? 0;
      if (p.product === "CNC") assert.ok(p.quantity >= 0, `CNC ${p.symbol} sold short: ${p.quantity}`);
      if (this.#nse) {
        assert.ok(
          Math.round(
            ((p.net_pnl ?? Number.NaN) - (p.realized_pnl + p.unrealized_pnl - (p.charges ?? 0))) * 100,
          ) === 0,
          "net P&L = gross − charges",
        );
      }
    }
    if (charges > 0) tally.charged++;
    assert.equal(
      Math.round((account.cash + held - realized + charges) * 100),
      START * 100,
      "starting cash = cash + Σ qty × avg − Σ realized + Σ charges",
    );
    if (this.#nse) assert.equal(Math.round((account.charges ?? Number.NaN) * 100), Math.round(charges * 100));
    // With Kite's margin an MIS long is leveraged, so cash itself may go below zero; relaxed cannot.
    else assert.ok(account.cash >= 0, `cash went negative: ${account.cash}`);
    for (const order of book) {
      if (order.validity === "IOC")
        assert.ok(
          isTerminal(order.status) || order.status === "TRIGGER_PENDING",
          `IOC ${order.order_id} rests as ${order.status}`,
        );
    }
    // Status sequences and exactly one terminal event per order; seq rises by one.
    const byOrder = new Map<string, OrderSnapshot[]>();
    for (const [i, e] of this.events.entries()) {
      if (i > 0) assert.ok(e.seq > this.events[i - 1]!.seq, "seq rises");
      const list = byOrder.get(e.order.order_id) ?? [];
      list.push(e.order);
      byOrder.set(e.order.order_id, list);
    }
    for (const [id, list] of byOrder) {
      const terminal = list.filter((o) => isTerminal(o.status)).length;
      assert.ok(terminal <= 1, `${id}: ${terminal} terminal events`);
      for (let i = 1; i < list.length; i++) {
        assert.ok(
          canTransition(list[i - 1]!.status, list[i]!.status),
          `${id}: ${list[i - 1]!.status} → ${list[i]!.status}`,
        );
        assert.ok(!isTerminal(list[i - 1]!.status), `${id}: an event after its terminal one`);
      }
    }
  }

  async state(): Promise<unknown> {
    const broker = this.broker;
    return {
      account: await broker.getAccount(),
      positions: await broker.getPositions(),
      orders: (await broker.getOrderbook()).map(({ client_order_id, ...o }) => ({
        ...o,
        client: client_order_id.startsWith("cid") ? client_order_id : "auto",
      })),
      seq: broker.lastSeq,
    };
  }
}

describe("paper broker properties (fast-check)", function () {
  this.timeout(120_000);

  /** Runs random commands on one broker, checking every invariant after each. */
  async function invariants(touch: number | undefined, runs: number, seed: number): Promise<void> {
    const market: PaperSettingsInput["market"] =
      touch === undefined ? "relaxed" : { preset: "nse", liquidity: { default_touch_size: touch } };
    await fc.assert(
      fc.asyncProperty(
        fc.array(command, { minLength: 5, maxLength: 40 }),
        fc.boolean(),
        async (commands, partial) => {
          // 09:15 IST on a Monday: the NSE market is open for the whole run.
          const clock = new ManualClock();
          const driver = new Driver(
            () =>
              new PaperBroker(
                { ...SETTINGS, market, max_fill_per_quote: partial ? 7 : 0, retention: 10 },
                { clock },
              ),
            touch,
          );
          await driver.broker.connect();
          try {
            for (const c of [...OPENING, ...commands]) {
              await driver.run(c, false);
              await driver.checkInvariants();
            }
          } finally {
            await driver.broker.close();
          }
        },
      ),
      { numRuns: runs, seed },
    );
  }

  it("keeps every invariant over 1,000 seeds of random orders, quotes, modifies and cancels", async function () {
    await invariants(undefined, 1000, 20261204);
    assert.ok(
      tally.fills > 1000 && tally.rejected > 500 && tally.refusedModifies > 10,
      JSON.stringify(tally),
    );
  });

  it("under NSE's rules too: charges in the cash identity to the paisa, fills within the quote's liquidity (500 seeds)", async function () {
    const before = { ...tally };
    await invariants(20, 500, 20261205);
    const done = Object.fromEntries(
      Object.entries(tally).map(([k, v]) => [k, v - before[k as keyof typeof tally]]),
    );
    assert.ok(
      tally.fills - before.fills > 500 &&
        tally.charged - before.charged > 500 &&
        tally.depthFills - before.depthFills > 10 &&
        tally.rejected - before.rejected > 250,
      JSON.stringify(done),
    );
  });

  /** Reopens a journaled broker at random points and compares it with one that never restarted. */
  async function reopenedTwin(
    feed: PaperSettingsInput,
    step: number,
    seed: number,
    runs: number,
  ): Promise<void> {
    const root = fs.mkdtempSync(
      path.join(fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir(), "paper-twin-"),
    );
    let run = 0;
    const reopensBefore = tally.reopens;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(command, { minLength: 5, maxLength: 40 }),
          fc.boolean(),
          async (commands, partial) => {
            const file = path.join(root, `twin-${run++}.jsonl`);
            const settings = { ...SETTINGS, ...feed, max_fill_per_quote: partial ? 7 : 0, retention: 10 };
            const clock = new ManualClock();
            const touch = settings.market === "nse" ? 100 : undefined;
            const journaled = new Driver(
              () => new PaperBroker(settings, { clock, journalFile: file, compactEvery: 7 }),
              touch,
            );
            const twin = new Driver(() => new PaperBroker(settings, { clock }), touch);
            await journaled.start();
            await twin.start();
            try {
              for (const c of [...OPENING, ...commands]) {
                await journaled.run(c, true);
                await twin.run(c, false);
                clock.advance(step);
                // Fills the walk caused are announced once durable: before the next command checks its own.
                await journaled.broker.flush();
                await twin.broker.flush();
              }
              assert.deepEqual(await journaled.state(), await twin.state());
              await journaled.checkInvariants();
            } finally {
              await journaled.broker.close();
              await twin.broker.close();
            }
          },
        ),
        { numRuns: runs, seed },
      );
      assert.ok(tally.reopens - reopensBefore > runs * 0.6, JSON.stringify(tally));
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }

  it("a journaled broker reopened at random points behaves as its never-restarted twin (150 seeds)", async function () {
    await reopenedTwin({}, 1, 4121, 150);
  });

  // The walk steps every 30 ms while each command advances 10 ms, so a reopen lands between steps:
  // the reopened broker must draw the same numbers, for the same instruments, at the same times.
  it("with the random-walk feed moving prices, a reopened broker walks the same prices as its twin (150 seeds)", async function () {
    const walkedBefore = tally.walkQuotes;
    await reopenedTwin({ volatility: 0.01, spread_bps: 10, interval_ms: 30 }, 10, 5309, 150);
    assert.ok(tally.walkQuotes - walkedBefore > 1000, JSON.stringify(tally));
  });

  it("under NSE's rules, a reopened broker is its never-restarted twin, liquidity and charges included (150 seeds)", async function () {
    await reopenedTwin({ market: "nse" }, 1, 7001, 150);
  });

  it("under NSE's rules with the walk moving prices, a reopened broker is its twin (100 seeds)", async function () {
    await reopenedTwin({ market: "nse", volatility: 0.01, spread_bps: 10, interval_ms: 30 }, 10, 7002, 100);
  });
});
