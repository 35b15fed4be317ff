import { z } from "zod";
import type { BrokerInterface } from "../brokers/interface";
import type { BrokerLogger } from "../brokers/logger";
import { silentLogger } from "../brokers/logger";
import { WIRE_LIMITS } from "../protocol/wire";
import type { CredentialSource } from "./auth";

/**
 * A number option: finite, from `min` (0 unless said) up to `max`. One message for every way to
 * miss, so a caller reads the rule and the value it gave, whichever check failed.
 */
function bounded(max?: number, { above = false } = {}) {
  const rule = above ? "a number greater than 0" : `a number from 0${max === undefined ? "" : ` to ${max}`}`;
  const message = (issue: { input?: unknown }): string => `must be ${rule}, got ${String(issue.input)}`;
  return z
    .number({ error: message })
    .refine((value) => (above ? value > 0 : value >= 0) && (max === undefined || value <= max), {
      error: message,
    });
}

const isFunction = (value: unknown): boolean => typeof value === "function";
const isObject = (value: unknown): boolean => typeof value === "object" && value !== null;

const Rate = z.object({
  perSecond: bounded(undefined, { above: true }).optional(),
  burst: bounded().optional(),
});

/**
 * What `Gateway.start` accepts. Every number has its default and bounds here, and the gateway
 * reads its settings only from the parsed result, so a value the schema lets through is one the
 * gateway can serve.
 */
