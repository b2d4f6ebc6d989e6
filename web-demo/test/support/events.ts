// Awaitable views of a response's events (tests wait for events, never for time).
import WebSocket from "ws";
import { ChatClient, type ChatClientOptions, type WebSocketConstructor } from "../../src/client";
import type { ChatRequest, ConnectionInfo, DoneEvent, ResponseEvent, ResponseHandle } from "../../src/client";

export interface Tracked {
  handle: ResponseHandle;
  events: ResponseEvent[];
  text(): string;
  /** Resolves when an event matching `match` has arrived (now or later). */
  when(match: (e: ResponseEvent) => boolean, what?: string): Promise<ResponseEvent>;
  done: Promise<DoneEvent>;
}

export function track(client: ChatClient, request: ChatRequest): Tracked {
  const events: ResponseEvent[] = [];
  const waiters: { match: (e: ResponseEvent) => boolean; resolve: (e: ResponseEvent) => void }[] = [];
  const handle = client.send(request, (event) => {
    events.push(event);
    for (const w of [...waiters]) {
      if (w.match(event)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(event);
      }
    }
  });
  return {
    handle,
    events,
    done: handle.done,
    text: () => events.map((e) => (e.type === "text" ? e.delta : "")).join(""),
    when(match, what = "event") {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 30_000);
        waiters.push({ match, resolve: (e) => (clearTimeout(timer), resolve(e)) });
      });
    },
  };
}

export function stateReached(
  client: ChatClient,
  match: (info: ConnectionInfo) => boolean,
  what = "connection state",
): Promise<ConnectionInfo> {
  if (match(client.connection)) return Promise.resolve(client.connection);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 30_000);
    const off = client.onState((info) => {
      if (match(info)) {
        clearTimeout(timer);
        off();
        resolve(info);
      }
    });
  });
}

export function user(text: string) {
  return [{ role: "user" as const, content: text }];
}

/** A connected client on Node's `ws`, with short backoffs; `close()` them after the test. */
export function nodeClient(url: string, options: Partial<ChatClientOptions> = {}): ChatClient {
  const c = new ChatClient({
    url,
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    backoff: { baseMs: 50, maxMs: 400 },
    ...options,
  });
  c.connect();
  return c;
}
