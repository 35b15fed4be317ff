import assert from "node:assert/strict";
import type { OrderStatus } from "../../lib/protocol";
import { OrderSnapshot } from "../../lib/protocol/orders";
import { GttSnapshot } from "../../lib/protocol/gtt";
import { Position } from "../../lib/protocol/positions";
import { parseOrderRequest } from "../../lib/protocol/order-fast-path";
import { GttRequest } from "../../lib/protocol/gtt";
import { InstrumentMap, parseCsv } from "../../lib/kite/instruments";
import type { KiteOrder, KiteTrigger } from "../../lib/kite/mapping";
import {
  externalClientId,
  mapKiteStatus,
  toGttSnapshot,
  toKiteGttParams,
  toKiteOrderParams,
  toOrderSnapshot,
  toPosition,
} from "../../lib/kite/mapping";

const NOW = "2026-01-05T04:00:00.000Z";

function kiteOrder(overrides: Partial<KiteOrder> = {}): KiteOrder {
  return {
    order_id: "250612000000001",
    status: "OPEN",
    tradingsymbol: "INFY",
    exchange: "NSE",
    transaction_type: "BUY",
    order_type: "LIMIT",
    product: "MIS",
    validity: "DAY",
    variety: "regular",
    quantity: 10,
    price: 1490.5,
    trigger_price: 0,
    average_price: 0,
    filled_quantity: 0,
    pending_quantity: 10,
    status_message: null,
    tag: "abc123",
    order_timestamp: "2026-01-05 09:15:00",
    exchange_update_timestamp: "2026-01-05 09:15:02",
    exchange_timestamp: "2026-01-05 09:15:01",
    ...overrides,
  };
}

describe("Kite mapping: statuses", function () {
  // [Kite status, filled, quantity, previous, expected]
  const table: [string, number, number, OrderStatus | undefined, OrderStatus][] = [
    ["OPEN", 0, 10, undefined, "OPEN"],
    ["OPEN", 4, 10, undefined, "PARTIALLY_FILLED"],
    ["OPEN", 4, 10, "OPEN", "PARTIALLY_FILLED"],
    ["COMPLETE", 10, 10, undefined, "FILLED"],
    ["COMPLETE", 10, 10, "OPEN", "FILLED"],
    ["CANCELLED", 0, 10, "OPEN", "CANCELLED"],
    ["CANCELLED", 3, 10, "PARTIALLY_FILLED", "CANCELLED"],
    ["CANCEL", 0, 10, undefined, "CANCELLED"],
    ["REJECTED", 0, 10, undefined, "REJECTED"],
    ["TRIGGER PENDING", 0, 10, undefined, "TRIGGER_PENDING"],
    ["EXPIRED", 0, 10, "OPEN", "EXPIRED"],
    ["PUT ORDER REQ RECEIVED", 0, 10, undefined, "PENDING"],
    ["AMO REQ RECEIVED", 0, 10, undefined, "PENDING"],
    ["VALIDATION PENDING", 0, 10, undefined, "PENDING"],
    ["OPEN PENDING", 0, 10, undefined, "PENDING"],
    ["OPEN PENDING", 0, 10, "OPEN", "OPEN"],
    ["MODIFY VALIDATION PENDING", 0, 10, "OPEN", "OPEN"],
    ["MODIFY PENDING", 0, 10, "TRIGGER_PENDING", "TRIGGER_PENDING"],
    ["CANCEL PENDING", 0, 10, "OPEN", "OPEN"],
    ["CANCEL PENDING", 2, 10, "PARTIALLY_FILLED", "PARTIALLY_FILLED"],
    ["MODIFY PENDING", 0, 10, undefined, "OPEN"],
    ["UPDATE", 0, 10, "OPEN", "OPEN"],
    ["UPDATE", 0, 10, "TRIGGER_PENDING", "TRIGGER_PENDING"],
    ["UPDATE", 5, 10, "OPEN", "PARTIALLY_FILLED"],
    ["UPDATE", 10, 10, "PARTIALLY_FILLED", "FILLED"],
    ["UPDATE", 3, 10, undefined, "PARTIALLY_FILLED"],
    ["UPDATE", 0, 10, undefined, "OPEN"],
    ["SOMETHING NEW", 0, 10, "OPEN", "OPEN"],
    ["SOMETHING NEW", 0, 10, undefined, "PENDING"],
  ];
  for (const [status, filled, quantity, previous, expected] of table) {
    it(`${status} (filled ${filled}/${quantity}, before ${previous ?? "unknown"}) → ${expected}`, function () {
      assert.equal(mapKiteStatus(status, filled, quantity, previous), expected);
    });
  }
});

