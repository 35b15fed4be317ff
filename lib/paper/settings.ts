import { z } from "zod";
import { MarketPreset, parseMarketSettings } from "../market/settings";

/**
 * The paper broker's settings as the broker-config node stores them. Defaults suit a first run:
 * a seeded-by-time random walk at 1 tick/s around 100 with a small spread and slippage.
 */
export const PaperSettings = z
  .strictObject({
    /** Names the account and its journal file, so two config nodes can keep separate accounts. */
    account: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, { error: "must be 1 to 64 letters, digits, _ or -" })
      .default("default"),
    // Money is kept in whole paise, exact up to 2^53; 1e13 rupees leaves room for every sum.
    starting_cash: z
      .number()
      .positive({ error: "must be greater than 0" })
      .max(1e13, { error: "must be at most 1e13" })
      .default(1_000_000),
    /** Applied to MARKET fills at the last price when there is no bid/ask, in basis points. */
    slippage_bps: z.number().min(0).max(1000, { error: "must be at most 1000" }).default(5),
    quote_source: z
      .enum(["random-walk", "csv"], { error: "must be random-walk or csv" })
      .default("random-walk"),
    start_price: z.number().positive({ error: "must be greater than 0" }).default(100),
    /** Standard deviation of one tick's log return. */
    volatility: z.number().min(0).max(0.5, { error: "must be at most 0.5" }).default(0.002),
    spread_bps: z.number().min(0).max(1000, { error: "must be at most 1000" }).default(5),
    // Node's timers hold at most 2^31-1 ms; beyond that they fire at once, every millisecond.
    interval_ms: z
      .number()
      .int()
      .min(10, { error: "must be at least 10" })
      .max(86_400_000, { error: "must be at most 86400000 (one day)" })
      .default(1000),
    /** Absent: seeded from the time, so every start walks differently. */
    seed: z.number().int().optional(),
    csv_file: z.string().min(1).optional(),
    /** 1 = real time, N = N times faster, 0 = as fast as possible. */
    replay_speed: z.number().min(0).default(1),
    replay_loop: z.boolean().default(true),
    /** Terminal orders kept in memory and in the compacted journal; older ones are dropped. */
    retention: z.number().int().min(10).default(10_000),
    /**
     * The instruments this account trades, as "SYMBOL" (NSE) or "EXCHANGE:SYMBOL". Absent: any
     * symbol (relaxed), priced by an invented walk. Set: anything else is refused, so a typo
     * (`ZZZZ`) is an error instead of a made-up market.
     */
    symbols: z
      .array(
        z
          .string()
          .regex(/^([A-Z]{3}:)?[A-Za-z0-9&_.-]{1,64}$/, { error: "must be SYMBOL or EXCHANGE:SYMBOL" }),
      )
      .max(10_000, { error: "must name at most 10000 symbols" })
      .optional(),
    /** Most a single quote can fill of one order (0 = no limit), so large orders fill in parts. */
    max_fill_per_quote: z.number().int().min(0).default(0),
    /**
     * The market the account trades in: "relaxed" (open round the clock, any symbol and price, no
     * charges, cash-only funds, infinite liquidity: the demo flow trades at night) or "nse"
     * (docs/MARKET-RULES.md). An object picks a preset and overrides single rules:
     * `{ preset: "nse", margin: { mis_leverage: 4 } }`. Kept as given (it survives a JSON round
     * trip); the broker builds its market model from it.
     */
    market: z
      .union([MarketPreset, z.record(z.string(), z.unknown())], {
        error: 'must be "relaxed", "nse" or an object of market settings',
      })
      .default("relaxed")
      .superRefine((value, ctx) => {
        const problem = marketProblem(value);
        if (problem !== undefined)
          ctx.addIssue({ code: "custom", path: problem.path, message: problem.rule });
      }),
  })
  .refine((s) => s.quote_source !== "csv" || s.csv_file !== undefined, {
    path: ["csv_file"],
    message: "is required when quote_source is csv",
  });
export type PaperSettingsInput = z.input<typeof PaperSettings>;
export type PaperSettings = z.output<typeof PaperSettings>;

/** The first problem parseMarketSettings finds, split into its path below `market` and its rule. */
function marketProblem(value: unknown): { path: string[]; rule: string } | undefined {
  try {
    parseMarketSettings(typeof value === "string" ? { preset: value } : value);
    return undefined;
  } catch (error) {
    // "market.calendar.open: must be a time written HH:MM" → path calendar.open, the rule after it.
    const message = (error as Error).message;
    const match = /^market(?:\.([^:]+))?: (.*)$/s.exec(message);
    if (match === null) return { path: [], rule: message };
    return { path: match[1] === undefined ? [] : match[1].split("."), rule: match[2]! };
  }
}
