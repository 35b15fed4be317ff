import { z } from "zod";
import { IsoTimestamp } from "../protocol/fields";
import { parseKiteTimestamp } from "./time";

/** Who a Kite access token belongs to and since when: what the editor dialog shows. Never the token. */
export const KiteSession = z.strictObject({
  user_id: z.string(),
  user_name: z.string().optional(),
  /** ISO 8601 UTC (Kite sends IST wall-clock text). */
  login_time: IsoTimestamp.optional(),
});
export type KiteSession = z.output<typeof KiteSession>;

function text(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** generateSession's (or getProfile's) answer → the session fields, dropping every token it holds. */
export function toKiteSession(reply: unknown): KiteSession {
  const r = typeof reply === "object" && reply !== null ? (reply as Record<string, unknown>) : {};
  const session: KiteSession = { user_id: text(r.user_id) ?? "unknown" };
  const name = text(r.user_name);
  if (name !== undefined) session.user_name = name;
  const login = parseKiteTimestamp(r.login_time);
  if (login !== undefined) session.login_time = login;
  return session;
}
