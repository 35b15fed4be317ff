// A Node-RED process's WebSocket broker, as a child process that can die at the worst moment:
// it appends each order event it is handed to a log file (appendFileSync: the page cache keeps it
// through a SIGKILL), and SIGKILLs itself inside the listener that gets the KILL_AFTER-th one,
// before the story written after it can be. Started by ws-possible-duplicate.spec.ts.
//   env: CRASH_URL, CRASH_STORY, CRASH_LOG, CRASH_KILL_AFTER (0: never)
import fs from "node:fs";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import { fastSettings } from "./broker-chaos";

const url = process.env.CRASH_URL ?? "";
const log = process.env.CRASH_LOG ?? "";
const killAfter = Number(process.env.CRASH_KILL_AFTER ?? "0");
const broker = new WebSocketBroker(fastSettings(url), {
  storyFile: process.env.CRASH_STORY ?? "",
  log: {
    info: () => undefined,
    warn: (m) => process.stderr.write(`warn: ${m}\n`),
    error: (m) => process.stderr.write(`error: ${m}\n`),
  },
});
let seen = 0;
broker.on("order", (event) => {
  fs.appendFileSync(
    log,
    `${JSON.stringify({
      pid: process.pid,
      seq: event.seq,
      type: event.type,
      order_id: event.order.order_id,
      filled: event.order.filled_quantity,
      dup: event.possible_duplicate === true,
    })}\n`,
  );
  seen += 1;
  if (seen === killAfter) process.kill(process.pid, "SIGKILL");
});
broker.on("error", () => undefined);
process.on("SIGTERM", () => {
  void broker.close().then(() => process.exit(0));
});
broker.connect().then(
  () => process.stdout.write("connected\n"),
  (error: unknown) => {
    process.stderr.write(`connect failed: ${String(error)}\n`);
    process.exit(2);
  },
);
