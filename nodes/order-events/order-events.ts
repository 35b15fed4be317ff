import type { Node, NodeAPI, NodeDef } from "node-red";
import type { GttEvent, OrderEvent, RiskEvent, SessionEvent } from "../../lib/protocol/events";
import { BrokerSession } from "../shared/broker-connection";
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

const RISK_TYPES: ReadonlySet<string> = new Set(["RISK_STATE_CHANGED", "ORDER_DENIED"]);

/** The risk event types an event type filter names (a multi-select array or a comma list). */
function riskTypesOf(value: unknown): ReadonlySet<string> {
  const list = Array.isArray(value) ? value : typeof value === "string" ? value.split(",") : [];
  return new Set(
    list
      .filter((item): item is string => typeof item === "string")
      .map((item) => item.trim())
      .filter((item) => RISK_TYPES.has(item)),
  );
}

/** What tells two events of one seq apart: the event type and the whole order or GTT it reports. */
function versionOf(event: OrderEvent | GttEvent): string {
  return "order" in event
    ? `${event.type} ${JSON.stringify(event.order)}`
    : `${event.type} ${JSON.stringify(event.gtt)}`;
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
     * Highest seq emitted. Orders and GTTs share one per-account seq, so anything below it was
     * already sent (brokers replay events after a reconnect). Not so at it: a reconcile reports
     * everything it found changed under the one seq the server was at.
     */
    let lastSeq = 0;
    /** The events sent at lastSeq: one of them again is a replay, another one is news. */
    let atLastSeq: (OrderEvent | GttEvent)[] = [];
    let versionsAtLastSeq: Set<string> | undefined;
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

    const riskTypes = riskTypesOf(def.eventTypes);
    /** A type filter that names only risk events lets no order or GTT event through. */
    const onlyRisk = riskTypes.size > 0 && filter.types.size === 0;

    function isNew(event: OrderEvent | GttEvent): boolean {
      if (event.seq < lastSeq) return false;
      if (event.seq > lastSeq) {
        lastSeq = event.seq;
        atLastSeq = [event];
        versionsAtLastSeq = undefined;
        return true;
      }
      // Versions are worked out only once a seq repeats, so the live path makes no strings.
      versionsAtLastSeq ??= new Set(atLastSeq.map(versionOf));
      const version = versionOf(event);
      if (versionsAtLastSeq.has(version)) return false;
      versionsAtLastSeq.add(version);
      atLastSeq.push(event);
      return true;
    }

    function emit(event: OrderEvent | GttEvent): void {
      if (!isNew(event)) return;
      if (onlyRisk || !passes(filter, event)) return;
      const symbol = eventSymbol(event);
      // Every order-events node gets its own copy: a flow that edits the event must not change another's.
      node.send({ payload: structuredClone(event), topic: symbol });
      showBriefly(`${event.type} ${symbol}`);
    }

    /**
     * The risk guard's events carry no seq (they are not account events) and are not filtered by
     * side or status: a halt or a refusal is passed on whatever the filter, unless the event type
     * filter names order types and leaves these out.
     */
    function emitRisk(event: RiskEvent): void {
      if (filter.types.size + riskTypes.size > 0 && !riskTypes.has(event.type)) return;
      const symbol = event.type === "ORDER_DENIED" ? event.symbol : undefined;
      if (event.type === "ORDER_DENIED" && symbol !== undefined && filter.instruments.size > 0) {
        const exchange = typeof event.request.exchange === "string" ? event.request.exchange : "NSE";
        if (!filter.instruments.has(`${exchange}:${symbol}`)) return;
      }
      node.send({ payload: structuredClone(event), topic: symbol ?? event.type });
      showBriefly(
        event.type === "ORDER_DENIED" ? `ORDER_DENIED ${symbol ?? ""}` : `${event.type} ${event.state}`,
      );
    }

    broker.on("order", emit);
    broker.on("gtt", emit);
    if (broker instanceof BrokerSession) broker.onRisk(emitRisk);
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
