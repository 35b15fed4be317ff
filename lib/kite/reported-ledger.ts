import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";
import type { OrderSnapshot } from "../protocol";
import { isRecord } from "../common/is-record";
import { istDay } from "../market/ist";

/** What a flow was last told of one order. */
export interface Reported {
  status: OrderSnapshot["status"];
  filled_quantity: number;
}

/**
 * What this broker has reported of each order today, and which client_order_ids it was sending,
 * on disk beside the instrument cache (DESIGN §10: no "reported" mark lives only in memory). A
 * restart reads it at connect: an order whose fill came while Node-RED was down is reported then,
 * and one whose placement was under way is announced, where the order book alone would make both
 * silent background. One JSON line per change, appended (a process that dies keeps what the OS
 * has); a new trading day starts a new file.
 */
export class ReportedLedger {
  readonly #file: string;
  readonly #reported = new Map<string, Reported>();
  readonly #placing = new Set<string>();
  #broken = false;

  constructor(dir: string, apiKey: string, day: string = istDay(Date.now())) {
    const account = createHash("sha256").update(apiKey).digest("hex").slice(0, 12);
    this.#file = path.join(dir, `kite-reported-${account}-${day}.jsonl`);
    let text: string;
    try {
      text = readFileSync(this.#file, "utf8");
    } catch {
      return;
    }
    for (const line of text.split("\n")) {
      let entry: unknown;
      try {
        entry = JSON.parse(line);
      } catch {
        continue; // a line cut short by a crash
      }
      if (!isRecord(entry)) continue;
      if (typeof entry.placing === "string") this.#placing.add(entry.placing);
      if (typeof entry.order === "string" && typeof entry.status === "string") {
        this.#reported.set(entry.order, {
          status: entry.status as Reported["status"],
          filled_quantity: Number(entry.filled) || 0,
        });
      }
    }
    // Compacted once per start: one line per order.
    this.#rewrite();
  }

  /** What a flow was told of this order before (this run or an earlier one today). */
  reportedOf(orderId: string): Reported | undefined {
    return this.#reported.get(orderId);
  }

  /** Whether a placement with this client_order_id was sent (its outcome may never have been told). */
  wasPlacing(clientId: string): boolean {
    return this.#placing.has(clientId);
  }

  placing(clientId: string): void {
    if (this.#placing.has(clientId)) return;
    this.#placing.add(clientId);
    this.#append({ placing: clientId });
  }

  reported(order: OrderSnapshot): void {
    const before = this.#reported.get(order.order_id);
    if (before?.status === order.status && before.filled_quantity === order.filled_quantity) return;
    this.#reported.set(order.order_id, { status: order.status, filled_quantity: order.filled_quantity });
    this.#append({ order: order.order_id, status: order.status, filled: order.filled_quantity });
  }

  #append(entry: object): void {
    if (this.#broken) return;
    try {
      mkdirSync(path.dirname(this.#file), { recursive: true });
      appendFileSync(this.#file, `${JSON.stringify(entry)}\n`);
    } catch {
      // A read-only or full disk: the broker goes on as it did before there was a ledger.
      this.#broken = true;
    }
  }

  #rewrite(): void {
    const lines: string[] = [];
    for (const clientId of this.#placing) lines.push(JSON.stringify({ placing: clientId }));
    for (const [order, r] of this.#reported) {
      lines.push(JSON.stringify({ order, status: r.status, filled: r.filled_quantity }));
    }
    try {
      writeFileSync(this.#file, lines.length === 0 ? "" : `${lines.join("\n")}\n`);
    } catch {
      this.#broken = true;
    }
  }
}
