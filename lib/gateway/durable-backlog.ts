import type { BrokerLogger } from "../brokers/logger";

/**
 * The cap on account events the gateway holds before they are durable (and so before it may push
 * them). While the journal sync is slow every event waits in memory; nothing may be dropped (a
 * client was promised each one, once and in order), so at the cap the gateway stops READING:
 * every connection's socket is paused and TCP pushes back on the clients whose requests make
 * the events. Reading resumes once the held events are down to half the cap, so a backlog near
 * the cap does not flip the sockets on every event.
 *
 * Events the market makes (quotes filling resting orders) are not stopped by this, but each
 * needs an order a request placed, and no new one is read meanwhile.
 */
export class DurableBacklog {
  #paused = false;

  constructor(
    readonly max: number,
    /** Pauses (true) or resumes (false) reading from every connection. */
    readonly setPaused: (paused: boolean) => void,
  ) {}

  /** True while reading is stopped. */
  get paused(): boolean {
    return this.#paused;
  }

  /** The number of events held now, after it grew or shrank. */
  update(held: number): void {
    if (!this.#paused) {
      if (held < this.max) return;
      this.#paused = true;
      this.setPaused(true);
    } else if (held <= this.max / 2) {
      this.#paused = false;
      this.setPaused(false);
    }
  }

  /** The gateway is closing: whatever was paused is let go. */
  reset(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.setPaused(false);
  }
}

/**
 * The switch a gateway hands DurableBacklog: every connection's socket paused or resumed. A paused
 * connection's pongs are not read either, so the heartbeat leaves it alone until it reads again
 * (Client.pauseReading): a sync held past the heartbeat's limit used to get every healthy
 * connection terminated as dead.
 */
export function pauseReading(
  clients: ReadonlySet<{ pauseReading(): void; resumeReading(): void }>,
  log: BrokerLogger,
  max: number,
): (paused: boolean) => void {
  return (paused) => {
    if (paused) {
      log.warn(
        `gateway: ${max} account events wait for the journal; not reading requests until half of them are on disk`,
      );
    } else log.info("gateway: the journal caught up; reading requests again");
    for (const client of clients) {
      if (paused) client.pauseReading();
      else client.resumeReading();
    }
  };
}
