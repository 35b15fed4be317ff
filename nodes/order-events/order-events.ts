import type { Node, NodeAPI, NodeDef } from "node-red";
import type { GttEvent, OrderEvent, SessionEvent } from "../../lib/protocol/events";
import { linkBroker } from "../shared/broker-link";
import type { EventFilter } from "../shared/event-filter";
import { eventFilterOf, eventSymbol, passes } from "../shared/event-filter";
import { toError } from "../shared/errors";
import { problemStatus, successStatus } from "../shared/status";

interface OrderEventsDef extends NodeDef {
  broker?: string;
  symbols?: string;
  side?: string;
  eventTypes?: unknown;
  statuses?: unknown;
}

interface OrderEventsNode extends Node {
  filter: EventFilter;
}

/** How long the status shows the last event before going back to the broker's state. */
const FLASH_MS = 3000;

export = function (RED: NodeAPI): void {
  function OrderEvents(this: OrderEventsNode, def: OrderEventsDef): void {
    RED.nodes.createNode(this, def);
    startOrderEvents(this, def);
  }

  function startOrderEvents(node: OrderEventsNode, def: OrderEventsDef): void {
    let filter: EventFilter;
    try {
      filter = node.filter = eventFilterOf(def);
    } catch (error) {
      // A filter that cannot be read lets nothing through rather than everything.
      node.error(RED._("trading-order-events.errors.bad-filter", { reason: toError(error).message }));
      node.status(problemStatus(RED._("trading-order-events.status.bad-filter")));
      return;
    }
    const broker = linkBroker(RED, node, def.broker);
    /**
     * Highest seq emitted. Orders and GTTs share one per-account seq, so anything at or below it
     * was already sent (brokers replay or synthesize events after a reconnect).
     */
    let lastSeq = 0;
    let flash: NodeJS.Timeout | undefined;

    function showBriefly(text: string): void {
      node.status(successStatus(text));
      clearTimeout(flash);
      flash = setTimeout(() => {
        flash = undefined;
        broker.restoreStatus();
      }, FLASH_MS);
      flash.unref();
    }

    function emit(event: OrderEvent | GttEvent): void {
      if (event.seq <= lastSeq) return;
      lastSeq = event.seq;
      if (!passes(filter, event)) return;
      const symbol = eventSymbol(event);
      // Every order-events node gets its own copy: a flow that edits the event must not change another's.
      node.send({ payload: structuredClone(event), topic: symbol });
      showBriefly(`${event.type} ${symbol}`);
    }

    broker.on("order", emit);
    broker.on("gtt", emit);
    // Session news (Kite's SESSION_EXPIRED) passes every filter: it is what a flow alerts someone on.
    broker.on("session", (event: SessionEvent) => {
      node.send({ payload: { ...event }, topic: "session" });
      showBriefly(event.type);
    });
    node.on("close", () => {
      clearTimeout(flash);
      flash = undefined;
    });
  }

  RED.nodes.registerType("trading-order-events", OrderEvents);
};
