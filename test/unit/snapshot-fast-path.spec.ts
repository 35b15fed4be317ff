import assert from "node:assert/strict";
import fc from "fast-check";
import { EventMessage, OrderSnapshot } from "../../lib/protocol";
import { OrderEvent } from "../../lib/protocol/events";
import {
  isIsoUtc,
  isPlainOrderPatch,
  isPlainOrderSnapshot,
  plainAnsweredEventOf,
  plainOrderEventOf,
} from "../../lib/protocol/snapshot-fast-path";
import { AnsweredEvent } from "../../lib/protocol/wire";

const iso = fc
  .date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true })
  .map((d) => d.toISOString());
const price = fc.oneof(fc.constantFrom(0.05, 1e12), fc.double({ min: 0.01, max: 1e6, noNaN: true }));

const validSnapshot = fc.record(
  {
    order_id: fc.constantFrom("P000000001", "x", "o".repeat(64)),
    client_order_id: fc.constantFrom("abc123", "x".repeat(20)),
    symbol: fc.constantFrom("INFY", "M&M", "NSE:INFY"),
    exchange: fc.constantFrom("NSE", "BSE", "MCX"),
    side: fc.constantFrom("BUY", "SELL"),
    quantity: fc.integer({ min: 1, max: 10_000_000 }),
    order_type: fc.constantFrom("MARKET", "LIMIT", "SL", "SL-M"),
    price,
    trigger_price: price,
    product: fc.constantFrom("CNC", "MIS", "NRML"),
    validity: fc.constantFrom("DAY", "IOC", "TTL"),
    tag: fc.constantFrom("momentum", "t1"),
    status: fc.constantFrom(
      "PENDING",
      "OPEN",
      "TRIGGER_PENDING",
      "PARTIALLY_FILLED",
      "FILLED",
      "CANCELLED",
      "REJECTED",
      "EXPIRED",
    ),
    filled_quantity: fc.integer({ min: 0, max: 10_000_000 }),
    average_price: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1e6, noNaN: true })),
    status_message: fc.string(),
    gtt_id: fc.constantFrom("G1"),
    variety: fc.constantFrom("regular", "amo", "iceberg"),
    validity_ttl: fc.integer({ min: 1, max: 365 }),
    disclosed_quantity: fc.integer({ min: 1, max: 10_000_000 }),
    iceberg_legs: fc.integer({ min: 2, max: 50 }),
    iceberg_quantity: fc.integer({ min: 1, max: 10_000_000 }),
    placed_at: iso,
    timestamp: iso,
  },
  {
    requiredKeys: [
      "order_id",
      "client_order_id",
      "symbol",
      "exchange",
      "side",
      "quantity",
      "order_type",
      "product",
      "validity",
      "status",
      "filled_quantity",
      "average_price",
      "placed_at",
      "timestamp",
    ],
  },
);

const broken: Record<string, fc.Arbitrary<unknown>> = {
  order_id: fc.constantFrom("", "o".repeat(65), 1, undefined),
  client_order_id: fc.constantFrom("a_b", "x".repeat(21), "", undefined),
  symbol: fc.constantFrom(" INFY", "IN FY", "", 3),
  exchange: fc.constantFrom("NYSE", undefined),
  side: fc.constantFrom("buy", undefined),
  quantity: fc.constantFrom(0, 1.5, 10_000_001, Number.NaN, "1"),
  order_type: fc.constantFrom("STOP", undefined),
  price: fc.constantFrom(0, -1, Infinity, Number.NaN, 1e12 + 1, "1"),
  trigger_price: fc.constantFrom(0, Number.NaN),
  product: fc.constantFrom("MTF"),
  validity: fc.constantFrom("GTC"),
  tag: fc.constantFrom("a-b", "", "x".repeat(21)),
  status: fc.constantFrom("COMPLETE", "open"),
  filled_quantity: fc.constantFrom(-1, 0.5, 2 ** 60, Number.NaN),
  average_price: fc.constantFrom(-0.01, Infinity, Number.NaN, "1"),
  status_message: fc.constantFrom(5, null),
  gtt_id: fc.constantFrom(7),
  variety: fc.constantFrom("co", "AMO", 1),
  validity_ttl: fc.constantFrom(0, 366, 1.5, "5"),
  disclosed_quantity: fc.constantFrom(0, -1, 10_000_001, 2.5),
  iceberg_legs: fc.constantFrom(1, 51, 2.5),
  iceberg_quantity: fc.constantFrom(0, 10_000_001, Number.NaN),
  placed_at: fc.constantFrom(
    "2026-01-05",
    "2026-01-05T03:45:00Z",
    "2026-02-30T00:00:00.000Z",
    "2026-01-05T03:45:00.000+05:30",
    "x",
  ),
  timestamp: fc.constantFrom("", "2026-13-01T00:00:00.000Z"),
  extra: fc.constant("surprise"),
};

