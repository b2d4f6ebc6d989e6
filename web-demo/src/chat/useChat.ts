// A useChat-style hook on the framework-free ChatClient: one socket per page,
// the conversation as state, send / stop, the connection as a status.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import {
  ChatClient,
  INITIAL_CONNECTION,
  type ChatError,
  type ChatRequest,
  type ConnectionInfo,
  type FrameRecord,
} from "../client";
import { applyEvent, history, isRunning, type ChatMessage } from "./messages";

export type ChatStatus = "connecting" | "ready" | "streaming" | "reconnecting" | "error";

export interface UseChatOptions {
  /** `ws(s)://…/api/v1/ws`; defaults to the page's own origin. */
  url?: string;
  /** Client key, when the gateway requires one. */
  token?: string | null;
  model?: string | null;
  agent?: string | null;
  /** Tools offered to the model with every message. */
  tools?: ChatRequest["tools"];
  /** Frames kept for the developer panel. */
  maxFrames?: number;
}

export interface UseChat {
  status: ChatStatus;
  connection: ConnectionInfo;
  messages: ChatMessage[];
  /** Frames of the last answer (its request, every server frame for it). */
  frames: FrameRecord[];
  /** An error that belongs to no answer (connection refused, ...). */
  error: ChatError | null;
  send(text: string): void;
  stop(): void;
  clear(): void;
  /** The client, for what the hook does not wrap (e.g. `simulateDrop()`). */
  client: ChatClient | null;
}

export function defaultSocketUrl(): string {
  const url = new URL("api/v1/ws", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

let nextId = 0;
const newId = () => `m${++nextId}`;

export function useChat(options: UseChatOptions = {}): UseChat {
  const { url, token = null, model = null, agent = null, tools, maxFrames = 400 } = options;
  const [client, setClient] = useState<ChatClient | null>(null);
  const [connection, setConnection] = useState<ConnectionInfo | null>(null);
  const [messages, setMessages] = useState<ChatMessage[]>([]);
  const [frames, setFrames] = useState<FrameRecord[]>([]);
  const [error, setError] = useState<ChatError | null>(null);
  const lastRequest = useRef<string | null>(null);
  // Frames by request, so the create frame recorded inside send() is not missed.
  const framesByRequest = useRef(new Map<string, FrameRecord[]>());
  const messagesRef = useRef(messages);
  messagesRef.current = messages;

  useEffect(() => {
    const c = new ChatClient({ url: url ?? defaultSocketUrl(), token });
    const offState = c.onState(setConnection);
    const offError = c.onError(setError);
    const offFrame = c.onFrame((record) => {
      if (record.requestId === null) return;
      const byRequest = framesByRequest.current;
      const list = byRequest.get(record.requestId) ?? [];
      list.push(record);
      if (list.length > maxFrames) list.shift();
      byRequest.set(record.requestId, list);
      while (byRequest.size > 8) byRequest.delete(byRequest.keys().next().value!);
      if (record.requestId === lastRequest.current) setFrames([...list]);
    });
    setClient(c);
    c.connect();
    return () => {
      offState();
      offError();
      offFrame();
      c.close();
    };
  }, [url, token, maxFrames]);

  const send = useCallback(
    (text: string) => {
      if (!client || !text.trim()) return;
      const user: ChatMessage = { id: newId(), role: "user", text };
      const answerId = newId();
      const conversation = [...messagesRef.current, user];
      setError(null);
      const update = (change: (m: ChatMessage) => ChatMessage) =>
        setMessages((current) => current.map((m) => (m.id === answerId ? change(m) : m)));
      // Added first: events may arrive synchronously from send() (e.g. closed client).
      setMessages((current) => [
        ...current,
        user,
        { id: answerId, role: "assistant", text: "", status: "streaming", model },
      ]);
      const handle = client.send({ messages: history(conversation), model, agent, tools }, (event) =>
        update((m) => applyEvent(m, event)),
      );
      update((m) => ({ ...m, requestId: handle.requestId }));
      lastRequest.current = handle.requestId;
      setFrames([...(framesByRequest.current.get(handle.requestId) ?? [])]);
    },
    [client, model, agent, tools],
  );

  const stop = useCallback(() => {
    for (const m of messagesRef.current) {
      if (m.role === "assistant" && m.requestId && isRunning(m)) client?.cancel(m.requestId);
    }
  }, [client]);

  const clear = useCallback(() => {
    stop();
    setMessages([]);
    setFrames([]);
    setError(null);
  }, [stop]);

  const info: ConnectionInfo = connection ?? INITIAL_CONNECTION;
  const streaming = messages.some((m) => m.role === "assistant" && isRunning(m));
  const status = useMemo((): ChatStatus => {
    switch (info.state) {
      case "idle":
      case "connecting":
        return "connecting";
      case "reconnecting":
        return "reconnecting";
      case "closed":
        return "error";
      case "open":
        return streaming ? "streaming" : "ready";
    }
  }, [info.state, streaming]);

  return { status, connection: info, messages, frames, error: error ?? info.error, send, stop, clear, client };
}
