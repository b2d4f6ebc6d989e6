// Gateway errors as sentences a person understands, with the machine code kept.
import type { ErrorBody } from "./protocol.gen";

export interface ChatError {
  /** The gateway's code (gateway/errors.py), or one of the client's own below. */
  code: string;
  /** For people. */
  message: string;
  /** What the gateway said, verbatim (shown under the message). */
  detail: string | null;
  retryable: boolean;
  requestId: string | null;
}

const SENTENCES: Record<string, string> = {
  model_not_found: "That model does not exist on this gateway. Pick one from the list.",
  agent_not_found: "That agent does not exist on this gateway. Pick one from the list.",
  validation_error: "The gateway rejected the request as malformed.",
  invalid_message: "The gateway could not read a message from this page.",
  rate_limited: "Too many messages in a short time. Wait a moment and send again.",
  too_many_responses: "Too many answers are running at once. Wait for one to finish.",
  conversation_busy: "This conversation already has an answer running.",
  message_too_big: "The message is too long for this gateway.",
  server_draining: "The gateway is restarting. The message will be sent when it is back.",
  duplicate_request: "This request is already running.",
  response_not_found: "The gateway no longer has this answer.",
  internal_error: "The gateway hit an internal error. Try again.",
  upstream_error: "The model provider failed while answering.",
  upstream_rate_limited: "The model provider is rate limiting requests. Try again shortly.",
  upstream_unavailable: "The model provider cannot be reached right now.",
  upstream_timeout: "The model provider took too long to answer.",
  upstream_auth_failed: "The gateway's credentials for this provider were refused.",
  upstream_bad_request: "The model provider rejected the request.",
  unsupported_parameter: "This model does not support one of the request's settings.",
  // The client's own:
  resume_failed: "The connection dropped and this answer could not be recovered. Send it again.",
  response_moved: "This answer continues in another tab or window, which picked it up.",
  connection_lost: "The connection to the gateway was lost and could not be restored.",
  connection_refused: "The gateway closed the connection and asked not to reconnect.",
};

export function describeError(body: ErrorBody): ChatError {
  return {
    code: body.code,
    message: SENTENCES[body.code] ?? body.message,
    detail: body.message,
    retryable: body.retryable,
    requestId: body.request_id ?? null,
  };
}

export function clientError(code: keyof typeof SENTENCES, detail: string | null = null): ChatError {
  return { code, message: SENTENCES[code]!, detail, retryable: false, requestId: null };
}
