import assert from "node:assert/strict";
import fc from "fast-check";
import { OrderStatus, TERMINAL_STATUSES, assertTransition, canTransition } from "../../lib/protocol";

const ALL = OrderStatus.options;

/**
 * The legal moves, written out by hand from what real venues do (not derived from the table under
 * test): live statuses move forward or repeat; terminal ones only repeat, except a fill that
 * arrives after a cancel was confirmed.
 */
const LEGAL = new Set([
  ...ALL.map((to) => `PENDING>${to}`),
  ...["OPEN", "TRIGGER_PENDING", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "REJECTED", "EXPIRED"].map(
    (to) => `OPEN>${to}`,
  ),
  ...["TRIGGER_PENDING", "OPEN", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "REJECTED", "EXPIRED"].map(
    (to) => `TRIGGER_PENDING>${to}`,
  ),
  ...["PARTIALLY_FILLED", "FILLED", "CANCELLED", "EXPIRED"].map((to) => `PARTIALLY_FILLED>${to}`),
  "FILLED>FILLED",
  "CANCELLED>CANCELLED",
  "CANCELLED>FILLED",
  "REJECTED>REJECTED",
  "EXPIRED>EXPIRED",
]);

describe("order state machine", function () {
  for (const from of ALL) {
    for (const to of ALL) {
      const legal = LEGAL.has(`${from}>${to}`);
      it(`${legal ? "allows" : "refuses"} ${from} → ${to}`, function () {
        assert.equal(canTransition(from, to), legal);
        if (legal) assertTransition(from, to, "o1");
        else
          assert.throws(() => assertTransition(from, to, "o1"), {
            code: "ILLEGAL_TRANSITION",
            message: `order o1: status ${from} cannot change to ${to}`,
          });
      });
    }
  }

  it("never leaves a terminal status except CANCELLED → FILLED (property)", function () {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...ALL), { minLength: 1, maxLength: 30 }), (path) => {
        let status: OrderStatus = "PENDING";
        for (const next of path) {
          if (!canTransition(status, next)) continue;
          if (TERMINAL_STATUSES.has(status) && next !== status) {
            assert.ok(status === "CANCELLED" && next === "FILLED", `${status} → ${next}`);
          }
          status = next;
        }
      }),
    );
  });

  it("never returns to PENDING from anywhere else (property)", function () {
    fc.assert(
      fc.property(
        fc.constantFrom(...ALL.filter((s) => s !== "PENDING")),
        (from) => !canTransition(from, "PENDING"),
      ),
    );
  });
});
