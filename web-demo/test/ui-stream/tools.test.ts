// Tool calls, reasoning and failures in the gateway's UI Message Stream, read by the real
// `ai` package: every part validates against its `uiMessageChunkSchema`, the stream folds
// (readUIMessageStream) into the tool and reasoning parts useChat shows, and the follow-up
// turn with the tools' outputs (what useChat sends by itself with sendAutomaticallyWhen)
// continues the same assistant message. Calls come from the demo provider's `demo/tools`
// and from fake OpenAI / Anthropic upstream processes asked for calls and thinking.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  DefaultChatTransport,
  getToolName,
  isToolUIPart,
  lastAssistantMessageIsCompleteWithToolCalls,
  readUIMessageStream,
  type UIMessage,
} from "ai";
import { startGateway, type Gateway } from "../support/gateway";
import { startFakeUpstream, type FakeUpstream } from "../support/fake-upstream";
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

const TOOLS = [
  {
    type: "function",
    function: {
      name: "lookup",
      description: "Looks a query up.",
      parameters: { type: "object", properties: { query: { type: "string" } } },
    },
  },
  {
    type: "function",
    function: { name: "fetch", parameters: { type: "object", properties: { url: { type: "string" } } } },
  },
];

type ToolPart = Extract<UIMessage["parts"][number], { toolCallId: string }>;

function toolParts(message: UIMessage): ToolPart[] {
  return message.parts.filter(isToolUIPart) as ToolPart[];
}

