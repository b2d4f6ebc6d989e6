// The gateway's UI Message Stream read by the real `ai` package: every part is checked
// against the SDK's own `uiMessageChunkSchema`, the stream is fed to the SDK's
// `DefaultChatTransport` (the request body useChat sends, its resume GET) and folded
// into a message by `readUIMessageStream`, as useChat does.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DefaultChatTransport, readUIMessageStream } from "ai";
import { startGateway, type Gateway } from "../support/gateway";
import { freePort } from "../support/gateway";
import {
  body,
  expectValidParts,
  lastMessage,
  sseData,
  streamOf,
  submit,
  textOf,
  userMessage,
  type Part,
} from "../support/ui-stream";

describe("the UI Message Stream, as the ai package reads it", () => {
  let gateway: Gateway;
  let api: string;

  beforeAll(async () => {
    gateway = await startGateway({ GATEWAY_DEMO_TOKEN_DELAY_MS: "5" });
    api = `${gateway.url}/api/v1/ui/chat`;
  });
  afterAll(async () => {
    await gateway?.stop();
  });

  test("a text answer: documented headers, every part valid, one message", async () => {
    const prompt = "Tokens arrive one by one through the gateway";
    const response = await fetch(api, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body("text-1", prompt),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    expect(response.headers.get("x-vercel-ai-ui-message-stream")).toBe("v1");
    expect(response.headers.get("cache-control")).toBe("no-cache");
    expect(response.headers.get("x-accel-buffering")).toBe("no");
    const chunks = await expectValidParts(await sseData(response));
    const types = chunks.map((c) => c.type);
    expect(types.slice(0, 3)).toEqual(["start", "start-step", "text-start"]);
    expect(types.slice(-3)).toEqual(["text-end", "finish-step", "finish"]);
    const finish = chunks.at(-1)!;
    expect(finish.finishReason).toBe("stop");
    const message = await lastMessage(streamOf(chunks));
    expect(message.role).toBe("assistant");
    expect(message.id).toBe(chunks[0]!.messageId);
    expect(textOf(message)).toBe(prompt);
    const metadata = message.metadata as { model: string; usage: { outputTokens: number } };
    expect(metadata.model).toBe("echo");
    expect(metadata.usage.outputTokens).toBeGreaterThan(0);
  });

  test("DefaultChatTransport's own request is accepted and its stream parses", async () => {
    const transport = new DefaultChatTransport({ api, body: { model: "demo/echo" } });
    const stream = await submit(transport, "transport-1", [userMessage("sent by the SDK itself")]);
    expect(textOf(await lastMessage(stream))).toBe("sent by the SDK itself");
    // Nothing runs any more: the SDK's resume GET gets its 204 (null).
    expect(await transport.reconnectToStream({ chatId: "transport-1" })).toBeNull();
  });

  test("a bad request is an HTTP error the SDK reports with the gateway's message", async () => {
    const transport = new DefaultChatTransport({ api, body: { model: "nope/nothing" } });
    await expect(
      submit(transport, "bad-1", [userMessage("hi")]),
    ).rejects.toThrow(/nope\/nothing|model/);
  });

  test("stop: the stream ends with a valid abort part", async () => {
    const words = Array.from({ length: 400 }, (_, i) => `w${i}`).join(" ");
    const response = await fetch(api, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body("stop-1", words),
    });
    const reader = response.body!.getReader();
    // Wait for the first text, then stop.
    const decoder = new TextDecoder();
    let seen = "";
    while (!seen.includes('"text-delta"')) {
      const { value, done } = await reader.read();
      if (done) throw new Error("ended before any text");
      seen += decoder.decode(value, { stream: true });
    }
    const stop = await fetch(`${api}/stop-1/stop`, { method: "POST" });
    expect(await stop.json()).toEqual({ id: "stop-1", stopped: true });
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += decoder.decode(value, { stream: true });
    }
    const parts = await expectValidParts(
      await sseData(new Response(seen, { headers: { "content-type": "text/event-stream" } })),
    );
    expect(parts.map((p) => p.type).slice(-2)).toEqual(["text-end", "abort"]);
    const message = await lastMessage(streamOf(parts));
    expect(words.startsWith(textOf(message))).toBe(true);
    expect(textOf(message).length).toBeLessThan(words.length);
  });

  test("resume: the SDK's reconnect replays the running answer whole, same message id", async () => {
    const words = Array.from({ length: 120 }, (_, i) => `r${i}`).join(" ");
    const controller = new AbortController();
    const response = await fetch(api, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body("resume-1", words),
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    const messageId = (JSON.parse(first.split("\n\n")[0]!.slice(6)) as Part).messageId;
    controller.abort(); // a network blip: the answer goes on at the gateway
    const transport = new DefaultChatTransport({ api });
    const stream = await transport.reconnectToStream({ chatId: "resume-1" });
    expect(stream).not.toBeNull();
    const message = await lastMessage(stream!);
    expect(message.id).toBe(messageId);
    expect(textOf(message)).toBe(words);
  });
});

describe("an upstream failure", () => {
  let gateway: Gateway;

  beforeAll(async () => {
    // Nothing listens there: the provider is unreachable.
    const port = await freePort();
    gateway = await startGateway({
      GATEWAY_OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1`,
      OPENAI_API_KEY: "sk-unused",
    });
  });
  afterAll(async () => {
    await gateway?.stop();
  });

  test("ends the stream with a valid error part the SDK raises", async () => {
    const response = await fetch(`${gateway.url}/api/v1/ui/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body("err-1", "hi", { model: "openai/gpt-4o-mini" }),
    });
    const parts = await expectValidParts(await sseData(response));
    const error = parts.at(-1)!;
    expect(error.type).toBe("error");
    expect(String(error.errorText)).not.toMatch(/127\.0\.0\.1|sk-unused/);
    const errors: unknown[] = [];
    for await (const _ of readUIMessageStream({ stream: streamOf(parts), onError: (e) => errors.push(e) })) {
      /* folded */
    }
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toContain(String(error.errorText));
  });
});
