import { BrokerError, toBrokerError } from "../protocol/errors";
import type { BrokerLogger } from "../brokers/logger";
import type { GttDesk } from "./gtt-desk";
import type { GttTracker } from "./gtt-tracker";
import type { OrderTracker } from "./order-tracker";
import type { KiteRestClient } from "./rest-client";
import { isKiteOrder } from "./rest-client";
import type { ReadRetry } from "./startup-read";
import { backgroundRead } from "./startup-read";

export interface OrderFeedDeps {
  rest: KiteRestClient;
  orders: OrderTracker;
  gtts: GttTracker;
  gttDesk: GttDesk;
  /** A placement with this tag is on its way: its postback is ours though its id is not known yet. */
  isPlacing: (tag: string) => boolean;
  /** True once the broker is closing: late news is dropped. */
  closing: () => boolean;
  log: BrokerLogger;
  onError: (error: BrokerError) => void;
  /** How the catch-up's order book read is tried again after a 429, a 5xx or no answer. */
  reads: ReadRetry;
}

/**
 * What Kite tells us about orders, into the OrderTracker: the ticker's postbacks one at a time in
 * arrival order, and after a ticker reconnect the order book and GTTs read again (what changed
 * while we were away becomes synthesized events, so no fill is missed).
 */
export class OrderFeed {
  readonly #deps: OrderFeedDeps;
  #inbound: Promise<void> = Promise.resolve();
  #reconciling: Promise<void> | undefined;
  #again = false;

  constructor(deps: OrderFeedDeps) {
    this.#deps = deps;
  }

  /** Resolves once the postbacks received so far and a reconciliation under way are done. */
  async idle(): Promise<void> {
    await this.#inbound;
    await this.#reconciling;
  }

  postback(data: unknown): void {
    this.#inbound = this.#inbound
      .then(() => this.#handlePostback(data))
      .catch((error: unknown) => this.#deps.onError(toBrokerError(error)));
  }

  async #handlePostback(data: unknown): Promise<void> {
    const { orders, gtts } = this.#deps;
    if (!isKiteOrder(data)) {
      this.#deps.onError(
        new BrokerError("BAD_FRAME", "Kite sent an order update without order_id/tradingsymbol"),
      );
      return;
    }
    const id = String(data.order_id);
    const tag = typeof data.tag === "string" ? data.tag : "";
    const ours = orders.has(id) || orders.orderIdOf(tag) !== undefined || this.#deps.isPlacing(tag);
    if (!ours && gtts.hasActive()) {
      // An order we did not place while GTTs are active: most likely one of them fired. Learn
      // which, so the order carries its gtt_id and GTT_TRIGGERED comes first.
      await this.#deps.gttDesk
        .poll()
        .catch((error: unknown) =>
          this.#deps.log.warn(`GTT refresh failed: ${toBrokerError(error).message}`),
        );
    }
    if (this.#deps.closing()) return;
    orders.ingest(data);
  }

  /**
   * After a ticker reconnect: what changed while we were away, as synthesized events. A reconnect
   * while one runs asks for another pass: the read under way may predate the second drop.
   */
  reconcile(): Promise<void> {
    if (this.#reconciling !== undefined) {
      this.#again = true;
      return this.#reconciling;
    }
    this.#reconciling = (async () => {
      do {
        this.#again = false;
        await this.#catchUp();
      } while (this.#again && !this.#deps.closing());
    })().finally(() => {
      this.#reconciling = undefined;
    });
    return this.#reconciling;
  }

  async #catchUp(): Promise<void> {
    try {
      const book = await backgroundRead(
        "GET /orders",
        "order book request",
        "Kite catch-up after the ticker reconnected",
        () => this.#deps.rest.fetchBook(),
        this.#deps.reads,
      );
      // Behind the postbacks that arrived meanwhile, so those win over this older view.
      await this.#inbound;
      if (this.#deps.closing()) return;
      for (const raw of book) this.#deps.orders.ingest(raw, true);
      await this.#deps.gttDesk.poll();
    } catch (error) {
      const err = toBrokerError(error);
      if (err.code !== "CLOSED" && err.code !== "AUTH") {
        this.#deps.onError(
          new BrokerError(err.code, `reconciling after the ticker reconnected: ${err.message}`),
        );
      }
    }
  }
}
