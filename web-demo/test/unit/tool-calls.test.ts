// Tool-call frames (response.output_item.added / response.function_call_arguments.delta|done,
// the names issue #11 gives them) through the client and into the page's message state.
// Played by a scripted server: the gateway's demo/tools model had not landed when this was written.
import { afterEach, expect, test } from "vitest";
import { WebSocketServer } from "ws";
import type { ChatClient } from "../../src/client";
import { applyEvent, type ChatMessage } from "../../src/chat/messages";
import { nodeClient, track, user } from "../support/events";

let server: WebSocketServer | null = null;
let client: ChatClient | null = null;
afterEach(async () => {
  client?.close();
  await new Promise((r) => (server ? server.close(r) : r(null)));
});

test("a streamed tool call becomes one card whose arguments grow, then complete", async () => {
  server = new WebSocketServer({ port: 0, host: "127.0.0.1", handleProtocols: () => "chat-gateway.v1" });
  await new Promise((r) => server!.once("listening", r));
  server.on("connection", (socket) => {
    const send = (f: object) => socket.send(JSON.stringify(f));
    send({ type: "session.created", session_id: "s", protocol: "chat-gateway.v1", heartbeat_interval_ms: 25_000, max_message_bytes: 262_144, resume_window_ms: 30_000, limits: {} });
    socket.on("message", (raw) => {
      const frame = JSON.parse(String(raw));
      if (frame.type !== "response.create") return;
      const r = { response_id: "resp_t" };
      send({ type: "response.created", ...r, request_id: frame.request_id, model: "tools", provider: "demo", epoch: 1, seq: 0 });
      send({ type: "response.output_item.added", ...r, seq: 1, output_index: 0, item: { type: "function_call", call_id: "call_1", name: "get_weather", arguments: "" } });
      send({ type: "response.function_call_arguments.delta", ...r, seq: 2, output_index: 0, delta: '{"city":' });
      send({ type: "response.function_call_arguments.delta", ...r, seq: 3, output_index: 0, delta: '"Oslo"}' });
      send({ type: "response.function_call_arguments.done", ...r, seq: 4, output_index: 0, call_id: "call_1", name: "get_weather", arguments: '{"city":"Oslo"}' });
      send({ type: "response.done", ...r, request_id: frame.request_id, seq: 5, status: "completed", reason: null, finish_reason: "tool_calls", usage: { input_tokens: 5, output_tokens: 7 } });
    });
  });
  const address = server.address();
  client = nodeClient(`ws://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`);
  const r = track(client, { model: "demo/tools", messages: user("weather in Oslo?") });
  let message: ChatMessage = { id: "a", role: "assistant", text: "", status: "streaming" };
  const partials: string[] = [];
  const done = await r.done;
  for (const event of r.events) {
    message = applyEvent(message, event);
    if (event.type === "tool.delta") partials.push(message.toolCalls![0]!.arguments);
  }
  expect(done).toMatchObject({ status: "completed", finishReason: "tool_calls" });
  expect(partials).toEqual(['{"city":', '{"city":"Oslo"}']);
  expect(message.toolCalls).toEqual([
    { key: "#0", callId: "call_1", name: "get_weather", arguments: '{"city":"Oslo"}', done: true },
  ]);
  expect(message.status).toBe("completed");
});
