import type { BrokerInterface } from "../../lib/brokers/interface";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import type { GatewayOptions } from "../../lib/gateway/gateway";
import { Gateway } from "../../lib/gateway/gateway";
import { TEST_KEY, TEST_SECRET } from "./gateway-client";

/**
 * One deterministic paper account (no drift, spread or slippage; INFY at 100) served by a gateway
 * that can be stopped and started again on the same port over the same account — a gateway
 * restart whose replay buffer starts empty while the account and its seq go on.
 */
export class PaperHost {
  readonly paper: PaperBroker;
  /** What the gateway serves: the paper broker, or a wrapper around it. */
  readonly served: BrokerInterface;
  gateway: Gateway | undefined;
  #port = 0;
  readonly #options: Partial<GatewayOptions>;

  private constructor(paper: PaperBroker, served: BrokerInterface, options: Partial<GatewayOptions>) {
    this.paper = paper;
    this.served = served;
    this.#options = options;
  }

  static async start(
    options: Partial<GatewayOptions> = {},
    wrap: (paper: PaperBroker) => BrokerInterface = (paper) => paper,
  ): Promise<PaperHost> {
    const paper = new PaperBroker({
      seed: 1,
      volatility: 0,
      spread_bps: 0,
      slippage_bps: 0,
      interval_ms: 60_000,
    });
    await paper.connect();
    paper.setPrice("INFY", 100);
    const host = new PaperHost(paper, wrap(paper), options);
    await host.startGateway();
    return host;
  }

  get port(): number {
    return this.#port;
  }

  /** ws://127.0.0.1:PORT/v1, stable across restarts. */
  get url(): string {
    return `ws://127.0.0.1:${this.#port}/v1`;
  }

  async startGateway(): Promise<Gateway> {
    if (this.gateway !== undefined) return this.gateway;
    this.gateway = await Gateway.start({
      credentials: new Map([[TEST_KEY, { secret: TEST_SECRET }]]),
      ...this.#options,
      broker: this.served,
      port: this.#port,
    });
    this.#port = this.gateway.port;
    return this.gateway;
  }

  async stopGateway(): Promise<void> {
    const gateway = this.gateway;
    this.gateway = undefined;
    await gateway?.close();
  }

  async close(): Promise<void> {
    await this.stopGateway();
    await this.paper.close();
  }
}
