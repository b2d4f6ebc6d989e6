// A real gateway process on a free loopback port, running the offline demo provider,
// serving this package's build (dist/) at `/`. Its JSON log lines are collected so
// tests can assert what the gateway itself observed (e.g. a cancelled upstream).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const webDemoDir = resolve(here, "../..");
const repoDir = resolve(webDemoDir, "..");

export type LogLine = Record<string, unknown> & { event?: string };

export interface Gateway {
  url: string;
  wsUrl: string;
  port: number;
  logs: LogLine[];
  /** Resolves with the first log line (already seen or still to come) that matches. */
  waitForLog(match: (line: LogLine) => boolean, what?: string): Promise<LogLine>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

function gatewayBin(): string {
  const bin = process.env.CHAT_GATEWAY_BIN ?? resolve(repoDir, ".venv/bin/chat-gateway");
  if (!existsSync(bin)) {
    throw new Error(`${bin} not found: run 'make .venv/bin/activate' in ${repoDir} first`);
  }
  return bin;
}

export async function startGateway(env: Record<string, string> = {}): Promise<Gateway> {
  const port = await freePort();
  const child: ChildProcess = spawn(gatewayBin(), ["serve", "--port", String(port)], {
    cwd: repoDir,
    env: {
      ...process.env,
      GATEWAY_LOG_FORMAT: "json",
      GATEWAY_WEB_DEMO_DIR: resolve(webDemoDir, "dist"),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: LogLine[] = [];
  const waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  let exited = false;
  const exitPromise = new Promise<void>((r) => child.once("exit", () => ((exited = true), r())));
  const onData = (buffer: { pending: string }) => (chunk: Buffer) => {
    buffer.pending += chunk.toString("utf8");
    let newline: number;
    while ((newline = buffer.pending.indexOf("\n")) >= 0) {
      const text = buffer.pending.slice(0, newline).trim();
      buffer.pending = buffer.pending.slice(newline + 1);
      if (!text) continue;
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { event: "raw", text };
      }
      logs.push(line);
      for (const w of [...waiters]) {
        if (w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  };
  child.stdout!.on("data", onData({ pending: "" }));
  child.stderr!.on("data", onData({ pending: "" }));

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  // Readiness probe: the process needs a moment to import and bind.
  for (;;) {
    if (exited) throw new Error(`gateway exited at start-up:\n${JSON.stringify(logs, null, 1)}`);
    try {
      const r = await fetch(`${url}/health/live`);
      if (r.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error("gateway did not become live within 30 s");
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    url,
    wsUrl: `ws://127.0.0.1:${port}/api/v1/ws`,
    port,
    logs,
    waitForLog(match, what = "log line") {
      const seen = logs.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolveLine, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 30_000);
        waiters.push({
          match,
          resolve: (l) => {
            clearTimeout(timer);
            resolveLine(l);
          },
        });
      });
    },
    async stop() {
      if (!exited) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exitPromise;
        clearTimeout(timer);
      }
    },
  };
}
