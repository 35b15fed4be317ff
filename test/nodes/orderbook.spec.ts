import assert from "node:assert/strict";
import type { Account, GttSnapshot, OrderSnapshot, Position } from "../../lib/protocol";
import brokerNode = require("../../nodes/broker-config/broker-config");
import orderbookNode = require("../../nodes/orderbook/orderbook");
import type { FlowNode } from "./support";
import {
  assertMissingBroker,
  assertReleasedOnClose,
  freshRuntime,
  getNode,
  helper,
  lastStatus,
  nextMessage,
  paperBroker,
  teardownRuntime,
  userFlow,
} from "./support";

const NODES = [brokerNode, orderbookNode];

function flow(book: Record<string, unknown> = {}): FlowNode[] {
  return userFlow({ id: "o1", type: "trading-orderbook", ...book });
}

interface Book {
  orders: OrderSnapshot[];
  positions?: Position[];
  gtts?: GttSnapshot[];
  account?: Account;
}

async function trade(): Promise<void> {
  const broker = await paperBroker();
  await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 3 });
  await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, order_type: "LIMIT", price: 90 });
  await broker.placeGtt({
    type: "single",
    symbol: "INFY",
    trigger_values: [120],
    orders: [{ side: "SELL", quantity: 3, price: 120, product: "MIS" }],
  });
}

async function ask(
  extra: Record<string, unknown> = {},
): Promise<{ book: Book; msg: Record<string, unknown> }> {
  const out = nextMessage("out");
  getNode("o1").receive({ payload: "now", ...extra });
  const msg = await out;
  return { book: msg.payload as Book, msg };
}

describe("trading-orderbook", function () {
  beforeEach(freshRuntime);
  afterEach(teardownRuntime);

  it("loads with every option off", async function () {
    await helper.load(NODES, flow());
    assert.deepEqual((getNode("o1") as unknown as { options: unknown }).options, {
      openOnly: false,
      positions: false,
      gtts: false,
      account: false,
    });
  });

  it("emits only the orders by default and keeps the rest of msg", async function () {
    await helper.load(NODES, flow());
    await trade();
    const { book, msg } = await ask({ topic: "book", custom: 7 });
    assert.deepEqual(Object.keys(book), ["orders"]);
    assert.deepEqual(
      book.orders.map((o) => o.status),
      ["FILLED", "OPEN"],
    );
    assert.equal(msg.topic, "book");
    assert.equal(msg.custom, 7);
    assert.deepEqual(JSON.parse(JSON.stringify(book)), book);
    assert.equal(lastStatus("o1")?.fill, "green");
  });

  it("adds positions, GTTs and the account when ticked, and can keep only open orders", async function () {
    await helper.load(NODES, flow({ openOnly: true, positions: true, gtts: true, account: "true" }));
    await trade();
    const { book } = await ask();
    assert.deepEqual(
      book.orders.map((o) => o.status),
      ["OPEN"],
    );
    assert.equal(book.positions?.length, 1);
    assert.equal(book.positions?.[0]?.quantity, 3);
    assert.equal(book.gtts?.length, 1);
    assert.equal(book.gtts?.[0]?.status, "active");
    assert.equal(book.account?.cash, 1_000_000 - 300);
  });

  it("without a configured broker: red ring, one logged error, messages fail", async function () {
    await helper.load(NODES, flow({ broker: "" }));
    await assertMissingBroker("o1", "trading-orderbook", "");
  });

  it("drops its registration on close", async function () {
    await helper.load(NODES, flow());
    await assertReleasedOnClose(["state"]);
  });
});
