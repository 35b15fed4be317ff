import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { z } from "zod";
import { istDay } from "../market/ist";
import { KiteSession } from "./session";

/** Kite's access tokens die at about 06:00 IST: a login belongs to the trading day that hour starts. */
const TOKEN_DAY_STARTS_MS = 6 * 3_600_000;

/** The Kite trading day a token issued (or used) at `ms` belongs to, "YYYY-MM-DD". */
export function kiteTokenDay(ms: number): string {
  return istDay(ms - TOKEN_DAY_STARTS_MS);
}

const Sealed = z.strictObject({
  v: z.literal(1),
  config_id: z.string(),
  api_key: z.string(),
  day: z.string(),
  iv: z.string(),
  tag: z.string(),
  data: z.string(),
});

const Secret = z.strictObject({
  access_token: z.string().min(1),
  /** Digest of the credential's access token when this login replaced it (see load()). */
  replaced: z.string(),
  session: KiteSession.optional(),
});

export interface StoredKiteSession {
  accessToken: string;
  session: KiteSession | undefined;
  day: string;
}

/** Why a stored session was not used: for the log (never the token). */
export type DiscardReason = "other-day" | "other-api-key" | "unreadable" | "newer-credential";

function digest(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 32);
}

/**
 * The day's Kite session (the access token a login produced), kept across restarts without a
 * deploy. Node-RED keeps a credential set by a node only in memory until the next deploy
 * (RED.nodes.addCredentials marks the store dirty; only a flow deploy writes flows_cred.json), so
 * a restart the same day would lose the login. Here each config node's token is a file in `dir`,
 * sealed with AES-256-GCM under a key derived from the runtime's credential secret (or, when
 * Node-RED has none to give, a random key file of this pack, mode 0600), bound to the config node,
 * the api key and the trading day; it is used only on the day it belongs to, and deleted when it
 * cannot be used.
 */
export class KiteSessionStore {
  readonly #dir: string;
  readonly #secret: string | undefined;
  readonly #now: () => number;
  #key: Buffer | undefined;

  constructor(options: { dir: string; secret?: string | undefined; now?: () => number }) {
    this.#dir = options.dir;
    this.#secret = options.secret === "" ? undefined : options.secret;
    this.#now = options.now ?? Date.now;
  }

  fileOf(configId: string): string {
    const name =
      /^[A-Za-z0-9._-]{1,64}$/.test(configId) && !configId.startsWith(".") ? configId : digest(configId);
    return path.join(this.#dir, `kite-session-${name}.json`);
  }

  /** Keeps a new login's token for the rest of its trading day. `replacedToken`: the credential's. */
  save(
    configId: string,
    apiKey: string,
    accessToken: string,
    session: KiteSession | undefined,
    replacedToken = "",
  ): void {
    const day = kiteTokenDay(this.#now());
    const secret: z.input<typeof Secret> = {
      access_token: accessToken,
      replaced: digest(replacedToken),
      ...(session === undefined ? {} : { session }),
    };
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.#keyFor(true)!, iv);
    cipher.setAAD(this.#aad(configId, apiKey, day));
    const data = Buffer.concat([cipher.update(JSON.stringify(secret), "utf8"), cipher.final()]);
    const sealed: z.input<typeof Sealed> = {
      v: 1,
      config_id: configId,
      api_key: digest(apiKey),
      day,
      iv: iv.toString("base64"),
      tag: cipher.getAuthTag().toString("base64"),
      data: data.toString("base64"),
    };
    writePrivate(this.fileOf(configId), `${JSON.stringify(sealed)}\n`, this.#dir);
  }

  /**
   * The stored session for this config node if it may be used now: its trading day, its api key,
   * and no newer token typed into the credentials since (`credentialToken` differs from both the
   * token the login replaced and the one it got). Otherwise the file is deleted and the reason
   * returned.
   */
  load(
    configId: string,
    apiKey: string,
    credentialToken: string,
  ): StoredKiteSession | { discarded: DiscardReason } | undefined {
    const file = this.fileOf(configId);
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch {
      return undefined;
    }
    const result = this.#open(text, configId, apiKey, credentialToken);
    if ("discarded" in result) fs.rmSync(file, { force: true });
    return result;
  }

  discard(configId: string): void {
    fs.rmSync(this.fileOf(configId), { force: true });
  }

  #open(
    text: string,
    configId: string,
    apiKey: string,
    credentialToken: string,
  ): StoredKiteSession | { discarded: DiscardReason } {
    let sealed: z.output<typeof Sealed>;
    try {
      sealed = Sealed.parse(JSON.parse(text));
    } catch {
      return { discarded: "unreadable" };
    }
    if (sealed.config_id !== configId) return { discarded: "unreadable" };
    if (sealed.api_key !== digest(apiKey)) return { discarded: "other-api-key" };
    if (sealed.day !== kiteTokenDay(this.#now())) return { discarded: "other-day" };
    const key = this.#keyFor(false);
    if (key === undefined) return { discarded: "unreadable" };
    let secret: z.output<typeof Secret>;
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(sealed.iv, "base64"));
      decipher.setAAD(this.#aad(configId, apiKey, sealed.day));
      decipher.setAuthTag(Buffer.from(sealed.tag, "base64"));
      const plain = Buffer.concat([decipher.update(Buffer.from(sealed.data, "base64")), decipher.final()]);
      secret = Secret.parse(JSON.parse(plain.toString("utf8")));
    } catch {
      // A changed credential secret, a tampered file: either way it cannot be trusted.
      return { discarded: "unreadable" };
    }
    if (
      credentialToken !== "" &&
      credentialToken !== secret.access_token &&
      digest(credentialToken) !== secret.replaced
    ) {
      return { discarded: "newer-credential" };
    }
    return { accessToken: secret.access_token, session: secret.session, day: sealed.day };
  }

  #aad(configId: string, apiKey: string, day: string): Buffer {
    return Buffer.from(`kite-session v1\n${configId}\n${digest(apiKey)}\n${day}`, "utf8");
  }

  /** The sealing key: from the runtime's secret, else this pack's key file (made when `create`). */
  #keyFor(create: boolean): Buffer | undefined {
    if (this.#key !== undefined) return this.#key;
    let material = this.#secret;
    if (material === undefined) {
      const keyFile = path.join(this.#dir, "kite-session.key");
      try {
        material = fs.readFileSync(keyFile, "utf8").trim();
      } catch {
        if (!create) return undefined;
        material = randomBytes(32).toString("hex");
        writePrivate(keyFile, `${material}\n`, this.#dir, true);
        material = fs.readFileSync(keyFile, "utf8").trim();
      }
    }
    this.#key = Buffer.from(
      hkdfSync("sha256", material, "node-red-contrib-trading-broker", "kite session file v1", 32),
    );
    return this.#key;
  }
}

/** Written whole (temp file, then rename) and readable by this user only. */
function writePrivate(file: string, text: string, dir: string, exclusive = false): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (exclusive) {
    try {
      fs.writeFileSync(file, text, { mode: 0o600, flag: "wx" });
    } catch (error) {
      // Another process made it first: theirs is the key.
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    return;
  }
  const temp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  fs.writeFileSync(temp, text, { mode: 0o600 });
  fs.renameSync(temp, file);
}
