// The same chat, through the Vercel AI SDK's own `useChat` hook, unmodified: the
// gateway speaks the SDK's UI Message Stream at /api/v1/ui/chat. What this page adds
// is what any useChat app adds: it keeps the chat (id and messages) in
// localStorage so that a reload can resume the running answer (`resume: true`), and
// its Stop button also tells the gateway to stop (`POST .../{id}/stop`), because a
// closed connection alone only detaches the answer, which stays resumable.
// With "Offer the lookup tool" on, the tool goes in the request body; a call the model
// makes shows as a card, runs here in the browser (`onToolCall` + `addToolOutput`), and
// useChat sends its output back by itself (`sendAutomaticallyWhen`), so the model's
// answer from it continues the same message.
import { useChat } from "@ai-sdk/react";
import {
  DefaultChatTransport,
  getToolName,
  isToolUIPart,
  lastAssistantMessageIsCompleteWithToolCalls,
  type UIMessage,
} from "ai";
import { useEffect, useMemo, useState } from "react";
import { LOOKUP_TOOL, runLookup } from "../chat/demoTools";

const API = "api/v1/ui/chat";
const CHAT_KEY = "ui-chat:id";
const MODEL_KEY = "ui-chat:model";
const TOOLS_KEY = "ui-chat:tools";

type Part = UIMessage["parts"][number];
type ToolPart = Extract<Part, { toolCallId: string }>;

function messagesKey(id: string): string {
  return `ui-chat:messages:${id}`;
}

function loadChatId(): string {
  const saved = localStorage.getItem(CHAT_KEY);
  if (saved) return saved;
  const id = crypto.randomUUID();
  localStorage.setItem(CHAT_KEY, id);
  return id;
}

function loadMessages(id: string): UIMessage[] {
  try {
    return JSON.parse(localStorage.getItem(messagesKey(id)) ?? "[]") as UIMessage[];
  } catch {
    return [];
  }
}

function textOf(message: UIMessage): string {
  return message.parts.map((p) => (p.type === "text" ? p.text : "")).join("");
}

/** The request body's extra fields, read at each request. */
function requestBody(): Record<string, unknown> {
  const model = localStorage.getItem(MODEL_KEY) ?? "demo/echo";
  return localStorage.getItem(TOOLS_KEY) === "on" ? { model, tools: [LOOKUP_TOOL] } : { model };
}

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? "";
}

const TOOL_STATE_TEXT: Record<ToolPart["state"], string> = {
  "input-streaming": "streaming arguments…",
  "input-available": "running…",
  "approval-requested": "waiting for approval",
  "approval-responded": "approval answered",
  "output-available": "done",
  "output-error": "failed",
  "output-denied": "denied",
};

/** A tool call of the answer: name, arguments (growing while they stream), output or error. */
function ToolCard({ part }: { part: ToolPart }) {
  const name = getToolName(part);
  return (
    <details className="tool-call ui-tool" data-tool-call-id={part.toolCallId} data-state={part.state} open>
      <summary>
        <span className="tool-name">{name}</span>
        <span className="tool-state">{TOOL_STATE_TEXT[part.state] ?? part.state}</span>
      </summary>
      <pre className="tool-args ui-tool-input" aria-label={`Arguments of ${name}`}>
        {typeof part.input === "string" ? part.input : json(part.input)}
      </pre>
      {part.state === "output-available" && (
        <pre className="tool-args ui-tool-output" aria-label={`Output of ${name}`}>
          {json(part.output)}
        </pre>
      )}
      {part.state === "output-error" && (
        <p className="ui-tool-error" role="alert">
          {part.errorText}
        </p>
      )}
    </details>
  );
}

export function UIChatPage() {
  const [chatId, setChatId] = useState(loadChatId);
  const [model, setModel] = useState(() => localStorage.getItem(MODEL_KEY) ?? "demo/echo");
  const [offerTools, setOfferTools] = useState(() => localStorage.getItem(TOOLS_KEY) === "on");
  const [input, setInput] = useState("");
  // The body is read at each request: the current model and tools, as extra fields.
  const transport = useMemo(() => new DefaultChatTransport({ api: API, body: requestBody }), []);
  const initial = useMemo(() => loadMessages(chatId), [chatId]);
  const { messages, sendMessage, stop, status, error, addToolOutput } = useChat({
    id: chatId,
    messages: initial,
    transport,
    resume: true,
    // The browser runs the tool; not awaited, as the SDK asks inside onToolCall.
    onToolCall({ toolCall }) {
      if (toolCall.dynamic || toolCall.toolName !== LOOKUP_TOOL.function.name) return;
      void addToolOutput({ tool: toolCall.toolName, toolCallId: toolCall.toolCallId, output: runLookup(toolCall.input) });
    },
    sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithToolCalls,
  });

  useEffect(() => {
    localStorage.setItem(messagesKey(chatId), JSON.stringify(messages));
  }, [chatId, messages]);
  useEffect(() => {
    localStorage.setItem(MODEL_KEY, model);
  }, [model]);
  useEffect(() => {
    localStorage.setItem(TOOLS_KEY, offerTools ? "on" : "off");
  }, [offerTools]);

  const busy = status === "submitted" || status === "streaming";

  async function onStop() {
    // Stop the answer at the gateway (and its provider), then the local stream.
    await fetch(`${API}/${encodeURIComponent(chatId)}/stop`, { method: "POST" });
    await stop();
  }

  function newChat() {
    localStorage.removeItem(messagesKey(chatId));
    const id = crypto.randomUUID();
    localStorage.setItem(CHAT_KEY, id);
    setChatId(id);
  }

  return (
    <section aria-labelledby="ui-chat-title" data-status={status} data-chat-id={chatId}>
      <h2 id="ui-chat-title">useChat (Vercel AI SDK)</h2>
      <label htmlFor="ui-model">Model</label>
      <input id="ui-model" value={model} onChange={(e) => setModel(e.target.value)} />
      <input
        id="ui-tools"
        type="checkbox"
        checked={offerTools}
        onChange={(e) => setOfferTools(e.target.checked)}
      />
      <label htmlFor="ui-tools">Offer the lookup tool</label>
      <button type="button" onClick={newChat} disabled={busy}>
        New chat
      </button>
      <ol className="ui-messages" aria-label="Messages">
        {messages.map((m) => (
          <li key={m.id} data-role={m.role} data-message-id={m.id}>
            <strong>{m.role}</strong>
            {m.parts.map((p, i) =>
              p.type === "reasoning" ? (
                <p key={i} className="ui-reasoning">
                  {p.text}
                </p>
              ) : isToolUIPart(p) ? (
                <ToolCard key={p.toolCallId} part={p as ToolPart} />
              ) : null,
            )}{" "}
            <span className="ui-text">{textOf(m)}</span>
          </li>
        ))}
      </ol>
      {error && <p role="alert">{error.message}</p>}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (!input.trim() || busy) return;
          void sendMessage({ text: input });
          setInput("");
        }}
      >
        <input
          aria-label="Message"
          value={input}
          onChange={(e) => setInput(e.target.value)}
          placeholder="Say something"
        />
        <button type="submit" disabled={busy}>
          Send
        </button>
        <button type="button" onClick={() => void onStop()} disabled={!busy}>
          Stop
        </button>
      </form>
    </section>
  );
}
