import type { BrokerLogger } from "../brokers/logger";

/** What a warning is about: each kind is thinned on its own, so one cannot hide another. */
export type RefusalKind =
  "socket" | "gateway-full" | "upgrade" | "unauthenticated" | "auth" | "auth-timeout" | "frame";

/**
 * Warnings a peer can cause at will (a refused socket, upgrade or AUTH), written at most once a
 * second per kind: the first at once, the rest counted and named on the next line of that kind. A
 * client reconnecting in a tight loop with a bad key, from many addresses, wrote one per attempt.
 */
export class RefusalLog {
  readonly #log: BrokerLogger;
  readonly #kinds = new Map<RefusalKind, { loggedAt: number; unlogged: number }>();

  constructor(log: BrokerLogger) {
    this.#log = log;
  }

  warn(kind: RefusalKind, message: string): void {
    const now = performance.now();
    const last = this.#kinds.get(kind);
    if (last !== undefined && now - last.loggedAt < 1000) {
      last.unlogged += 1;
      return;
    }
    const unlogged = last?.unlogged ?? 0;
    this.#kinds.set(kind, { loggedAt: now, unlogged: 0 });
    const more = unlogged === 0 ? "" : ` (${unlogged} more such lines left out since the last one)`;
    this.#log.warn(`${message}${more}`);
  }
}
