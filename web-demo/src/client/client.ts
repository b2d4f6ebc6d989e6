// A framework-free client for the gateway's WebSocket protocol `chat-gateway.v1`
// (docs/protocol.md). One ChatClient holds one logical session over any number of
// sockets: it reconnects by the close-code policy (reconnect.ts), re-attaches every
// answer still running (`response.resume` with `last_seq`, or the same `request_id`
// when the answer never got its `response.created`), drops duplicates (sequence.ts),
// pings when otherwise silent and treats a missing pong as a dead socket.
// It needs only a WebSocket constructor: the browser's, or `ws` in Node.
import { clientError, describeError, type ChatError } from "./errors";
import {
  toolCallKey,
  type ClientMessage,
  type ResponseCreate,
  type ResponseDone,
  type ServerFrame,
  type SessionCreated,
  type WireChatMessage,
  type WireParams,
} from "./frames";
import { CloseCode, closeDecision, DEFAULT_BACKOFF, type BackoffOptions } from "./reconnect";
import { SeqGate } from "./sequence";

export const PROTOCOL = "chat-gateway.v1";

/** The part of the WebSocket API the client uses (browser WebSocket and `ws` both fit). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => SocketLike;

export type TokenSource = string | null | ((refresh: boolean) => string | null | Promise<string | null>);

export interface ChatClientOptions {
  /** `ws(s)://host/api/v1/ws`. */
  url: string;
  /** Client key, sent as the `bearer.<key>` subprotocol (browsers cannot set headers). */
  token?: TokenSource;
  /** Defaults to `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  backoff?: Partial<BackoffOptions>;
  /** Consecutive failed connection attempts before giving up (state `closed`). */
  maxAttempts?: number;
  /** How long to wait for the pong to a heartbeat ping before calling the socket dead. */
  pongTimeoutMs?: number;
  /** Overrides the server's `heartbeat_interval_ms` (tests). */
  heartbeatIntervalMs?: number;
  random?: () => number;
  newRequestId?: () => string;
}

export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export interface ConnectionInfo {
  state: ConnectionState;
  /** Sockets opened so far (1 = the first). */
  sockets: number;
  sessionId: string | null;
  /** Set while `reconnecting`: when the next attempt starts (epoch ms). */
  retryAt: number | null;
  /** Why the last socket closed, or why the client gave up. */
  lastClose: { code: number; why: string } | null;
  /** The error that ended the client (state `closed` not by `close()`). */
  error: ChatError | null;
  draining: boolean;
}

export interface Usage {
  inputTokens: number | null;
  outputTokens: number | null;
}

export type ResponseStatus = ResponseDone["status"];

export interface DoneEvent {
  type: "done";
  status: ResponseStatus;
  reason: string | null;
  finishReason: string | null;
  usage: Usage | null;
  error: ChatError | null;
}

export type ResponseEvent =
  | { type: "created"; responseId: string; model: string; provider: string }
  | { type: "text"; delta: string; seq: number }
  | { type: "reasoning"; delta: string }
  | { type: "tool.added"; key: string; callId: string | null; name: string }
  | { type: "tool.delta"; key: string; delta: string }
  | { type: "tool.done"; key: string; callId: string | null; name: string | null; arguments: string }
  | { type: "stopping" }
  | { type: "recovering" }
  | { type: "resumed"; fromSeq: number | null }
  | DoneEvent;

export interface ChatRequest {
  messages: WireChatMessage[];
  model?: string | null;
  agent?: string | null;
  params?: WireParams | null;
  conversationId?: string | null;
  /** Functions the model may call (OpenAI's format); their calls arrive as tool events. */
  tools?: ResponseCreate["tools"];
}

export interface ResponseHandle {
  readonly requestId: string;
  cancel(): void;
  /** Resolves once, with the answer's end (also for local failures). */
  readonly done: Promise<DoneEvent>;
}

export interface FrameRecord {
  dir: "in" | "out";
  /** Which socket (1, 2, ...) carried it. */
  socket: number;
  at: number;
  frame: unknown;
  /** The request the frame belongs to, when it belongs to one. */
  requestId: string | null;
}

type Listener<T> = (value: T) => void;

interface InFlight {
  requestId: string;
  create: ResponseCreate;
  gate: SeqGate;
  responseId: string | null;
  epoch: number | null;
  /** Sent on some socket at least once: the gateway may have it. */
  sent: boolean;
  cancelRequested: boolean;
  onEvent: Listener<ResponseEvent>;
  resolve: (done: DoneEvent) => void;
}

