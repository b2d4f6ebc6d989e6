// A fake OpenAI (or Anthropic) upstream (tests/fakes, the same one the Python suite uses)
// as its own process: it paces a known answer and reports how each request ended, so a
// test can assert from the upstream's side that Stop really closed the provider's
// request; `queue` asks it for tool calls, thinking or a failure on the next requests.
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

/** A tool call the fake model makes: `arguments` are the JSON text's streamed pieces. */
export interface FakeToolCall {
  name: string;
  arguments: string[];
  id?: string;
}

/** The fields of tests/fakes/base.py's Scenario a test may set (the others keep their defaults). */
export interface Scenario {
  tokens?: string[];
  delay_s?: number;
  thinking?: string[];
  tool_calls?: FakeToolCall[];
  error_after?: number;
  reset_after?: number;
  finish_reason?: string;
}

export type FakeProvider = "openai" | "anthropic";

export interface FakeUpstream {
  /** The base URL the gateway's GATEWAY_<PROVIDER>_BASE_URL points at. */
  baseUrl: string;
  /** The streamed answer's text: `tokens` pieces " tok0", " tok1", ... */
  text: string;
  requests(): Promise<FakeRequest[]>;
  /** The next requests get these scenarios, in order; later ones the default (the tokens). */
  queue(...scenarios: Scenario[]): Promise<void>;
  /** Settings that route `<provider>/*` models to this fake. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startFakeUpstream(
  tokens: number,
  delayMs: number,
  provider: FakeProvider = "openai",
): Promise<FakeUpstream> {
  const python = resolve(repoDir, ".venv/bin/python");
  if (!existsSync(python)) throw new Error(`${python} not found: run 'make .venv/bin/activate'`);
  const child: ChildProcess = spawn(
    python,
    ["-m", "tests.fakes", "--provider", provider, "--port", "0", "--tokens", String(tokens), "--delay-ms", String(delayMs)],
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
  // The SDKs add their own paths: OpenAI's base URL ends in /v1, Anthropic's does not.
  const baseUrl = provider === "openai" ? `${base}/v1` : base;
  const env: Record<string, string> =
    provider === "openai"
      ? { GATEWAY_OPENAI_BASE_URL: baseUrl, OPENAI_API_KEY: "sk-fake" }
      : { GATEWAY_ANTHROPIC_BASE_URL: baseUrl, ANTHROPIC_API_KEY: "sk-ant-fake" };
  return {
    baseUrl,
    text: Array.from({ length: tokens }, (_, i) => ` tok${i}`).join(""),
    env,
    async requests() {
      const r = await fetch(`${base}/_fake/requests`);
      return ((await r.json()) as { requests: FakeRequest[] }).requests;
    },
    async queue(...scenarios: Scenario[]) {
      const r = await fetch(`${base}/_fake/queue`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ scenarios }),
      });
      if (!r.ok) throw new Error(`queueing scenarios failed: ${r.status} ${await r.text()}`);
    },
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}
