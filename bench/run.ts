import { runFlowBench } from "./flow-roundtrip";
import { runGuardBench } from "./guard-cost";
import { runKiteConnectionBench } from "./kite-connections";
import { runMemoryBench } from "./paper-memory";
import { runPaperBench } from "./paper-matching";
import { runDurableBench, runWsBench } from "./ws-bench";
import { runFloodBench } from "./ws-flood";
import { runIntentBench } from "./ws-intent-cost";

/**
 * `npm run bench`: prints markdown tables for docs/PERFORMANCE.md. Every figure with a baseline
 * measures that baseline in the same run, on the same machine, so the ratio survives noise.
 * `--quick` runs smaller counts (a smoke test of the scripts, not figures to quote).
 */
async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const only = process.argv.find((a) => a.startsWith("--only="))?.slice(7);
  console.log(`# bench: node ${process.version}, ${new Date().toISOString()}${quick ? " (quick)" : ""}\n`);
  const sections: [string, () => Promise<string[]>][] = [
    ["paper", () => runPaperBench({ quick })],
    ["guard", () => runGuardBench({ quick })],
    ["flow", () => runFlowBench({ quick })],
    ["ws", () => runWsBench({ quick })],
    // Only on request: "ws" has these rows too; on its own for issue 11's durable target (`--only=durable`).
    ["durable", () => runDurableBench({ quick })],
    ["flood", () => runFloodBench({ quick })],
    // Only on request: the WebSocket intent mark's cost (`--only=intent`, issue wsdedupe11b).
    ["intent", () => runIntentBench({ quick })],
    // Only on request: the Kite placement connection cost (`--only=kite`, issue kite11 item 5).
    ["kite", () => runKiteConnectionBench({ quick })],
    // Only on request: it wants a fresh process (`npm run bench -- --only=memory`).
    ["memory", () => runMemoryBench({ quick })],
  ];
  for (const [name, run] of sections) {
    if (
      only !== undefined
        ? only !== name
        : name === "memory" || name === "durable" || name === "kite" || name === "intent"
    )
      continue;
    console.log((await run()).join("\n") + "\n");
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
