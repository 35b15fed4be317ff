import { randomBytes, timingSafeEqual } from "node:crypto";
import type { NodeAPI } from "node-red";
import type { KiteBroker } from "../../lib/brokers/kite-broker";
import { liveBrokers } from "../../lib/kite/live-brokers";
import { toBrokerError } from "../../lib/protocol/errors";
import type { BrokerConfigNode } from "../shared/broker-link";
import { isBrokerConfigNode } from "../shared/broker-link";
import { storeKiteSession } from "./kite-session-file";

/** The admin path Kite's redirect URL must name (under httpAdminRoot). */
export const KITE_CALLBACK_PATH = "/trading-broker/kite/callback";
/** A login must come back within this long; Kite's request_token itself lives a few minutes. */
const STATE_TTL_MS = 5 * 60_000;
/** Outstanding logins at once; the oldest goes first (a flood of starts cannot grow memory). */
const MAX_STATES = 64;

interface PendingLogin {
  configId: string;
  expires: number;
}

/** State value → the login it belongs to: one-time, short-lived, bound to one config node. */
const pending = new Map<string, PendingLogin>();

function newState(configId: string): string {
  const now = Date.now();
  for (const [state, login] of pending) if (login.expires <= now) pending.delete(state);
  while (pending.size >= MAX_STATES) pending.delete(pending.keys().next().value!);
  const state = randomBytes(24).toString("hex");
  pending.set(state, { configId, expires: now + STATE_TTL_MS });
  return state;
}

