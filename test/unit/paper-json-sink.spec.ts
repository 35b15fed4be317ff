// The journal's records are written straight into its pending bytes (lib/paper/json-sink.ts,
// compact-record.ts writeRecord()); they must be the very bytes JSON.stringify of the record gives,
// or journals written before and after would read differently and checksums would disagree.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { crc32 } from "node:zlib";
import fc from "fast-check";
import type { OrderState, PositionState } from "../../lib/paper/account-state";
import type { RecordExtra } from "../../lib/paper/compact-record";
import {
  encodeRecord,
  fromWrittenSnapshot,
  SnapshotOrders,
  writeRecord,
} from "../../lib/paper/compact-record";
import { Journal } from "../../lib/paper/journal";
import { JsonSink } from "../../lib/paper/json-sink";

function written(write: (sink: JsonSink) => void, start = 4): string {
  // A tiny buffer, so every value also crosses a growth; a prefix, so writing at an offset is covered.
  const sink = new JsonSink(Buffer.from("abcd"), start);
  write(sink);
  assert.equal(sink.buf.subarray(0, start).toString("latin1"), "abcd".slice(0, start), "prefix kept");
  return sink.buf.subarray(start, sink.at).toString("utf8");
}

/** Strings JSON must escape or encode as several bytes, beside plain ones. */
const awkward = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme" }),
  fc.string({ unit: "binary" }),
  fc.constantFrom('"', "\\", "\n", "\u0000", "\u007f", "\u00e9", "\ud800", "\udc00x", "😀", "P000000001"),
);
const numbers = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double(),
  fc.constantFrom(0, -0, 1e21, -1e21, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 0.1, 5e-324, NaN, Infinity),
  // Where the integer writer splits: digit counts, 1e8, 32-bit bounds, the largest safe integers.
  fc.constantFrom(9, 10, 99, 100, 9999, 10_000, 99_999_999, 1e8, 1e8 + 1, 100_000_007, 2 ** 31 - 1, 2 ** 31),
  fc.constantFrom(
    1e9,
    1e10 - 1,
    1e10,
    99_999_999_990_000,
    1e15,
    2 ** 53 - 1,
    -(2 ** 53 - 1),
    -1e8,
    -99_999_999,
  ),
  fc.integer({ min: 1e8 - 1000, max: 1e8 + 1000 }),
);
const values = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    numbers,
    awkward,
    fc.constantFrom(null, true, false, undefined),
    fc.array(tie("value")),
    fc.dictionary(awkward, tie("value")),
    // Objects the sink writes member by member, and ones it must leave to JSON.stringify.
    fc.dictionary(awkward, tie("value"), { noNullPrototype: false }),
    fc.dictionary(fc.constantFrom("0", "10", "2", "a", "-1", "1.5", "__proto__", "toString"), tie("value")),
    fc.date({ noInvalidDate: true }),
    fc.constantFrom(new Map([["a", 1]]), { toJSON: () => ["own toJSON"] }, Object.create({ inherited: 1 })),
  ),
})).value;

describe("JsonSink: JSON written into bytes", function () {
  it("writes what JSON.stringify gives for any array element (property)", function () {
    fc.assert(
      fc.property(values, (value) => {
        assert.equal(
          written((sink) => sink.item(value)),
          JSON.stringify([value]).slice(1, -1),
        );
      }),
      { numRuns: 2000 },
    );
  });

  it("writes numbers and strings as JSON.stringify does, also where the fast path does not apply", function () {
    fc.assert(
      fc.property(numbers, awkward, (n, s) => {
        assert.equal(
          written((sink) => sink.number(n)),
          JSON.stringify(n),
        );
        assert.equal(
          written((sink) => sink.string(s)),
          JSON.stringify(s),
        );
      }),
      { numRuns: 3000 },
    );
  });

  it("leaves out what Object.prototype was given, as JSON.stringify does", function () {
    const proto = Object.prototype as Record<string, unknown>;
    Object.defineProperty(proto, "polluted", { value: 1, enumerable: true, configurable: true });
    try {
      const value = { a: 1, b: [{ c: "d" }] };
      assert.equal(
        written((sink) => sink.item(value)),
        JSON.stringify(value),
      );
    } finally {
      delete proto.polluted;
    }
  });

  it("grows from an empty buffer and keeps what was before the cursor", function () {
    const sink = new JsonSink(Buffer.alloc(0));
    for (let i = 0; i < 1000; i++) {
      if (i > 0) sink.byte(0x2c);
      sink.number(i * 1_000_003);
    }
    assert.equal(
      sink.buf.subarray(0, sink.at).toString(),
      Array.from({ length: 1000 }, (_, i) => i * 1_000_003).join(","),
    );
  });
});

