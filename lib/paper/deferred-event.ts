import type { OrderEvent, OrderEventType, OrderStatus } from "../protocol";
import type { OrderState } from "./account-state";
import type { Paise } from "./money";
import { toRupees } from "./money";
import { orderView } from "./views";

/**
 * An order event as the engine notes it while the journal's fsync is pending: the live order and
 * the few fields that move after the event (status, fills, message), instead of a copied view, a
 * trades array and a trade. With thousands of orders waiting for one fsync, what each keeps alive is
 * copied by every scavenge and then promoted; the event the flow sees is built when it goes out.
 * The order's other fields change only in a modify, which builds the events still waiting first
 * (PaperBroker.modifyOrder).
 */
export class DeferredOrderEvent {
  constructor(
    readonly type: OrderEventType,
    readonly seq: number,
    readonly order: OrderState,
    readonly timestamp: string,
    readonly status: OrderStatus,
    readonly filledQuantity: number,
    readonly averagePrice: number,
    readonly statusMessage: string | undefined,
    /** The fill this event reports (0 = none), and its price in paise. */
    readonly fillQuantity: number,
    readonly fillPrice: Paise,
  ) {}

  static of(
    type: OrderEventType,
    seq: number,
    order: OrderState,
    timestamp: string,
    fillQuantity = 0,
    fillPrice: Paise = 0,
  ): DeferredOrderEvent {
    return new DeferredOrderEvent(
      type,
      seq,
      order,
      timestamp,
      order.status,
      order.filled_quantity,
      order.average_price,
      order.status_message,
      fillQuantity,
      fillPrice,
    );
  }

  /** The event as it would have been built when it happened. */
  build(): OrderEvent {
    const view = orderView(this.order);
    view.status = this.status;
    view.filled_quantity = this.filledQuantity;
    view.average_price = this.averagePrice;
    view.timestamp = this.timestamp;
    // Only when it differs (a later cancel set one), so the view keeps orderView's key order.
    if (view.status_message !== this.statusMessage) {
      if (this.statusMessage === undefined) delete view.status_message;
      else view.status_message = this.statusMessage;
    }
    const event: OrderEvent = { type: this.type, seq: this.seq, order: view, timestamp: this.timestamp };
    if (this.fillQuantity > 0) {
      // The id names the order and its filled quantity after this fill (see MatchingEngine.#fill).
      event.trades = [
        {
          trade_id: `${view.order_id}-${this.filledQuantity}`,
          quantity: this.fillQuantity,
          price: toRupees(this.fillPrice),
          timestamp: this.timestamp,
        },
      ];
    }
    return event;
  }
}
