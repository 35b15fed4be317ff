// The gateway judged its clients by its own stalled event loop. Its heartbeat timer runs before the
// poll phase that reads sockets, so after the gateway's process was held past pingIdleMs (GC, a long
// sort, a loaded machine) it terminated a client whose PINGs, sent on time from another process,
// sat unread in the socket ("sent PINGs, then nothing for … ms; terminating it"). A stall must not
// cost a live client; a client that really goes silent is still terminated.
import assert from "node:assert/strict";
import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PaperGateway } from "../support/gateway-client";
import { startPaperGateway } from "../support/gateway-client";
import { waitFor } from "../support/wait";

/** Holds this process's event loop, as a loaded machine or a long synchronous task does. */
function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy: nothing else in this process runs
  }
}

/** A client in its own process: AUTHs, then PINGs every 100 ms (until told "quiet"); reports on stdout. */
const CHILD = `
const { GatewayClient } = require(${JSON.stringify(require.resolve("../support/gateway-client"))});
(async () => {
  const client = await GatewayClient.open(process.argv[2]);
  let n = 0;
  let quiet = false;
  process.on("message", (m) => { if (m === "quiet") quiet = true; });
  client.ws.on("message", () => process.send?.("answer"));
  client.ws.on("close", (code) => { process.send?.("closed " + code); process.exit(0); });
  setInterval(() => { if (!quiet) client.send({ type: "PING", id: "p" + n++ }); }, 100);
  process.send?.("ready");
})();
`;

describe("Gateway: a stall of its own event loop does not cost a live client", function () {
  this.timeout(20_000);
  let made: PaperGateway | undefined;
  let child: ChildProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), "gw-beat-stall-"));
  const script = join(dir, "child.js");
  writeFileSync(script, CHILD);

  after(() => rmSync(dir, { recursive: true, force: true }));

  afterEach(async () => {
    child?.kill();
    child = undefined;
    await made?.close();
    made = undefined;
  });

  function start(url: string): { answers: () => number; closed: () => string | undefined } {
    let answers = 0;
    let closed: string | undefined;
    child = fork(script, [url], { execArgv: [], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    child.on("message", (message) => {
      if (message === "answer") answers += 1;
      else if (typeof message === "string" && message.startsWith("closed")) closed = message;
    });
    return { answers: () => answers, closed: () => closed };
  }

  it("stalls of 1.2 s, 4 in a row, with pingIdleMs 600: the PINGing client in another process stays", async function () {
    const gateway = await startPaperGateway({
      heartbeat: { intervalMs: 200, maxMissedPongs: 2 },
      pingIdleMs: 600,
    });
    made = gateway;
    const peer = start(gateway.url);
    await waitFor(() => peer.answers() >= 3, "the child's first PING answers", 10_000);
    for (let round = 0; round < 4; round++) {
      const before = peer.answers();
      stall(1200);
      await waitFor(
        () => peer.answers() >= before + 5 || peer.closed() !== undefined,
        `round ${round}: answers after the stall`,
        10_000,
      );
      const warnings = gateway.logs.filter((line) => line.level !== "info").map((line) => line.message);
      assert.equal(peer.closed(), undefined, `round ${round}: ${warnings.join(" | ")}`);
      assert.equal(gateway.gateway.connections, 1);
    }
  });

  it("a client that stops PINGing (and is read) is still terminated after pingIdleMs", async function () {
    made = await startPaperGateway({ heartbeat: { intervalMs: 200, maxMissedPongs: 2 }, pingIdleMs: 600 });
    const peer = start(made.url);
    await waitFor(() => peer.answers() >= 3, "the child's first PING answers", 10_000);
    child!.send("quiet");
    const quietAt = performance.now();
    await waitFor(() => peer.closed() !== undefined, "the silent client terminated", 10_000);
    console.log(
      `      terminated ${Math.round(performance.now() - quietAt)} ms after its last PING (pingIdleMs 600)`,
    );
    assert.ok(
      made.logs.some((line) => /sent PINGs, then nothing for \d+ ms; terminating it/.test(line.message)),
    );
  });
});
