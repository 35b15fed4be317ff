import type { OrderSnapshot, Trade } from "../protocol";
import { toBrokerError } from "../protocol/errors";
import { MAX_TRADES_PER_EVENT } from "../protocol/trade";
import { sleep } from "../common/sleep";
import type { BrokerLogger } from "../brokers/logger";
import { parseKiteTimestamp } from "./time";

/** A fill event waiting for its trades: the order after the fill, and its filled quantity before. */
export interface FillToReport {
  order: OrderSnapshot;
  previousFilled: number;
}

/** Where trades are read from: one order's trades, or the day's (one call for many orders). */
export interface TradeSource {
  orderTrades(orderId: string): Promise<unknown>;
  dayTrades(): Promise<unknown>;
}

/** Kite lists a fill in its trade book a moment after the order shows it: look again this often. */
const LAG_RETRIES = 2;
const LAG_RETRY_MS = 250;

interface Reported {
  /** Quantity of the order's fills already reported (or already filled when we first saw it). */
  quantity: number;
  ids: Set<string>;
}

/** One Kite trade dict → a Trade; undefined when it lacks what a Trade needs. */
export function toTrade(raw: unknown): (Trade & { order_id: string }) | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const id = r.trade_id;
  const orderId = r.order_id;
  const quantity = Number(r.quantity);
  const price = Number(r.average_price ?? r.price);
  const timestamp = parseKiteTimestamp(r.fill_timestamp ?? r.exchange_timestamp);
  if (
    (typeof id !== "string" && typeof id !== "number") ||
    String(id) === "" ||
    String(id).length > 64 ||
    (typeof orderId !== "string" && typeof orderId !== "number") ||
    !Number.isInteger(quantity) ||
    quantity <= 0 ||
    !(price > 0) ||
    timestamp === undefined
  ) {
    return undefined;
  }
  return { trade_id: String(id), order_id: String(orderId), quantity, price, timestamp };
}

/**
 * Which of Kite's trades each fill event reports. Kite's order updates (postbacks, order book,
 * history) say only how much has filled; the trades themselves come from Kite's trade book. Each
 * event gets the order's trades after those already reported, up to its filled quantity, so every
 * trade is reported once, with the event whose fill it is, however many times (ticker, poll,
 * reconcile) the fill was seen. Memory per order ends when the order tracker forgets the order.
 */
export class TradeReporter {
  readonly #reported = new Map<string, Reported>();
  readonly #source: TradeSource;
  readonly #signal: AbortSignal;
  readonly #log: BrokerLogger;

  constructor(source: TradeSource, signal: AbortSignal, log: BrokerLogger) {
    this.#source = source;
    this.#signal = signal;
    this.#log = log;
  }

  /** Orders whose reporting state is held (bounded by the order tracker's retention). */
  get size(): number {
    return this.#reported.size;
  }

  forget(orderId: string): void {
    this.#reported.delete(orderId);
  }

  /**
   * The trades for each fill, in the same order (undefined: none could be learnt). One read of
   * the day's trades serves several fills; a fill Kite's trade book does not show yet is looked
   * for again a few times. A failed read leaves the events without trades rather than holding
   * them back: the order's fill itself is already known.
   */
  async collect(fills: FillToReport[]): Promise<(Trade[] | undefined)[]> {
    const out: Trade[][] = fills.map(() => []);
    const open = new Set<number>();
    fills.forEach((fill, i) => {
      const state = this.#state(fill);
      if (state.quantity < fill.order.filled_quantity) open.add(i);
    });
    for (let attempt = 0; open.size > 0 && !this.#signal.aborted; attempt++) {
      if (attempt > 0) {
        if (attempt > LAG_RETRIES) break;
        await sleep(LAG_RETRY_MS, this.#signal).catch(() => undefined);
        if (this.#signal.aborted) break;
      }
      let byOrder: Map<string, (Trade & { order_id: string })[]>;
      try {
        byOrder = await this.#read(Array.from(open, (i) => fills[i]!.order.order_id));
      } catch (error) {
        const err = toBrokerError(error);
        if (err.code !== "CLOSED") this.#log.warn(`reading Kite's trades: ${err.message}`);
        if (!err.retryable) break;
        continue;
      }
      for (const i of Array.from(open)) {
        const fill = fills[i]!;
        const list = out[i]!;
        this.#pick(fill, byOrder.get(fill.order.order_id) ?? [], list);
        const state = this.#reported.get(fill.order.order_id)!;
        if (state.quantity >= fill.order.filled_quantity || list.length >= MAX_TRADES_PER_EVENT)
          open.delete(i);
      }
    }
    return out.map((list) => (list.length === 0 ? undefined : list));
  }

  #state(fill: FillToReport): Reported {
    let state = this.#reported.get(fill.order.order_id);
    if (state === undefined) {
      state = { quantity: fill.previousFilled, ids: new Set() };
      this.#reported.set(fill.order.order_id, state);
    }
    return state;
  }

  /** Adds to `into` the order's next trades, oldest first, up to the event's filled quantity. */
  #pick(fill: FillToReport, trades: (Trade & { order_id: string })[], into: Trade[]): void {
    const state = this.#reported.get(fill.order.order_id)!;
    const sorted = trades
      .map((trade, i) => ({ trade, i, at: Date.parse(trade.timestamp) }))
      .sort((a, b) => a.at - b.at || a.i - b.i);
    let cumulative = 0;
    for (const { trade } of sorted) {
      const before = cumulative;
      cumulative += trade.quantity;
      if (state.ids.has(trade.trade_id) || before < state.quantity) continue;
      // A later fill than this event's: it goes with the event that reports it.
      if (cumulative > fill.order.filled_quantity || into.length >= MAX_TRADES_PER_EVENT) break;
      state.ids.add(trade.trade_id);
      state.quantity = cumulative;
      into.push({
        trade_id: trade.trade_id,
        quantity: trade.quantity,
        price: trade.price,
        timestamp: trade.timestamp,
      });
    }
  }

  async #read(orderIds: string[]): Promise<Map<string, (Trade & { order_id: string })[]>> {
    const reply =
      orderIds.length === 1 ? await this.#source.orderTrades(orderIds[0]!) : await this.#source.dayTrades();
    const byOrder = new Map<string, (Trade & { order_id: string })[]>();
    for (const raw of Array.isArray(reply) ? reply : []) {
      const trade = toTrade(raw);
      if (trade === undefined) continue;
      const list = byOrder.get(trade.order_id);
      if (list === undefined) byOrder.set(trade.order_id, [trade]);
      else list.push(trade);
    }
    return byOrder;
  }
}
