// The typed client for protocol chat-gateway.v1: no framework, no dependencies.
export { ChatClient, INITIAL_CONNECTION, PROTOCOL } from "./client";
export type {
  ChatClientOptions,
  ChatRequest,
  ConnectionInfo,
  ConnectionState,
  DoneEvent,
  FrameRecord,
  ResponseEvent,
  ResponseHandle,
  ResponseStatus,
  SocketLike,
  TokenSource,
  Usage,
  WebSocketConstructor,
} from "./client";
export { describeError, type ChatError } from "./errors";
export { CloseCode, closeDecision, DEFAULT_BACKOFF, jittered, type BackoffOptions, type CloseDecision } from "./reconnect";
export { SeqGate } from "./sequence";
export { HANDLED_SERVER_TYPES, type ServerFrame } from "./frames";
export type * from "./protocol.gen";
