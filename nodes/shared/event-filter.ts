import type { GttEvent, OrderEvent } from "../../lib/protocol/events";
import { GttEventType, OrderEventType } from "../../lib/protocol/events";
import type { OrderStatus, Side } from "../../lib/protocol";
import { OrderStatus as OrderStatusSchema } from "../../lib/protocol/orders";
import { parseSymbolList } from "./symbols";

/** order-events' editor filters; an empty set lets everything through. */
export interface EventFilter {
  /** Instrument keys ("NSE:INFY"). */
  instruments: ReadonlySet<string>;
  side: Side | undefined;
  types: ReadonlySet<string>;
  statuses: ReadonlySet<OrderStatus>;
}

const KNOWN_TYPES = new Set<string>([...OrderEventType.options, ...GttEventType.options]);

/** A multi-select stores an array; older or hand-written flows may hold a comma list. */
function listOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === "string");
  if (typeof value === "string") {
    return value
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item !== "");
  }
  return [];
}

export function eventFilterOf(def: {
  symbols?: string;
  side?: string;
  eventTypes?: unknown;
  statuses?: unknown;
}): EventFilter {
  const statuses = listOf(def.statuses).filter(
    (s): s is OrderStatus => OrderStatusSchema.safeParse(s).success,
  );
  return {
    instruments: new Set(parseSymbolList(def.symbols ?? "")),
    side: def.side === "BUY" || def.side === "SELL" ? def.side : undefined,
    types: new Set(listOf(def.eventTypes).filter((type) => KNOWN_TYPES.has(type))),
    statuses: new Set(statuses),
  };
}

export function eventSymbol(event: OrderEvent | GttEvent): string {
  return "order" in event ? event.order.symbol : event.gtt.symbol;
}

function eventInstrument(event: OrderEvent | GttEvent): string {
  const subject = "order" in event ? event.order : event.gtt;
  return `${subject.exchange}:${subject.symbol}`;
}

/** A GTT passes the side filter when one of its legs has that side. */
function matchesSide(side: Side, event: OrderEvent | GttEvent): boolean {
  return "order" in event ? event.order.side === side : event.gtt.orders.some((order) => order.side === side);
}

export function passes(filter: EventFilter, event: OrderEvent | GttEvent): boolean {
  if (filter.types.size > 0 && !filter.types.has(event.type)) return false;
  if (filter.instruments.size > 0 && !filter.instruments.has(eventInstrument(event))) return false;
  if (filter.side !== undefined && !matchesSide(filter.side, event)) return false;
  // Statuses are order statuses: with any picked, only order events in one of them pass.
  if (filter.statuses.size > 0 && !("order" in event && filter.statuses.has(event.order.status))) {
    return false;
  }
  return true;
}
