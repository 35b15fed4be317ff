import type { Exchange, GttRequestInput, GttSnapshot } from "../protocol";
import { BrokerError, toBrokerError } from "../protocol/errors";
import { GttRequest } from "../protocol/gtt";
import { parseOrThrow } from "../protocol/validate";
import type { KiteSettings } from "../brokers/kite-settings";
import type { BrokerLogger } from "../brokers/logger";
import { isRecord } from "../common/is-record";
import type { GttTracker } from "./gtt-tracker";
import { copyGtt } from "./gtt-tracker";
import { toGttSnapshot, toKiteGttParams } from "./mapping";
import type { KiteRestClient } from "./rest-client";
import { isKiteTrigger } from "./rest-client";
import type { ReadRetry } from "./startup-read";
import { backgroundRead } from "./startup-read";
import { gttFromRequest } from "./snapshots";

export interface GttDeskDeps {
  settings: KiteSettings;
  rest: KiteRestClient;
  gtts: GttTracker;
  log: BrokerLogger;
  /** Throws when the broker cannot take requests now (closed, session expired). */
  usable: (what: string) => void;
  /** False once polling is pointless (the broker is closing, or Kite refuses the session). */
  active: () => boolean;
  /** How the poll's read is tried again after a 429, a 5xx or no answer. */
  reads: ReadRetry;
}

/**
 * Placing, changing, deleting and listing Kite GTTs, and the poll that notices what Kite does with
 * them: Kite pushes nothing about GTTs, so while one is active their list is read every
 * gtt_poll_ms and GttTracker turns what changed into events.
 */
export class GttDesk {
  readonly #deps: GttDeskDeps;
  readonly #rest: KiteRestClient;
  readonly #gtts: GttTracker;
  readonly #log: BrokerLogger;
  #polling: Promise<void> | undefined;
  #pollTimer: NodeJS.Timeout | undefined;

  constructor(deps: GttDeskDeps) {
    this.#deps = deps;
    this.#rest = deps.rest;
    this.#gtts = deps.gtts;
    this.#log = deps.log;
  }

  /** Stops the poll (a read under way still finishes; see close()). */
  stopPolling(): void {
    clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
  }

  /** Stops the poll and waits for a read under way. */
  async close(): Promise<void> {
    this.stopPolling();
    await this.#polling?.catch(() => undefined);
  }

  async place(input: GttRequestInput): Promise<GttSnapshot> {
    const request = parseOrThrow(GttRequest, input, "GTT");
    this.#deps.usable("GTT placement");
    const last = request.last_price ?? (await this.#lastPrice(request.exchange, request.symbol));
    const params = toKiteGttParams(request, last);
    const reply = await this.#rest.call("request", "GTT placement", (k) => k.placeGTT(params));
    const id = isRecord(reply) ? reply.trigger_id : undefined;
    if (typeof id !== "string" && typeof id !== "number") {
      throw new BrokerError("INTERNAL", "bad reply from Kite: the GTT placement answer has no trigger_id");
    }
    const gtt = await this.#readGtt(String(id), () => gttFromRequest(String(id), request, last));
    const current = this.#gtts.record(gtt);
    this.schedulePoll();
    return current;
  }

  async modify(gttId: string, input: GttRequestInput): Promise<GttSnapshot> {
    const request = parseOrThrow(GttRequest, input, "GTT");
    this.#deps.usable("GTT change");
    this.#checkGttId(gttId);
    this.#refuseIfGttEnded(gttId, "modified");
    const last = request.last_price ?? (await this.#lastPrice(request.exchange, request.symbol));
    const params = toKiteGttParams(request, last);
    try {
      await this.#rest.call("request", "GTT change", (k) => k.modifyGTT(gttId, params));
    } catch (error) {
      throw await this.#explainGtt(gttId, toBrokerError(error), "modified");
    }
    const gtt = await this.#readGtt(gttId, () => gttFromRequest(gttId, request, last));
    return this.#gtts.modified(gtt);
  }

  async delete(gttId: string): Promise<GttSnapshot> {
    this.#deps.usable("GTT deletion");
    this.#checkGttId(gttId);
    this.#refuseIfGttEnded(gttId, "deleted");
    try {
      await this.#rest.call("request", "GTT deletion", (k) => k.deleteGTT(gttId));
    } catch (error) {
      throw await this.#explainGtt(gttId, toBrokerError(error), "deleted");
    }
    const now = new Date().toISOString();
    const known = this.#gtts.get(gttId);
    let gtt: GttSnapshot;
    try {
      gtt = await this.#readGtt(gttId);
    } catch (error) {
      if (known === undefined) throw error;
      gtt = copyGtt(known);
    }
    if (gtt.status === "active") gtt = { ...gtt, status: "deleted", updated_at: now };
    return this.#gtts.record(gtt);
  }

  async list(): Promise<GttSnapshot[]> {
    this.#deps.usable("GTT list request");
    const list = await this.#rest.fetchGtts();
    this.#gtts.ingest(list, false);
    return list.map((t) =>
      copyGtt(this.#gtts.get(String(t.id)) ?? toGttSnapshot(t, new Date().toISOString())),
    );
  }

  #checkGttId(gttId: string): void {
    if (typeof gttId !== "string" || !/^[0-9A-Za-z_-]{1,64}$/.test(gttId)) {
      throw new BrokerError("NOT_FOUND", `GTT ${String(gttId)} not found (not a Kite trigger id)`);
    }
  }

  #refuseIfGttEnded(gttId: string, verb: string): void {
    const known = this.#gtts.get(gttId);
    if (known !== undefined && known.status !== "active") {
      throw new BrokerError(
        "ORDER_TERMINAL",
        `GTT ${gttId} is ${known.status}; only active GTTs can be ${verb}`,
      );
    }
  }

  async #explainGtt(gttId: string, error: BrokerError, verb: string): Promise<BrokerError> {
    if (error.code !== "VALIDATION" && error.code !== "ORDER_REJECTED" && error.code !== "INTERNAL")
      return error;
    let gtt: GttSnapshot;
    try {
      gtt = await this.#readGtt(gttId);
    } catch (lookup) {
      const err = toBrokerError(lookup);
      if (err.retryable || err.code === "AUTH" || err.code === "CLOSED") return error;
      return new BrokerError("NOT_FOUND", `GTT ${gttId} not found`);
    }
    if (gtt.status !== "active") {
      this.#gtts.record(gtt);
      return new BrokerError(
        "ORDER_TERMINAL",
        `GTT ${gttId} is ${gtt.status}; only active GTTs can be ${verb}`,
      );
    }
    return error;
  }

