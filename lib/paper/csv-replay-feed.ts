import { readFile } from "node:fs/promises";
import type { Exchange, Quote } from "../protocol";
import { BrokerError } from "../protocol";
import type { ReplayPosition } from "./account-state";
import type { Clock, TimerRef } from "./clock";
import type { InstrumentKey } from "../protocol/instrument";
import { instrumentKey, parseInstrument, roundPrice } from "../protocol/instrument";
import type { QuoteFeed, QuoteListener } from "./quote-feed";

export interface CsvReplayOptions {
  clock: Clock;
  file: string;
  /** 1 = the file's own pace, N = N times faster, 0 = as fast as possible. */
  speed: number;
  loop: boolean;
  onQuote: QuoteListener;
  /** Called once when a non-looping replay reaches the end of the file. */
  onEnd?: () => void;
}

export interface CsvRow {
  time: number;
  exchange: Exchange;
  symbol: string;
  price: number;
  volume: number | undefined;
}

/** As-fast-as-possible replays yield to the event loop after this many rows. */
const ROWS_PER_TURN = 500;

/**
 * Parses `timestamp,symbol,price[,volume]` (a header line is allowed). Timestamps are ISO 8601 or
 * epoch milliseconds; a symbol may carry its exchange ("BSE:INFY"). Errors name the line.
 */
export function parseQuoteCsv(text: string, file: string): CsvRow[] {
  const rows: CsvRow[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const cells = line.split(",").map((cell) => cell.trim());
    if (index === 0 && /^[a-z_]+$/i.test(cells[0] ?? "") && Number.isNaN(Number(cells[2]))) return;
    const where = `${file} line ${index + 1}`;
    if (cells.length < 3 || cells.length > 4) {
      throw new BrokerError(
        "CONFIG",
        `${where}: expected timestamp,symbol,price[,volume], got ${cells.length} fields`,
      );
    }
    const [stamp = "", name = "", priceText = "", volumeText] = cells;
    const time = /^\d+$/.test(stamp) ? Number(stamp) : Date.parse(stamp);
    if (!Number.isFinite(time))
      throw new BrokerError("CONFIG", `${where}: timestamp "${stamp}" is not ISO 8601 or epoch ms`);
    const price = Number(priceText);
    if (!Number.isFinite(price) || price <= 0) {
      throw new BrokerError("CONFIG", `${where}: price "${priceText}" must be a number greater than 0`);
    }
    const volume = volumeText === undefined || volumeText === "" ? undefined : Number(volumeText);
    if (volume !== undefined && (!Number.isFinite(volume) || volume < 0)) {
      throw new BrokerError("CONFIG", `${where}: volume "${volumeText}" must be a number of at least 0`);
    }
    const { exchange, symbol } = parseInstrument(name);
    rows.push({ time, exchange, symbol, price, volume });
  });
  rows.sort((a, b) => a.time - b.time);
  return rows;
}

/** Replays a CSV of prices, keeping each row's spacing in time divided by `speed`. */
export class CsvReplayFeed implements QuoteFeed {
  readonly #options: CsvReplayOptions;
  readonly #quotes = new Map<InstrumentKey, Quote>();
  #rows: CsvRow[] = [];
  #next = 0;
  #timer: TimerRef | undefined;
  #running = false;
  /** Wall time at which the pass's first row is due, so timing errors do not accumulate. */
  #passStart = 0;
  /** The time column of the row the current pass (or the resumed part of it) started from. */
  #anchor = 0;
  #resumeFrom: ReplayPosition | undefined;
  /** Rows emitted since construction: the broker journals the position when this moves. */
  #version = 0;
  #lastTime: number | undefined;

  constructor(options: CsvReplayOptions) {
    this.#options = options;
  }

  track(_key: InstrumentKey): void {
    // The file decides which instruments move.
  }

  /** A replay moves only what its file names; there is no walk to stop. */
  forget(_key: InstrumentKey): void {
    // Nothing to do.
  }