export const GatewayOptionsSchema = z
  .object({
    /** Served as it is; connected at start when it is not yet. The gateway never closes it. */
    broker: z.custom<BrokerInterface>(isObject, { error: "must be a broker" }),
    /** Default 127.0.0.1: a gateway is reachable from elsewhere only when asked. */
    host: z.string().default("127.0.0.1"),
    /** 0 (the default) picks a free port; read it back from `.port`. */
    port: bounded(65535).default(0),
    credentials: z.custom<CredentialSource>((value) => value instanceof Map || isFunction(value), {
      error: "must be a Map of api keys or a function looking one up",
    }),
    /** Serve wss:// with this key and certificate (PEM). */
    tls: z
      .object({
        key: z.union([z.string(), z.instanceof(Buffer)]),
        cert: z.union([z.string(), z.instanceof(Buffer)]),
      })
      .optional(),
    /** Default "/v1". Clients may also connect on "/" offering the `trading-broker.v1` subprotocol. */
    path: z
      .string()
      .refine((path) => path.startsWith("/"), {
        error: (issue) => `must start with "/", got ${String(issue.input)}`,
      })
      .default("/v1"),
    /**
     * A socket that has not authenticated by then is closed with 4002; a TCP socket that has not
     * sent its whole upgrade request by then (from accept; at least 100 ms) is destroyed. Default 5000.
     */
    authTimeoutMs: bounded().default(5000),
    /** ± how far an AUTH timestamp may be from the server clock. Default (and most) 30 s. */
    authWindowMs: bounded(WIRE_LIMITS.authWindowMs).default(WIRE_LIMITS.authWindowMs),
    /** Soft limit: larger frames get FRAME_TOO_LARGE unparsed and the connection stays open. */
    maxFrameBytes: bounded(WIRE_LIMITS.maxFrameBytes).default(WIRE_LIMITS.maxFrameBytes),
    /** Hard limit where ws itself closes the connection with 1009. Default 16 × maxFrameBytes. */
    maxPayloadBytes: bounded().optional(),
    /** Most messages in one batched frame. Default (and most) 100. */
    maxBatch: bounded(WIRE_LIMITS.maxBatch).default(WIRE_LIMITS.maxBatch),
    /** Per-connection request rate (every message counts, AUTH too). Default 500/s, burst 1000. */
    rate: Rate.optional(),
    /**
     * Request rate per api key, over all its connections, shared fairly among them (key-share.ts).
     * Default: the same as `rate`.
     */
    keyRate: Rate.optional(),
    /**
     * Open connections from one IP address; more are refused with HTTP 429. TCP sockets from one
     * address, upgraded or not, are capped at twice this: more are destroyed at accept. Default 256.
     */
    maxConnectionsPerIp: bounded().default(256),
    /**
     * TCP sockets open on the whole gateway, upgraded or not, from every address: more are
     * destroyed at accept. Without it, many addresses each holding twice maxConnectionsPerIp
     * sockets reach the process's file-descriptor limit, where the journal can open no file and
     * no client can connect. At least 1. Default 4096.
     */
    maxConnections: z
      .number({ error: (issue) => `must be an integer from 1, got ${String(issue.input)}` })
      .refine((value) => Number.isInteger(value) && value >= 1, {
        error: (issue) => `must be an integer from 1, got ${String(issue.input)}`,
      })
      .default(4096),
    /**
     * Connections from one IP that may end without authenticating in a second; past it, upgrades
     * from that IP are refused with HTTP 429 for the rest of the second, before any WebSocket
     * handshake. Open connections are not touched. 0 turns it off. Default 64.
     */
    maxUnauthenticatedClosesPerIp: bounded().default(64),
    /** Authenticated connections per api key; more get AUTH_RETRY and close 1013. Default 64. */
    maxConnectionsPerKey: bounded().default(64),
    /**
     * Quote subscriptions one api key may hold over all its connections (each connection at most
     * 3000). Default 9000: what Kite Connect allows one api key (3 ticker connections of 3000
     * instruments), so a key here may follow what it could follow at the broker. Without it one
     * key's 64 connections could hold 192,000, and every tick is pushed once per subscription.
     */
    maxSymbolsPerKey: bounded().default(9000),
    /**
     * Quote subscriptions the whole gateway may hold, over all its api keys and connections.
     * Default 30,000: every tick is pushed once per subscription, and at ~51,000 (17 connections of
     * 3,000, paper quotes once a second) the gateway stopped answering AUTH within 2 s; without it
     * every api key added could hold maxSymbolsPerKey more.
     */
    maxSymbolsPerGateway: bounded().default(30_000),
    /**
     * Frames in a row a connection may send over its rate (or refused whole: too large, batch too
     * long) before it is closed with 1008. Default 10.
     */
    maxStrikes: bounded().default(10),
    /** Ping every intervalMs; terminate after maxMissedPongs unanswered. intervalMs 0 turns it off. */
    heartbeat: z
      .object({
        intervalMs: bounded().default(10_000),
        maxMissedPongs: bounded().default(2),
      })
      .default({ intervalMs: 10_000, maxMissedPongs: 2 }),
    /** A client that has sent PING and then nothing for this long is terminated (at the next heartbeat). Default 10,000. */
    pingIdleMs: bounded().default(10_000),
    /**
     * The newest protocol version served. "v1" serves exactly v1.0: it does not pick the v1.1
     * subprotocol and refuses AUTH `options` as v1.0 did (to test clients against an old gateway,
     * or to turn v1.1 off). Default "v1.1".
     */
    protocolVersion: z.enum(["v1", "v1.1"]).default("v1.1"),
    /** Account events kept for RESUME. Default 10,000. */
    replayBuffer: bounded().default(10_000),
    /**
     * Account events held until `durable` has run (they may not be pushed before): at this many the
     * gateway stops reading requests from every connection until half are durable. Default 50,000.
     */
    maxHeldEvents: bounded(undefined, { above: true }).default(50_000),
    /** A connection whose unsent bytes exceed this is a slow consumer and is terminated. Default 8 MiB. */
    maxBufferedBytes: bounded().default(8 * 1024 * 1024),
    /**
     * Where client_order_ids are kept for idempotent PLACE_ORDER beyond the broker's own retention,
     * for their IST trading day and the next (lib/gateway/idempotency-index.ts). Without it they are
     * kept in memory only and a restart forgets them.
     */
    idempotencyFile: z.string().optional(),
    /**
     * Soft cap on one answer frame: a batch's answers are split into array frames of about this
     * size, and wait for the socket to drain before the next goes out. Pushed events and a RESUME's
     * replay are framed within it too (one larger event goes alone). Default 1 MiB.
     */
    maxAnswerFrameBytes: bounded().default(1024 * 1024),
    /** How long close() waits for a client's close handshake before terminating it. Default 1000. */
    closeTimeoutMs: bounded().default(1000),
    /** The account name AUTH reports when the credential names none. Default: the broker's, or "default". */
    account: z.string().optional(),
    log: z.custom<BrokerLogger>(isObject, { error: "must be a logger" }).default(silentLogger),
    /** Wall clock in ms (AUTH timestamps, nonce expiry, server_time). Default Date.now. */
    now: z.custom<() => number>(isFunction, { error: "must be a function" }).default(() => Date.now),
    /**
     * Awaited before answering a request that changed the account and before pushing events, e.g.
     * the paper broker's journal flush: whatever a client was told then survives the gateway being
     * killed. Concurrent requests share one flush.
     */
    durable: z.custom<() => Promise<void>>(isFunction, { error: "must be a function" }).optional(),
  })
  .transform((options) => {
    // Defaults that follow other options, and the floors a zero would otherwise break.
    const rate = {
      perSecond: options.rate?.perSecond ?? 500,
      burst: Math.max(1, Math.floor(options.rate?.burst ?? 1000)),
    };
    return {
      ...options,
      maxPayloadBytes: options.maxPayloadBytes ?? options.maxFrameBytes * 16,
      maxBatch: Math.max(1, options.maxBatch),
      rate,
      keyRate: {
        perSecond: options.keyRate?.perSecond ?? rate.perSecond,
        burst: Math.max(1, Math.floor(options.keyRate?.burst ?? rate.burst)),
      },
      maxAnswerFrameBytes: Math.max(1, options.maxAnswerFrameBytes),
      account: options.account ?? brokerAccount(options.broker) ?? "default",
    };
  });

export type GatewayOptions = z.input<typeof GatewayOptionsSchema>;
/** The options with every default applied and every bound checked. */
export type GatewaySettings = z.output<typeof GatewayOptionsSchema>;

/** Parses gateway options; a bad value throws a RangeError naming the option and its rule. */
export function parseGatewayOptions(options: GatewayOptions): GatewaySettings {
  const result = GatewayOptionsSchema.safeParse(options);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const name = issue === undefined || issue.path.length === 0 ? "options" : issue.path.map(String).join(".");
  throw new RangeError(`gateway option ${name} ${issue?.message ?? "is invalid"}`);
}

function brokerAccount(broker: BrokerInterface): string | undefined {
  const settings: unknown = (broker as { settings?: unknown }).settings;
  if (typeof settings !== "object" || settings === null) return undefined;
  const account: unknown = (settings as { account?: unknown }).account;
  return typeof account === "string" ? account : undefined;
}
