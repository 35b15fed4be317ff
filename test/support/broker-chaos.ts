import type { BrokerInterface } from "../../lib/brokers/interface";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import type { WebSocketSettingsInput } from "../../lib/brokers/websocket-settings";
import { WebSocketSettings } from "../../lib/brokers/websocket-settings";
import type { ConnectionState, OrderEvent } from "../../lib/protocol";
import { BrokerError } from "../../lib/protocol/errors";
import { TEST_KEY, TEST_SECRET } from "./gateway-client";

type Overrides = Omit<Partial<WebSocketSettingsInput>, "url">;

/**
 * Settings for a WebSocketBroker under test: fast reconnects and heartbeats so faults show up in
 * milliseconds, the test credentials, everything else overridable.
 */
export function fastSettings(url: string, overrides: Overrides = {}): WebSocketSettings {
  return WebSocketSettings.parse({
    url,
    api_key: TEST_KEY,
    api_secret: TEST_SECRET,
    heartbeat_ms: 500,
    request_timeout_ms: 1000,
    resolve_window_ms: 10_000,
    ...overrides,
    reconnect: { initial_ms: 20, max_ms: 200, ...overrides.reconnect },
    queue: { max: 2000, ttl_ms: 3000, ...overrides.queue },
    rate_limit: { per_second: 100_000, burst: 100_000, ...overrides.rate_limit },
  });
}

/** The protocol a test's WebSocketBroker speaks (see ObservedBroker). */
export type ProtocolVariant = "v1" | "v1.1" | "v1.1 skip";

/** WebSocketBrokerDeps for a variant. */
export function depsFor(protocol: ProtocolVariant): {
  protocol: "v1" | "v1.1";
  answeredEvents: "send" | "skip";
} {
  return protocol === "v1.1 skip"
    ? { protocol: "v1.1", answeredEvents: "skip" }
    : { protocol, answeredEvents: "send" };
}

/** A WebSocketBroker that records every state it reports, every error it emits and its log. */
export class ObservedBroker {
  readonly broker: WebSocketBroker;
  readonly states: ConnectionState[] = [];
  readonly errors: BrokerError[] = [];
  readonly orders: OrderEvent[] = [];
  readonly warnings: string[] = [];

  /**
   * `protocol`: the newest version the broker offers (WebSocketBrokerDeps.protocol); "v1.1" with
   * every event pushed, "v1.1 skip" with the events its answers carry left out of the pushes.
   */
  constructor(settings: WebSocketSettings, protocol?: ProtocolVariant) {
    this.broker = new WebSocketBroker(settings, {
      ...(protocol === undefined ? {} : depsFor(protocol)),
      log: {
        info: () => undefined,
        warn: (message) => this.warnings.push(message),
        error: (message) => this.warnings.push(message),
      },
    });
    this.broker.on("state", (state) => this.states.push(state));
    this.broker.on("error", (error) => this.errors.push(error));
    this.broker.on("order", (event) => this.orders.push(event));
  }

  /** Order events for one order, as "TYPE" or "TYPE*" when synthesized. */
  eventsFor(orderId: string): string[] {
    return this.orders
      .filter((e) => e.order.order_id === orderId)
      .map((e) => (e.synthesized === true ? `${e.type}*` : e.type));
  }
}

/** Methods of a broker that a stall holds until release(). */
export type StallableMethod = "placeOrder" | "getAccount" | "getOrder" | "getOrderbook" | "cancelOrder";

/**
 * Wraps a broker so that chosen methods hang while stalled — a venue that accepts requests and
 * never answers — and go through once released. Everything else is the broker itself.
 */
export function stallable(
  broker: BrokerInterface,
  methods: StallableMethod[],
): { broker: BrokerInterface; stall(): void; release(): void; readonly held: number } {
  let gate: { promise: Promise<void>; open: () => void } | undefined;
  let held = 0;
  const stalled = new Set<string | symbol>(methods);
  const wrapped = new Proxy(broker, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      const method = value as (...args: unknown[]) => unknown;
      if (!stalled.has(property)) return method.bind(target);
      return async (...args: unknown[]) => {
        const waitFor = gate;
        if (waitFor !== undefined) {
          held += 1;
          try {
            await waitFor.promise;
          } finally {
            held -= 1;
          }
        }
        return method.apply(target, args);
      };
    },
  });
  return {
    broker: wrapped,
    stall() {
      if (gate !== undefined) return;
      let open = (): void => undefined;
      const promise = new Promise<void>((resolve) => (open = resolve));
      gate = { promise, open };
    },
    release() {
      const current = gate;
      gate = undefined;
      current?.open();
    },
    get held() {
      return held;
    },
  };
}

/** How a request ended, for tallies. */
export type Settled<T> =
  { kind: "accepted"; value: T } | { kind: "rejected" | "expired" | "failed"; error: BrokerError };

/** Codes that are the venue's final "no" (nothing was or will be executed). */
const REJECTIONS = new Set([
  "VALIDATION",
  "INSUFFICIENT_FUNDS",
  "NO_QUOTE",
  "DUPLICATE_ORDER",
  "IDEMPOTENCY_MISMATCH",
  "ORDER_TERMINAL",
  "NOT_FOUND",
  "ILLEGAL_TRANSITION",
]);

export function classify<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ kind: "accepted" as const, value }),
    (error: unknown) => {
      if (!(error instanceof BrokerError)) throw error;
      if (error.code === "EXPIRED") return { kind: "expired" as const, error };
      if (REJECTIONS.has(error.code)) return { kind: "rejected" as const, error };
      return { kind: "failed" as const, error };
    },
  );
}

/** Resolves with `promise`, or fails with `label` after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${label}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Registers closers run after each test, newest first. */
export function useCleanup(): (close: () => Promise<void>) => void {
  let closers: (() => Promise<void>)[] = [];
  afterEach(async function () {
    const list = closers.reverse();
    closers = [];
    for (const close of list) await close();
  });
  return (close) => {
    closers.push(close);
  };
}
