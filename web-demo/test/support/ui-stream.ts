// Reading the gateway's UI Message Stream with the `ai` package's own pieces: every part
// is checked against the SDK's `uiMessageChunkSchema` and folded by `readUIMessageStream`,
// as useChat does.
import { expect } from "vitest";
import {
  readUIMessageStream,
  uiMessageChunkSchema,
  type ChatTransport,
  type UIMessage,
  type UIMessageChunk,
} from "ai";

export type Part = Record<string, unknown> & { type: string };

const schema = uiMessageChunkSchema();

/** The SSE body's `data:` payloads, in order, `[DONE]` as the string. */
export async function sseData(response: Response): Promise<(Part | "[DONE]")[]> {
  const text = await response.text();
  const out: (Part | "[DONE]")[] = [];
  for (const event of text.split("\n\n")) {
    if (!event) continue;
    expect(event.startsWith("data: "), event).toBe(true);
    const data = event.slice("data: ".length);
    out.push(data === "[DONE]" ? "[DONE]" : (JSON.parse(data) as Part));
  }
  return out;
}

/** The parts before `[DONE]` (which must come exactly once, last), each valid by the SDK's schema. */
export async function expectValidParts(parts: (Part | "[DONE]")[]): Promise<Part[]> {
  expect(parts.at(-1)).toBe("[DONE]");
  expect(parts.filter((p) => p === "[DONE]")).toHaveLength(1);
  const chunks = parts.slice(0, -1) as Part[];
  for (const chunk of chunks) {
    const result = await schema.validate!(chunk);
    expect(result.success, JSON.stringify(chunk)).toBe(true);
  }
  return chunks;
}

export function streamOf(chunks: Part[]): ReadableStream<UIMessageChunk> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk as unknown as UIMessageChunk);
      controller.close();
    },
  });
}

/** The message the stream folds into; `message` continues an existing one (a follow-up turn). */
export async function lastMessage(
  stream: ReadableStream<UIMessageChunk>,
  message?: UIMessage,
): Promise<UIMessage> {
  let last: UIMessage | undefined;
  for await (const m of readUIMessageStream({ stream, message, terminateOnError: true })) last = m;
  if (!last) throw new Error("no message");
  return last;
}

export function textOf(message: UIMessage): string {
  return message.parts.map((p) => (p.type === "text" ? p.text : "")).join("");
}

export function userMessage(text: string): UIMessage {
  return { id: `u-${text.length}`, role: "user", parts: [{ type: "text", text }] };
}

export function body(chatId: string, text: string, extra: Record<string, unknown> = {}) {
  return JSON.stringify({ id: chatId, messages: [userMessage(text)], trigger: "submit-message", ...extra });
}

/** What useChat's sendMessage does with its transport: the chat's messages, submitted. */
export function submit(
  transport: ChatTransport<UIMessage>,
  chatId: string,
  messages: UIMessage[],
): Promise<ReadableStream<UIMessageChunk>> {
  return transport.sendMessages({
    chatId,
    messages,
    trigger: "submit-message",
    messageId: undefined,
    abortSignal: undefined,
  });
}
