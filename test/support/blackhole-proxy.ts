import net from "node:net";
import type { AddressInfo } from "node:net";

interface Pair {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
}

/**
 * A TCP proxy on 127.0.0.1 that can swallow traffic without closing anything: the link a NAT
 * timeout or a pulled cable leaves behind, where no FIN or RST ever arrives and only a heartbeat
 * can tell the connection is dead.
 */
export class BlackholeProxy {
  readonly #server: net.Server;
  readonly #pairs = new Set<Pair>();
  readonly #targetPort: number;
  #holed = false;

  private constructor(server: net.Server, targetPort: number) {
    this.#server = server;
    this.#targetPort = targetPort;
  }

  static async start(targetPort: number): Promise<BlackholeProxy> {
    const server = net.createServer();
    const proxy = new BlackholeProxy(server, targetPort);
    server.on("connection", (client) => proxy.#onConnection(client));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get holed(): boolean {
    return this.#holed;
  }

  /** Connections currently held open (both sides alive or not yet torn down). */
  get open(): number {
    return this.#pairs.size;
  }

  /** From now on nothing is forwarded either way, and no close is passed on; sockets stay open. */
  blackhole(): void {
    this.#holed = true;
  }

  /** Forwards again. Pairs that lost a side while holed are torn down now, as a healed link would show. */
  restore(): void {
    this.#holed = false;
    for (const pair of this.#pairs) {
      if (pair.client.destroyed || pair.upstream.destroyed) this.#destroy(pair);
    }
  }

  async close(): Promise<void> {
    for (const pair of this.#pairs) this.#destroy(pair);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #onConnection(client: net.Socket): void {
    const upstream = net.connect(this.#targetPort, "127.0.0.1");
    const pair: Pair = { client, upstream };
    this.#pairs.add(pair);
    client.on("data", (chunk: Buffer) => this.#forward(upstream, chunk));
    upstream.on("data", (chunk: Buffer) => this.#forward(client, chunk));
    for (const socket of [client, upstream]) {
      // A reset on one side is what the other side should see, unless the hole swallows it.
      socket.on("error", () => this.#onSideGone(pair));
      socket.on("close", () => this.#onSideGone(pair));
    }
  }

  #forward(to: net.Socket, chunk: Buffer): void {
    if (!this.#holed && !to.destroyed) to.write(chunk);
  }

  #onSideGone(pair: Pair): void {
    if (!this.#holed) this.#destroy(pair);
  }

  #destroy(pair: Pair): void {
    this.#pairs.delete(pair);
    pair.client.destroy();
    pair.upstream.destroy();
  }
}
