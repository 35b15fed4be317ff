import crypto from "node:crypto";

/**
 * The idempotency hash of an order's parameters (idempotency-index.ts `orderHash`), computed in
 * about half the CPU, digest for digest the same: the index file keeps these hashes across
 * restarts, so a faster function must not give a retry after an upgrade a different one.
 *
 * The canonical form is unchanged: JSON of the [key, value] pairs of every defined field but
 * client_order_id, sorted by key, so the hash stays independent of key order; sha256 of it, the
 * first 96 bits in hex. What costs less: the pairs are written by concatenation (no filtered,
 * sorted and mapped arrays, no nested array for JSON.stringify to walk), and the digest is
 * Node's one-shot `crypto.hash` instead of a Hash object per order (~0.4 µs against ~1.7 µs).
 */
export function orderHash(order: Record<string, unknown>): string {
  return sha256Prefix(canonicalOrder(order));
}

/** What idempotency-index.ts hashes: `JSON.stringify(sortedKeys.map((key) => [key, order[key]]))`. */
export function canonicalOrder(order: Record<string, unknown>): string {
  const keys = Object.keys(order);
  // Filtered in place, then an insertion sort by UTF-16 code units (what Array#sort does with
  // strings): an order has a dozen keys at most.
  let count = 0;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (key === "client_order_id" || order[key] === undefined) continue;
    let at = count++;
    while (at > 0 && (keys[at - 1] as string) > key) {
      keys[at] = keys[at - 1] as string;
      at--;
    }
    keys[at] = key;
  }
  let canonical = "[";
  for (let i = 0; i < count; i++) {
    const key = keys[i] as string;
    const value = order[key];
    // JSON writes a finite number as String() does; anything JSON.stringify cannot write alone
    // (a function, a symbol) stands as null inside an array.
    const json =
      typeof value === "number" && Number.isFinite(value) ? String(value) : (JSON.stringify(value) ?? "null");
    canonical += `${i === 0 ? "" : ","}[${JSON.stringify(key)},${json}]`;
  }
  return `${canonical}]`;
}

type OneShotHash = (algorithm: string, data: string, encoding: "buffer") => Buffer;
/** Node ≥ 20.12 has crypto.hash; the package allows any Node 20, so older ones use a Hash object. */
const oneShot = (crypto as unknown as { hash?: OneShotHash }).hash;

/**
 * The first 96 bits of the sha256, as 24 hex digits in a string of their own. The index keeps
 * one per client_order_id all day: `hex.slice(0, 24)` is a V8 sliced string that holds on to the
 * whole 64-digit hex (108 retained bytes per id against 48; `--expose-gc`, 20,000 hashes).
 */
function sha256Prefix(data: string): string {
  const digest =
    oneShot !== undefined
      ? oneShot("sha256", data, "buffer")
      : crypto.createHash("sha256").update(data).digest();
  return digest.toString("hex", 0, 12);
}