const OPEN = 1;

/** What a client that has not connected yet reports. */
export const INITIAL_CONNECTION: Readonly<ConnectionInfo> = {
  state: "connecting",
  sockets: 0,
  sessionId: null,
  retryAt: null,
  lastClose: null,
  error: null,
  draining: false,
};

export class ChatClient {
  readonly options: Required<Omit<ChatClientOptions, "token" | "WebSocket" | "heartbeatIntervalMs">> &
    Pick<ChatClientOptions, "token" | "heartbeatIntervalMs">;
  private readonly WS: WebSocketConstructor;
  private readonly backoff: BackoffOptions;
  private ws: SocketLike | null = null;
  private session: SessionCreated | null = null;
  private info: ConnectionInfo = { ...INITIAL_CONNECTION, state: "idle" };
  private attempt = 0;
  private userClosed = false;
  private refreshToken = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setTimeout> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly inflight = new Map<string, InFlight>();
  private readonly byResponse = new Map<string, InFlight>();
  private readonly stateListeners = new Set<Listener<ConnectionInfo>>();
  private readonly frameListeners = new Set<Listener<FrameRecord>>();
  private readonly errorListeners = new Set<Listener<ChatError>>();
  /** Frames dropped as duplicates after reconnects (all responses). */
  duplicatesDropped = 0;

  constructor(options: ChatClientOptions) {
    this.options = {
      maxAttempts: 20,
      pongTimeoutMs: 10_000,
      random: Math.random,
      newRequestId: () => crypto.randomUUID(),
      backoff: {},
      ...options,
    };
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    const WS = options.WebSocket ?? (globalThis.WebSocket as unknown as WebSocketConstructor | undefined);
    if (!WS) throw new Error("no WebSocket implementation: pass options.WebSocket");
    this.WS = WS;
  }

  // --- public API -------------------------------------------------------------------

  get connection(): ConnectionInfo {
    return this.info;
  }

  /** Requests not finished yet (sent, or waiting for a socket). */
  get pending(): number {
    return this.inflight.size;
  }

  onState(listener: Listener<ConnectionInfo>): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Every frame in and out, parsed: the developer panel's feed. */
  onFrame(listener: Listener<FrameRecord>): () => void {
    this.frameListeners.add(listener);
    return () => this.frameListeners.delete(listener);
  }

  /** Errors that belong to no request (e.g. a rejected `session.update`). */
  onError(listener: Listener<ChatError>): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  connect(): void {
    if (this.info.state !== "idle" && this.info.state !== "closed") return;
    this.userClosed = false;
    this.attempt = 0;
    this.setInfo({ error: null });
    void this.open();
  }

  /**
   * Start an answer. Works in any state but `closed`: while the socket is down the
   * request waits and is sent (once, with its idempotent `request_id`) when it is back.
   */
  send(request: ChatRequest, onEvent: Listener<ResponseEvent> = () => {}): ResponseHandle {
    const requestId = this.options.newRequestId();
    const create: ResponseCreate = {
      type: "response.create",
      event_id: `create:${requestId}`,
      request_id: requestId,
      messages: request.messages as ResponseCreate["messages"],
      ...(request.model ? { model: request.model } : {}),
      ...(request.agent ? { agent: request.agent } : {}),
      ...(request.params ? { params: request.params } : {}),
      ...(request.conversationId ? { conversation_id: request.conversationId } : {}),
      ...(request.tools?.length ? { tools: request.tools } : {}),
    };
    let resolve!: (done: DoneEvent) => void;
    const done = new Promise<DoneEvent>((r) => (resolve = r));
    const entry: InFlight = {
      requestId,
      create,
      gate: new SeqGate(),
      responseId: null,
      epoch: null,
      sent: false,
      cancelRequested: false,
      onEvent,
      resolve,
    };
    this.inflight.set(requestId, entry);
    if (this.info.state === "closed") {
      this.finish(entry, failed(this.info.error ?? clientError("connection_lost")));
    } else if (this.ready && !this.info.draining) {
      this.sendCreate(entry);
    }
    return { requestId, cancel: () => this.cancel(requestId), done };
  }

