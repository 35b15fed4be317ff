import type {
  GttEvent,
  GttEventType,
  GttSnapshot,
  OrderEvent,
  OrderEventType,
  OrderSnapshot,
  Trade,
} from "../protocol";
import type { BrokerError } from "../protocol/errors";
import { toBrokerError } from "../protocol/errors";
import { copyGtt } from "./gtt-tracker";
import type { FillToReport } from "./trade-reporter";

interface OutgoingOrder {
  kind: "order";
  type: OrderEventType;
  order: OrderSnapshot;
  synthesized: boolean;
  previousFilled: number;
  fill: boolean;
}

type Outgoing = OutgoingOrder | { kind: "gtt"; type: GttEventType; gtt: GttSnapshot };

export interface EventOutboxDeps {
  emitOrder: (event: OrderEvent) => void;
  emitGtt: (event: GttEvent) => void;
  /** The trades of each fill, read from Kite's trade book (undefined where they could not be read). */
  tradesOf: (fills: FillToReport[]) => Promise<(Trade[] | undefined)[]>;
  onError: (error: BrokerError) => void;
  /** Told each seq before its event goes out (the reported ledger reserves seqs on disk). */
  issuing?: (seq: number) => void;
}

/**
 * Order and GTT events on their way out, numbered with one seq. A fill event waits for its trades
 * (Kite's trade book, read through the rate limiter); every event after it waits behind it, so
 * events keep their order and seq. Other events go out at once while nothing waits.
 */
export class EventOutbox {
  readonly #deps: EventOutboxDeps;
  readonly #waiting: Outgoing[] = [];
  #draining: Promise<void> | undefined;
  #seq = 0;

  constructor(deps: EventOutboxDeps) {
    this.#deps = deps;
  }

  /** The last seq issued. */
  get seq(): number {
    return this.#seq;
  }

  /**
   * Where the seq stands before the first event: past what an earlier run may have issued today,
   * so no seq a flow or a gateway client has seen is issued again. It never goes back.
   */
  startAfter(seq: number): void {
    if (seq > this.#seq) this.#seq = seq;
  }

  /** Resolves once nothing waits (events owed have gone out). */
  get drained(): Promise<void> {
    return this.#draining ?? Promise.resolve();
  }

  order(type: OrderEventType, order: OrderSnapshot, synthesized: boolean, previousFilled: number): void {
    const fill = type === "ORDER_PARTIALLY_FILLED" || type === "ORDER_FILLED";
    const item: Outgoing = { kind: "order", type, order, synthesized, previousFilled, fill };
    if (!fill && this.#draining === undefined) this.#send(item, undefined);
    else this.#queue(item);
  }

  gtt(type: GttEventType, gtt: GttSnapshot): void {
    const item: Outgoing = { kind: "gtt", type, gtt: copyGtt(gtt) };
    if (this.#draining === undefined) this.#send(item, undefined);
    else this.#queue(item);
  }

  #queue(item: Outgoing): void {
    this.#waiting.push(item);
    this.#draining ??= this.#drain();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#waiting.length > 0) {
        const batch = this.#waiting.splice(0);
        const fills = batch.filter((item): item is OutgoingOrder => item.kind === "order" && item.fill);
        const found: (Trade[] | undefined)[] =
          fills.length === 0
            ? []
            : await this.#deps.tradesOf(
                fills.map((f): FillToReport => ({ order: f.order, previousFilled: f.previousFilled })),
              );
        for (const item of batch) {
          const at = item.kind === "order" && item.fill ? fills.indexOf(item) : -1;
          try {
            this.#send(item, at < 0 ? undefined : found[at]);
          } catch (error) {
            // A listener that throws must not cost the events after it.
            this.#deps.onError(toBrokerError(error));
          }
        }
      }
    } catch (error) {
      this.#deps.onError(toBrokerError(error));
    } finally {
      this.#draining = undefined;
    }
  }

  #send(item: Outgoing, trades: Trade[] | undefined): void {
    const timestamp = new Date().toISOString();
    const seq = ++this.#seq;
    this.#deps.issuing?.(seq);
    if (item.kind === "gtt") {
      this.#deps.emitGtt({ type: item.type, seq, gtt: item.gtt, timestamp });
      return;
    }
    this.#deps.emitOrder({
      type: item.type,
      seq,
      order: item.order,
      timestamp,
      ...(item.synthesized ? { synthesized: true } : {}),
      ...(trades === undefined ? {} : { trades }),
    });
  }
}
