import type { OrderSnapshot } from "../protocol/orders";
import type { Position } from "../protocol/positions";
import { filledBetween } from "../common/filled-between";
import type { MomentumStrategy } from "./momentum";

/** What a strategy reads its positions from: any broker. */
export interface AccountSource {
  getPositions(): Promise<Position[]>;
  getOrderbook(): Promise<OrderSnapshot[]>;
}

/** Reads of the book around the positions before the last one is taken although orders kept filling. */
const ATTEMPTS = 5;

/**
 * Seeds `strategy` with the account's positions and order book. Two reads, and a fill can land
 * between them: positions read before it and a book read after it would hide that fill for good
 * (the book says it is counted, the positions never had it). So the book is read on both sides of
 * the positions, again while an order filled in between; events heard meanwhile are applied again
 * once the seed is in (see MomentumStrategy.beginRead). Returns the order that kept filling when
 * the tries ran out, for the caller to log.
 */
export async function seedFromAccount(
  strategy: MomentumStrategy,
  source: AccountSource,
): Promise<string | undefined> {
  strategy.beginRead();
  for (let attempt = 1; ; attempt++) {
    const before = await source.getOrderbook();
    const positions = await source.getPositions();
    const after = await source.getOrderbook();
    const moved = filledBetween(before, after);
    if (moved === undefined || attempt >= ATTEMPTS) {
      strategy.seed(positions, after);
      return moved;
    }
  }
}
