import type { EventEmitter } from "node:events";

/** Polls `condition` until it holds; fails with `label` after `timeoutMs`. No fixed sleeps in tests. */
export async function waitFor(condition: () => boolean, label: string, timeoutMs = 2000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** The arguments of the next `event` for which `accept` holds, or a failure after `timeoutMs`. */
export function nextEvent<A extends unknown[] = unknown[]>(
  emitter: EventEmitter,
  event: string,
  accept: (...args: A) => boolean = () => true,
  timeoutMs = 2000,
): Promise<A> {
  return new Promise<A>((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for '${event}'`));
    }, timeoutMs);
    function listener(...args: unknown[]): void {
      if (!accept(...(args as A))) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(args as A);
    }
    emitter.on(event, listener);
  });
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Settles a promise into a value, so a test can collect outcomes without unhandled rejections. */
export function outcome<T>(promise: Promise<T>): Promise<Outcome<T>> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** Counts of active handles and timers by kind, as process.getActiveResourcesInfo() reports them. */
export function activeResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

export function describeResources(counts: Map<string, number>): string {
  return JSON.stringify(Object.fromEntries([...counts].sort()));
}
