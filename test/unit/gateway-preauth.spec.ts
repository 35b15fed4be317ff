import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import net from "node:net";
import WebSocket from "ws";
import { MAX_UNAUTHENTICATED_FRAME_BYTES } from "../../lib/gateway/frame-budget";
import { SUBPROTOCOL } from "../../lib/protocol/wire";
import { useCleanup } from "../support/broker-chaos";
import type { PaperGateway } from "../support/gateway-client";
import { GatewayClient, order, startPaperGateway } from "../support/gateway-client";
import { waitFor } from "../support/wait";

/**
 * Opens a WebSocket by hand and sends one text frame's header announcing `length` bytes, then
 * only `sent` of them: a server that reads frames before refusing them waits for the rest.
 */
async function announceFrame(
  port: number,
  length: number,
  sent: number,
): Promise<{ socket: net.Socket; received: () => Buffer }> {
  const socket = net.connect(port, "127.0.0.1");
  let buffer = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => (buffer = Buffer.concat([buffer, chunk])));
  socket.on("error", () => undefined);
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  const key = randomBytes(16).toString("base64");
  socket.write(
    `GET /v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${SUBPROTOCOL}\r\n\r\n`,
  );
  await waitFor(() => buffer.includes("\r\n\r\n"), "the upgrade answer");
  const head = buffer.subarray(0, buffer.indexOf("\r\n\r\n") + 4).toString("latin1");
  assert.match(head, /^HTTP\/1\.1 101/);
  const accept = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
  assert.ok(head.includes(accept));
  buffer = buffer.subarray(head.length);
  const header = Buffer.alloc(14);
  header[0] = 0x81; // FIN, text
  header[1] = 0x80 | 127; // masked, 64-bit length
  header.writeBigUInt64BE(BigInt(length), 2);
  randomBytes(4).copy(header, 10);
  socket.write(Buffer.concat([header, Buffer.alloc(sent, 0x20)]));
  return { socket, received: () => buffer };
}

/** The close code in the first frame the server sent, if it was a close frame. */
function closeCode(frames: Buffer): number | undefined {
  if (frames.length < 4 || frames[0] !== 0x88) return undefined;
  return frames.readUInt16BE(2);
}

