// The rig the RiskGuard specs start from: a paper broker whose prices move only when the test
// moves them, on a manual wall clock, behind the risk guard, with what the guard logged, its
// events and its unsaved signals kept for the assertions. riskRigs() closes every broker it
// opened and removes every directory it made after each test.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { RiskEvent } from "../../lib/protocol/events";
import type { Guarded } from "../../lib/risk/guard";
import { guardBroker } from "../../lib/risk/guard";
import type { RiskSettingsInput } from "../../lib/risk/settings";

/** Monday 2026-01-05 10:00 IST: inside the trading day, far from its boundaries. */
export const MONDAY_10_IST = Date.UTC(2026, 0, 5, 4, 30);

/** No drift, spread or slippage: an order fills at the price the test set. */
export const STILL_PAPER = { seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0 } as const;

export interface RiskRigOptions {
  settings?: RiskSettingsInput;
  /** The wall clock of the broker and the guard; a new ManualClock at MONDAY_10_IST if absent. */
  clock?: ManualClock;
  /** The guard's elapsed clock; performance.now if absent. */
  elapsed?: ManualClock;
  /** The guard's state file; in memory if absent. */
  stateFile?: string;
  account?: string;
  /** The paper account's journal; none if absent. */
  journalFile?: string;
  /** Subscribed, in this order, before the prices are set. */
  subscribe?: string[];
  prices?: Record<string, number>;
  /** Drop the guard's log lines instead of keeping them in `logged`. */
  quiet?: boolean;
}

export interface RiskRig {
  broker: Guarded<PaperBroker>;
  paper: PaperBroker;
  clock: ManualClock;
  /** Every RiskEvent the guard emitted. */
  events: RiskEvent[];
  /** Every "unsaved" signal: why the state could not be saved, or undefined once it was. */
  unsaved: (string | undefined)[];
  /** "info …", "warn …" and "error …" lines, in order (empty when quiet). */
  logged: string[];
}

export interface RiskRigs {
  /** A connected guarded paper broker, as `options` ask. */
  open(options?: RiskRigOptions): Promise<RiskRig>;
  /** A new directory under the system's temp dir. */
  tempDir(prefix: string): string;
  /** Closes one broker now (a process that stops) and forgets it. */
  close(paper: PaperBroker): Promise<void>;
  /** A broker opened without the rig, closed with the rigs. */
  track(paper: PaperBroker): PaperBroker;
  /** Closes every broker opened so far (a round's end); afterEach calls it too. */
  closeAll(): Promise<void>;
}

/** Call inside a describe: registers the afterEach that closes the rigs and removes their dirs. */
export function riskRigs(): RiskRigs {
  const opened: PaperBroker[] = [];
  const dirs: string[] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.all(opened.splice(0).map((paper) => paper.close()));
  };
  afterEach(async function () {
    await closeAll();
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    async open(options = {}) {
      const clock = options.clock ?? new ManualClock(MONDAY_10_IST);
      const paper = new PaperBroker(STILL_PAPER, {
        clock,
        ...(options.journalFile === undefined ? {} : { journalFile: options.journalFile }),
      });
      opened.push(paper);
      const logged: string[] = [];
      const keep = (level: string) => (message: string) => {
        if (options.quiet !== true) logged.push(`${level} ${message}`);
      };
      const broker = guardBroker(paper, {
        settings: options.settings ?? {},
        clock,
        log: { info: keep("info"), warn: keep("warn"), error: keep("error") },
        ...(options.elapsed === undefined ? {} : { elapsed: options.elapsed }),
        ...(options.stateFile === undefined ? {} : { stateFile: options.stateFile }),
        ...(options.account === undefined ? {} : { account: options.account }),
      });
      const events: RiskEvent[] = [];
      const unsaved: (string | undefined)[] = [];
      broker.risk.on("event", (event) => events.push(event));
      broker.risk.on("unsaved", (why) => unsaved.push(why));
      await broker.connect();
      if (options.subscribe !== undefined) await broker.subscribeQuotes(options.subscribe);
      for (const [symbol, price] of Object.entries(options.prices ?? {})) paper.setPrice(symbol, price);
      return { broker, paper, clock, events, unsaved, logged };
    },
    async close(paper) {
      const at = opened.indexOf(paper);
      if (at >= 0) opened.splice(at, 1);
      await paper.close();
    },
    track(paper) {
      opened.push(paper);
      return paper;
    },
    tempDir(prefix) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
      dirs.push(dir);
      return dir;
    },
    closeAll,
  };
}
