import { randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, rename, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { istDay } from "../market/ist";
import type { InstrumentInfo } from "./instruments";

/** Kite publishes the day's instrument list before the market opens, around 08:30 IST. */
const PUBLISHED_AT_MS = (8 * 60 + 30) * 60_000;
const SAFE = /^[A-Z]{2,8}$/;

/**
 * The trading day a list fetched at `ms` belongs to, as YYYY-MM-DD: the IST date, except that a
 * list fetched before 08:30 IST is still the previous day's.
 */
export function tradingDay(ms: number): string {
  return istDay(ms - PUBLISHED_AT_MS);
}

/**
 * Kite's instrument lists on disk for the trading day (issue 10, defect 6): a redeploy or a
 * restart reads the file instead of downloading tens of thousands of rows again. One JSON file
 * per exchange and day, written whole (temp file, then rename); older days are removed.
 */
export class InstrumentCache {
  readonly #dir: string;
  readonly #now: () => number;

  constructor(dir: string, now: () => number = Date.now) {
    this.#dir = dir;
    this.#now = now;
  }

  #file(exchange: string, day: string): string {
    return path.join(this.#dir, `kite-instruments-${exchange}-${day}.json`);
  }

  /** Today's rows for `exchange`, or undefined when there are none (or the file is unreadable). */
  async read(exchange: string): Promise<InstrumentInfo[] | undefined> {
    if (!SAFE.test(exchange)) return undefined;
    let text: string;
    try {
      text = await readFile(this.#file(exchange, tradingDay(this.#now())), "utf8");
    } catch {
      return undefined;
    }
    try {
      const rows = JSON.parse(text) as unknown;
      return Array.isArray(rows) && rows.length > 0 ? (rows as InstrumentInfo[]) : undefined;
    } catch {
      return undefined;
    }
  }

  async write(exchange: string, rows: InstrumentInfo[]): Promise<void> {
    if (!SAFE.test(exchange) || rows.length === 0) return;
    await mkdir(this.#dir, { recursive: true });
    const day = tradingDay(this.#now());
    const target = this.#file(exchange, day);
    const temp = `${target}.${randomBytes(4).toString("hex")}.tmp`;
    await writeFile(temp, JSON.stringify(rows));
    await rename(temp, target);
    const prefix = `kite-instruments-${exchange}-`;
    for (const name of await readdir(this.#dir)) {
      if (name.startsWith(prefix) && name !== path.basename(target) && name.endsWith(".json")) {
        await unlink(path.join(this.#dir, name)).catch(() => undefined);
      }
    }
  }
}