const snapshot = fc.oneof(
  validSnapshot,
  fc
    .tuple(
      validSnapshot,
      fc.uniqueArray(fc.constantFrom(...Object.keys(broken)), { minLength: 1, maxLength: 2 }),
    )
    .chain(([base, keys]) =>
      fc.tuple(...keys.map((key) => broken[key]!)).map((values) => {
        const out: Record<string, unknown> = { ...base };
        keys.forEach((key, i) => (out[key] = values[i]));
        return out;
      }),
    ),
);

describe("OrderSnapshot fast check", function () {
  it("says yes only to what the schema accepts unchanged (property)", function () {
    this.timeout(30_000);
    let yes = 0;
    fc.assert(
      fc.property(snapshot, (value) => {
        if (!isPlainOrderSnapshot(value)) return;
        yes += 1;
        const parsed = OrderSnapshot.safeParse(value);
        assert.ok(parsed.success, `fast check accepted ${JSON.stringify(value)}`);
        assert.deepEqual(parsed.data, value);
      }),
      { numRuns: 5000 },
    );
    assert.ok(yes > 1000, `valid snapshots reach the fast check (${yes})`);
  });

  it("accepts what the paper broker writes, and refuses a class instance", function () {
    const snap = {
      order_id: "P1",
      client_order_id: "c1",
      symbol: "INFY",
      exchange: "NSE",
      side: "BUY",
      quantity: 1,
      order_type: "MARKET",
      product: "MIS",
      validity: "DAY",
      status: "FILLED",
      filled_quantity: 1,
      average_price: 100,
      placed_at: "2026-01-05T03:45:00.000Z",
      timestamp: "2026-01-05T03:45:00.000Z",
    };
    assert.equal(isPlainOrderSnapshot(snap), true);
    assert.equal(isPlainOrderSnapshot(Object.assign(Object.create({ x: 1 }) as object, snap)), false);
  });
});

describe("order EVENT message fast check", function () {
  const order = {
    order_id: "P1",
    client_order_id: "c1",
    symbol: "INFY",
    exchange: "NSE",
    side: "BUY",
    quantity: 1,
    order_type: "MARKET",
    product: "MIS",
    validity: "DAY",
    status: "FILLED",
    filled_quantity: 1,
    average_price: 100,
    placed_at: "2026-01-05T03:45:00.000Z",
    timestamp: "2026-01-05T03:45:00.000Z",
  };
  const event = { type: "ORDER_FILLED", seq: 3, order, timestamp: "2026-01-05T03:45:00.000Z" };

  it("takes a plain order event and gives back the event", function () {
    assert.equal(plainOrderEventOf({ type: "EVENT", event }), event);
    assert.ok(EventMessage.safeParse({ type: "EVENT", event }).success);
  });

  const refused: [string, unknown][] = [
    ["an extra message key", { type: "EVENT", event, x: 1 }],
    ["an extra event key", { type: "EVENT", event: { ...event, x: 1 } }],
    ["seq 0", { type: "EVENT", event: { ...event, seq: 0 } }],
    ["a fractional seq", { type: "EVENT", event: { ...event, seq: 1.5 } }],
    ["a GTT event", { type: "EVENT", event: { ...event, type: "GTT_PLACED" } }],
    ["a bad timestamp", { type: "EVENT", event: { ...event, timestamp: "now" } }],
    ["synthesized as a string", { type: "EVENT", event: { ...event, synthesized: "yes" } }],
    ["a broken order", { type: "EVENT", event: { ...event, order: { ...order, quantity: 0 } } }],
    ["a QUOTE", { type: "QUOTE", quote: {} }],
  ];
  for (const [name, message] of refused) {
    it(`leaves ${name} to the schema`, function () {
      assert.equal(plainOrderEventOf(message), undefined);
    });
  }
});

