import { z } from "zod";
import { Exchange, Product, Symbol } from "../protocol/fields";
import { GttSnapshot } from "../protocol/gtt";
import { OrderSnapshot } from "../protocol/orders";
import { Quote } from "../protocol/quotes";

// What the paper account writes to its journal. Restore parses every line with these schemas, so a
// record that does not fit (a status "OPEM", `orders: 3`, `cash: "lots"`) is quarantined, never
// loaded. Money is in whole paise (version 2); version 1 kept rupees and is upgraded on read.

const Paise = z.number().int({ error: "must be a whole number of paise" });
const Count = z.number().int().nonnegative();
const NextId = z.number().int().positive();

/** An order as the engine keeps it: the snapshot plus what makes a restart exact. */
export const OrderState = OrderSnapshot.extend({
  /** Cash held back for the unfilled rest of a BUY, in paise. */
  reserved: Paise.nonnegative(),
  /** Σ quantity × price of its fills, in paise (average_price is this rounded for display). */
  filled_value: Paise.nonnegative(),
  /** The caller chose client_order_id: it stays an idempotency key after the order leaves retention. */
  client_id_given: z.boolean(),
  /** An AMO accepted while the market was closed: it joins the book at this clock time (ms). */
  release_at: z.number().int().nonnegative().optional(),
  /** Σ charges of its fills so far, in paise (market rules with charges; absent = none). */
  charges: Paise.nonnegative().optional(),
});
export type OrderState = z.output<typeof OrderState>;

/** A GTT as the paper account keeps it: the snapshot plus the side a single trigger fires from. */
export const GttState = GttSnapshot.extend({ direction: z.enum(["up", "down"]).optional() });
export type GttState = z.output<typeof GttState>;

/**
 * One net position. `cost` = quantity × average price in paise (negative for a short); `realized`
 * is gross (price moves only), `charges` what the fills cost on top.
 */
export const PositionState = z.strictObject({
  symbol: Symbol,
  exchange: Exchange,
  product: Product,
  quantity: z.number().int(),
  cost: Paise,
  realized: Paise,
  /** Σ charges of the fills that built and closed it, in paise (absent = none). */
  charges: Paise.nonnegative().optional(),
});
export type PositionState = z.output<typeof PositionState>;

/** client_order_id → order_id for orders that left retention, with the IST day they were placed. */
const RetiredClientId = z.tuple([z.string(), z.string(), z.string()]);

/**
 * Where the random-walk feed stood: its generator's position, when its next step falls due, and the
 * instruments it walks in the order it walks them (each step draws for them in that order), so a
 * reopened broker walks the prices its never-restarted twin would have.
 */
export const WalkPosition = z.strictObject({
  /** The generator's 32-bit state; absent when the generator was injected and cannot be saved. */
  random: z.number().int().min(0).max(0xffffffff).optional(),
  /** Clock time (ms) of the next step; absent while the walk is stopped. */
  next_step_at: z.number().int().nonnegative().optional(),
  // No size limits: the walk writes whatever it tracks, and a limit here would refuse its own journal.
  instruments: z.array(z.string()),
});
export type WalkPosition = z.output<typeof WalkPosition>;

/**
 * Where a CSV replay stood: rows of the current pass already replayed and the time column of the
 * last one, so a reopened account goes on after it instead of replaying old prices.
 */
export const ReplayPosition = z.strictObject({
  rows_done: Count,
  last_time: z.number().optional(),
});
export type ReplayPosition = z.output<typeof ReplayPosition>;

/**
 * How much of an instrument's current quote orders have taken (market rules with finite
 * liquidity), so a reopened account offers the rest of that quote, not all of it again.
 */
export const LiquidityTaken = z.strictObject({
  quote: Quote,
  buy: Count,
  sell: Count,
});
export type LiquidityTaken = z.output<typeof LiquidityTaken>;

export const AccountSnapshot = z.strictObject({
  version: z.literal(2),
  cash: Paise,
  seq: Count,
  next_order: NextId,
  next_gtt: NextId,
  /** In placement order, which is also time priority. */
  orders: z.array(OrderState),
  /** Ids of ended orders and GTTs in the order they ended: the retention queue. */
  ended: z.array(z.string()),
  gtts: z.array(GttState),
  positions: z.array(PositionState),
  /** Last prices, so positions are valued and a walk resumes where it was. */
  prices: z.array(Quote),
  client_ids: z.array(RetiredClientId),
  walk: WalkPosition.optional(),
  liquidity: z.array(LiquidityTaken).optional(),
  replay: ReplayPosition.optional(),
});
export type AccountSnapshot = z.output<typeof AccountSnapshot>;

/** What one operation changed; replayed in order on top of the snapshot. */
export const AccountRecord = z.strictObject({
  version: z.literal(2),
  seq: Count,
  cash: Paise,
  next_order: NextId,
  next_gtt: NextId,
  orders: z.array(OrderState).optional(),
  gtts: z.array(GttState).optional(),
  positions: z.array(PositionState).optional(),
  prices: z.array(Quote).optional(),
  /** Orders and GTTs that ended in this operation, in the order they ended. */
  ended: z.array(z.string()).optional(),
  /** The walk's position, when it moved since the record before. */
  walk: WalkPosition.optional(),
  /** The liquidity taken from quotes that this operation's fills took from. */
  liquidity: z.array(LiquidityTaken).optional(),
  /** The CSV replay's position, when it moved since the record before. */
  replay: ReplayPosition.optional(),
});
export type AccountRecord = z.output<typeof AccountRecord>;

// Version 1 (rupees, no retention order): upgraded field by field, then checked like the rest.
const LegacyPosition = z.object({
  symbol: Symbol,
  exchange: Exchange,
  product: Product,
  quantity: z.number().int(),
  average_price: z.number().nonnegative(),
  realized_pnl: z.number(),
});

function upgradeOrder(order: unknown): unknown {
  if (typeof order !== "object" || order === null || "reserved" in order) return order;
  const o = order as { filled_quantity?: unknown; average_price?: unknown };
  const value =
    typeof o.filled_quantity === "number" && typeof o.average_price === "number"
      ? Math.round(o.filled_quantity * o.average_price * 100)
      : 0;
  return { ...order, reserved: 0, filled_value: value, client_id_given: true };
}

function upgradePosition(position: unknown): unknown {
  const legacy = LegacyPosition.safeParse(position);
  if (!legacy.success) return position;
  const p = legacy.data;
  return {
    symbol: p.symbol,
    exchange: p.exchange,
    product: p.product,
    quantity: p.quantity,
    cost: Math.round(p.quantity * p.average_price * 100),
    realized: Math.round(p.realized_pnl * 100),
  };
}

/** Whether a snapshot or record was written by version 1 (rupees). */
export function isLegacy(value: unknown): boolean {
  return typeof value === "object" && value !== null && !("version" in value && value.version === 2);
}

/** A version 1 snapshot or record in version 2's shape; anything else is returned as it is. */
export function upgrade(value: unknown, kind: "s" | "r"): unknown {
  if (!isLegacy(value) || typeof value !== "object" || value === null) return value;
  const v = value as Record<string, unknown>;
  const out: Record<string, unknown> = { ...v, version: 2 };
  if (typeof v.cash === "number") out.cash = Math.round(v.cash * 100);
  for (const key of ["orders", "positions"] as const) {
    const list = v[key];
    if (Array.isArray(list)) out[key] = list.map(key === "orders" ? upgradeOrder : upgradePosition);
  }
  if (kind === "s") {
    out.ended ??= [];
    out.client_ids ??= [];
  }
  return out;
}
