import { createHmac, timingSafeEqual } from "node:crypto";
import type { WireRequestOf } from "../protocol/wire";
import { authPayload } from "../protocol/wire";

/** What the gateway knows about one api key. */
export interface GatewayCredential {
  secret: string;
  /** Reported as AuthResult.account; the gateway's own account name when absent. */
  account?: string;
}

/**
 * Where api keys are looked up: a Map, or a synchronous function (load keys before start; an
 * AUTH is answered in the same turn so the requests batched after it see its outcome).
 */
export type CredentialSource =
  ReadonlyMap<string, GatewayCredential> | ((apiKey: string) => GatewayCredential | string | undefined);

/** The HMAC a client sends in AUTH: hex HMAC-SHA256(secret, authPayload(api_key, timestamp, nonce)). */
export function signAuth(secret: string, apiKey: string, timestamp: number, nonce: string): string {
  return createHmac("sha256", secret)
    .update(authPayload(apiKey, timestamp, nonce))
    .digest("hex");
}

export type AuthOutcome =
  { ok: true; apiKey: string; account: string } | { ok: false; message: string; retryAfterMs?: number };

/** Compared against when the key is unknown, so an unknown key costs what a wrong signature does. */
const DUMMY_SECRET = "unknown-api-key-dummy-secret";

/** Nonces remembered at most; past this a new AUTH is refused (retryable) until old ones age out. */
const MAX_NONCES = 100_000;
/** Nonces one key may hold: one key holder cannot fill the table and lock every other key out. */
export const MAX_NONCES_PER_KEY = 5_000;

/**
 * Checks AUTH requests: the timestamp within ±windowMs of the server clock, the signature with
 * timingSafeEqual, and each (api key, nonce) pair used once while its timestamp could still pass.
 */
export class AuthVerifier {
  readonly #lookup: (apiKey: string) => GatewayCredential | undefined;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #defaultAccount: string;
  /** `${api_key}\n${nonce}` → when it may be forgotten; inserted in arrival order. */
  readonly #nonces = new Map<string, number>();
  readonly #perKey = new Map<string, number>();
  /**
   * Nonces are not kept across restarts; instead no AUTH signed before this verifier existed is
   * accepted, so an AUTH frame captured before a restart cannot be replayed after it.
   */
  readonly #startedAt: number;

  constructor(options: {
    credentials: CredentialSource;
    windowMs: number;
    now: () => number;
    defaultAccount: string;
  }) {
    const source = options.credentials;
    this.#lookup =
      typeof source === "function"
        ? (apiKey) => {
            const found = source(apiKey);
            return typeof found === "string" ? { secret: found } : found;
          }
        : (apiKey) => source.get(apiKey);
    this.#windowMs = options.windowMs;
    this.#now = options.now;
    this.#defaultAccount = options.defaultAccount;
    this.#startedAt = options.now();
  }

  /** Nonces currently remembered (for tests of the bound). */
  get nonceCount(): number {
    return this.#nonces.size;
  }

  verify(request: WireRequestOf<"AUTH">): AuthOutcome {
    const now = this.#now();
    this.#evict(now);
    if (Math.abs(now - request.timestamp) > this.#windowMs) {
      return {
        ok: false,
        message: `timestamp ${request.timestamp} is outside the ±${formatSeconds(this.#windowMs)} window around server time ${now}`,
      };
    }
    const credential = this.#lookup(request.api_key);
    const expected = Buffer.from(
      signAuth(credential?.secret ?? DUMMY_SECRET, request.api_key, request.timestamp, request.nonce),
      "hex",
    );
    const given = Buffer.from(request.signature, "hex");
    const matches = given.length === expected.length && timingSafeEqual(given, expected);
    if (credential === undefined || !matches)
      return { ok: false, message: "api key or signature is invalid" };
    if (request.timestamp < this.#startedAt) {
      // Genuine clients sign when they connect; a clock a little behind the server's gets through
      // on a retry once it passes the start.
      return {
        ok: false,
        message: `timestamp ${request.timestamp} predates this server's start (${this.#startedAt}); sign a new AUTH`,
        retryAfterMs: Math.min(this.#windowMs, this.#startedAt - request.timestamp),
      };
    }
    const key = `${request.api_key}\n${request.nonce}`;
    if (this.#nonces.has(key)) return { ok: false, message: "nonce already used" };
    const forKey = this.#perKey.get(request.api_key) ?? 0;
    if (forKey >= MAX_NONCES_PER_KEY || this.#nonces.size >= MAX_NONCES) {
      return {
        ok: false,
        message: `too many authentications ${forKey >= MAX_NONCES_PER_KEY ? "for this api key " : ""}in the ±${formatSeconds(this.#windowMs)} window; retry later`,
        retryAfterMs: this.#windowMs,
      };
    }
    // Remembered until the signed timestamp can no longer pass the window check.
    this.#nonces.set(key, Math.max(now, request.timestamp) + this.#windowMs);
    this.#perKey.set(request.api_key, forKey + 1);
    return { ok: true, apiKey: request.api_key, account: credential.account ?? this.#defaultAccount };
  }

  /** Drops nonces whose timestamps can no longer pass; arrival order is close to expiry order. */
  #evict(now: number): void {
    for (const [key, expires] of this.#nonces) {
      if (expires >= now) break;
      this.#nonces.delete(key);
      const apiKey = key.slice(0, key.lastIndexOf("\n"));
      const left = (this.#perKey.get(apiKey) ?? 1) - 1;
      if (left <= 0) this.#perKey.delete(apiKey);
      else this.#perKey.set(apiKey, left);
    }
  }
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