/** The login a state value names, used up by this call; undefined when forged, reused or stale. */
function takeState(state: string): PendingLogin | undefined {
  if (!/^[0-9a-f]{48}$/.test(state)) return undefined;
  // Compared in constant time so a forger learns nothing from timing.
  for (const [known, login] of pending) {
    if (timingSafeEqual(Buffer.from(known), Buffer.from(state))) {
      pending.delete(known);
      return login.expires > Date.now() ? login : undefined;
    }
  }
  return undefined;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** What the browser window Kite redirected shows: the outcome, and a note to the editor that opened it. */
function page(ok: boolean, message: string, detail = ""): string {
  const note = JSON.stringify({ type: "trading-broker-kite-login", ok, message, detail });
  return `<!doctype html><html><head><meta charset="utf-8"><title>Kite login</title></head><body>
<h1>${ok ? "Logged in to Kite" : "Kite login failed"}</h1><p id="message">${escapeHtml(message)}</p>
<p id="detail">${escapeHtml(detail)}</p>
<p>You can close this window.</p>
<script>if (window.opener) window.opener.postMessage(${note.replace(/</g, "\\u003c")}, window.location.origin);</script>
</body></html>`;
}

function kiteBrokerOf(node: BrokerConfigNode): KiteBroker | undefined {
  const apiKey = node.credentials?.apiKey;
  return apiKey === undefined || apiKey === "" ? undefined : liveBrokers(apiKey)[0];
}

/**
 * Kite's daily login from the editor (issue 10): the dialog asks for a login URL (with a fresh
 * state value bound to the config node), the user logs in on Kite, Kite redirects the browser to
 * the callback here, which checks the state, trades the request_token for an access token with
 * the api secret (kiteconnect's generateSession), hands it to the running broker (REST and ticker
 * switch over, no redeploy) and keeps it as the node's credential. The callback cannot require the
 * editor's login (Kite's redirect carries no admin token): the one-time state is its protection.
 */
export function registerKiteLogin(RED: NodeAPI, userDirOf: (node: BrokerConfigNode) => string): void {
  const configNode = (id: string): BrokerConfigNode | undefined => {
    const node = RED.nodes.getNode(id);
    return isBrokerConfigNode(node) ? node : undefined;
  };

  const sameAccount = (node: BrokerConfigNode): BrokerConfigNode[] => {
    const apiKey = node.credentials?.apiKey;
    const found: BrokerConfigNode[] = [node];
    RED.nodes.eachNode((def) => {
      if (def.id === node.id) return;
      const other = configNode(def.id);
      if (other !== undefined && apiKey !== undefined && other.credentials?.apiKey === apiKey)
        found.push(other);
    });
    return found;
  };

  RED.httpAdmin.post(
    "/trading-broker/kite/:id/login",
    RED.auth.needsPermission("trading-broker.write"),
    (req, res) => {
      const node = configNode(String(req.params.id));
      if (node === undefined) {
        res.status(404).json({ code: "NOT_FOUND", message: RED._("trading-broker.kite-login.not-deployed") });
        return;
      }
      const broker = kiteBrokerOf(node);
      if (broker === undefined) {
        res
          .status(409)
          .json({ code: "NOT_CONNECTED", message: RED._("trading-broker.kite-login.no-broker") });
        return;
      }
      res.json({ url: broker.loginUrl(newState(node.id)), callback: KITE_CALLBACK_PATH });
    },
  );

  RED.httpAdmin.get(
    "/trading-broker/kite/:id/session",
    RED.auth.needsPermission("trading-broker.read"),
    (req, res) => {
      const node = configNode(String(req.params.id));
      const broker = node === undefined ? undefined : kiteBrokerOf(node);
      if (broker === undefined) {
        res.json({ running: false, callback: KITE_CALLBACK_PATH });
        return;
      }
      const session = broker.session;
      const since = session?.login_time === undefined ? undefined : Date.parse(session.login_time);
      res.json({
        running: true,
        state: broker.state,
        expired: broker.sessionExpired,
        login_needed: broker.loginNeeded,
        ...(session === undefined ? {} : session),
        ...(since === undefined ? {} : { age_ms: Math.max(0, Date.now() - since) }),
        callback: KITE_CALLBACK_PATH,
      });
    },
  );

  RED.httpAdmin.get(KITE_CALLBACK_PATH, (req, res) => {
    const query = req.query as Record<string, unknown>;
    const state = typeof query.state === "string" ? query.state : "";
    const requestToken = typeof query.request_token === "string" ? query.request_token : "";
    const login = takeState(state);
    const refuse = (status: number, message: string, detail = ""): void => {
      res
        .status(status)
        .type("html")
        .send(page(false, message, detail));
    };
    if (login === undefined) {
      refuse(403, RED._("trading-broker.kite-login.bad-state"));
      return;
    }
    if (query.status !== "success" || requestToken === "") {
      refuse(400, RED._("trading-broker.kite-login.not-success"));
      return;
    }
    const node = configNode(login.configId);
    const broker = node === undefined ? undefined : kiteBrokerOf(node);
    const secret = node?.credentials?.apiSecret ?? "";
    if (node === undefined || broker === undefined) {
      refuse(409, RED._("trading-broker.kite-login.no-broker"));
      return;
    }
    if (secret === "") {
      refuse(409, RED._("trading-broker.kite-login.no-secret"));
      return;
    }
    // Every config node on this api key: the login switches all their brokers (one Kite account).
    const account = sameAccount(node);
    const replaced = account.map((each) => each.credentials?.accessToken ?? "");
    broker.login(requestToken, secret).then(
      ({ session, accessToken }) => {
        // Kept as the node's credential, which Node-RED writes only at the next deploy; and in a
        // sealed file of its own, so a restart later today keeps the session without a deploy.
        account.forEach((each, i) => {
          void Promise.resolve(RED.nodes.addCredentials(each.id, { ...each.credentials, accessToken })).catch(
            (error: unknown) => each.warn(toBrokerError(error).message),
          );
          storeKiteSession(RED, each, userDirOf(each), accessToken, session, replaced[i]!);
        });
        const who =
          session.user_name === undefined ? session.user_id : `${session.user_name} (${session.user_id})`;
        node.log(RED._("trading-broker.kite-login.logged-in", { user: who }));
        res.type("html").send(page(true, RED._("trading-broker.kite-login.logged-in", { user: who }), who));
      },
      (error: unknown) => {
        const failure = toBrokerError(error);
        node.warn(RED._("trading-broker.kite-login.failed", { reason: failure.message }));
        refuse(
          failure.code === "AUTH" ? 403 : 502,
          RED._("trading-broker.kite-login.failed", { reason: failure.message }),
          failure.message,
        );
      },
    );
  });
}
