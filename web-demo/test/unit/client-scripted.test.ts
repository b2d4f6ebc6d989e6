// Behaviour the real gateway never shows on purpose: a server that repeats frames
// after a resume (at-least-once delivery), and the close codes it sends only in rare
// states (4001, 1008). A scripted `ws` server plays them.
import { afterEach, expect, test } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import type { ChatClient, ChatClientOptions } from "../../src/client";
import { nodeClient, stateReached, track, user } from "../support/events";

const SESSION = {
  type: "session.created",
  session_id: "sess_1",
  protocol: "chat-gateway.v1",
  heartbeat_interval_ms: 25_000,
  max_message_bytes: 262_144,
  resume_window_ms: 30_000,
  limits: { max_concurrent_responses: 4, messages_per_second: 20, message_burst: 40, max_message_bytes: 262_144 },
};

type Script = (socket: WebSocket, index: number, protocols: string[]) => void;
let servers: WebSocketServer[] = [];
let clients: ChatClient[] = [];
afterEach(async () => {
  for (const c of clients) c.close();
  clients = [];
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  servers = [];
});

async function scripted(script: Script): Promise<string> {
  let index = 0;
  const server = new WebSocketServer({ port: 0, host: "127.0.0.1", handleProtocols: () => "chat-gateway.v1" });
  servers.push(server);
  server.on("connection", (socket, request) => {
    const protocols = (request.headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim());
    socket.send(JSON.stringify(SESSION));
    script(socket, index++, protocols);
  });
  await new Promise((r) => server.once("listening", r));
  const address = server.address();
  return `ws://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
}

function newClient(url: string, options: Partial<ChatClientOptions> = {}): ChatClient {
  const c = nodeClient(url, { backoff: { baseMs: 20, maxMs: 50 }, ...options });
  clients.push(c);
  return c;
}

const json = (socket: WebSocket, frame: object) => socket.send(JSON.stringify(frame));
const onMessage = (socket: WebSocket, fn: (frame: Record<string, unknown>) => void) =>
  socket.on("message", (raw) => fn(JSON.parse(String(raw))));

test("frames repeated after a resume are dropped: the text arrives exactly once", async () => {
  const resumes: Record<string, unknown>[] = [];
  const url = await scripted((socket, index) => {
    onMessage(socket, (frame) => {
      const base = { response_id: "resp_1" };
      if (frame.type === "response.create" && index === 0) {
        json(socket, { type: "response.created", ...base, request_id: frame.request_id, model: "m", provider: "p", epoch: 7, seq: 0 });
        json(socket, { type: "response.output_text.delta", ...base, seq: 1, delta: "a" });
        json(socket, { type: "response.output_text.delta", ...base, seq: 2, delta: "b" });
        setImmediate(() => socket.terminate());
      }
      if (frame.type === "response.resume") {
        resumes.push(frame);
        json(socket, { type: "resume.result", response_id: "resp_1", recovered: true, from_seq: 1 });
        json(socket, { type: "response.output_text.delta", ...base, seq: 1, delta: "a" });
        json(socket, { type: "response.output_text.delta", ...base, seq: 2, delta: "b" });
        json(socket, { type: "response.output_text.delta", ...base, seq: 4, delta: "cd" }); // merged 3+4
        json(socket, { type: "response.done", ...base, request_id: "x", seq: 5, status: "completed", reason: null, finish_reason: "stop", usage: { input_tokens: 1, output_tokens: 4 } });
      }
    });
  });
  const c = newClient(url);
  const r = track(c, { messages: user("hi") });
  const done = await r.done;
  expect(done).toMatchObject({ status: "completed", usage: { inputTokens: 1, outputTokens: 4 } });
  expect(r.text()).toBe("abcd");
  expect(c.duplicatesDropped).toBe(2);
  expect(resumes).toEqual([{ type: "response.resume", event_id: `resume:${r.handle.requestId}`, response_id: "resp_1", epoch: 7, last_seq: 2 }]);
});

test("an answer another tab took over ends here with a readable error, its text kept", async () => {
  const url = await scripted((socket) => {
    onMessage(socket, (frame) => {
      if (frame.type === "response.create") {
        const base = { response_id: "resp_1" };
        json(socket, { type: "response.created", ...base, request_id: frame.request_id, model: "m", provider: "p", epoch: 7, seq: 0 });
        json(socket, { type: "response.output_text.delta", ...base, seq: 1, delta: "a" });
        json(socket, { type: "response.moved", ...base, request_id: frame.request_id });
      }
    });
  });
  const c = newClient(url);
  const r = track(c, { messages: user("hi") });
  const done = await r.done;
  expect(done.status).toBe("failed");
  expect(done.error?.code).toBe("response_moved");
  expect(done.error?.message).toContain("another tab");
  expect(r.text()).toBe("a");
});

test("a resume the server cannot honour fails the answer with a readable error", async () => {
  const url = await scripted((socket, index) => {
    onMessage(socket, (frame) => {
      if (frame.type === "response.create" && index === 0) {
        json(socket, { type: "response.created", response_id: "resp_1", request_id: frame.request_id, model: "m", provider: "p", epoch: 7, seq: 0 });
        setImmediate(() => socket.terminate());
      }
      if (frame.type === "response.resume") {
        json(socket, { type: "resume.result", response_id: "resp_1", recovered: false, from_seq: null });
        json(socket, { type: "error", error: { type: "invalid_request_error", code: "response_not_found", message: "gone", event_id: frame.event_id, retryable: false } });
      }
    });
  });
  const c = newClient(url);
  const errors: unknown[] = [];
  c.onError((e) => errors.push(e));
  const done = await track(c, { messages: user("hi") }).done;
  expect(done.status).toBe("failed");
  expect(done.error?.code).toBe("resume_failed");
  expect(done.error?.message).toMatch(/could not be recovered/);
  expect(errors).toEqual([]); // the follow-up response_not_found is not reported twice
});

test("1008 (policy): no reconnect", async () => {
  const url = await scripted((socket) => socket.close(1008, "policy violation"));
  const c = newClient(url);
  const info = await stateReached(c, (i) => i.state === "closed");
  expect(info).toMatchObject({ sockets: 1, lastClose: { code: 1008 }, error: { code: "connection_refused" } });
});

test("4001 (token expired): the token source is asked for a fresh one", async () => {
  const seen: string[][] = [];
  const url = await scripted((socket, index, protocols) => {
    seen.push(protocols);
    if (index === 0) socket.close(4001, "token expired");
  });
  const asked: boolean[] = [];
  const c = newClient(url, {
    token: (refresh) => {
      asked.push(refresh);
      return refresh ? "fresh" : "stale";
    },
  });
  await stateReached(c, (i) => i.state === "open" && i.sockets === 2, "the second socket");
  expect(asked).toEqual([false, true]);
  expect(seen).toEqual([
    ["chat-gateway.v1", "bearer.stale"],
    ["chat-gateway.v1", "bearer.fresh"],
  ]);
});

test("Stop while the socket is down: sent after the re-attach; a never-sent request ends locally", async () => {
  const got: Record<string, unknown>[] = [];
  const url = await scripted((socket, index) => {
    onMessage(socket, (frame) => {
      got.push({ socket: index, ...frame });
      if (frame.type === "response.create" && index === 0) {
        json(socket, { type: "response.created", response_id: "resp_1", request_id: frame.request_id, model: "m", provider: "p", epoch: 7, seq: 0 });
        setImmediate(() => socket.terminate());
      }
      if (frame.type === "response.resume") json(socket, { type: "resume.result", response_id: "resp_1", recovered: true, from_seq: 1 });
      if (frame.type === "response.cancel") {
        json(socket, { type: "response.done", response_id: "resp_1", request_id: frame.request_id, seq: 1, status: "cancelled", reason: "client_cancelled", finish_reason: null, usage: { input_tokens: null, output_tokens: null } });
      }
    });
  });
  const c = newClient(url);
  const r = track(c, { messages: user("hi") });
  await r.when((e) => e.type === "recovering");
  r.handle.cancel();
  expect((await r.done).status).toBe("cancelled");
  expect(got.filter((f) => f.socket === 1).map((f) => f.type)).toEqual(["response.resume", "response.cancel"]);
});