describe("order EVENT fast check with trades", function () {
  const order = {
    order_id: "P1",
    client_order_id: "c1",
    symbol: "INFY",
    exchange: "NSE",
    side: "BUY",
    quantity: 10,
    order_type: "MARKET",
    product: "MIS",
    validity: "DAY",
    status: "PARTIALLY_FILLED",
    filled_quantity: 4,
    average_price: 100,
    placed_at: "2026-01-05T03:45:00.000Z",
    timestamp: "2026-01-05T03:45:00.000Z",
  };
  const validTrade = fc.record({
    trade_id: fc.constantFrom("P1-4", "1", "t".repeat(64)),
    quantity: fc.integer({ min: 1, max: 10_000_000 }),
    price,
    timestamp: iso,
  });
  const brokenTrade: Record<string, fc.Arbitrary<unknown>> = {
    trade_id: fc.constantFrom("", "t".repeat(65), 7, undefined),
    quantity: fc.constantFrom(0, -1, 1.5, 10_000_001, "1", undefined),
    price: fc.constantFrom(0, -1, Infinity, Number.NaN, 1e12 + 1, "1", undefined),
    timestamp: fc.constantFrom("now", "2026-01-05", undefined),
    extra: fc.constant("surprise"),
  };
  const trade = fc.oneof(
    validTrade,
    fc
      .tuple(validTrade, fc.constantFrom(...Object.keys(brokenTrade)))
      .chain(([base, key]) => brokenTrade[key]!.map((value) => ({ ...base, [key]: value }))),
  );
  const trades = fc.oneof(
    fc.array(validTrade, { minLength: 1, maxLength: 5 }),
    fc.array(trade, { minLength: 1, maxLength: 5 }),
    fc.constantFrom(
      [],
      "x",
      null,
      [null],
      Array.from({ length: 201 }, (_, i) => ({
        trade_id: `T${i}`,
        quantity: 1,
        price: 1,
        timestamp: "2026-01-05T03:45:00.000Z",
      })),
    ),
  );

  it("says yes only to events with trades the schema accepts unchanged (property)", function () {
    this.timeout(30_000);
    let yes = 0;
    let no = 0;
    fc.assert(
      fc.property(trades, (list) => {
        const message = {
          type: "EVENT",
          event: { type: "ORDER_PARTIALLY_FILLED", seq: 2, order, trades: list, timestamp: order.timestamp },
        };
        const fast = plainOrderEventOf(message);
        const parsed = EventMessage.safeParse(message);
        if (fast === undefined) {
          no += 1;
          return;
        }
        yes += 1;
        assert.ok(parsed.success, `fast check accepted ${JSON.stringify(list)}`);
        assert.deepEqual(parsed.data, message);
      }),
      { numRuns: 3000 },
    );
    assert.ok(yes > 200 && no > 200, `both answers are reached (${yes} yes, ${no} no)`);
  });

  it("refuses through the schema a trade with a bad field, naming it", function () {
    const event = {
      type: "ORDER_FILLED",
      seq: 2,
      order: { ...order, status: "FILLED", filled_quantity: 10 },
      trades: [{ trade_id: "P1-10", quantity: 0, price: 100, timestamp: order.timestamp }],
      timestamp: order.timestamp,
    };
    const parsed = EventMessage.safeParse({ type: "EVENT", event });
    assert.equal(parsed.success, false);
    assert.match(JSON.stringify(parsed.error?.issues), /"trades",0,"quantity"/);
  });
});