describe("Kite mapping: orders", function () {
  it("maps every field of an order book row and reads timestamps as IST", function () {
    const snapshot = toOrderSnapshot(kiteOrder(), { now: NOW });
    assert.deepEqual(snapshot, {
      order_id: "250612000000001",
      client_order_id: "abc123",
      symbol: "INFY",
      exchange: "NSE",
      side: "BUY",
      quantity: 10,
      order_type: "LIMIT",
      price: 1490.5,
      product: "MIS",
      validity: "DAY",
      status: "OPEN",
      filled_quantity: 0,
      average_price: 0,
      placed_at: "2026-01-05T03:45:00.000Z",
      timestamp: "2026-01-05T03:45:02.000Z",
    });
    OrderSnapshot.parse(snapshot);
  });

  const fieldCases: [string, Partial<KiteOrder>, Partial<OrderSnapshot>][] = [
    ["SELL side", { transaction_type: "SELL" }, { side: "SELL" }],
    [
      "MARKET drops Kite's price 0",
      { order_type: "MARKET", price: 0 },
      { order_type: "MARKET", price: undefined },
    ],
    [
      "SL keeps price and trigger",
      { order_type: "SL", price: 99, trigger_price: 100 },
      { price: 99, trigger_price: 100 },
    ],
    [
      "SL-M keeps only the trigger",
      { order_type: "SL-M", price: 0, trigger_price: 100 },
      { price: undefined, trigger_price: 100 },
    ],
    ["CNC/IOC", { product: "CNC", validity: "IOC" }, { product: "CNC", validity: "IOC" }],
    [
      "NRML on NFO",
      { product: "NRML", exchange: "NFO", tradingsymbol: "NIFTY24JUNFUT" },
      { product: "NRML", exchange: "NFO", symbol: "NIFTY24JUNFUT" },
    ],
    [
      "fills and average",
      { status: "COMPLETE", filled_quantity: 10, average_price: 1489.95 },
      { status: "FILLED", filled_quantity: 10, average_price: 1489.95 },
    ],
    [
      "status message",
      { status: "REJECTED", status_message: "RMS: margin exceeds" },
      { status: "REJECTED", status_message: "RMS: margin exceeds" },
    ],
    [
      "raw message when no message",
      { status_message: null, status_message_raw: "raw text" },
      { status_message: "raw text" },
    ],
    ["no tag: a stand-in id from the order id", { tag: null }, { client_order_id: "250612000000001" }],
    ["a non-id tag is not taken as ours", { tag: "web order!" }, { client_order_id: "250612000000001" }],
    [
      "numbers as strings",
      { quantity: "7" as unknown as number, filled_quantity: "2" as unknown as number },
      { quantity: 7, filled_quantity: 2, status: "PARTIALLY_FILLED" },
    ],
    [
      "Dates made by kiteconnect in the host zone",
      {
        order_timestamp: new Date(2026, 0, 5, 9, 15, 0),
        exchange_update_timestamp: null,
        exchange_timestamp: new Date(2026, 0, 5, 9, 16, 0),
      },
      { placed_at: "2026-01-05T03:45:00.000Z", timestamp: "2026-01-05T03:46:00.000Z" },
    ],
    [
      "no timestamps: now",
      { order_timestamp: null, exchange_update_timestamp: null, exchange_timestamp: null },
      { placed_at: NOW, timestamp: NOW },
    ],
  ];
  for (const [name, overrides, expected] of fieldCases) {
    it(`maps ${name}`, function () {
      const snapshot = toOrderSnapshot(kiteOrder(overrides), { now: NOW });
      for (const [key, value] of Object.entries(expected)) {
        assert.deepEqual(snapshot[key as keyof OrderSnapshot], value, key);
      }
      OrderSnapshot.parse(snapshot);
    });
  }

  it("adds the user's own tag and the GTT that placed the order", function () {
    const snapshot = toOrderSnapshot(kiteOrder(), { now: NOW, userTag: "mine", gttId: "100001" });
    assert.equal(snapshot.tag, "mine");
    assert.equal(snapshot.gtt_id, "100001");
    assert.equal(snapshot.client_order_id, "abc123");
  });

  it("makes 20-alphanumeric stand-in ids", function () {
    assert.equal(externalClientId("250612000000001"), "250612000000001");
    assert.equal(externalClientId("1234567890-1234567890-12"), "34567890123456789012");
    assert.match(externalClientId(""), /^[A-Za-z0-9]{1,20}$/);
  });

  it("builds Kite order params: tag = client_order_id, market_protection on MARKET and SL-M only", function () {
    const cases: [Record<string, unknown>, Record<string, unknown>][] = [
      [
        { symbol: "INFY", side: "BUY", quantity: 3 },
        {
          exchange: "NSE",
          tradingsymbol: "INFY",
          transaction_type: "BUY",
          quantity: 3,
          order_type: "MARKET",
          product: "MIS",
          validity: "DAY",
          tag: "cid1",
          market_protection: -1,
        },
      ],
      [
        {
          symbol: "TCS",
          exchange: "BSE",
          side: "SELL",
          quantity: 2,
          order_type: "LIMIT",
          price: 3500.5,
          product: "CNC",
          validity: "IOC",
        },
        {
          exchange: "BSE",
          tradingsymbol: "TCS",
          transaction_type: "SELL",
          quantity: 2,
          order_type: "LIMIT",
          product: "CNC",
          validity: "IOC",
          tag: "cid1",
          price: 3500.5,
        },
      ],
      [
        { symbol: "INFY", side: "SELL", quantity: 1, order_type: "SL", price: 99, trigger_price: 100 },
        {
          exchange: "NSE",
          tradingsymbol: "INFY",
          transaction_type: "SELL",
          quantity: 1,
          order_type: "SL",
          product: "MIS",
          validity: "DAY",
          tag: "cid1",
          price: 99,
          trigger_price: 100,
        },
      ],
      [
        { symbol: "INFY", side: "SELL", quantity: 1, order_type: "SL-M", trigger_price: 100 },
        {
          exchange: "NSE",
          tradingsymbol: "INFY",
          transaction_type: "SELL",
          quantity: 1,
          order_type: "SL-M",
          product: "MIS",
          validity: "DAY",
          tag: "cid1",
          trigger_price: 100,
          market_protection: -1,
        },
      ],
    ];
    for (const [input, expected] of cases) {
      assert.deepEqual({ ...toKiteOrderParams(parseOrderRequest(input), "cid1", -1) }, expected);
    }
    const withPercent = toKiteOrderParams(
      parseOrderRequest({ symbol: "INFY", side: "BUY", quantity: 1 }),
      "c",
      5,
    );
    assert.equal(withPercent.market_protection, 5);
  });
});

