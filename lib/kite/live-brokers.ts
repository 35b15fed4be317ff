import type { KiteBroker } from "../brokers/kite-broker";

/**
 * The Kite brokers running in this process, by api key: a login hands its new token to each of
 * them without a redeploy. A registry rather than a reference through the config node, because
 * the broker a node holds may be wrapped (risk guard, metrics) and only the Kite broker takes a
 * token. One api key is one Kite account, so every broker on it switches together.
 */
const live = new Map<string, Set<KiteBroker>>();

export function registerLiveBroker(apiKey: string, broker: KiteBroker): void {
  let set = live.get(apiKey);
  if (set === undefined) {
    set = new Set();
    live.set(apiKey, set);
  }
  set.add(broker);
}

export function unregisterLiveBroker(apiKey: string, broker: KiteBroker): void {
  const set = live.get(apiKey);
  if (set === undefined) return;
  set.delete(broker);
  if (set.size === 0) live.delete(apiKey);
}

export function liveBrokers(apiKey: string): KiteBroker[] {
  return Array.from(live.get(apiKey) ?? []);
}
