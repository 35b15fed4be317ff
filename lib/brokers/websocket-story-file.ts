import { createHash } from "node:crypto";
import { readFileSync, statSync, promises as fsp } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { messageOf } from "../common/error-message";
import { syncDirectory, writeFileDurably } from "../common/durable-file";
import { GttSnapshot, isTerminal, OrderSnapshot } from "../protocol";
import type { BrokerLogger } from "./logger";

/**
 * A WebSocket broker's story (websocket-broker.ts: last seq processed, how far in server time, the
 * last state reported of each order and GTT) kept on disk, so a Node-RED process that stops and
 * starts again resumes where the last one stopped: what the gateway did meanwhile is reported once.
 *
 * When it is written: after the events it counts have been handed to the flow, never before (see
 * StoryKeeper). Losing the last write can then only make the next process report an event again,
 * never skip one: a fill reported twice carries the same order_id, filled_quantity and seq and can
 * be recognized; a fill never reported cannot be recovered by the flow.
 */

/** Orders kept in the file: past it, the ended ones the client saw first are left out first. */
export const MAX_STORY_ORDERS = 2_000;
/** GTTs kept in the file: past it, the triggered or deleted ones first. */
export const MAX_STORY_GTTS = 1_000;
/** How long after a change the story is written: at most a few writes a second under load. */
export const STORY_SAVE_DELAY_MS = 200;
/** A file larger than this is not read: it was not written by this code. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** What the broker hands over and takes up (the shape of WebSocketBroker.story()). */
export interface StoryContents {
  readonly url: string;
  readonly api_key: string;
  readonly account: string;
  readonly last_seq: number;
  /** Server time (ms) up to which the client had the account's story. */
  readonly synced_at: number;
  /** The last state reported of each order still remembered. */
  readonly orders: readonly OrderSnapshot[];
  /** The last state reported of each GTT. */
  readonly gtts: readonly GttSnapshot[];
}

/** The file: no URL or api key in it, only digests of them to check it belongs to this broker. */
export const StoryRecord = z.strictObject({
  version: z.literal(1),
  url_digest: z.string().regex(/^[0-9a-f]{64}$/),
  api_key_digest: z.string().regex(/^[0-9a-f]{64}$/),
  account: z.string().min(1),
  last_seq: z.number().int().nonnegative(),
  synced_at: z.number().int().nonnegative(),
  orders: z.array(OrderSnapshot).max(MAX_STORY_ORDERS),
  gtts: z.array(GttSnapshot).max(MAX_STORY_GTTS),
});
export type StoryRecord = z.output<typeof StoryRecord>;

