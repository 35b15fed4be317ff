import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import readline from "node:readline";

export interface Child {
  process: ChildProcess;
  port: number;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `node script args…` and resolves with the port from its first stdout line that names one. */
export function startChild(script: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Child> {
  const child = spawn(process.execPath, [script, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "ignore"],
  });
  return new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout });
    const onExit = (code: number | null) =>
      reject(new Error(`${script} exited with ${code} before listening`));
    child.once("exit", onExit);
    lines.on("line", (line) => {
      const match = /(?:listening on \S*?:|listening on )(\d+)/.exec(line);
      if (match === null) return;
      child.off("exit", onExit);
      resolve({
        process: child,
        port: Number(match[1]),
        stop: (signal = "SIGTERM") =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once("exit", () => done());
            child.kill(signal);
          }),
      });
    });
  });
}
