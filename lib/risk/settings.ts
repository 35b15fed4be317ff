import { z } from "zod";
import { minutesOf } from "../market/ist";
import type { BrokerKind } from "../brokers/interface";

function requiredOr(rule: string) {
  return (issue: { input?: unknown }) => (issue.input === undefined ? "is required" : rule);
}

const PositiveWhole = z
  .number({ error: requiredOr("must be a number") })
  .int({ error: "must be a whole number" })
  .positive({ error: "must be greater than 0" });

const PositiveAmount = z
  .number({ error: requiredOr("must be a number") })
  .positive({ error: "must be greater than 0" })
  .finite({ error: "must be a finite number" });

const ClockTime = z
  .string({ error: requiredOr("must be a time HH:MM") })
  .regex(/^([01]\d|2[0-3]):[0-5]\d$/, { error: "must be a time HH:MM (00:00 to 23:59)" });

/**
 * When orders may go out, in India Standard Time (UTC+05:30, no daylight saving). Saturdays and
 * Sundays are closed unless `weekends` is set; exchange holidays are not known to the guard.
 */
export const TradingWindow = z
  .strictObject({
    start: ClockTime.default("09:15"),
    end: ClockTime.default("15:30"),
    weekends: z.boolean({ error: "must be true or false" }).default(false),
  })
  .refine((w) => minutesOf(w.start) < minutesOf(w.end), {
    path: ["end"],
    message: "must be later than start",
  });
export type TradingWindow = z.output<typeof TradingWindow>;

/**
 * The risk guard's limits. Every limit is optional: absent means "not checked". Names are the
 * ones refusals and ORDER_DENIED events use, so a refusal can be traced to the field that made it.
 */
export const RiskSettings = z
  .strictObject({
    max_order_quantity: PositiveWhole.optional(),
    /** quantity × price (LIMIT/SL) or × the last price (MARKET/SL-M). */
    max_order_value: PositiveAmount.optional(),
    /** Largest absolute net quantity per symbol, counting open orders that would add to it. */
    max_position_quantity: PositiveWhole.optional(),
    max_position_value: PositiveAmount.optional(),
    max_open_orders: PositiveWhole.optional(),
    /** Orders placed or modified in any rolling second / minute. */
    max_orders_per_second: PositiveWhole.optional(),
    max_orders_per_minute: PositiveWhole.optional(),
    /** A LIMIT/SL price further than this many percent from the last price is refused. */
    price_band_pct: PositiveAmount.max(100, { error: "must be at most 100" }).optional(),
    /** Symbols ("INFY") or instruments ("NSE:INFY") orders may name; absent = any. */
    allowed_symbols: z
      .array(
        z
          .string({ error: "must be a list of symbols" })
          .regex(/^(?:[A-Z]{3}:)?[A-Za-z0-9&_.-]{1,64}$/, { error: "must be a symbol or EXCHANGE:SYMBOL" }),
        { error: "must be a list of symbols" },
      )
      .min(1, { error: "must name at least one symbol (leave it out to allow every symbol)" })
      .max(3000, { error: "must name at most 3000 symbols" })
      .optional(),
    trading_window: TradingWindow.optional(),
    /** Realized + unrealized loss since the start of the trading day (IST) that halts trading. */
    max_daily_loss: PositiveAmount.optional(),
    /** On reaching max_daily_loss, also cancel every open order and close every position. */
    flatten_on_daily_loss: z.boolean({ error: "must be true or false" }).default(false),
    /** How often, at most, the guard asks the broker for the day's P&L (on fills and quotes). */
    pnl_check_ms: z
      .number({ error: requiredOr("must be a number") })
      .int({ error: "must be a whole number" })
      .min(100, { error: "must be at least 100" })
      .default(1000),
  })
  .superRefine((s, ctx) => {
    const contradiction = (path: string, message: string): void => {
      ctx.addIssue({ code: "custom", path: [path], message });
    };
    if (
      s.max_orders_per_second !== undefined &&
      s.max_orders_per_minute !== undefined &&
      s.max_orders_per_second > s.max_orders_per_minute
    ) {
      contradiction("max_orders_per_second", "must not be more than max_orders_per_minute");
    }
    if (s.flatten_on_daily_loss && s.max_daily_loss === undefined) {
      contradiction("flatten_on_daily_loss", "needs max_daily_loss");
    }
  });
export type RiskSettingsInput = z.input<typeof RiskSettings>;
export type RiskSettings = z.output<typeof RiskSettings>;

/**
 * Rate limits applied when a config sets none: safely under what the venue allows. Kite allows
 * 10 orders/s and 400/min per account (KITE.md §9), and many retail algo rules treat more than 10
 * orders/s as a registered algo. The paper broker and a gateway have no such venue rule.
 */
export function defaultRateLimits(
  kind: BrokerKind,
): Pick<RiskSettings, "max_orders_per_second" | "max_orders_per_minute"> {
  return kind === "kite" ? { max_orders_per_second: 8, max_orders_per_minute: 360 } : {};
}
