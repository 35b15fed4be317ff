import net from "node:net";

/**
 * Faults a process may swallow or die of without a test noticing: a rejection nobody handles, and
 * an 'error' emitted on a socket with no listener (Node throws it as an uncaught exception, which
 * in a gateway process is a crash). Installed for one test; `faults` lists what happened.
 */
export class FaultHooks {
  readonly faults: string[] = [];
  // eslint-disable-next-line @typescript-eslint/unbound-method -- put back as it was, on the prototype
  readonly #emit = net.Socket.prototype.emit;
  readonly #onRejection = (reason: unknown): void => {
    this.faults.push(
      `unhandledRejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`,
    );
  };

  install(): void {
    const faults = this.faults;
    const emit = this.#emit;
    net.Socket.prototype.emit = function (
      this: net.Socket,
      event: string | symbol,
      ...args: unknown[]
    ): boolean {
      if (event === "error" && this.listenerCount("error") === 0) {
        const error = args[0];
        faults.push(
          `socket 'error' with no listener: ${error instanceof Error ? error.message : String(error)}`,
        );
        // Swallowed here so the run goes on and reports every fault, not just the first.
        return false;
      }
      return Reflect.apply(emit, this, [event, ...args]) as boolean;
    } as typeof emit;
    process.on("unhandledRejection", this.#onRejection);
  }

  uninstall(): void {
    net.Socket.prototype.emit = this.#emit;
    process.off("unhandledRejection", this.#onRejection);
  }
}
