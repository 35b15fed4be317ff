import path from "node:path";
import type { BrokerInterface } from "./interface";
import type { BrokerLogger } from "./logger";
import type * as KiteBrokerModule from "./kite-broker";
import { PaperBroker } from "./paper-broker";
import { WebSocketBroker } from "./websocket-broker";
import type { BrokerSettingsInput } from "./settings";
import { BrokerSettings } from "./settings";
import { parseOrThrow } from "../protocol";
import { BrokerError } from "../protocol/errors";

export interface BrokerDeps {
  /** Node-RED's user directory: the paper account's journal lives below it. */
  userDir: string;
  log: BrokerLogger;
  /** WebSocket: where the broker keeps its story across process restarts (websocket-story-file.ts). */
  websocketStoryFile?: string;
}

export type ResettableBroker = BrokerInterface & { resetAccount?(): Promise<void> };

/** Where a paper account is kept, so redeploys and restarts find it again. */
export function paperJournalFile(userDir: string, account: string): string {
  return path.join(userDir, "trading-broker", `paper-${account}.jsonl`);
}

/** One broker for one broker-config node; validates the settings first (errors name the field). */
export function createBroker(input: BrokerSettingsInput, deps: BrokerDeps): ResettableBroker {
  const settings = parseOrThrow(BrokerSettings, input, "broker settings");
  switch (settings.kind) {
    case "paper":
      return new PaperBroker(settings.paper, {
        journalFile: paperJournalFile(deps.userDir, settings.paper.account),
        log: deps.log,
      });
    case "websocket":
      return new WebSocketBroker(settings.websocket, {
        log: deps.log,
        ...(deps.websocketStoryFile === undefined ? {} : { storyFile: deps.websocketStoryFile }),
      });
    case "kite": {
      const { KiteBroker } = loadKiteBroker();
      return new KiteBroker(settings.kite, { log: deps.log });
    }
  }
}

/** What to install when kiteconnect is missing: the version the Kite broker is built and tested on. */
export const KITECONNECT_SPEC = "kiteconnect@5.3.0";

function isMissingModule(error: unknown, name: string): boolean {
  return (
    error instanceof Error &&
    (error as NodeJS.ErrnoException).code === "MODULE_NOT_FOUND" &&
    error.message.includes(`'${name}'`)
  );
}

/**
 * The Kite broker is required on first use, not at load: kiteconnect and its runtime tree (about
 * 130 packages) stay out of a paper or WebSocket runtime, and kiteconnect is an optional peer
 * dependency, so without it only a Kite config fails, with what to install.
 */
function loadKiteBroker(): typeof KiteBrokerModule {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- lazy on purpose, see above
    return require("./kite-broker") as typeof KiteBrokerModule;
  } catch (error) {
    if (!isMissingModule(error, "kiteconnect")) throw error;
    throw new BrokerError(
      "CONFIG",
      `the Kite broker needs the kiteconnect package, which is not installed: run \`npm install ${KITECONNECT_SPEC}\` in the Node-RED user directory (~/.node-red), then restart Node-RED`,
      { cause: error },
    );
  }
}
