import { BrokerError } from "../protocol/errors";
import { isRecord } from "../common/is-record";
import type { KiteRestClient } from "./rest-client";
import type { KiteSession } from "./session";
import { toKiteSession } from "./session";

/**
 * The second half of Kite's login: trades the one-time request_token from the redirect for an
 * access token (kiteconnect's generateSession, checksum made with the api secret).
 */
export async function exchangeRequestToken(
  rest: KiteRestClient,
  requestToken: string,
  apiSecret: string,
): Promise<{ session: KiteSession; accessToken: string }> {
  if (!/^[A-Za-z0-9]{1,128}$/.test(requestToken)) {
    throw new BrokerError("VALIDATION", "request_token: must be 1 to 128 letters or digits");
  }
  if (apiSecret === "")
    throw new BrokerError("CONFIG", "api secret: is required to log in (broker config credentials)");
  const reply = await rest.unauthenticated("session exchange", (k) =>
    k.generateSession(requestToken, apiSecret),
  );
  const accessToken = isRecord(reply) && typeof reply.access_token === "string" ? reply.access_token : "";
  if (accessToken === "")
    throw new BrokerError("INTERNAL", "bad reply from Kite: the session has no access_token");
  return { session: toKiteSession(reply), accessToken };
}

/**
 * Kite's login page for an app: the api key, and `state` carried back to the redirect URL through
 * Kite's redirect_params (so the callback can tell its own logins from forged ones).
 */
export function kiteLoginUrl(loginUrl: string, apiKey: string, state: string): string {
  const url = new URL(loginUrl);
  url.searchParams.set("v", "3");
  url.searchParams.set("api_key", apiKey);
  url.searchParams.set("redirect_params", new URLSearchParams({ state }).toString());
  return url.toString();
}
