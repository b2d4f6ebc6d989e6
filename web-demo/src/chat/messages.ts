// The conversation as the page shows it, and how each client event changes it.
// Pure (no React), so any framework can reuse it and tests can drive it.
import type { ChatError, ResponseEvent, Usage } from "../client";

export type MessageStatus = "streaming" | "stopping" | "completed" | "stopped" | "incomplete" | "failed";

export interface ToolCall {
  key: string;
  callId: string | null;
  name: string;
  /** The JSON arguments as streamed so far (the full text once `done`). */
  arguments: string;
  done: boolean;
}

export interface ChatMessage {
  id: string;
  role: "user" | "assistant";
  text: string;
  /** Assistant only: */
  status?: MessageStatus;
  reason?: string | null;
  requestId?: string;
  model?: string | null;
  usage?: Usage | null;
  error?: ChatError | null;
  toolCalls?: ToolCall[];
  reasoning?: string;
  /** The socket dropped while this answer ran; it is being recovered. */
  recovering?: boolean;
}

export function applyEvent(message: ChatMessage, event: ResponseEvent): ChatMessage {
  switch (event.type) {
    case "created":
      return { ...message, model: `${event.provider}/${event.model}` };
    case "text":
      return { ...message, text: message.text + event.delta, recovering: false };
    case "reasoning":
      return { ...message, reasoning: (message.reasoning ?? "") + event.delta };
    case "tool.added":
      return {
        ...message,
        toolCalls: [
          ...(message.toolCalls ?? []),
          { key: event.key, callId: event.callId, name: event.name, arguments: "", done: false },
        ],
      };
    case "tool.delta":
      return updateTool(message, event.key, (t) => ({ ...t, arguments: t.arguments + event.delta }));
    case "tool.done":
      return updateTool(message, event.key, (t) => ({
        ...t,
        arguments: event.arguments,
        name: event.name ?? t.name,
        callId: event.callId ?? t.callId,
        done: true,
      }));
    case "stopping":
      return { ...message, status: "stopping" };
    case "recovering":
      return { ...message, recovering: true };
    case "resumed":
      return { ...message, recovering: false };
    case "done":
      return {
        ...message,
        status: event.status === "cancelled" ? "stopped" : event.status,
        reason: event.reason,
        usage: event.usage,
        error: event.error,
        recovering: false,
      };
  }
}

function updateTool(message: ChatMessage, key: string, change: (t: ToolCall) => ToolCall): ChatMessage {
  const calls = message.toolCalls ?? [];
  const known = calls.some((t) => t.key === key);
  // Arguments for a call whose `added` was not seen still get a card.
  const base = known ? calls : [...calls, { key, callId: null, name: "tool", arguments: "", done: false }];
  return { ...message, toolCalls: base.map((t) => (t.key === key ? change(t) : t)) };
}

export function isRunning(message: ChatMessage): boolean {
  return message.status === "streaming" || message.status === "stopping";
}

/** What goes upstream as history: what the person saw, minus answers that failed. */
export function history(messages: ChatMessage[]): { role: "user" | "assistant"; content: string }[] {
  return messages
    .filter((m) => m.role === "user" || (m.status !== "failed" && m.text.length > 0))
    .map((m) => ({ role: m.role, content: m.text }));
}
