import { WebSocketServer } from "ws";

/**
 * The raw baseline: a bare `ws` server on 127.0.0.1 that echoes every frame as it is. Run as a
 * child process so it sits where the gateway sits in the comparison.
 */
const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
server.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
server.on("listening", () => {
  const address = server.address();
  if (typeof address === "object" && address !== null)
    process.stdout.write(`echo listening on ${address.port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