describe("v1.1 answered event fast path (the answer's snapshot checked once, each event's changes alone)", function () {
  /** Some of a snapshot's fields, each valid or broken as above: what an answered event's `order` may hold. */
  const patch = fc
    .tuple(
      validSnapshot,
      fc.uniqueArray(fc.constantFrom(...Object.keys(broken)), { minLength: 0, maxLength: 3 }),
      fc.uniqueArray(fc.constantFrom(...Object.keys(broken)), { minLength: 0, maxLength: 1 }),
    )
    .chain(([source, kept, spoiled]) =>
      fc.tuple(...spoiled.map((key) => broken[key]!)).map((values) => {
        const out: Record<string, unknown> = {};
        for (const key of kept) if (key in source) out[key] = (source as Record<string, unknown>)[key];
        spoiled.forEach((key, i) => (out[key] = values[i]));
        return out;
      }),
    );

  it("says yes to a patch only when the snapshot it is laid over stays one the schema accepts unchanged (property)", function () {
    this.timeout(30_000);
    let yes = 0;
    let no = 0;
    fc.assert(
      fc.property(validSnapshot, patch, (base, changes) => {
        if (!isPlainOrderPatch(changes)) {
          no += 1;
          return;
        }
        yes += 1;
        const merged = { ...base, ...changes };
        const parsed = OrderSnapshot.safeParse(merged);
        assert.ok(parsed.success, `patch ${JSON.stringify(changes)} accepted`);
        assert.deepEqual(parsed.data, merged);
      }),
      { numRuns: 4000 },
    );
    assert.ok(yes > 200 && no > 200, `both answers are reached (${yes} yes, ${no} no)`);
  });

  const eventType = fc.constantFrom("ORDER_PLACED", "ORDER_FILLED", "ORDER_MODIFIED", "GTT_PLACED", "FILLED");
  const answered = fc.record(
    {
      type: eventType,
      seq: fc.constantFrom(1, 7, 0, -1, 1.5, "2"),
      order: fc.oneof(patch, fc.constantFrom(null, "x", [])),
      trades: fc.constantFrom(
        [{ trade_id: "P1-1", quantity: 1, price: 100, timestamp: "2026-01-05T03:45:00.000Z" }],
        [],
        [{ trade_id: "", quantity: 1, price: 100, timestamp: "2026-01-05T03:45:00.000Z" }],
      ),
      timestamp: fc.constantFrom("2026-01-05T03:45:00.000Z", "2026-01-05"),
      synthesized: fc.constant(true),
    },
    { requiredKeys: [] },
  );

  const validAnswered = fc.record(
    {
      type: fc.constantFrom("ORDER_PLACED", "ORDER_FILLED", "ORDER_MODIFIED"),
      seq: fc.integer({ min: 1, max: 2 ** 40 }),
      order: patch,
      trades: fc.constant([
        { trade_id: "P1-1", quantity: 1, price: 100, timestamp: "2026-01-05T03:45:00.000Z" },
      ]),
      timestamp: fc.constant("2026-01-05T03:45:00.000Z"),
    },
    { requiredKeys: ["type", "seq", "timestamp"] },
  );
  const entry = fc.oneof({ arbitrary: validAnswered, weight: 3 }, { arbitrary: answered, weight: 1 });

  it("makes only the event the schema makes of the answer and its entry (property)", function () {
    this.timeout(30_000);
    let yes = 0;
    let no = 0;
    fc.assert(
      fc.property(validSnapshot, entry, (snapshot, raw) => {
        if (!isPlainOrderSnapshot(snapshot)) return;
        const fast = plainAnsweredEventOf(snapshot, raw);
        if (fast === undefined) {
          no += 1;
          return;
        }
        yes += 1;
        const entry = AnsweredEvent.safeParse(raw);
        assert.ok(entry.success, `entry ${JSON.stringify(raw)} accepted`);
        const whole = { ...entry.data, order: { ...snapshot, ...entry.data.order } };
        const event = OrderEvent.safeParse(whole);
        assert.ok(event.success, `event over ${JSON.stringify(raw)} accepted`);
        assert.deepEqual(fast, event.data);
        // A copy: what listeners get never aliases the answer handed to the caller.
        assert.notEqual(fast.order, snapshot);
      }),
      { numRuns: 4000 },
    );
    assert.ok(yes > 200 && no > 200, `both answers are reached (${yes} yes, ${no} no)`);
  });
});

