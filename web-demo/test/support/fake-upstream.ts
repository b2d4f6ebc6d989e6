// A fake OpenAI upstream (tests/fakes, the same one the Python suite uses) as its own
// process: it paces a known answer and reports how each request ended, so a test can
// assert from the upstream's side that Stop really closed the provider's request.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { webDemoDir } from "./gateway";

const repoDir = resolve(webDemoDir, "..");

export interface FakeRequest {
  id: number;
  path: string;
  stream: boolean;
  outcome: "pending" | "completed" | "disconnected" | "reset" | "stalled" | "error";
  chunks_sent: number;
}

export interface FakeUpstream {
  /** The base URL the gateway's GATEWAY_OPENAI_BASE_URL points at (with /v1). */
  baseUrl: string;
  /** The streamed answer's text: `tokens` pieces " tok0", " tok1", ... */
  text: string;
  requests(): Promise<FakeRequest[]>;
  /** Settings that route `openai/*` models to this fake. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startFakeUpstream(tokens: number, delayMs: number): Promise<FakeUpstream> {
  const python = resolve(repoDir, ".venv/bin/python");
  if (!existsSync(python)) throw new Error(`${python} not found: run 'make .venv/bin/activate'`);
  const child: ChildProcess = spawn(
    python,
    ["-m", "tests.fakes", "--provider", "openai", "--port", "0", "--tokens", String(tokens), "--delay-ms", String(delayMs)],
    { cwd: repoDir, stdio: ["ignore", "pipe", "inherit"] },
  );
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const base = await new Promise<string>((resolveUrl, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error("fake upstream did not start within 30 s")), 30_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      seen += chunk.toString("utf8");
      const match = /listening on (http:\/\/\S+)/.exec(seen);
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]!);
      }
    });
    child.once("exit", () => reject(new Error(`fake upstream exited: ${seen}`)));
  });
  return {
    baseUrl: `${base}/v1`,
    text: Array.from({ length: tokens }, (_, i) => ` tok${i}`).join(""),
    env: { GATEWAY_OPENAI_BASE_URL: `${base}/v1`, OPENAI_API_KEY: "sk-fake" },
    async requests() {
      const r = await fetch(`${base}/_fake/requests`);
      return ((await r.json()) as { requests: FakeRequest[] }).requests;
    },
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}
