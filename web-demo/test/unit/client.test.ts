// The client against a real gateway process (demo provider) through a TCP proxy
// that can break the network. Node has no WebSocket before v22: `ws` stands in.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import type { ChatClient, ChatClientOptions } from "../../src/client";
import { nodeClient, stateReached, track, user } from "../support/events";
import { startGateway, type Gateway } from "../support/gateway";
import { startProxy, type Proxy } from "../support/proxy";

const SENTENCE = Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ");

let clients: ChatClient[] = [];
function client(url: string, options: Partial<ChatClientOptions> = {}): ChatClient {
  const c = nodeClient(url, options);
  clients.push(c);
  return c;
}
afterEach(() => {
  for (const c of clients) c.close();
  clients = [];
});

function outFrames(c: ChatClient) {
  const frames: Record<string, unknown>[] = [];
  c.onFrame((r) => {
    if (r.dir === "out") frames.push(r.frame as Record<string, unknown>);
  });
  return frames;
}

describe("against a real gateway", () => {
  let gateway: Gateway;
  let proxy: Proxy;
  const ws = () => `ws://127.0.0.1:${proxy.port}/api/v1/ws`;

  beforeAll(async () => {
    gateway = await startGateway({ GATEWAY_DEMO_TOKEN_DELAY_MS: "40" });
  });
  afterAll(async () => {
    await gateway?.stop();
  });
  // A fresh proxy per test: a cut in one test never touches another's sockets.
  afterEach(async () => {
    await proxy?.close();
  });
  const withProxy = async () => (proxy = await startProxy(gateway.port));

  test("streams an answer, with usage, under a fresh request_id each time", async () => {
    await withProxy();
    const c = client(ws());
    const a = track(c, { model: "demo/echo", messages: user("Hello there, gateway!") });
    const b = track(c, { model: "demo/echo", messages: user("second") });
    const [doneA, doneB] = await Promise.all([a.done, b.done]);
    expect(a.text()).toBe("Hello there, gateway!");
    expect(b.text()).toBe("second");
    expect(doneA).toMatchObject({ status: "completed", finishReason: "stop", usage: { outputTokens: 3 } });
    expect(doneB.status).toBe("completed");
    expect(a.handle.requestId).not.toBe(b.handle.requestId);
    expect(c.connection).toMatchObject({ state: "open", sockets: 1 });
  });

  test("cancel stops the upstream: the gateway logs the request cancelled before its end", async () => {
    await withProxy();
    const c = client(ws());
    const r = track(c, { model: "demo/lorem", messages: user("go") });
    await r.when((e) => e.type === "text", "first token");
    r.handle.cancel();
    const done = await r.done;
    expect(done).toMatchObject({ status: "cancelled", reason: "client_cancelled" });
    const summary = await gateway.waitForLog(
      (l) => l.event === "chat.request" && l.request_id === r.handle.requestId,
      "the request's summary log line",
    );
    expect(summary).toMatchObject({ status: "cancelled", reason: "client_cancelled" });
    // lorem streams 64 tokens by default; the upstream was closed well before that.
    expect(summary.last_seq as number).toBeLessThan(64);
    expect(r.text().length).toBeGreaterThan(0);
  });

  test("a cut socket: reconnect, resume with last_seq, every token exactly once", async () => {
    await withProxy();
    const c = client(ws());
    const sent = outFrames(c);
    const r = track(c, { model: "demo/echo", messages: user(SENTENCE) });
    await r.when((e) => e.type === "text" && e.seq >= 3, "a few tokens");
    proxy.cut();
    await r.when((e) => e.type === "recovering", "recovering");
    const done = await r.done;
    expect(done.status).toBe("completed");
    expect(r.text()).toBe(SENTENCE);
    expect(r.events.filter((e) => e.type === "done")).toHaveLength(1);
    expect(r.events.some((e) => e.type === "resumed")).toBe(true);
    const resume = sent.find((f) => f.type === "response.resume");
    expect(resume?.last_seq as number).toBeGreaterThanOrEqual(3);
    expect(c.connection.sockets).toBe(2);
    expect(proxy.accepted).toBe(2);
  });

  test("cut before response.created: the same request_id re-attaches, no second upstream call", async () => {
    await withProxy();
    const c = client(ws());
    await stateReached(c, (i) => i.state === "open", "open");
    const sent = outFrames(c);
    proxy.holdDownstream(); // the gateway starts the answer; the client hears none of it
    const r = track(c, { model: "demo/echo", messages: user(SENTENCE) });
    await proxy.dropped(); // the gateway answered (response.created at least): it runs
    expect(r.events).toEqual([]);
    proxy.cut();
    const done = await r.done;
    expect(done.status).toBe("completed");
    expect(r.text()).toBe(SENTENCE);
    const creates = sent.filter((f) => f.type === "response.create");
    expect(creates.map((f) => f.request_id)).toEqual([r.handle.requestId, r.handle.requestId]);
    await gateway.waitForLog((l) => l.event === "chat.request" && l.request_id === r.handle.requestId);
    const summaries = gateway.logs.filter((l) => l.event === "chat.request" && l.request_id === r.handle.requestId);
    expect(summaries).toHaveLength(1);
  });

  test("a silent socket (no pong) is given up and the answer resumes on a new one", async () => {
    await withProxy();
    const c = client(ws(), { heartbeatIntervalMs: 150, pongTimeoutMs: 300 });
    const r = track(c, { model: "demo/echo", messages: user(SENTENCE) });
    await r.when((e) => e.type === "text" && e.seq >= 2, "a few tokens");
    proxy.silence();
    const done = await r.done;
    expect(done.status).toBe("completed");
    expect(r.text()).toBe(SENTENCE);
    expect(c.connection.lastClose?.code).toBe(4000);
    expect(c.connection.sockets).toBe(2);
  });

  test("a bad model fails the request with a readable error; the socket goes on", async () => {
    await withProxy();
    const c = client(ws());
    const bad = track(c, { model: "demo/nope", messages: user("hi") });
    const done = await bad.done;
    expect(done.status).toBe("failed");
    expect(done.error).toMatchObject({ code: "model_not_found", requestId: bad.handle.requestId });
    expect(done.error?.message).toMatch(/does not exist/);
    expect(done.error?.detail).toMatch(/nope/);
    const ok = track(c, { model: "demo/echo", messages: user("still here") });
    expect((await ok.done).status).toBe("completed");
    expect(c.connection.sockets).toBe(1);
  });
});