describe("Gateway: unauthenticated sockets cannot make the gateway read big frames", function () {
  this.timeout(30_000);
  const cleanup = useCleanup();

  async function gateway(options: Parameters<typeof startPaperGateway>[0] = {}): Promise<PaperGateway> {
    const made = await startPaperGateway({ authTimeoutMs: 20_000, ...options });
    cleanup(() => made.close());
    return made;
  }

  it("refuses a big frame from its header with 1009, before its payload arrives", async function () {
    const made = await gateway();
    const { socket, received } = await announceFrame(made.gateway.port, 64 * 1024, 100);
    cleanup(() => {
      socket.destroy();
      return Promise.resolve();
    });
    // The payload never comes: a gateway that waits for it closes only at the 20 s auth timeout.
    await waitFor(() => closeCode(received()) !== undefined, "the close frame", 5000);
    assert.equal(closeCode(received()), 1009);
    await waitFor(() => made.gateway.connections === 0, "the socket to be dropped", 5000);
  });

  it("reads an unauthenticated frame up to the limit, and answers it without running it", async function () {
    const made = await gateway();
    const client = await GatewayClient.connect(made.url, { protocols: [SUBPROTOCOL] });
    cleanup(() => client.close());
    const message = { type: "GET_ACCOUNT", id: "big", pad: "" };
    message.pad = "x".repeat(MAX_UNAUTHENTICATED_FRAME_BYTES - JSON.stringify(message).length);
    assert.equal(JSON.stringify(message).length, MAX_UNAUTHENTICATED_FRAME_BYTES);
    client.send(message);
    const reply = await client.reply("big");
    assert.equal(reply.error?.code, "UNAUTHENTICATED");

    message.pad += "x";
    const parse = JSON.parse;
    let parsedBig = 0;
    JSON.parse = ((text: string, ...rest: []) => {
      if (typeof text === "string" && text.length > MAX_UNAUTHENTICATED_FRAME_BYTES) parsedBig += 1;
      return parse(text, ...rest) as unknown;
    }) as typeof JSON.parse;
    try {
      client.send(message);
      const closed = await client.closed;
      assert.equal(closed.code, 1009);
    } finally {
      JSON.parse = parse;
    }
    assert.equal(parsedBig, 0, "the over-long frame reached a JSON parser");
  });

  it("lifts the limit at AUTH: an authenticated socket's 60 KB frame is read and answered", async function () {
    const made = await gateway();
    const client = await GatewayClient.connect(made.url, { protocols: [SUBPROTOCOL] });
    cleanup(() => client.close());
    const auth = await client.auth();
    assert.equal(auth.type, "RESULT");
    const batch = Array.from({ length: 600 }, (_, i) => ({
      type: "GET_ACCOUNT",
      id: `a${i}`,
      pad: "x".repeat(60),
    }));
    assert.ok(JSON.stringify(batch).length > 50_000 && JSON.stringify(batch).length < 64 * 1024);
    client.send(batch);
    const refused = await client.next((m) => m.type === "ERROR" && m.error?.code === "BATCH_TOO_LARGE");
    assert.equal(refused.id, null);
    assert.equal((await client.call({ type: "PING" })).seq, 0);
    assert.equal(client.ws.readyState, WebSocket.OPEN);
  });

  it("keeps serving an authenticated client while sockets flood 64 KB frames and reconnect", async function () {
    const made = await gateway({ authTimeoutMs: 5000 });
    const client = await GatewayClient.open(made.url);
    cleanup(() => client.close());
    const frame = "[" + " ".repeat(64 * 1024 - 2) + "]";
    let stopping = false;
    const closes = new Map<number, number>();
    const flooders: WebSocket[] = [];
    const flood = (): void => {
      if (stopping) return;
      const ws = new WebSocket(made.url, [SUBPROTOCOL]);
      flooders.push(ws);
      ws.on("error", () => undefined);
      ws.on("close", (code) => {
        closes.set(code, (closes.get(code) ?? 0) + 1);
        setTimeout(flood, 1);
      });
      ws.on("open", () => {
        for (let i = 0; i < 16; i++) ws.send(frame);
      });
    };
    for (let i = 0; i < 4; i++) flood();
    cleanup(() => {
      stopping = true;
      for (const ws of flooders) ws.terminate();
      return Promise.resolve();
    });
    const answered: string[] = [];
    for (let i = 0; i < 200; i++) {
      const placed = await client.call({
        type: "PLACE_ORDER",
        order: order({ side: i % 2 ? "SELL" : "BUY" }),
      });
      answered.push(placed.status);
    }
    stopping = true;
    assert.equal(answered.length, 200);
    assert.ok(answered.every((status) => status === "FILLED"));
    assert.ok((closes.get(1009) ?? 0) >= 4, JSON.stringify([...closes]));
    assert.deepEqual(
      [...closes.keys()].filter((code) => code !== 1009 && code !== 1006),
      [],
      "flooders are closed for their frame size, nothing else",
    );
    assert.equal(client.ws.readyState, WebSocket.OPEN);
  });

  it("refuses upgrades from an IP whose sockets keep ending unauthenticated, and serves its authenticated ones", async function () {
    const made = await gateway({ maxUnauthenticatedClosesPerIp: 5 });
    const client = await GatewayClient.open(made.url);
    cleanup(() => client.close());
    for (let i = 0; i < 5; i++) {
      const junk = await GatewayClient.connect(made.url, { protocols: [SUBPROTOCOL] });
      junk.send("[" + " ".repeat(MAX_UNAUTHENTICATED_FRAME_BYTES) + "]");
      assert.equal((await junk.closed).code, 1009);
    }
    await waitFor(() => made.gateway.connections === 1, "the junk sockets to be gone");
    const refused = await GatewayClient.connect(made.url, { protocols: [SUBPROTOCOL] }).then(
      () => "connected",
      (error: Error) => error.message,
    );
    assert.match(refused, /429/);
    assert.ok(made.logs.some((l) => l.message.includes("closed without authenticating")));
    assert.equal((await client.call({ type: "PING" })).seq, 0);
    // The refusal lasts for the rest of the second only.
    let reopened: GatewayClient | undefined;
    await waitFor(
      () => {
        void GatewayClient.open(made.url).then(
          (c) => (reopened === undefined ? (reopened = c) : void c.close()),
          () => undefined,
        );
        return reopened !== undefined;
      },
      "a new connection to be accepted again",
      5000,
    );
    cleanup(async () => reopened?.close());
  });
});
