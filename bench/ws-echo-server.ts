import { WebSocketServer } from "ws";

/**
 * The raw baseline: a bare `ws` server on 127.0.0.1 that echoes every frame as it is. Run as a
 * child process so it sits where the gateway sits in the comparison.
 *
 * With `--canned-answers` it is instead the floor of any gateway written in JS: it parses each
 * frame and answers every request in it with a RESULT of the size the gateway sends a v1.1 skip
 * client for a filled MARKET order (the snapshot and both answered events), an array frame for an
 * array frame. What the gateway spends per order beyond this is its own work: dispatch, the
 * idempotency index, the broker, the answer's framing.
 */
const canned = process.argv.includes("--canned-answers");
/** Everything of a real v1.1 skip answer after its id (captured from the gateway, 2026-12-05). */
const AFTER_ID =
  ',"result":{"order_id":"P000000001","client_order_id":"fx0abcdefx0","symbol":"INFY","exchange":"NSE","side":"BUY","quantity":1,"order_type":"MARKET","product":"MIS","validity":"DAY","status":"FILLED","filled_quantity":1,"average_price":100.03,"placed_at":"2026-12-05T02:13:32.219Z","timestamp":"2026-12-05T02:13:32.219Z"},"events":[{"type":"ORDER_PLACED","seq":1,"order":{"status":"OPEN","filled_quantity":0,"average_price":0},"timestamp":"2026-12-05T02:13:32.219Z"},{"type":"ORDER_FILLED","seq":2,"trades":[{"trade_id":"P000000001-1","quantity":1,"price":100.03,"timestamp":"2026-12-05T02:13:32.219Z"}],"timestamp":"2026-12-05T02:13:32.219Z"}]}';

function answer(message: unknown): string {
  const id = (message as { id?: unknown } | null)?.id;
  return `{"type":"RESULT","id":${JSON.stringify(typeof id === "string" ? id : null)}${AFTER_ID}`;
}

const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
server.on("connection", (ws) => {
  if (!canned) {
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
    return;
  }
  ws.on("message", (data) => {
    const parsed: unknown = JSON.parse((data as Buffer).toString("utf8"));
    if (!Array.isArray(parsed)) {
      ws.send(answer(parsed));
      return;
    }
    const answers = parsed.map(answer);
    answers[0] = `[${answers[0] ?? ""}`;
    answers[answers.length - 1] = `${answers[answers.length - 1] ?? ""}]`;
    ws.send(answers.join(","));
  });
});
server.on("listening", () => {
  const address = server.address();
  if (typeof address === "object" && address !== null)
    process.stdout.write(`echo listening on ${address.port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
