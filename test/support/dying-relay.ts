import type { ProxiedConnection } from "./ws-tamper-proxy";
import { WsTamperProxy } from "./ws-tamper-proxy";

/** The ids of the requests of one type in an up frame (an array frame may carry several). */
export function requestIds(text: string, type: string): string[] {
  if (!text.includes(`"${type}"`)) return [];
  const parsed = JSON.parse(text) as Record<string, unknown> | Record<string, unknown>[];
  return (Array.isArray(parsed) ? parsed : [parsed]).filter((m) => m.type === type).map((m) => String(m.id));
}

/**
 * A relay whose connections die at a chosen moment of one request type (MODIFY_ORDER,
 * CANCEL_ORDER): "answer" lets the request through and loses its answer (it was carried out),
 * "request" loses the request itself on the way up (it was not). From then on the connection
 * delivers nothing down, and it is reset when the client, its request timed out, asks what became
 * of the order: that lookup is lost too.
 */
export class DyingRelay {
  lose: "answer" | "request" | undefined;
  /** Run when a request is swallowed on its way up, before the connection dies. */
  onLostRequest: (() => void) | undefined;
  /**
   * Resets the connection as soon as the request or its answer is lost, instead of when the
   * client's first lookup goes up: the request fails NETWORK at once rather than after its
   * timeout, and the lookup goes out on the next connection.
   */
  cutAtOnce = false;
  readonly #doomed = new Set<string>();
  readonly #dead = new Set<number>();

  constructor(
    readonly relay: WsTamperProxy,
    readonly type: string,
  ) {
    relay.tap = (direction, text, connection) => this.#tap(direction, text, connection);
  }

  static async start(upstreamUrl: string, type: string): Promise<DyingRelay> {
    return new DyingRelay(await WsTamperProxy.start(upstreamUrl), type);
  }

  #tap(direction: "up" | "down", text: string, connection: ProxiedConnection): string | null | undefined {
    if (direction === "up") {
      if (this.#dead.has(connection.index)) {
        if (text.includes('"GET_ORDER"')) setImmediate(() => connection.cut());
        return undefined;
      }
      const ids = requestIds(text, this.type);
      if (ids.length === 0 || this.lose === undefined) return undefined;
      if (this.lose === "request") {
        this.lose = undefined;
        this.#dead.add(connection.index);
        this.onLostRequest?.();
        if (this.cutAtOnce) setImmediate(() => connection.cut());
        return null;
      }
      for (const id of ids) this.#doomed.add(id);
      return undefined;
    }
    if (this.#dead.has(connection.index)) return null;
    if (this.#doomed.size === 0 || !text.includes('"RESULT"')) return undefined;
    const parsed = JSON.parse(text) as Record<string, unknown> | Record<string, unknown>[];
    const answers = Array.isArray(parsed) ? parsed : [parsed];
    if (!answers.some((m) => this.#doomed.has(String(m.id)))) return undefined;
    this.#doomed.clear();
    this.lose = undefined;
    this.#dead.add(connection.index);
    if (this.cutAtOnce) setImmediate(() => connection.cut());
    return null;
  }
}
