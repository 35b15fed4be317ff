import path from "node:path";
import type { NodeAPI } from "node-red";
import { KiteSessionStore } from "../../lib/kite/session-store";
import type { KiteSession } from "../../lib/kite/session";
import { toBrokerError } from "../../lib/protocol/errors";
import type { BrokerConfigNode, BrokerCredentials } from "../shared/broker-link";

/** One store per user dir: its key is derived once. */
const stores = new Map<string, KiteSessionStore>();

/**
 * The secret Node-RED encrypts flows_cred.json with: settings.js's credentialSecret, else the one
 * it generated into .config.runtime.json. Undefined when encryption is off (credentialSecret
 * false) or the settings cannot tell: the store then uses a key file of its own.
 */
function runtimeSecret(RED: NodeAPI): string | undefined {
  const settings = RED.settings as unknown as { credentialSecret?: unknown; get?: (name: string) => unknown };
  if (typeof settings.credentialSecret === "string" && settings.credentialSecret !== "")
    return settings.credentialSecret;
  if (settings.credentialSecret === false) return undefined;
  try {
    const generated = settings.get?.("_credentialSecret");
    return typeof generated === "string" && generated !== "" ? generated : undefined;
  } catch {
    return undefined;
  }
}

export function kiteSessionStore(RED: NodeAPI, userDir: string): KiteSessionStore {
  let store = stores.get(userDir);
  if (store === undefined) {
    store = new KiteSessionStore({ dir: path.join(userDir, "trading-broker"), secret: runtimeSecret(RED) });
    stores.set(userDir, store);
  }
  return store;
}

/**
 * The credentials a Kite broker starts with: today's stored login (kite-login.ts keeps it) in
 * place of the credential's access token, when there is one for this node and it may be used.
 */
export function withStoredKiteSession(
  RED: NodeAPI,
  node: BrokerConfigNode,
  userDir: string,
): { credentials: BrokerCredentials | undefined; session?: KiteSession } {
  const credentials = node.credentials;
  const apiKey = credentials?.apiKey ?? "";
  if (apiKey === "") return { credentials };
  let found: ReturnType<KiteSessionStore["load"]>;
  try {
    found = kiteSessionStore(RED, userDir).load(node.id, apiKey, credentials?.accessToken ?? "");
  } catch (error) {
    node.warn(RED._("trading-broker.kite-login.stored-failed", { reason: toBrokerError(error).message }));
    return { credentials };
  }
  if (found === undefined) return { credentials };
  if ("discarded" in found) {
    node.log(RED._(`trading-broker.kite-login.stored-${found.discarded}`));
    return { credentials };
  }
  node.log(RED._("trading-broker.kite-login.stored-restored", { day: found.day }));
  return {
    credentials: { ...credentials, accessToken: found.accessToken },
    ...(found.session === undefined ? {} : { session: found.session }),
  };
}

/** Keeps a login's token for a restart later the same trading day. Never throws; never logs it. */
export function storeKiteSession(
  RED: NodeAPI,
  node: BrokerConfigNode,
  userDir: string,
  accessToken: string,
  session: KiteSession,
  replacedToken: string,
): void {
  const apiKey = node.credentials?.apiKey ?? "";
  try {
    kiteSessionStore(RED, userDir).save(node.id, apiKey, accessToken, session, replacedToken);
  } catch (error) {
    node.warn(RED._("trading-broker.kite-login.stored-failed", { reason: toBrokerError(error).message }));
  }
}