describe("isIsoUtc (the timestamp rule read field by field)", () => {
  /** The rule it stands for: the exact text toISOString writes for the date the text names. */
  const roundTrips = (value: string): boolean => {
    const time = Date.parse(value);
    return Number.isFinite(time) && new Date(time).toISOString() === value;
  };
  const pad = (n: number, width: number): string => String(n).padStart(width, "0");

  it("agrees with Date.parse + toISOString on every date of years 0000–9999 and on near misses", () => {
    let yes = 0;
    let no = 0;
    // Each field over its range and past it (month 13, day 31 of a 30-day month, 29 February of
    // a common year, hour 24, second 60), separators sometimes wrong, digits sometimes not.
    const near = fc
      .record({
        year: fc.oneof(fc.integer({ min: 0, max: 9999 }), fc.constantFrom(1900, 2000, 2024, 2100, 0, 400)),
        month: fc.integer({ min: 0, max: 13 }),
        day: fc.integer({ min: 0, max: 32 }),
        hour: fc.integer({ min: 0, max: 25 }),
        minute: fc.integer({ min: 0, max: 60 }),
        second: fc.integer({ min: 0, max: 61 }),
        ms: fc.integer({ min: 0, max: 999 }),
        sep: fc.constantFrom("-", "-", "-", "/"),
        t: fc.constantFrom("T", "T", "T", " ", "t"),
        z: fc.constantFrom("Z", "Z", "Z", "z", "+"),
      })
      .map(
        (f) =>
          `${pad(f.year, 4)}${f.sep}${pad(f.month, 2)}-${pad(f.day, 2)}${f.t}${pad(f.hour, 2)}:${pad(f.minute, 2)}:${pad(f.second, 2)}.${pad(f.ms, 3)}${f.z}`,
      );
    const real = fc
      .date({
        min: new Date("0000-01-01T00:00:00.000Z"),
        max: new Date("9999-12-31T23:59:59.999Z"),
        noInvalidDate: true,
      })
      .map((d) => d.toISOString());
    // Any 24 characters from those a timestamp is made of, in any place.
    const shuffled = fc.string({
      unit: fc.constantFrom(..."0123456789-T:.Z:a "),
      minLength: 24,
      maxLength: 24,
    });
    fc.assert(
      fc.property(fc.oneof(near, real, shuffled), (value) => {
        const expected = roundTrips(value);
        if (expected) yes += 1;
        else no += 1;
        assert.equal(isIsoUtc(value), expected, value);
      }),
      { numRuns: 20_000 },
    );
    assert.ok(yes > 2000 && no > 2000, `both answers are reached (${yes} yes, ${no} no)`);
    for (const value of [
      "2024-02-29T00:00:00.000Z",
      "2100-02-29T00:00:00.000Z",
      "2000-02-29T12:00:00.000Z",
    ]) {
      assert.equal(isIsoUtc(value), roundTrips(value), value);
    }
    for (const value of [
      undefined,
      null,
      0,
      "",
      "2026-01-05T03:45:00.000Z ",
      "+002026-01-05T03:45:00.000Z",
    ]) {
      assert.equal(isIsoUtc(value), false, String(value));
    }
  });
});
