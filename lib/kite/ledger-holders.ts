import { BrokerError } from "../protocol/errors";
import { sleep } from "../common/sleep";

/**
 * Which reported-ledger files a broker of this process holds. Two holders of one file would
 * each compact it at start over the other's appends, and each would take the other's reports
 * for its own (a fill one reported would be silent in the other after its restart). A redeploy
 * opens the new broker's ledger while the old broker may still be closing: it waits for the
 * release, and a holder that never lets go is named in a clear error.
 */
const held = new Map<string, { holder: string; released: Promise<void>; release: () => void }>();

/** Takes `file` for `holder`; returns the release, or throws CONFIG naming who holds it. */
export function holdLedger(file: string, holder: string): () => void {
  const current = held.get(file);
  if (current !== undefined) {
    throw new BrokerError(
      "CONFIG",
      `the Kite reported ledger ${file} is in use by another Kite broker in this process (${current.holder}); each broker config on one api key keeps its own ledger, so two brokers with the same instance_id cannot run at once`,
    );
  }
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const entry = { holder, released, release };
  held.set(file, entry);
  return () => {
    if (held.get(file) !== entry) return;
    held.delete(file);
    entry.release();
  };
}

/** Whether a broker of this process holds `file` now. */
export function isHeldHere(file: string): boolean {
  return held.has(file);
}

/** Waits up to `waitMs` for `file` to be released (the broker it belongs to is closing). */
export async function ledgerReleased(file: string, waitMs: number, signal: AbortSignal): Promise<void> {
  const current = held.get(file);
  if (current === undefined) return;
  const gaveUp = new AbortController();
  const onAbort = (): void => gaveUp.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    await Promise.race([current.released, sleep(waitMs, gaveUp.signal)]);
  } finally {
    signal.removeEventListener("abort", onAbort);
    gaveUp.abort();
  }
}