function digest(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

const urlDigest = (url: string): string => digest(`trading-broker websocket url\n${url}`);
const keyDigest = (apiKey: string): string => digest(`trading-broker websocket api key\n${apiKey}`);

/**
 * Where one broker config keeps its story: per config node id and gateway URL, under digests so
 * that no URL (it may carry user info) or node id shows in the file name.
 */
export function websocketStoryFile(userDir: string, configId: string, url: string): string {
  return path.join(
    userDir,
    "trading-broker",
    `ws-story-${digest(configId).slice(0, 12)}-${urlDigest(url).slice(0, 12)}.json`,
  );
}

export type LoadedStory =
  { kind: "missing" } | { kind: "ok"; story: StoryContents } | { kind: "ignored"; why: string };

/**
 * Reads the story file for the broker dialling `url` with `apiKey`. A file that cannot be read,
 * is not a story, or belongs to another gateway or api key is "ignored", with the reason: the
 * broker then starts from now, as it would without one. Synchronous: the broker reads it as it is
 * made, and the file is bounded.
 */
export function loadStory(file: string, url: string, apiKey: string): LoadedStory {
  let text: string;
  try {
    // Sized before it is read: a huge file put there is not loaded into memory to be refused.
    if (statSync(file).size > MAX_FILE_BYTES) {
      return { kind: "ignored", why: `${file} is not a WebSocket story (larger than one can be)` };
    }
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
    return { kind: "ignored", why: `cannot read ${file}: ${messageOf(error)}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { kind: "ignored", why: `${file} is not JSON (${messageOf(error)})` };
  }
  const parsed = StoryRecord.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue === undefined || issue.path.length === 0 ? "record" : issue.path.join(".");
    return {
      kind: "ignored",
      why: `${file} is not a WebSocket story (${field}: ${issue?.message ?? "invalid"})`,
    };
  }
  const record = parsed.data;
  if (record.url_digest !== urlDigest(url)) {
    return { kind: "ignored", why: `${file} is the story of another gateway URL` };
  }
  if (record.api_key_digest !== keyDigest(apiKey)) {
    return { kind: "ignored", why: `${file} is the story of another api key` };
  }
  return {
    kind: "ok",
    story: {
      url,
      api_key: apiKey,
      account: record.account,
      last_seq: record.last_seq,
      synced_at: record.synced_at,
      orders: record.orders,
      gtts: record.gtts,
    },
  };
}

/**
 * The newest `max` of `items`, the ones `ended` says have ended left out first (oldest first), in
 * their original order. Items come oldest first.
 */
function newest<T>(items: readonly T[], max: number, ended: (item: T) => boolean): T[] {
  if (items.length <= max) return [...items];
  const open = items.filter((item) => !ended(item));
  const keepOpen = new Set(open.slice(Math.max(0, open.length - max)));
  let room = max - keepOpen.size;
  const keep = new Set<T>(keepOpen);
  for (let i = items.length - 1; i >= 0 && room > 0; i--) {
    const item = items[i]!;
    if (ended(item) && !keep.has(item)) {
      keep.add(item);
      room -= 1;
    }
  }
  return items.filter((item) => keep.has(item));
}

/**
 * The record written for `story`, bounded. Past MAX_STORY_ORDERS the orders the client saw first
 * that have ended are left out first, then (only with more open orders than that) the oldest open
 * ones. After a restart an order left out is one the client does not know: its events after the
 * story's seq are still reported (their seq makes them news), and a reconcile reports it only if
 * it changed after the story's time; what is lost is telling a repeat of its last state apart when
 * it changed in the story's last millisecond. GTTs likewise past MAX_STORY_GTTS.
 */
export function storyRecordOf(story: StoryContents): StoryRecord {
  return {
    version: 1,
    url_digest: urlDigest(story.url),
    api_key_digest: keyDigest(story.api_key),
    account: story.account,
    last_seq: story.last_seq,
    synced_at: Math.max(0, Math.floor(story.synced_at)),
    orders: newest(story.orders, MAX_STORY_ORDERS, (order) => isTerminal(order.status)),
    gtts: newest(story.gtts, MAX_STORY_GTTS, (gtt) => gtt.status !== "active"),
  };
}

/**
 * Replaces the story file atomically: a crash leaves the old story or the new one, never half of
 * one (temporary file, fsync, rename over, fsync the directory).
 */
export async function saveStory(file: string, story: StoryContents): Promise<void> {
  const dir = path.dirname(file);
  await fsp.mkdir(dir, { recursive: true });
  const tmp = `${file}.tmp`;
  await writeFileDurably(tmp, `${JSON.stringify(storyRecordOf(story))}\n`, 0o600);
  await fsp.rename(tmp, file);
  await syncDirectory(dir);
}

/**
 * Removes the stories the same config kept for other gateway URLs (its URL was changed): nothing
 * would read them again but a change back, and they would pile up with every change.
 */
export async function removeOtherStories(file: string): Promise<void> {
  const dir = path.dirname(file);
  const name = path.basename(file);
  const config = /^(ws-story-[0-9a-f]{12}-)[0-9a-f]{12}\.json$/.exec(name)?.[1];
  if (config === undefined) return;
  for (const other of await fsp.readdir(dir)) {
    const own = other === name || other === `${name}.tmp` || other === `${name}.intent`;
    if (other.startsWith(config) && !own) {
      await fsp.rm(path.join(dir, other), { force: true });
    }
  }
}

/** The config node was removed: nothing will take its story up again. */
export async function removeStory(file: string): Promise<void> {
  await fsp.rm(file, { force: true });
  await fsp.rm(`${file}.tmp`, { force: true });
  await fsp.rm(`${file}.intent`, { force: true });
}

/**
 * Writes a broker's story some time after it changed, one write at a time, and once more when the
 * broker closes. `read` is called at write time, after every event it counts has been emitted.
 */
export class StoryKeeper {
  readonly #file: string;
  readonly #read: () => StoryContents | undefined;
  readonly #log: BrokerLogger;
  readonly #delayMs: number;
  #timer: NodeJS.Timeout | undefined;
  #saving: Promise<void> | undefined;
  #dirty = false;
  #failing = false;
  #savedOnce = false;

  constructor(
    file: string,
    read: () => StoryContents | undefined,
    log: BrokerLogger,
    delayMs = STORY_SAVE_DELAY_MS,
  ) {
    this.#file = file;
    this.#read = read;
    this.#log = log;
    this.#delayMs = delayMs;
  }

  get file(): string {
    return this.#file;
  }

  /** The story changed: it is written within the delay (after the write in flight, if any). */
  touch(): void {
    this.#dirty = true;
    if (this.#timer !== undefined || this.#saving !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#save();
    }, this.#delayMs);
    // A pending write must not keep a process alive that is otherwise done; close() writes anyway.
    this.#timer.unref();
  }

  /** Writes what changed now and waits for it: the broker is closing. */
  async flush(): Promise<void> {
    for (;;) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      if (this.#saving !== undefined) {
        await this.#saving;
        continue;
      }
      if (!this.#dirty) return;
      await this.#save();
      // Said in the log already; closing does not wait on a disk that refuses.
      if (this.#failing) return;
    }
  }

  /** flush(), waiting at most `ms`: the write goes on after that, in the background. */
  async flushWithin(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    });
    try {
      await Promise.race([this.flush(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #save(): Promise<void> {
    this.#dirty = false;
    const story = this.#read();
    if (story === undefined) return Promise.resolve();
    const saving = saveStory(this.#file, story).then(
      async () => {
        if (this.#failing) this.#log.info(`the WebSocket story is saved again at ${this.#file}`);
        this.#failing = false;
        if (this.#savedOnce) return;
        this.#savedOnce = true;
        // After this broker's first write: a broker before it (of the old URL) has closed by then.
        await removeOtherStories(this.#file).catch((error: unknown) =>
          this.#log.warn(
            `cannot remove the WebSocket stories of this config's earlier URLs: ${messageOf(error)}`,
          ),
        );
      },
      (error: unknown) => {
        // Tried again with the next change (and at close); said once, not on every retry.
        this.#dirty = true;
        if (!this.#failing) {
          this.#log.warn(
            `cannot save the WebSocket story at ${this.#file} (${messageOf(error)}): a restart of Node-RED now may report fills again or, if it stays unsaved, start from an older seq`,
          );
        }
        this.#failing = true;
      },
    );
    this.#saving = saving.finally(() => {
      this.#saving = undefined;
      if (this.#dirty && this.#timer === undefined && !this.#failing) this.touch();
    });
    return this.#saving;
  }
}
