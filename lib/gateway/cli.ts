#!/usr/bin/env node
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import type { BrokerLogger } from "../brokers/logger";
import { PaperBroker } from "../brokers/paper-broker";
import { Gateway } from "./gateway";

const USAGE = `usage: trading-broker-gateway [--port 8787] [--host 127.0.0.1] [--journal FILE]
         [--api-key KEY --api-secret SECRET] [--tls-key FILE --tls-cert FILE]
         [--starting-cash N] [--seed N] [--rate N] [--volatility X] [--fast-acks]
         [--max-connections N]

Runs a paper broker behind a protocol v1 gateway. The api key and secret may instead come from
TRADING_GATEWAY_API_KEY and TRADING_GATEWAY_API_SECRET (preferred: arguments show up in ps).
Prints "gateway listening on ws://HOST:PORT/v1" once clients can connect; --port 0 picks a free port.
Answers to order requests wait for the journal to be written and fsync'd, so an acknowledged order
survives the gateway being killed; --fast-acks keeps the whole account (orders, client_order_ids)
in memory only and writes no journal, so answers never wait for a disk (benchmarks only).
client_order_ids are kept for their IST trading day in JOURNAL.idempotency.jsonl beside the
journal, so a retried placement never makes a second order, even after a restart.
--rate sets the per-connection request limit per second (burst twice that).
--max-connections caps the TCP sockets open on the gateway from all addresses (default 4096):
more are closed at accept, so a flood cannot use up the file descriptors the journal needs.`;

/** A bad command line: reported with the usage and exit code 2. */
class UsageError extends Error {}

export interface CliConfig {
  host: string;
  port: number;
  journal: string;
  apiKey: string;
  apiSecret: string;
  tls?: { key: Buffer; cert: Buffer };
  startingCash?: number;
  seed?: number;
  rate?: number;
  volatility?: number;
  fastAcks: boolean;
  maxConnections?: number;
}

export function parseCli(argv: string[], env: NodeJS.ProcessEnv, cwd: string): CliConfig | "help" {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      journal: { type: "string" },
      "api-key": { type: "string" },
      "api-secret": { type: "string" },
      "tls-key": { type: "string" },
      "tls-cert": { type: "string" },
      "starting-cash": { type: "string" },
      seed: { type: "string" },
      rate: { type: "string" },
      volatility: { type: "string" },
      "fast-acks": { type: "boolean" },
      "max-connections": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help === true) return "help";
  const port = integer("--port", values.port ?? "8787");
  if (port < 0 || port > 65535) throw new UsageError(`--port must be from 0 to 65535, got ${port}`);
  const apiKey = values["api-key"] ?? env.TRADING_GATEWAY_API_KEY ?? "";
  const apiSecret = values["api-secret"] ?? env.TRADING_GATEWAY_API_SECRET ?? "";
  if (apiKey === "" || apiSecret === "") {
    throw new UsageError(
      "an api key and secret are required: --api-key/--api-secret or TRADING_GATEWAY_API_KEY/TRADING_GATEWAY_API_SECRET",
    );
  }
  const config: CliConfig = {
    host: values.host ?? "127.0.0.1",
    port,
    journal: path.resolve(cwd, values.journal ?? path.join(".gateway", "paper-default.jsonl")),
    apiKey,
    apiSecret,
    fastAcks: values["fast-acks"] === true,
  };
  const tlsKey = values["tls-key"];
  const tlsCert = values["tls-cert"];
  if ((tlsKey === undefined) !== (tlsCert === undefined)) {
    throw new UsageError("--tls-key and --tls-cert go together");
  }
  if (tlsKey !== undefined && tlsCert !== undefined) {
    config.tls = { key: readFile("--tls-key", cwd, tlsKey), cert: readFile("--tls-cert", cwd, tlsCert) };
  }
  if (values["starting-cash"] !== undefined) {
    config.startingCash = Number(values["starting-cash"]);
    if (!(config.startingCash > 0)) throw new UsageError(`--starting-cash must be a positive number`);
  }
  if (values.seed !== undefined) config.seed = integer("--seed", values.seed);
  if (values.rate !== undefined) {
    config.rate = Number(values.rate);
    if (!(config.rate > 0)) throw new UsageError(`--rate must be a positive number`);
  }
  if (values.volatility !== undefined) {
    config.volatility = Number(values.volatility);
    if (!(config.volatility >= 0 && config.volatility <= 0.5))
      throw new UsageError(`--volatility must be from 0 to 0.5`);
  }
  if (values["max-connections"] !== undefined) {
    config.maxConnections = integer("--max-connections", values["max-connections"]);
    if (config.maxConnections < 1)
      throw new UsageError(`--max-connections must be an integer from 1, got ${config.maxConnections}`);
  }
  return config;
}

