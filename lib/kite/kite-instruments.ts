import type { Exchange } from "../protocol/fields";
import { BrokerError, toBrokerError } from "../protocol/errors";
import type { BrokerLogger } from "../brokers/logger";
import { InstrumentCache } from "./instrument-cache";
import type { InstrumentInfo } from "./instruments";
import { InstrumentMap } from "./instruments";
import type { KiteRestClient } from "./rest-client";

/**
 * Kite's instrument lists for one broker: tokens for the ticker, lot and tick sizes for the checks
 * before an order is sent, and the lookup. Each exchange's list is read from the day's disk cache
 * or downloaded once (issue 10, defect 6).
 */
export class KiteInstruments {
  readonly #map: InstrumentMap;
  readonly #cache: InstrumentCache | undefined;
  readonly #rest: KiteRestClient;
  readonly #log: BrokerLogger;
  readonly #loading = new Map<string, Promise<void>>();

  constructor(options: {
    fixed: Readonly<Record<string, number>>;
    cacheDir: string | undefined;
    rest: KiteRestClient;
    log: BrokerLogger;
  }) {
    this.#map = new InstrumentMap(options.fixed);
    this.#cache = options.cacheDir === undefined ? undefined : new InstrumentCache(options.cacheDir);
    this.#rest = options.rest;
    this.#log = options.log;
  }

  tokenOf(exchange: Exchange, symbol: string): number | undefined {
    return this.#map.tokenOf(exchange, symbol);
  }

  /** Instruments of `exchange` whose symbol or name holds `text`, exact symbols first. */
  async search(exchange: Exchange, text: string, limit: number): Promise<InstrumentInfo[]> {
    if (!this.#map.isLoaded(exchange)) await this.load(exchange);
    return this.#map.search(text, limit, exchange);
  }

  /**
   * Refuses, before anything is sent, what Kite's instrument list says the exchange would refuse:
   * a quantity that is not a whole number of lots, a price off the tick, an index (not tradable).
   * The list comes from the day's cache; when it cannot be had, Kite itself decides.
   */
  async check(
    exchange: Exchange,
    symbol: string,
    fields: {
      quantity?: number | undefined;
      price?: number | undefined;
      trigger_price?: number | undefined;
      iceberg_quantity?: number | undefined;
      disclosed_quantity?: number | undefined;
    },
  ): Promise<void> {
    if (!this.#map.isLoaded(exchange)) {
      try {
        await this.load(exchange);
      } catch (error) {
        const err = toBrokerError(error);
        if (err.code === "AUTH" || err.code === "CLOSED") throw err;
        this.#log.warn(`no instrument list for ${exchange} (${err.message}): lot and tick not checked`);
        return;
      }
    }
    const key = `${exchange}:${symbol}`;
    const info = this.#map.infoOf(exchange, symbol);
    if (info === undefined) {
      throw new BrokerError("VALIDATION", `symbol: ${key} is not in Kite's instrument list for today`);
    }
    if (info.segment === "INDICES") {
      throw new BrokerError(
        "VALIDATION",
        `symbol: ${key} is an index; indices have quotes but cannot be traded`,
      );
    }
    // Each iceberg leg and each disclosed slice goes to the exchange as an order of its own: whole lots too.
    for (const field of ["quantity", "iceberg_quantity", "disclosed_quantity"] as const) {
      const value = fields[field];
      if (value !== undefined && info.lot_size > 1 && value % info.lot_size !== 0) {
        throw new BrokerError(
          "VALIDATION",
          `${field}: must be a multiple of ${key}'s lot size ${info.lot_size} (got ${value})`,
        );
      }
    }
    for (const field of ["price", "trigger_price"] as const) {
      const value = fields[field];
      if (value === undefined || !(info.tick_size > 0)) continue;
      const ticks = value / info.tick_size;
      if (Math.abs(ticks - Math.round(ticks)) > 1e-6) {
        throw new BrokerError(
          "VALIDATION",
          `${field}: must be a multiple of ${key}'s tick size ${info.tick_size} (got ${value})`,
        );
      }
    }
  }

  /** Loads the instrument list of each exchange where one of `keys` has no token yet. */
  async ensure(keys: { exchange: Exchange; symbol: string }[]): Promise<void> {
    const missing = new Set<Exchange>();
    for (const { exchange, symbol } of keys) {
      if (this.#map.tokenOf(exchange, symbol) === undefined && !this.#map.isLoaded(exchange))
        missing.add(exchange);
    }
    await Promise.all(Array.from(missing, (exchange) => this.load(exchange)));
  }

  /**
   * An exchange's instrument list: from the disk cache when it was fetched this trading day
   * (issue 10, defect 6), else downloaded once and cached.
   */
  load(exchange: string): Promise<void> {
    let loading = this.#loading.get(exchange);
    if (loading === undefined) {
      loading = (async () => {
        const cached = await this.#cache?.read(exchange);
        if (cached !== undefined) {
          const added = this.#map.load(exchange, cached);
          this.#log.info(`Kite instrument list for ${exchange}: ${added} instruments (cached today)`);
          return;
        }
        const rows = await this.#rest.call("request", "instrument list request", (k) =>
          k.getInstruments(exchange),
        );
        const added = this.#map.load(exchange, rows);
        this.#log.info(`Kite instrument list for ${exchange}: ${added} instruments`);
        await this.#cache
          ?.write(exchange, this.#map.rowsOf(exchange))
          .catch((error: unknown) =>
            this.#log.warn(`could not cache Kite's instrument list: ${toBrokerError(error).message}`),
          );
      })().finally(() => this.#loading.delete(exchange));
      this.#loading.set(exchange, loading);
    }
    return loading;
  }
}
