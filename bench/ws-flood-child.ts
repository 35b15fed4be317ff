import WebSocket from "ws";

/**
 * The attacker, in its own process so it does not share the measuring client's CPU:
 * `node ws-flood-child.js PORT SOCKETS KIND` keeps SOCKETS connections to the gateway that never
 * authenticate and send frames as fast as the socket takes them, reconnecting whenever the
 * gateway closes one. KIND "junk" sends 9-byte invalid frames, "batch" 64 KB over-long batches.
 */
const [portText, socketsText, kind] = process.argv.slice(2);
const url = `ws://127.0.0.1:${portText}/v1`;
const junk = "not json!";
const batch = JSON.stringify(
  Array.from({ length: 2000 }, (_, i) => ({ type: "GET_ACCOUNT", id: `x${i}` })),
).slice(0, 65_000);
const frame = kind === "batch" ? `${batch.slice(0, batch.lastIndexOf("},") + 1)}]` : junk;
let stopping = false;
let sent = 0;

function flood(): void {
  if (stopping) return;
  const ws = new WebSocket(url);
  ws.on("error", () => undefined);
  ws.on("close", () => setTimeout(flood, 1));
  ws.on("open", () => {
    const pump = (): void => {
      if (ws.readyState !== WebSocket.OPEN) return;
      for (let i = 0; i < 50 && ws.bufferedAmount < 1 << 20; i++) {
        ws.send(frame);
        sent += 1;
      }
      setImmediate(pump);
    };
    pump();
  });
}

for (let i = 0; i < Number(socketsText); i++) flood();
process.on("SIGTERM", () => {
  stopping = true;
  process.stdout.write(`sent ${sent}\n`);
  process.exit(0);
});