  /** Stop an answer: the gateway closes the upstream request; the answer ends `cancelled`. */
  cancel(requestId: string): void {
    const entry = this.inflight.get(requestId);
    if (!entry || entry.cancelRequested) return;
    entry.cancelRequested = true;
    entry.onEvent({ type: "stopping" });
    if (!entry.sent) {
      // The gateway never saw it: nothing runs upstream.
      this.finish(entry, { ...doneOf("cancelled", "client_cancelled"), error: null });
      return;
    }
    // Otherwise sent now, or right after the re-attach when the socket is down.
    if (this.ready) this.sendCancel(entry);
  }

  /** Close on purpose: running answers are cancelled first, and no reconnect follows. */
  close(): void {
    this.userClosed = true;
    this.clearTimers();
    for (const entry of [...this.inflight.values()]) {
      if (entry.sent && this.ready) this.sendCancel(entry);
      this.finish(entry, doneOf("cancelled", "client_closed"));
    }
    const ws = this.ws;
    this.detach();
    ws?.close(CloseCode.NORMAL, "client closed");
    this.setInfo({ state: "closed", retryAt: null, lastClose: { code: 1000, why: "closed by the page" } });
  }

  /**
   * Drop the socket as a network failure would (developer panel, tests): the gateway
   * keeps the answers running for its resume window and the client recovers them.
   */
  simulateDrop(): void {
    if (this.ws) this.abandon(CloseCode.ABNORMAL, "dropped on purpose");
  }

  // --- connection -----------------------------------------------------------------

  private get ready(): boolean {
    return this.session !== null && this.ws !== null && this.ws.readyState === OPEN;
  }

  private async open(): Promise<void> {
    this.retryTimer = null;
    this.setInfo({ state: this.info.sockets === 0 ? "connecting" : "reconnecting", retryAt: null });
    let token: string | null = null;
    try {
      const source = this.options.token;
      token = typeof source === "function" ? await source(this.refreshToken) : (source ?? null);
    } catch {
      token = null;
    }
    this.refreshToken = false;
    if (this.userClosed) return;
    const protocols = token ? [PROTOCOL, `bearer.${token}`] : [PROTOCOL];
    const ws = new this.WS(this.options.url, protocols);
    this.ws = ws;
    this.session = null;
    const socket = this.info.sockets + 1;
    this.setInfo({ sockets: socket });
    ws.onmessage = (ev) => {
      if (this.ws === ws) this.receive(ev.data, socket);
    };
    ws.onclose = (ev) => {
      if (this.ws === ws) this.closed(ev.code, ev.reason);
    };
    ws.onerror = () => {
      /* a close event follows */
    };
  }

  private closed(code: number, reason: string): void {
    this.detach();
    if (this.userClosed) return;
    const decision = closeDecision(code, this.attempt, this.options.random, this.backoff);
    if (!decision.reconnect) {
      this.giveUp(code, decision.why, clientError("connection_refused", `${code} ${reason}`.trim()));
      return;
    }
    if (decision.countsAsFailure) this.attempt += 1;
    if (this.attempt > this.options.maxAttempts) {
      this.giveUp(code, decision.why, clientError("connection_lost", `${code} ${reason}`.trim()));
      return;
    }
    this.refreshToken = decision.refreshToken;
    for (const entry of this.inflight.values()) if (entry.sent) entry.onEvent({ type: "recovering" });
    this.setInfo({
      state: "reconnecting",
      retryAt: Date.now() + decision.delayMs,
      lastClose: { code, why: decision.why },
      draining: false,
      sessionId: null,
    });
    this.retryTimer = setTimeout(() => void this.open(), decision.delayMs);
  }

  private giveUp(code: number, why: string, error: ChatError): void {
    for (const entry of [...this.inflight.values()]) this.finish(entry, failed(error));
    this.setInfo({ state: "closed", retryAt: null, lastClose: { code, why }, error });
  }

  /** Stop listening to the current socket (its late events are ignored). */
  private detach(): void {
    this.clearHeartbeat();
    const ws = this.ws;
    if (ws) {
      ws.onmessage = null;
      ws.onclose = null;
      ws.onopen = null;
    }
    this.ws = null;
    this.session = null;
  }