describe("Kite mapping: GTTs and positions", function () {
  const trigger: KiteTrigger = {
    id: 123,
    type: "two-leg",
    status: "triggered",
    created_at: "2026-01-05 10:00:00",
    updated_at: "2026-01-05 11:30:00",
    condition: {
      exchange: "NSE",
      tradingsymbol: "INFY",
      trigger_values: [1400, 1600],
      last_price: 1500,
      instrument_token: 408065,
    },
    orders: [
      {
        transaction_type: "SELL",
        quantity: 3,
        price: 1395,
        product: "CNC",
        order_type: "LIMIT",
        result: null,
      },
      {
        transaction_type: "SELL",
        quantity: 3,
        price: 1605,
        product: "CNC",
        order_type: "LIMIT",
        result: { order_result: { order_id: "250612000000009", status: "success" } },
      },
    ],
  };

  it("maps a triggered two-leg GTT: leg, order ids, IST times", function () {
    const gtt = toGttSnapshot(trigger, NOW);
    assert.deepEqual(gtt, {
      gtt_id: "123",
      type: "two-leg",
      symbol: "INFY",
      exchange: "NSE",
      last_price: 1500,
      trigger_values: [1400, 1600],
      orders: [
        { side: "SELL", quantity: 3, order_type: "LIMIT", price: 1395, product: "CNC" },
        { side: "SELL", quantity: 3, order_type: "LIMIT", price: 1605, product: "CNC" },
      ],
      status: "triggered",
      triggered_leg: 1,
      order_ids: ["250612000000009"],
      created_at: "2026-01-05T04:30:00.000Z",
      updated_at: "2026-01-05T06:00:00.000Z",
    });
    GttSnapshot.parse(gtt);
  });

  it("maps an active single GTT and an unknown status safely", function () {
    const single: KiteTrigger = {
      ...trigger,
      type: "single",
      status: "active",
      condition: { ...trigger.condition, trigger_values: [1600] },
      orders: [{ ...trigger.orders[1]!, result: null }],
    };
    const gtt = toGttSnapshot(single, NOW);
    assert.equal(gtt.type, "single");
    assert.equal(gtt.status, "active");
    assert.equal(gtt.triggered_leg, undefined);
    assert.deepEqual(gtt.order_ids, []);
    assert.equal(toGttSnapshot({ ...single, status: "weird" }, NOW).status, "disabled");
  });

  it("builds kiteconnect GTT params for single and two-leg requests", function () {
    const single = GttRequest.parse({
      type: "single",
      symbol: "TCS",
      trigger_values: [3700],
      orders: [{ side: "SELL", quantity: 1, price: 3690 }],
    });
    assert.deepEqual(toKiteGttParams(single, 3500), {
      trigger_type: "single",
      tradingsymbol: "TCS",
      exchange: "NSE",
      trigger_values: [3700],
      last_price: 3500,
      orders: [{ transaction_type: "SELL", quantity: 1, product: "CNC", order_type: "LIMIT", price: 3690 }],
    });
    const oco = GttRequest.parse({
      type: "two-leg",
      symbol: "INFY",
      exchange: "BSE",
      last_price: 1500,
      trigger_values: [1400, 1600],
      orders: [
        { side: "SELL", quantity: 3, price: 1395, product: "MIS" },
        { side: "SELL", quantity: 3, price: 1605, product: "MIS" },
      ],
    });
    const params = toKiteGttParams(oco, 1500);
    assert.equal(params.trigger_type, "two-leg");
    assert.equal(params.exchange, "BSE");
    assert.deepEqual(params.trigger_values, [1400, 1600]);
    assert.deepEqual(
      params.orders.map((o) => o.price),
      [1395, 1605],
    );
  });

  it("maps a net position", function () {
    const position = toPosition({
      tradingsymbol: "INFY",
      exchange: "NSE",
      product: "MIS",
      quantity: -5,
      average_price: 1500,
      last_price: 1490,
      realised: 12.5,
      unrealised: 50,
      pnl: 62.5,
    });
    assert.deepEqual(position, {
      symbol: "INFY",
      exchange: "NSE",
      product: "MIS",
      quantity: -5,
      average_price: 1500,
      last_price: 1490,
      realized_pnl: 12.5,
      unrealized_pnl: 50,
    });
    Position.parse(position);
  });
});

