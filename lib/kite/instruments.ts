import { z } from "zod";
import type { Exchange } from "../protocol/fields";
import type { InstrumentKey } from "../protocol/instrument";
import { instrumentKey } from "../protocol/instrument";

/**
 * One row of Kite's instrument list, as this pack hands it to flows (trading-instruments) and
 * checks orders against: lot and tick size, expiry, segment. Indices have lot_size 0.
 */
export const InstrumentInfo = z.strictObject({
  instrument_token: z.number().int().positive(),
  exchange: z.string(),
  tradingsymbol: z.string(),
  name: z.string(),
  segment: z.string(),
  instrument_type: z.string(),
  lot_size: z.number().nonnegative(),
  tick_size: z.number().nonnegative(),
  /** YYYY-MM-DD, or "" for instruments that do not expire. */
  expiry: z.string(),
  strike: z.number(),
});
export type InstrumentInfo = z.output<typeof InstrumentInfo>;

function str(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value.toISOString().slice(0, 10);
  return typeof value === "number" ? String(value) : "";
}

function numberOr0(value: unknown): number {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

/**
 * Instrument tokens ⇄ exchange:symbol, for the ticker (which speaks tokens only). Filled from
 * Kite's instrument list (GET /instruments/{exchange}, CSV), fetched once per exchange the first
 * time a symbol there is subscribed, and from fixed entries in the settings (which win, and save
 * the download).
 */
export class InstrumentMap {
  readonly #byKey = new Map<InstrumentKey, number>();
  readonly #byToken = new Map<number, { exchange: Exchange; symbol: string }>();
  readonly #loaded = new Set<string>();
  readonly #fixed = new Set<InstrumentKey>();
  readonly #info = new Map<InstrumentKey, InstrumentInfo>();

  constructor(fixed: Readonly<Record<string, number>> = {}) {
    for (const [key, token] of Object.entries(fixed)) {
      const colon = key.indexOf(":");
      this.#add(key.slice(0, colon) as Exchange, key.slice(colon + 1), token);
      this.#fixed.add(key as InstrumentKey);
    }
  }

  get size(): number {
    return this.#byKey.size;
  }

  isLoaded(exchange: string): boolean {
    return this.#loaded.has(exchange);
  }

  tokenOf(exchange: Exchange, symbol: string): number | undefined {
    return this.#byKey.get(instrumentKey(exchange, symbol));
  }

  keyOf(token: number): { exchange: Exchange; symbol: string } | undefined {
    return this.#byToken.get(token);
  }

  /** Lot size, tick size, expiry, segment: known once the exchange's list is loaded. */
  infoOf(exchange: Exchange, symbol: string): InstrumentInfo | undefined {
    const info = this.#info.get(instrumentKey(exchange, symbol));
    return info === undefined ? undefined : { ...info };
  }

  /** The listed instruments of an exchange (what the disk cache keeps). */
  rowsOf(exchange: string): InstrumentInfo[] {
    return Array.from(this.#info.values()).filter((i) => i.exchange === exchange);
  }

  /**
   * Instruments whose symbol or name contains `text` (case-insensitive), exact symbol matches
   * first, at most `limit`; only exchanges already loaded are searched.
   */
  search(text: string, limit: number, exchange?: string): InstrumentInfo[] {
    const needle = text.trim().toUpperCase();
    const exact: InstrumentInfo[] = [];
    const partial: InstrumentInfo[] = [];
    for (const info of this.#info.values()) {
      if (exchange !== undefined && info.exchange !== exchange) continue;
      const symbol = info.tradingsymbol.toUpperCase();
      if (symbol === needle) exact.push({ ...info });
      else if (symbol.includes(needle) || info.name.toUpperCase().includes(needle)) partial.push({ ...info });
      if (exact.length >= limit) break;
    }
    return [...exact, ...partial].slice(0, limit);
  }

  /**
   * Adds the rows of an instrument list for `exchange`: kiteconnect's parsed rows (tokens as
   * strings, and an empty last row from the CSV's final newline), or the raw CSV text it returns
   * when the Content-Type carries a charset.
   */
  load(exchange: string, rows: unknown): number {
    const list = typeof rows === "string" ? parseCsv(rows) : Array.isArray(rows) ? rows : [];
    let added = 0;
    for (const row of list) {
      if (typeof row !== "object" || row === null) continue;
      const r = row as Record<string, unknown>;
      const token = Number(r.instrument_token);
      const symbol = typeof r.tradingsymbol === "string" ? r.tradingsymbol : "";
      const rowExchange = typeof r.exchange === "string" && r.exchange !== "" ? r.exchange : exchange;
      if (!Number.isInteger(token) || token <= 0 || symbol === "") continue;
      const key = instrumentKey(rowExchange as Exchange, symbol);
      this.#info.set(key, {
        instrument_token: token,
        exchange: rowExchange,
        tradingsymbol: symbol,
        name: str(r.name),
        segment: str(r.segment) || rowExchange,
        instrument_type: str(r.instrument_type),
        lot_size: numberOr0(r.lot_size),
        tick_size: numberOr0(r.tick_size),
        expiry: str(r.expiry),
        strike: numberOr0(r.strike),
      });
      if (this.#fixed.has(key)) continue;
      this.#add(rowExchange as Exchange, symbol, token);
      added += 1;
    }
    this.#loaded.add(exchange);
    return added;
  }

  #add(exchange: Exchange, symbol: string, token: number): void {
    this.#byKey.set(instrumentKey(exchange, symbol), token);
    this.#byToken.set(token, { exchange, symbol });
  }
}

/** RFC 4180 CSV with a header row → objects. Enough for Kite's instrument dump. */
export function parseCsv(text: string): Record<string, string>[] {
  const records: string[][] = [];
  let field = "";
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 1;
        } else quoted = false;
      } else field += c;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === ",") {
      record.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      record.push(field);
      records.push(record);
      record = [];
      field = "";
    } else field += c;
  }
  if (field !== "" || record.length > 0) {
    record.push(field);
    records.push(record);
  }
  const [header, ...body] = records;
  if (header === undefined) return [];
  return body
    .filter((r) => r.length > 1 || (r[0] ?? "") !== "")
    .map((r) => Object.fromEntries(header.map((name, i) => [name, r[i] ?? ""])));
}