  private abandon(code: number, why: string): void {
    const ws = this.ws;
    this.detach();
    try {
      ws?.close(CloseCode.HEARTBEAT_TIMEOUT, why);
    } catch {
      /* already closing */
    }
    this.closed(code, why);
  }

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.clearHeartbeat();
  }

  // --- heartbeat: ping when silent, a missing pong means a dead socket -------------

  private clearHeartbeat(): void {
    if (this.pingTimer) clearTimeout(this.pingTimer);
    if (this.pongTimer) clearTimeout(this.pongTimer);
    this.pingTimer = null;
    this.pongTimer = null;
  }

  private heartbeatAfterSend(): void {
    const interval = this.options.heartbeatIntervalMs ?? this.session?.heartbeat_interval_ms;
    if (!interval) return;
    if (this.pingTimer) clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      this.pingTimer = null;
      this.transmit({ type: "ping", ts: Date.now() }, null);
      this.pongTimer ??= setTimeout(
        () => this.abandon(CloseCode.HEARTBEAT_TIMEOUT, "no pong"),
        this.options.pongTimeoutMs,
      );
    }, interval);
  }

  // --- frames -----------------------------------------------------------------------

  private transmit(frame: ClientMessage, requestId: string | null): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return;
    ws.send(JSON.stringify(frame));
    this.record({ dir: "out", socket: this.info.sockets, at: Date.now(), frame, requestId });
    this.heartbeatAfterSend();
  }

  private sendCreate(entry: InFlight): void {
    entry.sent = true;
    this.transmit(entry.create, entry.requestId);
  }

  private sendCancel(entry: InFlight): void {
    this.transmit(
      { type: "response.cancel", request_id: entry.requestId, event_id: `cancel:${entry.requestId}` },
      entry.requestId,
    );
  }

  private receive(data: unknown, socket: number): void {
    // Anything arriving proves the socket alive.
    if (this.pongTimer) clearTimeout(this.pongTimer);
    this.pongTimer = null;
    let frame: ServerFrame;
    try {
      frame = JSON.parse(String(data)) as ServerFrame;
    } catch {
      this.record({ dir: "in", socket, at: Date.now(), frame: String(data), requestId: null });
      return;
    }
    this.record({ dir: "in", socket, at: Date.now(), frame, requestId: this.requestIdOf(frame) });
    this.dispatch(frame);
  }

  private requestIdOf(frame: ServerFrame): string | null {
    if ("request_id" in frame && typeof frame.request_id === "string") return frame.request_id;
    if (frame.type === "error") {
      const body = frame.error;
      if (body.request_id) return body.request_id;
      if (body.response_id) return this.byResponse.get(body.response_id)?.requestId ?? null;
      return null;
    }
    if ("response_id" in frame && typeof frame.response_id === "string") {
      return this.byResponse.get(frame.response_id)?.requestId ?? null;
    }
    return null;
  }

  private dispatch(frame: ServerFrame): void {
    switch (frame.type) {
      case "session.created":
        return this.sessionCreated(frame);
      case "response.created": {
        const entry = this.inflight.get(frame.request_id);
        if (!entry) return;
        entry.responseId = frame.response_id;
        entry.epoch = frame.epoch;
        this.byResponse.set(frame.response_id, entry);
        if (this.accept(entry, frame.seq)) {
          entry.onEvent({
            type: "created",
            responseId: frame.response_id,
            model: frame.model,
            provider: frame.provider,
          });
        }
        if (entry.cancelRequested) this.sendCancel(entry);
        return;
      }
      case "response.output_text.delta":
        return this.deliver(frame, { type: "text", delta: frame.delta, seq: frame.seq });
      case "response.reasoning.delta":
        return this.deliver(frame, { type: "reasoning", delta: frame.delta });
      case "response.output_item.added":
        return this.deliver(frame, {
          type: "tool.added",
          key: toolCallKey(frame),
          callId: frame.item?.call_id ?? frame.call_id ?? null,
          name: frame.item?.name ?? frame.name ?? "tool",
        });
      case "response.function_call_arguments.delta":
        return this.deliver(frame, { type: "tool.delta", key: toolCallKey(frame), delta: frame.delta });
      case "response.function_call_arguments.done":
        return this.deliver(frame, {
          type: "tool.done",
          key: toolCallKey(frame),
          callId: frame.item?.call_id ?? frame.call_id ?? null,
          name: frame.item?.name ?? frame.name ?? null,
          arguments: frame.arguments,
        });
      case "response.done": {
        const entry = this.byResponse.get(frame.response_id);
        if (!entry || !this.accept(entry, frame.seq)) return;
        const error = "error" in frame && frame.error ? describeError(frame.error) : null;
        this.finish(entry, {
          type: "done",
          status: frame.status,
          reason: frame.reason ?? null,
          finishReason: frame.finish_reason ?? null,
          usage: frame.usage
            ? { inputTokens: frame.usage.input_tokens ?? null, outputTokens: frame.usage.output_tokens ?? null }
            : null,
          error,
        });
        return;
      }
      case "resume.result": {
        const entry = this.byResponse.get(frame.response_id);
        if (!entry) return;
        if (frame.recovered) {
          entry.onEvent({ type: "resumed", fromSeq: frame.from_seq ?? null });
          if (entry.cancelRequested) this.sendCancel(entry);
        } else {
          this.finish(entry, failed(clientError("resume_failed")));
        }
        return;
      }
      case "response.moved": {
        // Another socket (another tab of this user) resumed it and follows it now.
        const entry = this.byResponse.get(frame.response_id);
        if (entry) this.finish(entry, failed(clientError("response_moved")));
        return;
      }
      case "error":
        return this.error(frame.error);
      case "server.draining":
        // New requests wait for the next socket (the 1012 close follows once the
        // running answers are flushed); the running ones finish on this one.
        this.setInfo({ draining: true });
        return;
      case "session.updated":
      case "pong":
        return;
      default:
        assertNever(frame);
    }
  }

  /** A frame of a running answer: to its listener, unless it is a duplicate. */
  private deliver(frame: { response_id: string; seq: number }, event: ResponseEvent): void {
    const entry = this.byResponse.get(frame.response_id);
    if (entry && this.accept(entry, frame.seq)) entry.onEvent(event);
  }

  private accept(entry: InFlight, seq: number): boolean {
    if (entry.gate.accept(seq)) return true;
    this.duplicatesDropped += 1;
    return false;
  }

  private sessionCreated(frame: SessionCreated): void {
    this.session = frame;
    this.attempt = 0;
    this.setInfo({ state: "open", sessionId: frame.session_id, retryAt: null, error: null, draining: false });
    this.heartbeatAfterSend();
    // Re-attach what was running, then send what was waiting.
    for (const entry of [...this.inflight.values()]) {
      if (entry.responseId !== null && entry.epoch !== null) {
        this.transmit(
          {
            type: "response.resume",
            event_id: `resume:${entry.requestId}`,
            response_id: entry.responseId,
            epoch: entry.epoch,
            last_seq: entry.gate.lastSeq,
          },
          entry.requestId,
        );
      } else if (entry.cancelRequested && entry.sent) {
        // Re-sending the same request_id re-attaches (no second upstream call); then stop it.
        this.sendCreate(entry);
        this.sendCancel(entry);
      } else {
        this.sendCreate(entry);
      }
    }
  }

  private error(body: import("./protocol.gen").ErrorBody): void {
    const eventId = body.event_id ?? "";
    const entry =
      (body.request_id ? this.inflight.get(body.request_id) : undefined) ??
      (body.response_id ? this.byResponse.get(body.response_id) : undefined) ??
      this.inflight.get(eventId.slice(eventId.indexOf(":") + 1));
    if (eventId.startsWith("resume:") || eventId.startsWith("cancel:")) {
      // resume.result already told; cancelling what already ended does nothing.
      return;
    }
    if (entry && eventId.startsWith("create:")) {
      if (body.code === "server_draining") {
        entry.sent = false; // sent again on the next socket
        return;
      }
      if (entry.responseId === null) {
        // The answer never started (bad model, rate limit, ...): it ends here.
        this.finish(entry, failed(describeError(body)));
        return;
      }
    }
    for (const listener of this.errorListeners) listener(describeError(body));
  }

  private finish(entry: InFlight, done: DoneEvent): void {
    if (!this.inflight.delete(entry.requestId)) return;
    if (entry.responseId) this.byResponse.delete(entry.responseId);
    entry.onEvent(done);
    entry.resolve(done);
  }

  private record(record: FrameRecord): void {
    for (const listener of this.frameListeners) listener(record);
  }

  private setInfo(patch: Partial<ConnectionInfo>): void {
    this.info = { ...this.info, ...patch };
    for (const listener of this.stateListeners) listener(this.info);
  }
}

function doneOf(status: ResponseStatus, reason: string | null): DoneEvent {
  return { type: "done", status, reason, finishReason: null, usage: null, error: null };
}

function failed(error: ChatError): DoneEvent {
  return { ...doneOf("failed", error.code), error };
}

function assertNever(value: never): void {
  void value; // a frame type the schema gained: ignored until handled (a test flags it)
}
