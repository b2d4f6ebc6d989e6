import type { ChatMessage, ToolCall } from "../chat/messages";

const STATUS_TEXT: Record<string, string> = {
  streaming: "Answering…",
  stopping: "Stopping…",
  completed: "Completed",
  stopped: "Stopped",
  incomplete: "Incomplete",
  failed: "Failed",
};

function reasonText(m: ChatMessage): string {
  if (m.status === "incomplete" && m.reason === "max_tokens") return " (max_tokens reached)";
  if (m.status === "incomplete" && m.reason === "server_shutdown") return " (the gateway shut down)";
  if (m.status === "stopped" && m.reason && m.reason !== "client_cancelled") return ` (${m.reason.replace(/_/g, " ")})`;
  return "";
}

function prettyArguments(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text; // still streaming: not valid JSON yet
  }
}

/** A tool call as a collapsible card; its arguments grow as they stream. */
export function ToolCallCard({ call }: { call: ToolCall }) {
  return (
    <details className="tool-call" data-testid="tool-call" data-done={call.done} open>
      <summary>
        <span className="tool-name">{call.name}</span>
        <span className="tool-state">{call.done ? "arguments complete" : "streaming arguments…"}</span>
      </summary>
      {call.callId && <p className="tool-id">call id: <code>{call.callId}</code></p>}
      <pre className="tool-args" aria-label={`Arguments of ${call.name}`}>
        {call.done ? prettyArguments(call.arguments) : call.arguments}
      </pre>
    </details>
  );
}

export function MessageView({ message }: { message: ChatMessage }) {
  if (message.role === "user") {
    return (
      <li className="message user" data-testid="user-message">
        <span className="who">You</span>
        <p className="text">{message.text}</p>
      </li>
    );
  }
  const status = message.status ?? "streaming";
  const usage = message.usage;
  return (
    <li className="message assistant" data-testid="answer" data-status={status} aria-busy={status === "streaming"}>
      {/* Status and usage sit above the text: the growing text pushes nothing down. */}
      <div className="answer-head">
        <span className="who">
          Assistant{message.model ? <span className="model"> · {message.model}</span> : null}
        </span>
        <p className="meta">
          <span className={`badge ${status}`} data-testid="answer-status">
            {message.recovering ? "Reconnecting…" : STATUS_TEXT[status]}
            {reasonText(message)}
          </span>
          {usage && (usage.inputTokens !== null || usage.outputTokens !== null) && (
            <span className="usage" data-testid="usage">
              {usage.inputTokens ?? "?"} in · {usage.outputTokens ?? "?"} out tokens
            </span>
          )}
        </p>
      </div>
      {message.reasoning && (
        <details className="reasoning">
          <summary>Reasoning</summary>
          <p>{message.reasoning}</p>
        </details>
      )}
      {(message.toolCalls ?? []).map((call) => (
        <ToolCallCard key={call.key} call={call} />
      ))}
      <p className="text" data-testid="answer-text">
        {message.text}
        {status === "streaming" && <span className="cursor" aria-hidden="true" />}
      </p>
      {message.error && (
        <div className="error" role="alert" data-testid="answer-error">
          <strong>{message.error.message}</strong>
          {message.error.detail && message.error.detail !== message.error.message && (
            <span className="error-detail"> {message.error.detail}</span>
          )}
          <span className="error-code"> ({message.error.code})</span>
        </div>
      )}
    </li>
  );
}
