// The frames the client understands. Everything published in the gateway's JSON
// Schema comes from protocol.gen.ts (generated, drift-tested). The tool-call and
// reasoning events (issue #11) are published by the schema as well; they are typed
// here once more and read tolerantly (call_id / index / output_index, flat or
// inside `item`).
import type {
  AssistantMessage,
  ServerMessage,
  SystemMessage,
  ToolMessage,
  UserMessage,
} from "./protocol.gen";

export type * from "./protocol.gen";

/** One message of `response.create`: the OpenAI chat message shapes (text/image parts, tool calls, tool results). */
export type WireChatMessage = SystemMessage | UserMessage | AssistantMessage | ToolMessage;

interface ResponseFrame {
  response_id: string;
  seq: number;
}

export interface ToolCallItem {
  type?: string;
  id?: string | null;
  call_id?: string | null;
  name?: string | null;
  arguments?: string | null;
}

export interface OutputItemAdded extends ResponseFrame {
  type: "response.output_item.added";
  index?: number;
  output_index?: number;
  call_id?: string;
  name?: string;
  item?: ToolCallItem;
}

export interface FunctionCallArgumentsDelta extends ResponseFrame {
  type: "response.function_call_arguments.delta";
  index?: number;
  output_index?: number;
  call_id?: string;
  delta: string;
}

export interface FunctionCallArgumentsDone extends ResponseFrame {
  type: "response.function_call_arguments.done";
  index?: number;
  output_index?: number;
  call_id?: string;
  name?: string;
  arguments: string;
  item?: ToolCallItem;
}

export interface ReasoningDelta extends ResponseFrame {
  type: "response.reasoning.delta";
  delta: string;
}

export type ToolFrame = OutputItemAdded | FunctionCallArgumentsDelta | FunctionCallArgumentsDone;

// The schema publishes these frames too (exact shapes); the client keeps reading
// them through the tolerant types above.
export type ServerFrame =
  | Exclude<ServerMessage, { type: ToolFrame["type"] | ReasoningDelta["type"] }>
  | ToolFrame
  | ReasoningDelta;

/** Every server frame type this client handles; a test checks it covers the schema's. */
export const HANDLED_SERVER_TYPES: ReadonlySet<string> = new Set<ServerFrame["type"]>([
  "session.created",
  "session.updated",
  "response.created",
  "response.output_text.delta",
  "response.done",
  "error",
  "resume.result",
  "response.moved",
  "server.draining",
  "pong",
  "response.output_item.added",
  "response.function_call_arguments.delta",
  "response.function_call_arguments.done",
  "response.reasoning.delta",
]);

/** The key that ties the pieces of one tool call together. */
export function toolCallKey(frame: ToolFrame): string {
  const index = frame.output_index ?? frame.index;
  if (index !== undefined) return `#${index}`;
  const callId = frame.call_id ?? ("item" in frame ? frame.item?.call_id : undefined);
  return callId ? `id:${callId}` : "#0";
}
