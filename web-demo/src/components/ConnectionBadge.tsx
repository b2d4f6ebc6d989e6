import { useEffect, useState } from "react";
import type { ChatStatus } from "../chat/useChat";
import type { ConnectionInfo } from "../client";

const LABELS: Record<ChatStatus, string> = {
  connecting: "Connecting…",
  ready: "Connected",
  streaming: "Streaming",
  reconnecting: "Reconnecting…",
  error: "Disconnected",
};

/** The connection state, always visible, announced politely when it changes. */
export function ConnectionBadge({ status, connection }: { status: ChatStatus; connection: ConnectionInfo }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (connection.retryAt === null) return;
    const timer = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(timer);
  }, [connection.retryAt]);
  let detail = "";
  if (status === "reconnecting" && connection.retryAt !== null) {
    const seconds = Math.max(0, Math.ceil((connection.retryAt - now) / 1000));
    detail = connection.lastClose ? `${connection.lastClose.why}; ` : "";
    detail += seconds > 0 ? `retrying in ${seconds} s` : "retrying now";
  } else if (status === "error" && connection.lastClose) {
    detail = connection.lastClose.why;
  } else if (connection.draining) {
    detail = "the gateway is restarting";
  }
  return (
    <p className="connection" data-status={status} role="status" aria-live="polite">
      <span className="dot" aria-hidden="true" />
      <span data-testid="connection-state">{LABELS[status]}</span>
      <span className="connection-detail">{detail}</span>
    </p>
  );
}
