import http from "node:http";
import https from "node:https";
import net from "node:net";
import type { AddressInfo } from "node:net";
import tls from "node:tls";
import { KiteConnect } from "kiteconnect";
import { FakeKite } from "../test/fakes/fake-kite";
import { SERVER_CERT_PEM, SERVER_KEY_PEM, TEST_CA_PEM } from "../test/support/tls-fixture";
import { fmt, row, summarize } from "./stats";

interface Placer {
  placeOrder(variety: string, params: object): Promise<unknown>;
  requestInstance: { defaults: { httpAgent?: unknown; httpsAgent?: unknown } };
}

/** A TLS front for the fake Kite (which speaks plain HTTP): each TLS connection is piped to it. */
async function tlsFront(target: number): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ cert: SERVER_CERT_PEM, key: SERVER_KEY_PEM }, (clear) => {
    const upstream = net.connect(target, "127.0.0.1");
    sockets.add(clear).add(upstream);
    clear.pipe(upstream).pipe(clear);
    const end = (): void => {
      clear.destroy();
      upstream.destroy();
    };
    clear.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function placer(fake: FakeKite, root: string, agent: http.Agent): Placer {
  const kite = new KiteConnect({
    api_key: fake.apiKey,
    access_token: fake.accessToken,
    root,
    timeout: 10_000,
  }) as unknown as Placer;
  kite.requestInstance.defaults.httpAgent = agent;
  kite.requestInstance.defaults.httpsAgent = agent;
  return kite;
}

const ORDER = {
  exchange: "NSE",
  tradingsymbol: "INFY",
  transaction_type: "BUY",
  quantity: 1,
  order_type: "LIMIT",
  price: 1400,
  product: "CNC",
  validity: "DAY",
};

/**
 * One placement per connection (what KiteRestClient does for orders since kite10: a reset on a
 * kept-alive socket the server had just closed cannot be told from a lost answer) against one
 * kept-alive connection, through kiteconnect to the fake Kite on loopback, over HTTP and over TLS
 * (a TLS front with the test CA). The two are measured in alternating batches in one run, so
 * load on the machine falls on both alike; the ratio is the figure, not the milliseconds.
 */
export async function runKiteConnectionBench(options: { quick: boolean }): Promise<string[]> {
  const rounds = options.quick ? 4 : 20;
  const batch = 25;
  const fake = await FakeKite.start({ heartbeatMs: 1000 });
  fake.setPrice("INFY", 1500);
  const front = await tlsFront(Number(new URL(fake.restUrl).port));
  const lines = [
    `Kite placement latency, one connection per placement vs kept-alive (kiteconnect → fake Kite on 127.0.0.1, ${rounds} alternating batches of ${batch} per cell)`,
    "",
    row(["transport", "connection", "p50 ms", "p99 ms", "p50 ratio fresh/kept"]),
    row(["---", "---", "---", "---", "---"]),
  ];
  try {
    for (const transport of ["http", "https"] as const) {
      const root = transport === "http" ? fake.restUrl : `https://127.0.0.1:${front.port}`;
      const make = (keepAlive: boolean): http.Agent =>
        transport === "http"
          ? new http.Agent({ keepAlive })
          : new https.Agent({ keepAlive, ca: TEST_CA_PEM });
      const keptAgent = make(true);
      const freshAgent = make(false);
      const kept = placer(fake, root, keptAgent);
      const fresh = placer(fake, root, freshAgent);
      const samples = { kept: [] as number[], fresh: [] as number[] };
      // Warm-up: JIT, the fake's paths, the kept connection opened.
      for (let i = 0; i < 20; i++) {
        await kept.placeOrder("regular", { ...ORDER });
        await fresh.placeOrder("regular", { ...ORDER });
      }
      for (let round = 0; round < rounds; round++) {
        const order: ("kept" | "fresh")[] = round % 2 === 0 ? ["kept", "fresh"] : ["fresh", "kept"];
        for (const which of order) {
          const kite = which === "kept" ? kept : fresh;
          for (let i = 0; i < batch; i++) {
            const start = performance.now();
            await kite.placeOrder("regular", { ...ORDER });
            samples[which].push(performance.now() - start);
          }
        }
      }
      keptAgent.destroy();
      freshAgent.destroy();
      const k = summarize(samples.kept);
      const f = summarize(samples.fresh);
      lines.push(row([transport, "kept-alive", fmt(k.p50), fmt(k.p99), ""]));
      lines.push(row([transport, "fresh per placement", fmt(f.p50), fmt(f.p99), fmt(f.p50 / k.p50)]));
    }
  } finally {
    await front.close();
    await fake.close();
  }
  return lines;
}
