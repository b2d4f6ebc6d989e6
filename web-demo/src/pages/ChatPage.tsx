// The WebSocket chat page: model/agent picker, streamed answers, Stop, recovery,
// tool-call cards, usage, and the raw frames of the last answer.
import { useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { LOOKUP_TOOL } from "../chat/demoTools";
import { isRunning } from "../chat/messages";
import { useChat } from "../chat/useChat";
import { ConnectionBadge } from "../components/ConnectionBadge";
import { FramesPanel } from "../components/FramesPanel";
import { MessageView } from "../components/MessageView";
import { useModels } from "../components/useModels";

const CUSTOM = "__custom__";
const TOOLS = [LOOKUP_TOOL];

export function ChatPage() {
  const [token, setToken] = useState<string | null>(null);
  const [tokenDraft, setTokenDraft] = useState("");
  const { list, error: modelsError } = useModels(token);
  const [choice, setChoice] = useState<string>("");
  const [customModel, setCustomModel] = useState("");
  const [agent, setAgent] = useState<string>("");
  const [offerTools, setOfferTools] = useState(false);
  const [draft, setDraft] = useState("");
  const ids = useId();

  useEffect(() => {
    if (!choice && list?.models.length) {
      setChoice(list.models.find((m) => m.id === "demo/echo")?.id ?? list.models[0]!.id);
    }
  }, [list, choice]);

  const model = choice === CUSTOM ? customModel.trim() || null : choice || null;
  const chat = useChat({ token, model, agent: agent || null, tools: offerTools ? TOOLS : undefined });
  const running = chat.messages.some((m) => m.role === "assistant" && isRunning(m));
  const canSend = chat.status !== "error" && draft.trim().length > 0 && !running;

  const logRef = useRef<HTMLOListElement>(null);
  const lastText = chat.messages.at(-1)?.text.length ?? 0;
  useEffect(() => {
    const log = logRef.current;
    if (log) log.scrollTop = log.scrollHeight;
  }, [chat.messages.length, lastText]);

  const inputRef = useRef<HTMLTextAreaElement>(null);
  const submit = (event?: FormEvent) => {
    event?.preventDefault();
    if (running) {
      chat.stop();
      return;
    }
    if (!canSend) return;
    chat.send(draft);
    setDraft("");
  };
  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      submit();
    }
  };
  // Focus returns to the message box when an answer ends (Stop or done).
  const wasRunning = useRef(false);
  useEffect(() => {
    if (wasRunning.current && !running) inputRef.current?.focus();
    wasRunning.current = running;
  }, [running]);

  const selected = list?.models.find((m) => m.id === choice);
  const selectedAgent = list?.agents.find((a) => a.id === agent);

  return (
    <section className="chat" aria-labelledby={`${ids}-title`}>
      <div className="toolbar">
        <h2 id={`${ids}-title`} className="visually-hidden">
          Chat over the WebSocket
        </h2>
        <div className="field">
          <label htmlFor={`${ids}-model`}>Model</label>
          <select
            id={`${ids}-model`}
            value={choice}
            onChange={(e) => setChoice(e.target.value)}
            disabled={!list}
            aria-describedby={`${ids}-model-help`}
          >
            {!list && <option value="">Loading models…</option>}
            {(list?.models ?? []).map((m) => (
              <option key={m.id} value={m.id}>
                {m.id}
              </option>
            ))}
            <option value={CUSTOM}>Another model id…</option>
          </select>
        </div>
        {choice === CUSTOM && (
          <div className="field">
            <label htmlFor={`${ids}-custom`}>Model id</label>
            <input
              id={`${ids}-custom`}
              value={customModel}
              onChange={(e) => setCustomModel(e.target.value)}
              placeholder="provider/model"
              autoComplete="off"
              spellCheck={false}
            />
          </div>
        )}
        <div className="field">
          <label htmlFor={`${ids}-agent`}>Agent</label>
          <select id={`${ids}-agent`} value={agent} onChange={(e) => setAgent(e.target.value)} disabled={!list}>
            <option value="">None (gateway default)</option>
            {(list?.agents ?? []).map((a) => (
              <option key={a.id} value={a.id}>
                {a.id}
              </option>
            ))}
          </select>
        </div>
        <div className="field checkbox">
          <input
            id={`${ids}-tools`}
            type="checkbox"
            checked={offerTools}
            onChange={(e) => setOfferTools(e.target.checked)}
          />
          <label htmlFor={`${ids}-tools`}>Offer the lookup tool</label>
        </div>
        <ConnectionBadge status={chat.status} connection={chat.connection} />
      </div>
      <p id={`${ids}-model-help`} className="help">
        {selectedAgent?.description ?? selected?.description ?? "\u00a0"}
      </p>
      {modelsError && (
        <p className="banner error" role="alert">
          Could not load the model list: {modelsError}.
        </p>
      )}
      {chat.error && (
        <p className="banner error" role="alert" data-testid="chat-error">
          {chat.error.message}
          {chat.error.detail ? ` (${chat.error.detail})` : ""}
        </p>
      )}

      <ol
        ref={logRef}
        className="conversation"
        role="log"
        aria-live="polite"
        aria-relevant="additions text"
        aria-label="Conversation"
        tabIndex={0}
      >
        {chat.messages.length === 0 && (
          <li className="empty">
            Pick a model and say something. The demo models answer offline, no keys needed:{" "}
            <code>demo/echo</code> repeats you word by word, <code>demo/lorem</code> streams 64 tokens,{" "}
            <code>demo/tools</code> calls the lookup tool when it is offered.
          </li>
        )}
        {chat.messages.map((m) => (
          <MessageView key={m.id} message={m} />
        ))}
      </ol>

      <form className="composer" onSubmit={submit}>
        <label htmlFor={`${ids}-input`} className="visually-hidden">
          Message
        </label>
        <textarea
          id={`${ids}-input`}
          ref={inputRef}
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          onKeyDown={onKeyDown}
          placeholder="Message (Enter sends, Shift+Enter for a new line)"
          rows={2}
        />
        <div className="actions">
          {running ? (
            <button type="submit" className="stop" data-testid="stop">
              Stop
            </button>
          ) : (
            <button type="submit" className="send" disabled={!canSend} data-testid="send">
              Send
            </button>
          )}
          <button type="button" className="secondary" onClick={chat.clear} disabled={!chat.messages.length}>
            New chat
          </button>
        </div>
      </form>

      <FramesPanel frames={chat.frames} onDrop={() => chat.client?.simulateDrop()} />

      <details className="settings">
        <summary>Client key</summary>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            setToken(tokenDraft.trim() || null);
          }}
        >
          <label htmlFor={`${ids}-token`}>Client key (only when the gateway sets GATEWAY_CLIENT_KEYS)</label>
          <input
            id={`${ids}-token`}
            type="password"
            value={tokenDraft}
            onChange={(e) => setTokenDraft(e.target.value)}
            autoComplete="off"
          />
          <button type="submit" className="secondary">
            Use key
          </button>
        </form>
      </details>
    </section>
  );
}
