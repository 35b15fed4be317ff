import type { Random } from "../../lib/paper/random";

/**
 * Random protocol frames for the gateway fuzzer (test/integration/gateway-fuzz.spec.ts): valid and
 * invalid messages of every request type, at the schemas' boundaries and one past them, wrong
 * types, extra fields, duplicate ids. Each frame says which answers the protocol owes it, so the
 * spec's oracle can hold the gateway to exactly one answer per request.
 */
export interface FuzzFrame {
  /** What goes on the wire: a JSON text, or raw bytes sent as a binary frame. */
  readonly text: string;
  readonly binary?: boolean;
  /**
   * The answers owed, as the ids they carry (null: a message with no readable id), one entry per
   * answer. A frame refused whole owes one answer with id null.
   */
  readonly owed: (string | null)[];
  /** The request type of each string id, so a RESULT can be checked against its result schema. */
  readonly types: Map<string, string>;
  /** The messages the gateway executes (none for a frame refused whole). */
  readonly messages: readonly unknown[];
}

/** What the fuzzer remembers of the account it has been talking to, to aim requests at real things. */
export interface FuzzMemory {
  orderIds: string[];
  gttIds: string[];
  /** client_order_id → the order it was first sent with (a retry with other fields is a mismatch). */
  clientIds: Map<string, Record<string, unknown>>;
  /** Ids of requests sent recently; reused to make duplicates. */
  recentIds: string[];
  /** The account's latest seq as last heard (PING, RESUME, AUTH). */
  seq: number;
}