const NOW = "2026-12-05T01:02:03.004Z";

const orderArb: fc.Arbitrary<OrderState> = fc
  .record({
    order_id: fc.oneof(fc.constant("P000000007"), awkward),
    client_order_id: awkward,
    symbol: awkward,
    quantity: fc.integer({ min: 1, max: 1e9 }),
    filled_quantity: fc.integer({ min: 0, max: 1e6 }),
    filled_value: fc.oneof(fc.integer({ min: 0, max: 2 ** 52 }), fc.constant(0)),
    average_price: fc.oneof(fc.constant(undefined), fc.double({ min: 0, max: 1e6, noNaN: true })),
    placed_at: fc.oneof(fc.constant(NOW), awkward),
    timestamp: fc.oneof(fc.constant(NOW), awkward),
    reserved: fc.integer({ min: 0, max: 2 ** 52 }),
    client_id_given: fc.boolean(),
    price: fc.option(fc.double({ min: 0.05, max: 1e6, noNaN: true }), { nil: undefined }),
    tag: fc.option(awkward, { nil: undefined }),
    status_message: fc.option(awkward, { nil: undefined }),
    charges: fc.option(fc.integer({ min: 0, max: 1e9 }), { nil: undefined }),
    release_at: fc.option(fc.integer({ min: 0, max: 2 ** 45 }), { nil: undefined }),
    validity_ttl: fc.option(fc.integer({ min: 1, max: 1440 }), { nil: undefined }),
  })
  .map((f) => {
    const order: OrderState = {
      order_id: f.order_id,
      client_order_id: f.client_order_id,
      symbol: f.symbol,
      exchange: "NSE",
      side: f.quantity % 2 === 0 ? "BUY" : "SELL",
      quantity: f.quantity,
      order_type: f.price === undefined ? "MARKET" : "LIMIT",
      product: "MIS",
      validity: f.validity_ttl === undefined ? "DAY" : "TTL",
      status: f.filled_quantity === 0 ? "OPEN" : "PARTIALLY_FILLED",
      filled_quantity: f.filled_quantity,
      average_price:
        f.average_price ?? (f.filled_quantity === 0 ? 0 : f.filled_value / f.filled_quantity / 100),
      placed_at: f.placed_at,
      timestamp: f.timestamp,
      reserved: f.reserved,
      filled_value: f.filled_value,
      client_id_given: f.client_id_given,
    };
    // Optional fields only when set, as the engine keeps them.
    for (const key of ["price", "tag", "status_message", "charges", "release_at", "validity_ttl"] as const) {
      if (f[key] !== undefined) (order as Record<string, unknown>)[key] = f[key];
    }
    return order;
  });

const positionArb: fc.Arbitrary<PositionState> = fc
  .record({
    symbol: awkward,
    quantity: fc.integer({ min: -1e9, max: 1e9 }),
    cost: fc.integer({ min: -(2 ** 52), max: 2 ** 52 }),
    realized: fc.integer({ min: -(2 ** 52), max: 2 ** 52 }),
    charges: fc.option(fc.integer({ min: 0, max: 1e9 }), { nil: undefined }),
  })
  .map((p) => {
    const position: PositionState = {
      symbol: p.symbol,
      exchange: "BSE",
      product: "CNC",
      quantity: p.quantity,
      cost: p.cost,
      realized: p.realized,
    };
    if (p.charges !== undefined) position.charges = p.charges;
    return position;
  });

