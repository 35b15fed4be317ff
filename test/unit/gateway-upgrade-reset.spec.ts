import assert from "node:assert/strict";
import net from "node:net";
import { useCleanup } from "../support/broker-chaos";
import { GatewayClient, startPaperGateway } from "../support/gateway-client";

/**
 * A refused upgrade (wrong path, too many connections, closing) is answered on a socket Node's
 * HTTP server has already let go of: it no longer listens for that socket's errors. A peer that
 * resets the connection while the refusal is being written made that socket emit ECONNRESET /
 * EPIPE with no listener, an uncaught exception: the process hosting the gateway (Node-RED)
 * crashed, from one client that needs no key.
 */
describe("Gateway: a peer resetting a refused upgrade cannot crash the process", function () {
  this.timeout(60_000);
  const cleanup = useCleanup();
  const uncaught: unknown[] = [];
  const note = (error: unknown): void => {
    uncaught.push(error);
  };

  /** Sends an upgrade request for `path`, then resets the connection after `delayMs` (0: at once). */
  async function upgradeThenReset(port: number, path: string, delayMs: number): Promise<void> {
    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", () => undefined);
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n` +
        // More bytes than the server reads, so the reset is a RST even after it read the request.
        "x".repeat(64 * 1024),
    );
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    socket.resetAndDestroy();
  }

  it("300 upgrade requests to a wrong path, each reset at 0–2 ms: no uncaught error, and the gateway still serves", async function () {
    process.prependListener("uncaughtException", note);
    cleanup(() => {
      process.off("uncaughtException", note);
      return Promise.resolve();
    });
    const made = await startPaperGateway();
    cleanup(() => made.close());
    const port = Number(new URL(made.url).port);
    for (let round = 0; round < 300; round++) {
      await upgradeThenReset(port, `/nope-${round}`, round % 3);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(
      uncaught.map((error) => String(error)),
      [],
    );
    const client = await GatewayClient.connect(made.url);
    cleanup(() => client.close());
    assert.ok(client !== undefined);
  });
});
