import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import path from "node:path";
import { freePort } from "./free-port";
export { freePort };

/** The compiled CLI, found from this compiled file (dist/test/support → dist/lib/gateway). */
export const GATEWAY_CLI = path.resolve(__dirname, "../../lib/gateway/cli.js");

export interface GatewayProcessOptions {
  port: number;
  journal: string;
  apiKey: string;
  apiSecret: string;
  /** More CLI arguments, e.g. ["--volatility", "0"]. */
  args?: string[];
  /** How long to wait for the "listening" line. */
  startTimeoutMs?: number;
  /** Another script that takes the CLI's arguments and prints its "listening" line. Default the CLI. */
  script?: string;
}

/**
 * The gateway CLI as a child process: a real separate server that a test can SIGKILL mid-stream.
 * Key and secret go in through the environment, as the CLI recommends.
 */
export class GatewayProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** The tail of its stderr (its log), for failure messages. */
  readonly stderr: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(child: ChildProcess, url: string, stderr: string[], exited: GatewayProcess["exited"]) {
    this.child = child;
    this.url = url;
    this.stderr = stderr;
    this.exited = exited;
  }

  static async start(options: GatewayProcessOptions): Promise<GatewayProcess> {
    const child = spawn(
      process.execPath,
      [
        options.script ?? GATEWAY_CLI,
        "--port",
        String(options.port),
        "--journal",
        options.journal,
        ...(options.args ?? []),
      ],
      {
        env: {
          ...process.env,
          TRADING_GATEWAY_API_KEY: options.apiKey,
          TRADING_GATEWAY_API_SECRET: options.apiSecret,
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const stderr: string[] = [];
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      stderr.push(chunk);
      if (stderr.length > 200) stderr.splice(0, stderr.length - 200);
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }));
    });
    const timeoutMs = options.startTimeoutMs ?? 10_000;
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`gateway did not start within ${timeoutMs} ms: ${stderr.join("")}`));
      }, timeoutMs);
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (chunk: string) => {
        out += chunk;
        const match = /gateway listening on (\S+)/.exec(out);
        if (match !== null) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`gateway exited (${code ?? signal}) before listening: ${stderr.join("")}`));
      });
    });
    return new GatewayProcess(child, url, stderr, exited);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends the signal and waits for the process to be gone. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (!this.running) return;
    this.child.kill(signal);
    await this.exited;
  }

  /** SIGTERM (a clean shutdown), SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