  latest(key: InstrumentKey): Quote | undefined {
    return this.#quotes.get(key);
  }

  set(quote: Quote): void {
    this.#quotes.set(instrumentKey(quote.exchange, quote.symbol), quote);
  }

  get version(): number {
    return this.#version;
  }

  /** Where the replay stands, for the journal. */
  position(): ReplayPosition {
    return this.#lastTime === undefined
      ? { rows_done: this.#next }
      : { rows_done: this.#next, last_time: this.#lastTime };
  }

  /**
   * Goes on after the row the journal says was replayed last (a restarted account must not
   * replay old prices over itself). Takes effect at start(); if the file changed, the first row
   * later than the last replayed one is next.
   */
  resume(position: ReplayPosition): void {
    this.#resumeFrom = position;
  }

  #resumeIndex(): number {
    const from = this.#resumeFrom;
    if (from === undefined) return 0;
    const rows = this.#rows;
    const done = Math.min(from.rows_done, rows.length);
    if (from.last_time === undefined || done === 0 || rows[done - 1]?.time === from.last_time) {
      this.#lastTime = from.last_time;
      return done;
    }
    const index = rows.findIndex((row) => row.time > (from.last_time as number));
    this.#lastTime = from.last_time;
    return index === -1 ? rows.length : index;
  }

  async start(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.#options.file, "utf8");
    } catch (error) {
      throw new BrokerError(
        "CONFIG",
        `cannot read quote file ${this.#options.file}: ${(error as Error).message}`,
      );
    }
    this.#rows = parseQuoteCsv(text, this.#options.file);
    if (this.#rows.length === 0)
      throw new BrokerError("CONFIG", `quote file ${this.#options.file} has no rows`);
    this.#running = true;
    this.#next = this.#resumeIndex();
    if (this.#next >= this.#rows.length) {
      if (!this.#options.loop) {
        this.#running = false;
        this.#options.onEnd?.();
        return;
      }
      this.#next = 0;
    }
    this.#passStart = this.#options.clock.now();
    this.#anchor = this.#rows[this.#next]!.time;
    this.#schedule();
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (!this.#running) return;
    const row = this.#rows[this.#next];
    if (row === undefined) return;
    const first = this.#anchor;
    const delay =
      this.#options.speed === 0
        ? 0
        : this.#passStart + (row.time - first) / this.#options.speed - this.#options.clock.now();
    this.#timer = this.#options.clock.setTimeout(() => this.#emitDue(), Math.max(0, delay));
    if (typeof this.#timer === "object" && "unref" in this.#timer) this.#timer.unref();
  }

  #emitDue(): void {
    this.#timer = undefined;
    const now = this.#options.clock.now();
    const first = this.#anchor;
    let emitted = 0;
    while (this.#running && this.#next < this.#rows.length) {
      const row = this.#rows[this.#next] as CsvRow;
      const due =
        this.#options.speed === 0 ? now : this.#passStart + (row.time - first) / this.#options.speed;
      if (due > now || (this.#options.speed === 0 && emitted >= ROWS_PER_TURN)) break;
      this.#next += 1;
      emitted += 1;
      this.#emit(row, now);
    }
    if (this.#next >= this.#rows.length) {
      if (!this.#options.loop) {
        this.#running = false;
        this.#options.onEnd?.();
        return;
      }
      this.#next = 0;
      this.#passStart = now;
      this.#anchor = this.#rows[0]!.time;
    }
    this.#schedule();
  }

  #emit(row: CsvRow, now: number): void {
    const quote: Quote = {
      symbol: row.symbol,
      exchange: row.exchange,
      last_price: roundPrice(row.price),
      timestamp: new Date(now).toISOString(),
    };
    if (row.volume !== undefined) quote.volume = row.volume;
    this.#version += 1;
    this.#lastTime = row.time;
    this.#quotes.set(instrumentKey(row.exchange, row.symbol), quote);
    this.#options.onQuote(quote);
  }
}