describe("Kite mapping: instruments", function () {
  it("parses Kite's CSV with quotes and a final newline", function () {
    const rows = parseCsv(
      'instrument_token,tradingsymbol,name,exchange\n408065,INFY,"INFOSYS, LTD",NSE\n256265,NIFTY 50,"say ""hi""",INDICES\n',
    );
    assert.deepEqual(rows, [
      { instrument_token: "408065", tradingsymbol: "INFY", name: "INFOSYS, LTD", exchange: "NSE" },
      { instrument_token: "256265", tradingsymbol: "NIFTY 50", name: 'say "hi"', exchange: "INDICES" },
    ]);
  });

  it("maps tokens both ways from parsed rows, raw CSV and fixed entries (which win)", function () {
    const map = new InstrumentMap({ "NSE:TCS": 999 });
    map.load("NSE", [
      { instrument_token: "408065", tradingsymbol: "INFY", exchange: "NSE" },
      { instrument_token: "2953217", tradingsymbol: "TCS", exchange: "NSE" },
      { instrument_token: null, tradingsymbol: null },
    ]);
    map.load("CDS", "instrument_token,tradingsymbol,exchange\n1234563,USDINR24JUNFUT,CDS\n");
    assert.equal(map.tokenOf("NSE", "INFY"), 408065);
    assert.equal(map.tokenOf("NSE", "TCS"), 999);
    assert.equal(map.tokenOf("CDS", "USDINR24JUNFUT"), 1234563);
    assert.deepEqual(map.keyOf(408065), { exchange: "NSE", symbol: "INFY" });
    assert.ok(map.isLoaded("NSE") && map.isLoaded("CDS") && !map.isLoaded("BSE"));
  });
});