const extraArb: fc.Arbitrary<RecordExtra | undefined> = fc.option(
  fc.record(
    {
      walk: fc.record({ random: fc.nat(), instruments: fc.array(awkward, { maxLength: 3 }) }),
      replay: fc.record({ rows_done: fc.nat(), last_time: fc.double({ noNaN: true }) }),
    },
    { requiredKeys: [] },
  ),
  { nil: undefined },
);

describe("writeRecord: a format 3 record written in place", function () {
  it("is byte for byte JSON.stringify(encodeRecord(…)) of the same operation (property)", function () {
    fc.assert(
      fc.property(
        fc.array(orderArb, { maxLength: 4 }),
        fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
        fc.array(positionArb, { maxLength: 3 }),
        fc.array(awkward, { maxLength: 3 }),
        extraArb,
        fc.record({
          seq: fc.nat(),
          cash: fc.integer({ min: -(2 ** 52), max: 2 ** 52 }),
          nextOrder: fc.integer({ min: 1, max: 2 ** 40 }),
          nextGtt: fc.integer({ min: 1, max: 2 ** 40 }),
        }),
        (orders, wholeFlags, positions, ended, extra, counters) => {
          const whole = orders.filter((_, i) => wholeFlags[i]);
          const expected = JSON.stringify(
            encodeRecord(NOW, counters, orders, whole, positions, ended, extra),
          );
          const actual = written((sink) =>
            writeRecord(sink, NOW, counters, orders, whole, positions, ended, extra),
          );
          assert.equal(actual, expected);
        },
      ),
      { numRuns: 1500 },
    );
  });
});

describe("snapshot version 3: the orders as whole-order tuples", function () {
  it("writes JSON.stringify's bytes, and reads back as the version 2 object with the same orders (property)", function () {
    fc.assert(
      fc.property(fc.array(orderArb, { maxLength: 6 }), fc.integer(), (orders, cash) => {
        const snapshot = { version: 3, cash, orders: new SnapshotOrders(orders), ended: ["P000000007"] };
        const bytes = written((sink) => sink.item(snapshot));
        assert.equal(bytes, JSON.stringify(snapshot));
        const read = fromWrittenSnapshot(JSON.parse(bytes)) as { version: number; orders: unknown[] };
        assert.equal(read.version, 2);
        assert.deepEqual(read, JSON.parse(JSON.stringify({ ...snapshot, version: 2, orders })));
      }),
      { numRuns: 1000 },
    );
  });

  it("writes every timestamp out (a snapshot has no `now` for a 0 to stand for)", function () {
    const order = fc.sample(orderArb, { numRuns: 1, seed: 7 })[0]!;
    order.placed_at = NOW;
    order.timestamp = NOW;
    const bytes = written((sink) => sink.item(new SnapshotOrders([order])));
    assert.ok(bytes.includes(`"${NOW}","${NOW}"`), bytes);
  });

  it("leaves what is not a 17-element tuple for the schema to refuse, and other versions as they are", function () {
    const read = fromWrittenSnapshot({ version: 3, orders: [[1, 2], "x", 0] }) as { orders: unknown[] };
    assert.deepEqual(read.orders, [[1, 2], "x", 0]);
    const v2 = { version: 2, orders: [] };
    assert.equal(fromWrittenSnapshot(v2), v2);
    const list = [3];
    assert.equal(fromWrittenSnapshot(list), list);
  });
});

