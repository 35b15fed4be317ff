import { z } from "zod";

const positiveInt = (min: number) =>
  z
    .number()
    .int({ error: "must be a whole number" })
    .min(min, { error: `must be at least ${min}` });

/**
 * The WebSocket broker's settings as a broker-config node holds them (secrets come from its
 * credentials). Defaults: reconnect 100 ms ×2 up to 5 s, a dead link noticed within ~15 s,
 * requests queued for at most 5 s while disconnected.
 */
export const WebSocketSettings = z.strictObject({
  url: z
    .string({ error: (i) => (i.input === undefined ? "is required" : "must be a string") })
    .regex(/^wss?:\/\/[^\s/]+/, { error: "must be a ws:// or wss:// URL" }),
  api_key: z
    .string({ error: "is required (broker config credentials)" })
    .min(1, { error: "is required (broker config credentials)" }),
  api_secret: z
    .string({ error: "is required (broker config credentials)" })
    .min(1, { error: "is required (broker config credentials)" }),
  /** PEM text of an extra certificate authority to trust for wss:// (the server is always verified). */
  ca: z.string().min(1).optional(),
  reconnect: z
    .strictObject({
      initial_ms: positiveInt(1).default(100),
      factor: z.number().min(1, { error: "must be at least 1" }).default(2),
      max_ms: positiveInt(1).default(5000),
    })
    .prefault({}),
  heartbeat_ms: positiveInt(100).default(5000),
  request_timeout_ms: positiveInt(10).default(5000),
  queue: z
    .strictObject({ max: positiveInt(1).default(1000), ttl_ms: positiveInt(1).default(5000) })
    .prefault({}),
  rate_limit: z
    .strictObject({
      per_second: z.number().positive({ error: "must be greater than 0" }).default(100),
      burst: positiveInt(1).default(200),
    })
    .prefault({}),
  breaker: z
    .strictObject({
      failure_threshold: positiveInt(1).default(5),
      cool_down_ms: positiveInt(0).default(10_000),
    })
    .prefault({}),
  /** How long a placement whose answer was lost may take to settle before it is reported unknown. */
  resolve_window_ms: positiveInt(100).default(30_000),
  /** Ended orders remembered for dedupe and reconciliation. */
  retention: positiveInt(10).default(10_000),
});
export type WebSocketSettingsInput = z.input<typeof WebSocketSettings>;
export type WebSocketSettings = z.output<typeof WebSocketSettings>;
