import path from "node:path";
import type { BrokerInterface } from "./interface";
import type { BrokerLogger } from "./logger";
import { PaperBroker } from "./paper-broker";
import { KiteBroker } from "./kite-broker";
import { WebSocketBroker } from "./websocket-broker";
import type { BrokerSettingsInput } from "./settings";
import { BrokerSettings } from "./settings";
import { parseOrThrow } from "../protocol";

export interface BrokerDeps {
  /** Node-RED's user directory: the paper account's journal lives below it. */
  userDir: string;
  log: BrokerLogger;
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
      return new WebSocketBroker(settings.websocket, { log: deps.log });
    case "kite":
      return new KiteBroker(settings.kite, { log: deps.log });
  }
}