describe("Journal.beginRecord / endRecord", function () {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "json-sink-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("writes the same file as append() of the same values, and a throw mid-record leaves nothing", async function () {
    const records: unknown[] = [];
    for (let i = 0; i < 3000; i++) {
      records.push([3, NOW, i, -i * 7, `P${i}`, i % 3 === 0 ? { status_message: `é"${i}` } : 0, [["x", i]]]);
    }
    const a = await Journal.open<unknown, unknown>({
      file: path.join(dir, "a.jsonl"),
      fsyncIntervalMs: 60_000,
    });
    const b = await Journal.open<unknown, unknown>({
      file: path.join(dir, "b.jsonl"),
      fsyncIntervalMs: 60_000,
    });
    for (const [i, record] of records.entries()) {
      a.journal.append(record);
      if (i % 7 === 0) {
        // Half a record, then a failure: none of it may reach the file.
        const sink = b.journal.beginRecord();
        sink.item(["half", "written", i]);
        assert.throws(() => sink.item([1n]), TypeError);
      }
      b.journal.beginRecord().item(record);
      b.journal.endRecord();
      // Writes in flight while later records are added (and the buffer grows under them).
      if (i % 500 === 0) void Promise.all([a.journal.flush(), b.journal.flush()]);
    }
    await Promise.all([a.journal.close(), b.journal.close()]);
    const bytesA = fs.readFileSync(path.join(dir, "a.jsonl"));
    assert.ok(bytesA.length > 100_000);
    assert.deepEqual(fs.readFileSync(path.join(dir, "b.jsonl")), bytesA);
    const reopened = await Journal.open<unknown, unknown>({ file: path.join(dir, "b.jsonl") });
    assert.deepEqual(reopened.contents.records, JSON.parse(JSON.stringify(records)));
    assert.equal(reopened.quarantine, undefined);
    await reopened.journal.close();
  });

  it("writes a snapshot line of JSON.stringify's bytes, sealed with zlib's CRC32 (property)", async function () {
    const file = path.join(dir, "s.jsonl");
    await fc.assert(
      fc.asyncProperty(fc.dictionary(awkward, values), fc.nat({ max: 3 }), async (snapshot, size) => {
        // Sizes from a few bytes to megabytes, so the buffer starts too small and grows.
        const orders = Array.from({ length: [0, 10, 1000, 5_000][size]! }, (_, i) => ({
          order_id: `P${i}`,
          price: i / 3,
          tag: i % 7 === 0 ? "é" : undefined,
        }));
        const value = { ...snapshot, orders };
        fs.rmSync(file, { force: true });
        const { journal } = await Journal.open<unknown, unknown>({ file, fsyncIntervalMs: 60_000 });
        // Twice: the second starts from the first one's size.
        await journal.compact(value);
        await journal.compact(value);
        await journal.close();
        const body = `{"s":${JSON.stringify(value)}}`;
        const sum = crc32(body).toString(16).padStart(8, "0");
        assert.equal(fs.readFileSync(file, "utf8"), `${body.slice(0, -1)},"k":"${sum}"}\n`);
        const reopened = await Journal.open<unknown, unknown>({ file });
        assert.deepEqual(reopened.contents.snapshot, JSON.parse(JSON.stringify(value)));
        await reopened.journal.close();
      }),
      { numRuns: 30 },
    );
  });

  it("refuses a snapshot JSON cannot write, and the journal carries on", async () => {
    const file = path.join(dir, "t.jsonl");
    const { journal } = await Journal.open<unknown, unknown>({ file, fsyncIntervalMs: 60_000 });
    const cycle: Record<string, unknown> = { a: 1 };
    cycle.self = cycle;
    for (const bad of [undefined, { cash: 1n }, cycle, () => 1]) {
      await assert.rejects(journal.compact(bad), /snapshot is not serializable/);
    }
    journal.append({ still: "works" });
    await journal.close();
    const reopened = await Journal.open<unknown, unknown>({ file });
    assert.deepEqual(reopened.contents, { snapshot: undefined, records: [{ still: "works" }] });
    await reopened.journal.close();
  });
});