export function newFuzzMemory(): FuzzMemory {
  return { orderIds: [], gttIds: [], clientIds: new Map(), recentIds: [], seq: 0 };
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

export class FrameFuzzer {
  readonly #random: Random;
  readonly #memory: FuzzMemory;
  readonly #prefix: string;
  #next = 0;

  constructor(random: Random, memory: FuzzMemory, prefix: string) {
    this.#random = random;
    this.#memory = memory;
    this.#prefix = prefix;
  }

  int(below: number): number {
    return Math.floor(this.#random() * below);
  }

  chance(p: number): boolean {
    return this.#random() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  alnum(length: number): string {
    let out = "";
    for (let i = 0; i < length; i++) out += ALNUM[this.int(ALNUM.length)];
    return out;
  }

  /** A fresh request id; sometimes at the 64-character limit. */
  freshId(): string {
    this.#next += 1;
    const id = `${this.#prefix}${this.#next}`;
    return this.chance(0.05) ? id + "x".repeat(64 - id.length) : id;
  }

  /** A request id: mostly fresh, sometimes one already used, sometimes one the schema refuses. */
  id(): unknown {
    const roll = this.#random();
    const recent = this.#memory.recentIds;
    if (roll < 0.08 && recent.length > 0) return this.pick(recent);
    if (roll < 0.1) return "";
    if (roll < 0.12) return this.freshId() + "y".repeat(64);
    if (roll < 0.14) return this.int(1000);
    if (roll < 0.15) return null;
    if (roll < 0.16) return undefined;
    const id = this.freshId();
    recent.push(id);
    if (recent.length > 50) recent.shift();
    return id;
  }

  clientOrderId(): string {
    const ids = Array.from(this.#memory.clientIds.keys());
    if (ids.length > 0 && this.chance(0.15)) return this.pick(ids);
    return this.alnum(this.chance(0.2) ? 20 : 1 + this.int(20));
  }

  symbol(): unknown {
    const roll = this.#random();
    if (roll < 0.6) return "INFY";
    if (roll < 0.7) return "NSE:INFY";
    if (roll < 0.75) return "A".repeat(64);
    if (roll < 0.8) return "A".repeat(65);
    if (roll < 0.85) return "BAD  SPACE";
    if (roll < 0.9) return 42;
    return this.alnum(1 + this.int(10)).toUpperCase();
  }

  quantity(): unknown {
    return this.pick([1, 1, 2, 5, 10, 10_000_000, 10_000_001, 0, -1, 1.5, "1", null]);
  }

  price(): unknown {
    return this.pick([90, 95, 99.5, 100, 101, 110, 1e12, 1e12 * 10, 0, -5, "100", Number.MIN_VALUE]);
  }

  order(): Record<string, unknown> {
    const type = this.pick(["MARKET", "LIMIT", "LIMIT", "SL", "SL-M", "BOGUS"]);
    const order: Record<string, unknown> = {
      symbol: this.chance(0.9) ? "INFY" : this.symbol(),
      side: this.pick(["BUY", "SELL", "BUY", "SELL", "HOLD"]),
      quantity: this.chance(0.85) ? 1 + this.int(5) : this.quantity(),
      order_type: type,
    };
    if (type === "LIMIT" || type === "SL" || this.chance(0.05))
      order.price = this.chance(0.85) ? this.pick([90, 95, 100, 105, 110]) : this.price();
    if (type === "SL" || type === "SL-M" || this.chance(0.05))
      order.trigger_price = this.chance(0.85) ? this.pick([90, 95, 105, 110]) : this.price();
    if (this.chance(0.1)) order.tag = this.chance(0.5) ? this.alnum(20) : this.alnum(21);
    if (this.chance(0.05)) order.unknown_field = true;
    const clientId = this.chance(0.97)
      ? this.clientOrderId()
      : this.pick([this.alnum(21), "", "has space", 7]);
    order.client_order_id = clientId;
    if (typeof clientId === "string" && this.#memory.clientIds.has(clientId) && this.chance(0.6)) {
      // An honest retry: the same order again.
      return { ...this.#memory.clientIds.get(clientId) };
    }
    return order;
  }

  gtt(): Record<string, unknown> {
    const twoLeg = this.chance(0.4);
    const leg = (): Record<string, unknown> => ({
      side: this.pick(["BUY", "SELL"]),
      quantity: 1 + this.int(3),
      price: this.pick([80, 90, 110, 120]),
    });
    return twoLeg
      ? {
          type: "two-leg",
          symbol: this.chance(0.9) ? "INFY" : this.symbol(),
          trigger_values: this.chance(0.9) ? [80, 120] : [120, 80],
          orders: [leg(), leg()],
        }
      : {
          type: this.chance(0.95) ? "single" : "triple",
          symbol: this.chance(0.9) ? "INFY" : this.symbol(),
          trigger_values: this.chance(0.9) ? [this.pick([80, 120])] : [80, 120],
          orders: [leg()],
        };
  }

  orderId(): unknown {
    const ids = this.#memory.orderIds;
    if (ids.length > 0 && this.chance(0.8)) return this.pick(ids);
    return this.pick(["P999999999", "x".repeat(64), "x".repeat(65), "", 12]);
  }

  gttId(): unknown {
    const ids = this.#memory.gttIds;
    if (ids.length > 0 && this.chance(0.8)) return this.pick(ids);
    return this.pick(["G999999", "", "y".repeat(65)]);
  }

  symbols(): unknown {
    const roll = this.#random();
    if (roll < 0.5) return ["INFY"];
    if (roll < 0.6) return Array.from({ length: 3000 }, (_, i) => `S${i}`);
    if (roll < 0.65) return Array.from({ length: 3001 }, (_, i) => `S${i}`);
    if (roll < 0.7) return [];
    if (roll < 0.75) return "INFY";
    if (roll < 0.8) return Array.from({ length: 1 + this.int(50) }, () => this.symbol());
    return Array.from({ length: 1 + this.int(200) }, (_, i) => `Q${this.int(5000)}x${i}`);
  }

  fromSeq(): unknown {
    const seq = this.#memory.seq;
    return this.pick([
      0,
      0,
      seq,
      Math.max(0, seq - 1),
      Math.max(0, seq - 5),
      seq + 1,
      seq + 1000,
      Number.MAX_SAFE_INTEGER,
      -1,
      1.5,
      "0",
      2 ** 60,
    ]);
  }

  /** One message of a random type, valid or not. */
  message(): unknown {
    const roll = this.#random();
    if (roll < 0.02) return this.pick([null, 1, "PING", [], true]);
    if (roll < 0.04) return { id: this.id() };
    if (roll < 0.06)
      return { type: this.pick(["NOPE", "ping", "", "x".repeat(200), "EVENT", "RESULT"]), id: this.id() };
    if (roll < 0.07) return { type: 5, id: this.id() };
    const type = this.pick([
      "PLACE_ORDER",
      "PLACE_ORDER",
      "PLACE_ORDER",
      "PLACE_ORDER",
      "MODIFY_ORDER",
      "MODIFY_ORDER",
      "CANCEL_ORDER",
      "CANCEL_ORDER",
      "GET_ORDER",
      "GET_ORDER",
      "GET_ORDERBOOK",
      "PLACE_GTT",
      "MODIFY_GTT",
      "DELETE_GTT",
      "GET_GTTS",
      "GET_POSITIONS",
      "GET_ACCOUNT",
      "SUBSCRIBE",
      "UNSUBSCRIBE",
      "RESUME",
      "RESUME",
      "PING",
      "PING",
      "AUTH",
    ]);
    const message: Record<string, unknown> = { type, id: this.id() };
    switch (type) {
      case "PLACE_ORDER":
        message.order = this.order();
        break;
      case "MODIFY_ORDER": {
        message.order_id = this.orderId();
        const changes: Record<string, unknown> = {};
        if (this.chance(0.6)) changes.quantity = this.chance(0.8) ? 1 + this.int(10) : this.quantity();
        if (this.chance(0.5)) changes.price = this.chance(0.8) ? this.pick([91, 96, 99]) : this.price();
        if (this.chance(0.1)) changes.order_type = this.pick(["MARKET", "LIMIT", "WHAT"]);
        if (this.chance(0.05)) changes.bogus = 1;
        message.changes = changes;
        break;
      }
      case "CANCEL_ORDER":
        message.order_id = this.orderId();
        break;
      case "GET_ORDER": {
        const roll2 = this.#random();
        if (roll2 < 0.45) message.order_id = this.orderId();
        else if (roll2 < 0.9) message.client_order_id = this.clientOrderId();
        else if (roll2 < 0.95) {
          message.order_id = this.orderId();
          message.client_order_id = this.clientOrderId();
        }
        break;
      }
      case "GET_ORDERBOOK":
        if (this.chance(0.8)) message.limit = this.pick([1, 2, 10, 1000, 1001, 0, -1, 2.5, "10"]);
        if (this.chance(0.4)) message.after = this.chance(0.7) ? this.orderId() : "";
        break;
      case "PLACE_GTT":
        message.gtt = this.gtt();
        break;
      case "MODIFY_GTT":
        message.gtt_id = this.gttId();
        message.gtt = this.gtt();
        break;
      case "DELETE_GTT":
        message.gtt_id = this.gttId();
        break;
      case "SUBSCRIBE":
      case "UNSUBSCRIBE":
        message.symbols = this.symbols();
        break;
      case "RESUME":
        message.from_seq = this.fromSeq();
        break;
      case "AUTH":
        // A second AUTH on an authenticated connection: refused, never executed.
        Object.assign(message, {
          api_key: "test-key",
          timestamp: Date.now(),
          nonce: this.alnum(16),
          signature: "0".repeat(64),
        });
        break;
      default:
        break;
    }
    if (this.chance(0.03)) message.extra = "x";
    return message;
  }

  /** One frame: a message, a batch, or something refused whole. */
  frame(): FuzzFrame {
    const roll = this.#random();
    if (roll < 0.02) return whole("{not json");
    if (roll < 0.03) return { text: "[1,2]", owed: [null, null], types: new Map(), messages: [1, 2] };
    if (roll < 0.04) return whole("[]");
    if (roll < 0.05)
      return { text: "\u00e9\u00e9", binary: true, owed: [null], types: new Map(), messages: [] };
    if (roll < 0.06) {
      // One byte over the frame limit (65,536).
      const pad = 65_537 - 40;
      return whole(JSON.stringify({ type: "PING", id: "big", pad: "p".repeat(pad) }).padEnd(65_537, " "));
    }
    if (roll < 0.07) {
      const messages = Array.from({ length: 101 }, () => ({ type: "PING", id: this.freshId() }));
      return whole(JSON.stringify(messages));
    }
    const batch = roll < 0.4;
    const count = batch ? this.pick([1, 2, 5, 20, 100]) : 1;
    const messages = Array.from({ length: count }, () => this.message());
    const text = JSON.stringify(batch ? messages : messages[0]);
    if (Buffer.byteLength(text) > 65_536) return whole(text);
    const owed: (string | null)[] = [];
    const types = new Map<string, string>();
    for (const message of messages) {
      const id = readable(message);
      owed.push(id);
      if (id !== null && isObject(message) && typeof message.type === "string") types.set(id, message.type);
    }
    return { text, owed, types, messages };
  }
}

function whole(text: string): FuzzFrame {
  return { text, owed: [null], types: new Map(), messages: [] };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The id the gateway answers a message with (docs/PROTOCOL.md: null when it has no readable id). */
export function readable(message: unknown): string | null {
  if (!isObject(message)) return null;
  const id = message.id;
  return typeof id === "string" && id.length > 0 && id.length <= 64 ? id : null;
}
