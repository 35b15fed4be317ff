import type { TokenBucket } from "../ws/token-bucket";

/**
 * One connection's fair share of its api key's rate budget: the key's rate and burst divided by
 * the key's connections now. With the key's rate equal to one connection's (the default), a
 * connection sending at its own limit used to spend the key's whole budget, and its siblings,
 * which had sent nothing, were refused (test/unit/gateway-key-share.spec.ts).
 *
 * A request within its connection's share takes from the key's bucket as before. One past it may
 * only borrow what the key's bucket holds beyond half its burst: a connection may still use the
 * key's spare capacity, and the other half stays for connections within their share.
 */
export class KeyShare {
  /** Unset (NaN) until the connection's first request: then the share starts full. */
  #tokens = Number.NaN;
  #updated = 0;

  /** Takes one of the key's tokens for this connection: 0, or the ms to wait (nothing taken). */
  take(key: TokenBucket, connections: number, now = performance.now()): number {
    const n = Math.max(1, connections);
    const rate = key.ratePerSecond / n;
    const cap = Math.max(1, key.burst / n);
    const tokens = Number.isNaN(this.#tokens)
      ? cap
      : Math.min(cap, this.#tokens + ((now - this.#updated) * rate) / 1000);
    this.#updated = now;
    if (tokens >= 1) {
      const waitMs = key.take();
      this.#tokens = waitMs === 0 ? tokens - 1 : tokens;
      return waitMs;
    }
    this.#tokens = tokens;
    if (key.available - 1 >= key.burst / 2) return key.take();
    return Math.max(1, Math.ceil(((1 - tokens) * 1000) / rate));
  }
}
