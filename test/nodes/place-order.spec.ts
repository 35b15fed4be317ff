import assert from "node:assert/strict";
import type { OrderSnapshot } from "../../lib/protocol";
import brokerNode = require("../../nodes/broker-config/broker-config");
import placeOrderNode = require("../../nodes/place-order/place-order");
import { waitFor } from "../support/wait";
import type { FlowNode } from "./support";
import {
  ERROR,
  assertMissingBroker,
  collect,
  configNode,
  editorFields,
  freshRuntime,
  getNode,
  helper,
  lastStatus,
  logged,
  nextMessage,
  paperBroker,
  paperConfig,
  statusMatching,
  teardownRuntime,
  userFlow,
} from "./support";

const NODES = [brokerNode, placeOrderNode];

function flow(order: Record<string, unknown> = {}, config: FlowNode = paperConfig()): FlowNode[] {
  return userFlow({ type: "trading-place-order", name: "buy", ...order }, { config });
}

interface CaughtError {
  message: string;
  code?: string;
  source: { id: string; type: string };
}

async function orderCount(): Promise<number> {
  return (await (await paperBroker()).getOrderbook()).length;
}

describe("trading-place-order", function () {
  beforeEach(freshRuntime);
  afterEach(teardownRuntime);

  it("loads with its editor defaults and shows the broker's state", async function () {
    await helper.load(NODES, flow());
    const n1 = getNode("n1");
    assert.equal(n1.type, "trading-place-order");
    assert.equal(n1.name, "buy");
    const fields = editorFields("n1");
    assert.deepEqual(
      fields.map((f) => f.field),
      [
        "symbol",
        "exchange",
        "side",
        "quantity",
        "order_type",
        "price",
        "trigger_price",
        "product",
        "validity",
        "tag",
        "variety",
        "validity_ttl",
        "disclosed_quantity",
        "iceberg_legs",
        "iceberg_quantity",
      ],
    );
    assert.ok(fields.every((f) => f.typed.value === "" && f.typed.type === "str"));
    await statusMatching("n1", (s) => s.fill === "green" && s.shape === "dot");
    assert.deepEqual(lastStatus("n1"), {
      fill: "green",
      shape: "dot",
      text: "trading-broker.status.connected",
    });
    assert.equal(configNode().connection.userCount, 1);
  });

  it("places the payload's order and keeps the rest of msg", async function () {
    await helper.load(NODES, flow());
    await paperBroker();
    const out = nextMessage("out");
    getNode("n1").receive({
      payload: { symbol: "INFY", side: "BUY", quantity: 5 },
      topic: "entry",
      custom: 42,
    });
    const msg = await out;
    const order = msg.payload as OrderSnapshot;
    assert.equal(msg.topic, "entry");
    assert.equal(msg.custom, 42);
    assert.equal(typeof msg._msgid, "string");
    assert.equal(order.symbol, "INFY");
    assert.equal(order.exchange, "NSE");
    assert.equal(order.side, "BUY");
    assert.equal(order.quantity, 5);
    assert.equal(order.order_type, "MARKET");
    assert.equal(order.product, "MIS");
    assert.equal(order.validity, "DAY");
    assert.equal(order.status, "FILLED");
    assert.equal(order.filled_quantity, 5);
    assert.equal(order.average_price, 100);
    assert.match(order.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.deepEqual(JSON.parse(JSON.stringify(order)), order, "the snapshot is plain JSON");
    assert.equal(lastStatus("n1")?.fill, "green");
  });

  it("keeps the same message object flowing (same _msgid)", async function () {
    await helper.load(NODES, flow());
    await paperBroker();
    const out = nextMessage("out");
    getNode("n1").receive({ _msgid: "m-123", payload: { symbol: "TCS", side: "BUY", quantity: 1 } });
    assert.equal((await out)._msgid, "m-123");
  });

  it("fills fields the payload leaves out from the editor; the payload wins", async function () {
    process.env.TB_TEST_SYMBOL = "SBIN";
    await helper.load(
      NODES,
      flow({
        symbol: "TB_TEST_SYMBOL",
        symbolType: "env",
        side: "SELL",
        sideType: "side",
        quantity: "qty",
        quantityType: "msg",
        orderType: "LIMIT",
        orderTypeType: "order_type",
        price: "ref * 0.5",
        priceType: "jsonata",
        product: "CNC",
        productType: "product",
        tag: "fromEditor",
        tagType: "str",
      }),
    );
    await paperBroker();
    const out = nextMessage("out");
    getNode("n1").receive({ payload: { side: "BUY", product: "MIS" }, qty: 3, ref: 200 });
    const order = (await out).payload as OrderSnapshot;
    assert.equal(order.symbol, "SBIN");
    assert.equal(order.side, "BUY", "payload side wins over the editor's SELL");
    assert.equal(order.product, "MIS", "payload product wins over the editor's CNC");
    assert.equal(order.quantity, 3);
    assert.equal(order.order_type, "LIMIT");
    assert.equal(order.tag, "fromEditor");
    assert.equal(order.price, 100, "JSONata computed the price from msg.ref");
  });

  it("takes numbers typed as text in the editor (str/env) as numbers", async function () {
    await helper.load(
      NODES,
      flow({ symbol: "INFY", side: "BUY", sideType: "side", quantity: "7", quantityType: "str" }),
    );
    await paperBroker();
    const out = nextMessage("out");
    getNode("n1").receive({ payload: 1700000000000 });
    const order = (await out).payload as OrderSnapshot;
    assert.equal(order.quantity, 7);
    assert.equal(order.symbol, "INFY");
  });

  it("places an iceberg TTL order set up in the editor, the options fixed there", async function () {
    await helper.load(
      NODES,
      flow({
        symbol: "INFY",
        side: "BUY",
        sideType: "side",
        quantity: "30",
        quantityType: "num",
        orderType: "LIMIT",
        orderTypeType: "order_type",
        price: "90",
        priceType: "num",
        validity: "TTL",
        validityType: "validity",
        validityTtl: "5",
        validityTtlType: "str",
        variety: "iceberg",
        varietyType: "variety",
        varietyFixed: true,
        icebergLegs: "3",
        icebergLegsType: "num",
        icebergLegsFixed: true,
        icebergQuantity: "10",
        icebergQuantityType: "num",
      }),
    );
    const broker = await paperBroker();
    broker.setPrice("INFY", 100);
    const out = nextMessage("out");
    getNode("n1").receive({ payload: 1700000000000 });
    const order = (await out).payload as OrderSnapshot;
    assert.equal(order.variety, "iceberg");
    assert.equal(order.iceberg_legs, 3);
    assert.equal(order.iceberg_quantity, 10);
    assert.equal(order.validity, "TTL");
    assert.equal(order.validity_ttl, 5, "a number typed as text is a number");

    const caught = nextMessage("caught");
    getNode("n1").receive({ payload: { variety: "regular" } });
    const error = (await caught).error as CaughtError;
    assert.equal(error.code, "VALIDATION");
    assert.match(error.message, /variety: is fixed at "iceberg" in this node/);

    const refused = nextMessage("caught");
    getNode("n1").receive({ payload: { quantity: 31 } });
    const legs = (await refused).error as CaughtError;
    assert.equal(legs.code, "VALIDATION");
    assert.match(
      legs.message,
      /iceberg_quantity: must cover quantity over iceberg_legs legs \(3 legs of 10 = 30 < 31\)/,
    );
    assert.equal(await orderCount(), 1, "only the valid order reached the broker");
  });

  it("refuses a disclosed quantity from msg.payload that breaks the exchange's rule, naming it", async function () {
    await helper.load(NODES, flow());
    await paperBroker();
    const caught = nextMessage("caught");
    getNode("n1").receive({
      payload: {
        symbol: "INFY",
        side: "BUY",
        quantity: 100,
        order_type: "LIMIT",
        price: 90,
        disclosed_quantity: 5,
      },
    });
    const error = (await caught).error as CaughtError;
    assert.equal(error.code, "VALIDATION");
    assert.match(error.message, /disclosed_quantity: must be at least 10% of quantity on NSE \(10 of 100\)/);
    assert.equal(await orderCount(), 0);
  });

  describe("fixed fields", function () {
    /** Sends `payload`; the order it placed, or the error Catch received. */
    async function outcome(payload: unknown): Promise<{ order?: OrderSnapshot; error?: CaughtError }> {
      const out = collect("out");
      const caught = collect("caught");
      try {
        getNode("n1").receive({ payload });
        await waitFor(() => out.messages.length + caught.messages.length > 0, "an outcome");
        assert.equal(out.messages.length + caught.messages.length, 1, "exactly one outcome");
        const [msg] = out.messages;
        return msg !== undefined
          ? { order: msg.payload as OrderSnapshot }
          : { error: caught.messages[0]!.error as CaughtError };
      } finally {
        out.stop();
        caught.stop();
      }
    }

    it("quantity fixed at 1: a payload of 50 goes to Catch naming the field, nothing placed", async function () {
      await helper.load(NODES, flow({ quantity: "1", quantityType: "num", quantityFixed: true }));
      await paperBroker();
      const result = await outcome({ symbol: "INFY", side: "SELL", quantity: 50 });
      assert.equal(result.order, undefined);
      assert.equal(result.error?.code, "VALIDATION");
      assert.match(
        result.error?.message ?? "",
        /quantity: is fixed at 1 in this node, so msg\.payload\.quantity may not change it/,
      );
      assert.equal(result.error?.source.id, "n1");
      assert.equal(lastStatus("n1")?.fill, "red");
      assert.equal(await orderCount(), 0, "nothing reached the broker");
    });

    it("an equal value passes; a payload leaving the field out gets the fixed value", async function () {
      await helper.load(NODES, flow({ quantity: "1", quantityType: "num", quantityFixed: true }));
      await paperBroker();
      assert.equal((await outcome({ symbol: "INFY", side: "BUY", quantity: 1 })).order?.quantity, 1);
      assert.equal((await outcome({ symbol: "INFY", side: "BUY" })).order?.quantity, 1);
      assert.equal((await outcome({ symbol: "INFY", side: "BUY", quantity: 1.0 })).order?.quantity, 1);
      assert.equal(await orderCount(), 3);
    });

    it("refuses every different value, however it is dressed up, and keeps working", async function () {
      await helper.load(NODES, flow({ quantity: "1", quantityType: "num", quantityFixed: true }));
      await paperBroker();
      const attempts: unknown[] = [
        50,
        2,
        0,
        -1,
        1.5,
        1e9,
        "50",
        " 50 ",
        "1e3",
        null,
        false,
        [1],
        { q: 1 },
        NaN,
      ];
      for (let round = 0; round < 3; round++) {
        for (const quantity of attempts) {
          const result = await outcome({ symbol: "INFY", side: "SELL", quantity });
          assert.equal(result.order, undefined, `quantity ${String(quantity)} was placed`);
          assert.match(result.error?.message ?? "", /quantity: is fixed at 1/, String(quantity));
          assert.equal((await outcome({ symbol: "INFY", side: "BUY", quantity: 1 })).order?.quantity, 1);
        }
      }
      const book = await (await paperBroker()).getOrderbook();
      assert.equal(book.length, attempts.length * 3);
      assert.ok(book.every((order) => order.quantity === 1 && order.side === "BUY"));
    });

    it("only fixed fields are locked: the others still take the payload's value", async function () {
      await helper.load(
        NODES,
        flow({
          symbol: "INFY",
          symbolType: "str",
          symbolFixed: true,
          side: "BUY",
          sideType: "side",
          quantity: "2",
          quantityType: "num",
        }),
      );
      await paperBroker();
      const order = (await outcome({ side: "SELL", quantity: 5 })).order;
      assert.equal(order?.side, "SELL");
      assert.equal(order?.quantity, 5);
      assert.equal(order?.symbol, "INFY");
      const refused = await outcome({ symbol: "TCS", side: "BUY", quantity: 1 });
      assert.match(refused.error?.message ?? "", /symbol: is fixed at "INFY" in this node/);
    });

    it("a value read from flow context can be fixed too, and a fixed blank field may not be set", async function () {
      await helper.load(
        NODES,
        flow({
          quantity: "cap",
          quantityType: "flow",
          quantityFixed: true,
          tag: "",
          tagType: "str",
          tagFixed: true,
        }),
      );
      await paperBroker();
      getNode("n1").context().flow.set("cap", 3);
      assert.equal((await outcome({ symbol: "INFY", side: "BUY" })).order?.quantity, 3);
      const over = await outcome({ symbol: "INFY", side: "BUY", quantity: 4 });
      assert.match(over.error?.message ?? "", /quantity: is fixed at 3 in this node/);
      const tagged = await outcome({ symbol: "INFY", side: "BUY", tag: "sneaky" });
      assert.match(
        tagged.error?.message ?? "",
        /tag: is fixed blank in this node, so msg\.payload\.tag may not set it/,
      );
      assert.equal(await orderCount(), 1);
    });
  });

  const badOrders: [string, Record<string, unknown>, RegExp][] = [
    ["missing symbol", { side: "BUY", quantity: 1 }, /symbol: is required/],
    ["quantity 0", { symbol: "INFY", side: "BUY", quantity: 0 }, /quantity: must be greater than 0/],
    ["quantity 1.5", { symbol: "INFY", side: "BUY", quantity: 1.5 }, /quantity: must be a whole number/],
    [
      "negative price",
      { symbol: "INFY", side: "BUY", quantity: 1, order_type: "LIMIT", price: -5 },
      /price: must be greater than 0/,
    ],
    [
      "NaN price",
      { symbol: "INFY", side: "BUY", quantity: 1, order_type: "LIMIT", price: NaN },
      /price: must be a number/,
    ],
    [
      "LIMIT without price",
      { symbol: "INFY", side: "BUY", quantity: 1, order_type: "LIMIT" },
      /price: is required for LIMIT/,
    ],
    [
      "SL without trigger_price",
      { symbol: "INFY", side: "BUY", quantity: 1, order_type: "SL", price: 101 },
      /trigger_price: is required for SL/,
    ],
    ["unknown side", { symbol: "INFY", side: "HOLD", quantity: 1 }, /side: must be BUY or SELL/],
    [
      "unknown order_type",
      { symbol: "INFY", side: "BUY", quantity: 1, order_type: "STOP" },
      /order_type: must be one of MARKET, LIMIT, SL, SL-M/,
    ],
    ["quantity as a string", { symbol: "INFY", side: "BUY", quantity: "5" }, /quantity: must be a number/],
    ["symbol as a number", { symbol: 42, side: "BUY", quantity: 1 }, /symbol: must be a string/],
    ["an unknown field", { symbol: "INFY", side: "BUY", quantity: 1, stop: 90 }, /stop: unknown field/],
  ];

  it("sends every bad order to Catch with field and rule, and keeps working", async function () {
    await helper.load(NODES, flow());
    await paperBroker();
    const n1 = getNode("n1");
    for (const [what, payload, expected] of badOrders) {
      const before = await orderCount();
      const caught = nextMessage("caught");
      n1.receive({ payload, topic: what });
      const msg = await caught;
      const error = msg.error as CaughtError;
      assert.match(error.message, expected, what);
      assert.match(error.message, /invalid order: /, what);
      assert.equal(error.code, "VALIDATION", what);
      assert.equal(error.source.id, "n1");
      assert.equal(msg.topic, what, "the failed msg keeps its properties");
      assert.deepEqual(msg.payload, payload, `${what}: payload untouched`);
      assert.equal(lastStatus("n1")?.fill, "red", what);
      assert.equal(await orderCount(), before, `${what}: nothing reached the broker`);

      const out = nextMessage("out");
      n1.receive({ payload: { symbol: "INFY", side: "BUY", quantity: 1 } });
      assert.equal(((await out).payload as OrderSnapshot).status, "FILLED", `good order after ${what}`);
    }
    const book = await (await paperBroker()).getOrderbook();
    assert.equal(book.length, badOrders.length, "only the good orders are in the book");
    assert.ok(book.every((order) => order.symbol === "INFY" && order.quantity === 1));
  });

  it("reports a REJECTED order to Catch with the snapshot as payload", async function () {
    await helper.load(NODES, flow());
    await paperBroker();
    const caught = nextMessage("caught");
    getNode("n1").receive({ payload: { symbol: "INFY", side: "BUY", quantity: 1_000_000 } });
    const msg = await caught;
    const error = msg.error as CaughtError;
    assert.equal(error.code, "ORDER_REJECTED");
    assert.match(error.message, /rejected: insufficient funds/);
    const order = msg.payload as OrderSnapshot;
    assert.equal(order.status, "REJECTED");
    assert.match(order.status_message ?? "", /insufficient funds/);
    assert.equal(lastStatus("n1")?.fill, "red");
    assert.match(lastStatus("n1")?.text ?? "", /^rejected: insufficient funds/);
  });

  it("without a configured broker: red ring, one logged error, every message fails", async function () {
    await helper.load(NODES, flow({ broker: "" }));
    await assertMissingBroker("n1", "trading-place-order", { symbol: "INFY", side: "BUY", quantity: 1 });
  });

  it("with invalid broker settings: the config names field and rule, users show it", async function () {
    await helper.load(NODES, flow({}, paperConfig("b1", { starting_cash: "-5", interval_ms: "abc" })));
    const errors = logged("b1", ERROR);
    assert.equal(errors.length, 1);
    assert.match(errors[0] ?? "", /paper\.starting_cash: must be greater than 0/);
    assert.match(errors[0] ?? "", /paper\.interval_ms: /);
    assert.deepEqual(lastStatus("n1"), {
      fill: "red",
      shape: "ring",
      text: "trading-broker.status.invalid-settings",
    });
    const caught = nextMessage("caught");
    getNode("n1").receive({ payload: { symbol: "INFY", side: "BUY", quantity: 1 } });
    const error = (await caught).error as CaughtError;
    assert.equal(error.code, "CONFIG");
    assert.match(error.message, /invalid broker settings: paper\.starting_cash/);
  });

  it("closes the broker and drops every listener when the flow stops", async function () {
    await helper.load(NODES, flow());
    const broker = await paperBroker();
    assert.ok(broker.listenerCount("state") > 0);
    await helper.unload();
    for (const event of ["order", "gtt", "quote", "state", "error"] as const) {
      assert.equal(broker.listenerCount(event), 0, `${event} listeners left`);
    }
    assert.equal(broker.state, "disconnected");
  });
});