describe("close codes from a real gateway", () => {
  let gateway: Gateway;
  beforeAll(async () => {
    gateway = await startGateway({
      GATEWAY_MAX_SOCKETS: "1",
      GATEWAY_MAX_MESSAGE_BYTES: "1024",
      GATEWAY_ADMIN_TOKEN: "admin-test-token",
      GATEWAY_DEMO_TOKEN_DELAY_MS: "40",
      GATEWAY_DRAIN_TIMEOUT_S: "20",
    });
  });
  afterAll(async () => {
    await gateway?.stop();
  });

  test("1009 (message too big): the client stops and says why, no reconnect", async () => {
    const c = client(gateway.wsUrl);
    const r = track(c, { model: "demo/echo", messages: user("x".repeat(2000)) });
    const done = await r.done;
    expect(done.error?.code).toBe("connection_refused");
    expect(c.connection).toMatchObject({ state: "closed", sockets: 1, lastClose: { code: 1009 } });
  });

  test("1013 (at capacity): a long backoff before the next attempt", async () => {
    const first = client(gateway.wsUrl);
    await stateReached(first, (i) => i.state === "open");
    const second = client(gateway.wsUrl, { backoff: { busyBaseMs: 4000, busyMaxMs: 8000 } });
    const info = await stateReached(second, (i) => i.lastClose?.code === 1013, "a 1013 close");
    expect(info.state).toBe("reconnecting");
    expect(info.retryAt! - Date.now()).toBeGreaterThan(1500);
    second.close();
    first.close();
  });

  test("1012 (drain): the running answer finishes, then an immediate jittered reconnect", async () => {
    const c = client(gateway.wsUrl);
    const r = track(c, { model: "demo/echo", messages: user(SENTENCE) });
    await r.when((e) => e.type === "text", "first token");
    const drained = await fetch(`${gateway.url}/admin/drain`, {
      method: "POST",
      headers: { authorization: "Bearer admin-test-token" },
    });
    expect(drained.status).toBe(202);
    await stateReached(c, (i) => i.draining, "server.draining");
    const done = await r.done;
    expect(done.status).toBe("completed");
    expect(r.text()).toBe(SENTENCE);
    const info = await stateReached(c, (i) => i.lastClose?.code === 1012, "a 1012 close");
    expect(info.state).toBe("reconnecting");
    expect(info.retryAt! - Date.now()).toBeLessThanOrEqual(1000);
  });
});