  async #readGtt(gttId: string, fallback?: () => GttSnapshot): Promise<GttSnapshot> {
    try {
      const reply = await this.#rest.call("request", "GTT request", (k) => k.getGTT(gttId));
      if (!isKiteTrigger(reply)) throw new BrokerError("INTERNAL", "bad reply from Kite: not a GTT");
      this.#gtts.learnOrders(reply);
      return toGttSnapshot(reply, new Date().toISOString());
    } catch (error) {
      if (fallback === undefined) throw error;
      this.#log.warn(`GTT ${gttId}: ${toBrokerError(error).message}; answering with what is known`);
      return fallback();
    }
  }

  async #lastPrice(exchange: Exchange, symbol: string): Promise<number> {
    const key = `${exchange}:${symbol}`;
    const reply = await this.#rest.call("quote", "last price request", (k) => k.getLTP([key]));
    const entry = isRecord(reply) ? reply[key] : undefined;
    const last = isRecord(entry) ? Number(entry.last_price) : Number.NaN;
    if (!(last > 0)) {
      throw new BrokerError("NO_QUOTE", `no last price for ${key} from Kite: give last_price with the GTT`);
    }
    return last;
  }

  /** Reads Kite's GTT list once (one read at a time: callers meanwhile share it). */
  poll(): Promise<void> {
    this.#polling ??= (async () => {
      const list = await backgroundRead(
        "GET /gtt/triggers",
        "GTT list request",
        "Kite GTT poll",
        () => this.#rest.fetchGtts(),
        this.#deps.reads,
      );
      this.#gtts.ingest(list, false);
    })().finally(() => {
      this.#polling = undefined;
    });
    return this.#polling;
  }

  /** Kite pushes nothing about GTTs: while one is active, look every gtt_poll_ms. */
  schedulePoll(): void {
    if (this.#pollTimer !== undefined || !this.#deps.active()) return;
    if (!this.#gtts.hasActive()) return;
    this.#pollTimer = setTimeout(() => {
      void this.poll()
        .catch((error: unknown) => {
          const err = toBrokerError(error);
          if (err.code !== "CLOSED" && err.code !== "AUTH") this.#log.warn(`GTT poll failed: ${err.message}`);
        })
        .finally(() => {
          this.#pollTimer = undefined;
          this.schedulePoll();
        });
    }, this.#deps.settings.gtt_poll_ms);
  }
}
