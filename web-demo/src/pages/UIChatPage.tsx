// The same chat, through the Vercel AI SDK's own `useChat` hook, unmodified: the
// gateway speaks the SDK's UI Message Stream at /api/v1/ui/chat. What this page adds
// is what any useChat app adds: it keeps the chat (id and messages) in
// localStorage so that a reload can resume the running answer (`resume: true`), and
// its Stop button also tells the gateway to stop (`POST .../{id}/stop`), because a
// closed connection alone only detaches the answer, which stays resumable.
import { useChat } from "@ai-sdk/react";
import { DefaultChatTransport, type UIMessage } from "ai";
import { useEffect, useMemo, useState } from "react";

const API = "api/v1/ui/chat";
const CHAT_KEY = "ui-chat:id";
const MODEL_KEY = "ui-chat:model";

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

export function UIChatPage() {
  const [chatId, setChatId] = useState(loadChatId);
  const [model, setModel] = useState(() => localStorage.getItem(MODEL_KEY) ?? "demo/echo");
  const [input, setInput] = useState("");
  const transport = useMemo(
    () =>
      new DefaultChatTransport({
        api: API,
        // Read at each request: the current model, as an extra body field.
        body: () => ({ model: localStorage.getItem(MODEL_KEY) ?? "demo/echo" }),
      }),
    [],
  );
  const initial = useMemo(() => loadMessages(chatId), [chatId]);
  const { messages, sendMessage, stop, status, error } = useChat({
    id: chatId,
    messages: initial,
    transport,
    resume: true,
  });

  useEffect(() => {
    localStorage.setItem(messagesKey(chatId), JSON.stringify(messages));
  }, [chatId, messages]);
  useEffect(() => {
    localStorage.setItem(MODEL_KEY, model);
  }, [model]);

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
      <button type="button" onClick={newChat} disabled={busy}>
        New chat
      </button>
      <ol className="ui-messages" aria-label="Messages">
        {messages.map((m) => (
          <li key={m.id} data-role={m.role} data-message-id={m.id}>
            <strong>{m.role}</strong> <span className="ui-text">{textOf(m)}</span>
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