function integer(flag: string, text: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isInteger(value))
    throw new UsageError(`${flag} must be an integer, got ${text}`);
  return value;
}

function readFile(flag: string, cwd: string, file: string): Buffer {
  try {
    return fs.readFileSync(path.resolve(cwd, file));
  } catch (error) {
    throw new UsageError(`${flag}: cannot read ${file}: ${(error as Error).message}`);
  }
}

/** Log lines go to stderr; stdout carries only the "listening" line scripts wait for. */
const stderrLogger: BrokerLogger = {
  info: (message) => process.stderr.write(`[info] ${message}\n`),
  warn: (message) => process.stderr.write(`[warn] ${message}\n`),
  error: (message) => process.stderr.write(`[error] ${message}\n`),
};

async function main(): Promise<number> {
  let config: CliConfig | "help";
  try {
    config = parseCli(process.argv.slice(2), process.env, process.cwd());
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (config === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const settings: { seed?: number; starting_cash?: number; volatility?: number } = {};
  if (config.volatility !== undefined) settings.volatility = config.volatility;
  if (config.seed !== undefined) settings.seed = config.seed;
  if (config.startingCash !== undefined) settings.starting_cash = config.startingCash;
  // The paper broker answers only once its journal record is fsync'd: a journal would make every
  // "fast" ack wait for the disk (that was ~370 µs of a 420 µs place → ack in the benchmark).
  const broker = new PaperBroker(
    settings,
    config.fastAcks ? { log: stderrLogger } : { journalFile: config.journal, log: stderrLogger },
  );
  await broker.connect();
  let gateway: Gateway;
  try {
    gateway = await Gateway.start({
      broker,
      host: config.host,
      port: config.port,
      credentials: new Map([[config.apiKey, { secret: config.apiSecret }]]),
      ...(config.tls === undefined ? {} : { tls: config.tls }),
      ...(config.rate === undefined
        ? {}
        : { rate: { perSecond: config.rate, burst: Math.ceil(config.rate * 2) } }),
      ...(config.fastAcks ? {} : { durable: () => broker.flush() }),
      // --fast-acks answers from memory, client_order_ids included (benchmarks only).
      ...(config.fastAcks ? {} : { idempotencyFile: `${config.journal}.idempotency.jsonl` }),
      ...(config.maxConnections === undefined ? {} : { maxConnections: config.maxConnections }),
      log: stderrLogger,
    });
  } catch (error) {
    await broker.close();
    throw error;
  }
  // A last line of defence: one request's fault is logged, never the end of every client's session
  // (and, the journal replaying the same state, of the restarted gateway too).
  process.on("unhandledRejection", (reason) => {
    stderrLogger.error(
      `unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`,
    );
  });
  // The log line from start() goes to stderr; this one is the contract with scripts and tests.
  process.stdout.write(`gateway listening on ${gateway.url}\n`);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        stderrLogger.warn(`${signal} again: exiting without a clean shutdown`);
        resolve(1);
        return;
      }
      stopping = true;
      stderrLogger.info(`${signal}: closing the gateway, then the broker`);
      gateway
        .close()
        .then(() => broker.close())
        .then(
          () => resolve(0),
          (error: unknown) => {
            stderrLogger.error(`shutdown failed: ${(error as Error).message}`);
            resolve(1);
          },
        );
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`gateway failed to start: ${(error as Error).message}\n`);
      process.exit(1);
    },
  );
}
