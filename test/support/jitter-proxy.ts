import net from "node:net";
import type { AddressInfo } from "node:net";
import type { Random } from "../../lib/paper/random";

/** "up": client → server; "down": server → client. */
export type LinkDirection = "up" | "down";

interface Held {
  readonly chunk: Buffer;
  readonly due: number;
}

/** One direction of one connection: chunks wait in order, each no earlier than the one before. */
class Lane {
  readonly queue: Held[] = [];
  lastDue = 0;
  timer: NodeJS.Timeout | undefined;
  /** Set once a chunk was lost: TCP delivers nothing after a hole, so neither does the lane. */
  lost = false;

  constructor(readonly to: net.Socket) {}
}

interface Pair {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  readonly up: Lane;
  readonly down: Lane;
}

export interface JitterProxyOptions {
  /** Each chunk's added one-way delay is drawn from [minMs, maxMs]. */
  minMs: number;
  maxMs: number;
  /** Seeded, so a failing run can be repeated. */
  random: Random;
}

/**
 * A TCP relay on 127.0.0.1 that behaves like a slow, uneven link: every chunk is held for a jittered
 * delay, but never overtakes the chunk before it (TCP does not reorder), so a late chunk delays the
 * ones behind it. It can stall the whole link for a while, and it can lose a chunk the way a dead
 * path does: nothing after it arrives either, and after a while the connection is reset.
 */
export class JitterProxy {
  readonly #server: net.Server;
  readonly #pairs = new Set<Pair>();
  readonly #targetPort: number;
  readonly #options: JitterProxyOptions;
  #stalledUntil = 0;
  /** Chunks forwarded and lost, for the test's vacuity checks. */
  forwarded = 0;
  lostChunks = 0;
  connections = 0;

  private constructor(server: net.Server, targetPort: number, options: JitterProxyOptions) {
    this.#server = server;
    this.#targetPort = targetPort;
    this.#options = options;
  }

  static async start(targetPort: number, options: JitterProxyOptions): Promise<JitterProxy> {
    const server = net.createServer();
    const proxy = new JitterProxy(server, targetPort, options);
    server.on("connection", (client) => proxy.#onConnection(client));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return proxy;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.#server.address() as AddressInfo).port}/v1`;
  }

  get open(): number {
    return this.#pairs.size;
  }

  /** Holds every chunk, both ways, until `ms` from now; they then go in their order. */
  stall(ms: number): void {
    this.#stalledUntil = Math.max(this.#stalledUntil, performance.now() + ms);
  }

  /**
   * Loses the next chunk sent in `direction` on every open connection, and everything after it
   * there; `resetAfterMs` later the connection is reset (both sockets destroyed), as TCP gives up.
   */
  loseNext(direction: LinkDirection, resetAfterMs: number): void {
    for (const pair of this.#pairs) {
      const lane = direction === "up" ? pair.up : pair.down;
      if (lane.lost) continue;
      lane.lost = true;
      // Chunks already queued were sent before the loss: they still arrive. The next one does not.
      setTimeout(() => this.#destroy(pair), resetAfterMs).unref();
    }
  }

  async close(): Promise<void> {
    for (const pair of this.#pairs) this.#destroy(pair);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #onConnection(client: net.Socket): void {
    this.connections += 1;
    const upstream = net.connect(this.#targetPort, "127.0.0.1");
    const pair: Pair = { client, upstream, up: new Lane(upstream), down: new Lane(client) };
    this.#pairs.add(pair);
    client.on("data", (chunk: Buffer) => this.#hold(pair.up, chunk));
    upstream.on("data", (chunk: Buffer) => this.#hold(pair.down, chunk));
    for (const socket of [client, upstream]) {
      socket.on("error", () => this.#destroy(pair));
      // A FIN from one side goes on after the data queued before it, as it would on the wire.
      socket.on("end", () => this.#after(pair, socket === client ? pair.up : pair.down));
      socket.on("close", () => this.#after(pair, socket === client ? pair.up : pair.down));
    }
  }

  #hold(lane: Lane, chunk: Buffer): void {
    if (lane.lost) {
      this.lostChunks += 1;
      return;
    }
    const { minMs, maxMs, random } = this.#options;
    const now = performance.now();
    const due = Math.max(lane.lastDue, this.#stalledUntil, now + minMs + random() * (maxMs - minMs));
    lane.lastDue = due;
    lane.queue.push({ chunk, due });
    this.#schedule(lane);
  }

  #schedule(lane: Lane): void {
    if (lane.timer !== undefined) return;
    const head = lane.queue[0];
    if (head === undefined) return;
    const wait = Math.max(0, Math.max(head.due, this.#stalledUntil) - performance.now());
    lane.timer = setTimeout(() => {
      lane.timer = undefined;
      const now = performance.now();
      while (lane.queue.length > 0 && lane.queue[0]!.due <= now && this.#stalledUntil <= now) {
        const { chunk } = lane.queue.shift()!;
        if (lane.to.destroyed) continue;
        lane.to.write(chunk);
        this.forwarded += 1;
      }
      this.#schedule(lane);
    }, wait);
  }

  /** One side went away: once its lane has drained, the other side sees the end too. */
  #after(pair: Pair, lane: Lane): void {
    const finish = (): void => {
      if (lane.queue.length > 0) {
        setTimeout(finish, 5).unref();
        return;
      }
      this.#destroy(pair);
    };
    finish();
  }

  #destroy(pair: Pair): void {
    if (!this.#pairs.delete(pair)) return;
    for (const lane of [pair.up, pair.down]) {
      clearTimeout(lane.timer);
      lane.timer = undefined;
      lane.queue.length = 0;
    }
    pair.client.destroy();
    pair.upstream.destroy();
  }
}
