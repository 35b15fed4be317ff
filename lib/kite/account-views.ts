import type { Account, Position } from "../protocol";
import { isRecord } from "../common/is-record";
import type { KitePosition } from "./mapping";
import { toPosition } from "./mapping";
import type { KiteRestClient } from "./rest-client";

/** The day's net positions, as Kite's positions call reports them. */
export async function readPositions(rest: KiteRestClient): Promise<Position[]> {
  const reply = await rest.call("request", "positions request", (k) => k.getPositions());
  const net = isRecord(reply) && Array.isArray(reply.net) ? (reply.net as unknown[]) : [];
  return net
    .filter((p): p is KitePosition => isRecord(p) && typeof p.tradingsymbol === "string")
    .map(toPosition);
}

/**
 * The account from Kite's equity margins (cash: the live balance) and the positions' P&L, read
 * together.
 */
export async function readAccount(rest: KiteRestClient): Promise<Account> {
  const [margins, positions] = await Promise.all([
    rest.call("request", "margins request", (k) => k.getMargins("equity")),
    readPositions(rest),
  ]);
  const m = isRecord(margins) ? margins : {};
  const available = isRecord(m.available) ? m.available : {};
  const cash = Number(available.live_balance ?? available.cash ?? m.net ?? 0) || 0;
  const realized = positions.reduce((sum, p) => sum + p.realized_pnl, 0);
  const unrealized = positions.reduce((sum, p) => sum + p.unrealized_pnl, 0);
  return {
    cash,
    realized_pnl: Math.round(realized * 100) / 100,
    unrealized_pnl: Math.round(unrealized * 100) / 100,
    equity: Number(m.net ?? cash) || 0,
  };
}
