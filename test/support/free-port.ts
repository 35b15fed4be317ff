import fs from "node:fs";
import net from "node:net";

// A port taken with listen(0) and released comes from the kernel's ephemeral range, the same range
// the kernel hands to every outgoing connection and every other listen(0). While the spec that
// asked for it starts its server (a Node-RED child takes seconds), mocha beside it makes thousands
// of connections and one of them may take that port: CI saw "Unable to listen ... port in use" for
// the palette test. A port below the ephemeral range is never handed out by the kernel, so only
// another explicit pick can collide, and the random choice makes that rare.

const FLOOR = 20_000;

function ephemeralLow(): number {
  try {
    const low = Number(fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/)[0]);
    return Number.isInteger(low) && low > FLOOR + 1000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

const CEILING = ephemeralLow();
// Each port is handed out once per process, so two specs (or a restart's "same port again") never
// get one that this process has already given away.
const given = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A port on 127.0.0.1 that was free a moment ago and that the kernel will not give to anyone else. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const port = FLOOR + Math.floor(Math.random() * (CEILING - FLOOR));
    if (given.has(port)) continue;
    given.add(port);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port found between ${FLOOR} and ${CEILING} in 200 tries`);
}
