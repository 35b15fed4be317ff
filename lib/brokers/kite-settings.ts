import { z } from "zod";
import { STARTUP_RETRY } from "../kite/startup-read";

const positiveInt = (min: number) =>
  z
    .number()
    .int({ error: "must be a whole number" })
    .min(min, { error: `must be at least ${min}` });

const secret = z
  .string({ error: "is required (broker config credentials)" })
  .min(1, { error: "is required (broker config credentials)" });

/**
 * The Kite broker's settings as a broker-config node holds them (api_key and access_token come
 * from its credentials). Point `root` and `ticker_url` at a fake Kite for tests.
 */
export const KiteSettings = z.strictObject({
  api_key: secret,
  /**
   * Absent until the first login from the editor (broker-config then has the api secret): the
   * broker runs without a session, sends nothing to Kite and refuses every call until login().
   */
  access_token: secret.optional(),
  /** REST root (kiteconnect's `root`). */
  root: z
    .string()
    .regex(/^https?:\/\/[^\s/]+/, { error: "must be an http:// or https:// URL" })
    .default("https://api.kite.trade"),
  /** Ticker WebSocket root; the credentials are added to its query string. */
  ticker_url: z
    .string()
    .regex(/^wss?:\/\/[^\s/]+/, { error: "must be a ws:// or wss:// URL" })
    .default("wss://ws.kite.trade"),
  /** kiteconnect's REST timeout. */
  timeout_ms: positiveInt(100).default(7000),
  /**
   * Sent on MARKET and SL-M orders: -1 lets Kite choose (automatic), 1-100 caps the fill at that
   * percentage from the last price. Kite rejects MARKET/SL-M orders without it since April 2026.
   */
  market_protection: z
    .number()
    .int({ error: "must be a whole number" })
    .min(-1, { error: "must be -1 (automatic) or a percentage from 1 to 100" })
    .max(100, { error: "must be -1 (automatic) or a percentage from 1 to 100" })
    .refine((v) => v !== 0, {
      error: "must be -1 (automatic) or a percentage from 1 to 100 (Kite rejects 0)",
    })
    .default(-1),
  /** Ticker mode for quote subscriptions: full adds bid/ask (market depth). */
  ticker_mode: z.enum(["ltp", "quote", "full"], { error: "must be ltp, quote or full" }).default("quote"),
  reconnect: z
    .strictObject({
      initial_ms: positiveInt(1).default(250),
      factor: z.number().min(1, { error: "must be at least 1" }).default(2),
      max_ms: positiveInt(1).default(10_000),
    })
    .prefault({}),
  /** Kite's ticker sends a heartbeat every second; this long without any frame means a dead link. */
  read_timeout_ms: positiveInt(100).default(5000),
  /**
   * Unused since a lost placement is never sent again (OrderDesk: Kite lists new orders late, so
   * absence proves nothing); still accepted so configs that set it load.
   */
  order_ttl_ms: positiveInt(100).default(5000),
  /**
   * How long connect() keeps reading Kite's order book, profile and GTTs again after a 429, a 5xx
   * or no answer before it gives up; each background read (the catch-up after a ticker reconnect,
   * the GTT poll) gets as long.
   */
  startup_budget_ms: positiveInt(1000)
    .max(300_000, { error: "must be at most 300000 (5 minutes)" })
    .default(STARTUP_RETRY.budgetMs),
  /** How long to keep looking for a placement whose answer was lost before reporting it unknown. */
  resolve_window_ms: positiveInt(100).default(15_000),
  rate_limit: z
    .strictObject({
      orders_per_second: z.number().positive().default(10),
      orders_per_minute: z.number().positive().default(400),
      requests_per_second: z.number().positive().default(10),
      quotes_per_second: z.number().positive().default(1),
      historical_per_second: z.number().positive().default(3),
      /**
       * Each limit holds over a sliding window this much longer than Kite's (1 s, 1 min): requests
       * sent just inside our window may reach Kite closer together than they left.
       */
      margin_ms: z.number().int().min(0, { error: "must be at least 0" }).max(1000).default(100),
      /** A request that would wait longer than this for the limit fails RATE_LIMITED instead. */
      max_wait_ms: positiveInt(0).default(2000),
    })
    .prefault({}),
  /** Kite does not push GTT changes: active GTTs are polled this often (and when a GTT's order shows up). */
  gtt_poll_ms: positiveInt(200).default(5000),
  /**
   * Fixed instrument tokens, "EXCHANGE:SYMBOL" → token. Symbols found here need no download of
   * Kite's instrument list; the others are looked up in it (once per exchange).
   */
  instruments: z
    .record(
      z.string().regex(/^[A-Z]+:.+$/, { error: "must be EXCHANGE:SYMBOL" }),
      z.number().int().positive(),
    )
    .default({}),
  /**
   * Where Kite's instrument lists are cached for the trading day (a directory; broker-config uses
   * the Node-RED user directory). Without it every new broker downloads them again.
   */
  cache_dir: z.string().min(1).optional(),
  /**
   * Which broker on this api key this is (broker-config passes its node id): each keeps its own
   * record of what it reported in cache_dir, since two configs on one Kite account each report
   * every event once to their own flows. Two brokers with the same one cannot run at once.
   */
  instance_id: z.string().min(1).max(200).optional(),
  /** Kite's login page (the fake Kite's in tests); the api key and a state value are added. */
  login_url: z
    .string()
    .regex(/^https?:\/\/[^\s/]+/, { error: "must be an http:// or https:// URL" })
    .default("https://kite.zerodha.com/connect/login"),
  /** Ended orders remembered for dedupe and reconciliation. */
  retention: positiveInt(10).default(10_000),
});
export type KiteSettingsInput = z.input<typeof KiteSettings>;
export type KiteSettings = z.output<typeof KiteSettings>;
