import type { OrderSnapshot } from "../protocol/orders";

/**
 * An order whose fills changed from one read of the book to the next, if any: positions read
 * between two such reads may predate that fill, so a reader that seeds from both reads again.
 */
export function filledBetween(
  before: readonly OrderSnapshot[],
  after: readonly OrderSnapshot[],
): string | undefined {
  const filled = new Map<string, number>();
  for (const order of before) filled.set(order.order_id, order.filled_quantity);
  for (const order of after) {
    if ((filled.get(order.order_id) ?? 0) !== order.filled_quantity) return order.order_id;
  }
  return undefined;
}