describe("tool calls and reasoning, as the ai package reads them", () => {
  let gateway: Gateway;
  let openai: FakeUpstream;
  let anthropic: FakeUpstream;
  let api: string;

  beforeAll(async () => {
    openai = await startFakeUpstream(4, 0, "openai");
    anthropic = await startFakeUpstream(4, 0, "anthropic");
    gateway = await startGateway({ ...openai.env, ...anthropic.env, GATEWAY_DEMO_TOKEN_DELAY_MS: "2" });
    api = `${gateway.url}/api/v1/ui/chat`;
  });
  afterAll(async () => {
    await gateway?.stop();
    await openai?.stop();
    await anthropic?.stop();
  });

  async function post(payload: string): Promise<Part[]> {
    const response = await fetch(api, { method: "POST", headers: { "content-type": "application/json" }, body: payload });
    expect(response.status).toBe(200);
    return expectValidParts(await sseData(response));
  }

  test("demo/tools through DefaultChatTransport: one call, its input parsed, finish tool-calls", async () => {
    const transport = new DefaultChatTransport({ api, body: { model: "demo/tools", tools: TOOLS } });
    const stream = await submit(transport, "tools-demo", [userMessage("weather in Paris")]);
    const message = await lastMessage(stream);
    const [call, ...others] = toolParts(message);
    expect(others).toHaveLength(0);
    expect(call!.type).toBe("tool-lookup");
    expect(getToolName(call!)).toBe("lookup");
    expect(call!.state).toBe("input-available");
    expect(call!.input).toEqual({ query: "weather in Paris" });
    expect(call!.toolCallId).toBe("call_demo_0");
    // Nothing is missing for useChat to run the tool and send its output.
    expect(lastAssistantMessageIsCompleteWithToolCalls({ messages: [message] })).toBe(false);
  });

  test("two parallel calls, then the follow-up turn continues the same message", async () => {
    await openai.queue({
      tokens: ["Let me look."],
      tool_calls: [
        { name: "lookup", arguments: ['{"query"', ': "a"}'], id: "call_a" },
        { name: "fetch", arguments: ['{"url": ', '"b"}'], id: "call_b" },
      ],
    });
    const parts = await post(body("par-1", "two at once", { model: "openai/gpt-4o-mini", tools: TOOLS }));
    expect(parts.filter((p) => p.type === "tool-input-start")).toHaveLength(2);
    expect(parts.at(-1)).toMatchObject({ type: "finish", finishReason: "tool-calls" });
    const message = await lastMessage(streamOf(parts));
    expect(textOf(message)).toBe("Let me look.");
    const calls = toolParts(message);
    expect(calls.map((c) => [c.type, c.toolCallId, c.state, c.input])).toEqual([
      ["tool-lookup", "call_a", "input-available", { query: "a" }],
      ["tool-fetch", "call_b", "input-available", { url: "b" }],
    ]);

    // The app runs both tools (addToolOutput); useChat then sends the chat by itself.
    const done: UIMessage = {
      ...message,
      parts: message.parts.map((p) =>
        isToolUIPart(p) ? ({ ...p, state: "output-available", output: `ran ${getToolName(p)}` } as typeof p) : p,
      ),
    };
    expect(lastAssistantMessageIsCompleteWithToolCalls({ messages: [done] })).toBe(true);
    await openai.queue({ tokens: ["Both", " done."] });
    const transport = new DefaultChatTransport({ api, body: { model: "openai/gpt-4o-mini", tools: TOOLS } });
    const stream = await submit(transport, "par-1", [userMessage("two at once"), done]);
    const continued = await lastMessage(stream, structuredClone(done));
    expect(continued.id).toBe(message.id);
    expect(toolParts(continued).map((c) => [c.toolCallId, c.state])).toEqual([
      ["call_a", "output-available"],
      ["call_b", "output-available"],
    ]);
    expect(textOf(continued)).toBe("Let me look.Both done.");
    expect(continued.parts.filter((p) => p.type === "step-start")).toHaveLength(2);
  });

  test("Anthropic thinking is a reasoning part before the text", async () => {
    await anthropic.queue({ tokens: ["It is", " 4."], thinking: ["hmm,", " 2+2"] });
    const parts = await post(body("think-1", "2+2?", { model: "anthropic/claude-sonnet-4-5" }));
    const types = parts.map((p) => p.type);
    expect(types.indexOf("reasoning-end")).toBeLessThan(types.indexOf("text-start"));
    const message = await lastMessage(streamOf(parts));
    const kinds = message.parts.filter((p) => p.type !== "step-start").map((p) => p.type);
    expect(kinds).toEqual(["reasoning", "text"]);
    const reasoning = message.parts.find((p) => p.type === "reasoning");
    expect(reasoning).toMatchObject({ type: "reasoning", text: "hmm, 2+2", state: "done" });
    expect(textOf(message)).toBe("It is 4.");
  });

  test("arguments that are not JSON: the call ends as output-error, the answer still finishes", async () => {
    await openai.queue({ tokens: [], tool_calls: [{ name: "lookup", arguments: ['{"query": ', '"a'], id: "call_bad" }] });
    const parts = await post(body("bad-args", "hi", { model: "openai/gpt-4o-mini", tools: TOOLS }));
    expect(parts.map((p) => p.type)).toContain("tool-input-error");
    const [call] = toolParts(await lastMessage(streamOf(parts)));
    expect(call).toMatchObject({ toolCallId: "call_bad", state: "output-error", input: '{"query": "a' });
    expect(call!.state === "output-error" && call!.errorText).toBeTruthy();
  });

  test("Stop in the middle of a call: valid parts, the call failed, upstream closed", async () => {
    const before = (await openai.requests()).length;
    const pieces = ['{"query": "', ...Array.from({ length: 300 }, (_, i) => `w${i} `), '"}'];
    await openai.queue({ tokens: [], delay_s: 0.01, tool_calls: [{ name: "lookup", arguments: pieces, id: "call_long" }] });
    const response = await fetch(api, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body("stop-call", "hi", { model: "openai/gpt-4o-mini", tools: TOOLS }),
    });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let seen = "";
    while (seen.split('"tool-input-delta"').length < 4) {
      const { value, done } = await reader.read();
      if (done) throw new Error("ended before the call's arguments");
      seen += decoder.decode(value, { stream: true });
    }
    expect(await (await fetch(`${api}/stop-call/stop`, { method: "POST" })).json()).toEqual({ id: "stop-call", stopped: true });
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += decoder.decode(value, { stream: true });
    }
    const parts = await expectValidParts(await sseData(new Response(seen)));
    expect(parts.map((p) => p.type).slice(-2)).toEqual(["tool-input-error", "abort"]);
    const [call] = toolParts(await lastMessage(streamOf(parts)));
    expect(call).toMatchObject({ toolCallId: "call_long", state: "output-error" });
    await expect.poll(async () => (await openai.requests()).length).toBe(before + 1);
    await expect.poll(async () => (await openai.requests()).at(-1)!.outcome).toBe("disconnected");
  });

  test("an upstream failure mid-answer: the open block is closed, then the error part", async () => {
    await anthropic.queue({ tokens: ["a", "b", "c"], thinking: ["hm"], error_after: 2 });
    const parts = await post(body("fail-1", "hi", { model: "anthropic/claude-sonnet-4-5" }));
    expect(parts.map((p) => p.type).slice(-2)).toEqual(["text-end", "error"]);
    const errors: unknown[] = [];
    for await (const _ of readUIMessageStream({ stream: streamOf(parts), onError: (e) => errors.push(e) })) {
      /* folded */
    }
    expect(errors).toHaveLength(1);
  });
});
