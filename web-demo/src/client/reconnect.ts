// What to do after the socket closed: the close code alone decides (see
// docs/protocol.md "Close codes" and gateway/ws/close_codes.py). Pure: the caller
// passes the attempt number and a random source, so the policy is unit-tested.

export interface BackoffOptions {
  /** First delay after an unexpected drop (1006, 1011, 4008, 4013, ...). */
  baseMs: number;
  /** Largest delay after unexpected drops. */
  maxMs: number;
  /** First delay after 1013 (instance or key at socket capacity): back off for real. */
  busyBaseMs: number;
  busyMaxMs: number;
  /** 1012 (drain/restart) reconnects at once, spread over this much to avoid a herd. */
  restartJitterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  baseMs: 250,
  maxMs: 10_000,
  busyBaseMs: 5_000,
  busyMaxMs: 60_000,
  restartJitterMs: 1_000,
};

export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  TOKEN_EXPIRED: 4001,
  IDLE_TIMEOUT: 4008,
  SLOW_CONSUMER: 4013,
  /** Sent by this client when it gives up on a socket whose pongs stopped. */
  HEARTBEAT_TIMEOUT: 4000,
} as const;

export type CloseDecision =
  | { reconnect: false; why: string }
  | {
      reconnect: true;
      delayMs: number;
      /** The next failure starts the backoff from scratch (a planned restart is no failure). */
      countsAsFailure: boolean;
      /** 4001: ask the token source for a fresh token before reconnecting. */
      refreshToken: boolean;
      why: string;
    };

/** Exponential with "equal jitter": half the step fixed, half random, so never ~0 and never in lockstep. */
export function jittered(base: number, max: number, attempt: number, random: () => number): number {
  const step = Math.min(max, base * 2 ** Math.max(0, attempt));
  return Math.round(step / 2 + random() * (step / 2));
}

export function closeDecision(
  code: number,
  attempt: number,
  random: () => number = Math.random,
  options: BackoffOptions = DEFAULT_BACKOFF,
): CloseDecision {
  switch (code) {
    case CloseCode.NORMAL:
      return { reconnect: false, why: "the session was closed normally" };
    case CloseCode.POLICY_VIOLATION:
      return { reconnect: false, why: "the gateway closed the connection for a policy violation" };
    case CloseCode.MESSAGE_TOO_BIG:
      return { reconnect: false, why: "a message was larger than the gateway accepts" };
    case CloseCode.SERVICE_RESTART:
      return {
        reconnect: true,
        delayMs: Math.round(random() * options.restartJitterMs),
        countsAsFailure: false,
        refreshToken: false,
        why: "the gateway is restarting",
      };
    case CloseCode.TRY_AGAIN_LATER:
      return {
        reconnect: true,
        delayMs: jittered(options.busyBaseMs, options.busyMaxMs, attempt, random),
        countsAsFailure: true,
        refreshToken: false,
        why: "the gateway is at capacity",
      };
    case CloseCode.TOKEN_EXPIRED:
      return {
        reconnect: true,
        delayMs: jittered(options.baseMs, options.maxMs, attempt, random),
        countsAsFailure: true,
        refreshToken: true,
        why: "the token expired",
      };
    default:
      // 1001, 1006 (network), 1011 (gateway bug), 4008 (idle), 4013 (slow reader), our 4000.
      return {
        reconnect: true,
        delayMs: jittered(options.baseMs, options.maxMs, attempt, random),
        countsAsFailure: true,
        refreshToken: false,
        why: code === CloseCode.SLOW_CONSUMER ? "the page read too slowly" : "the connection dropped",
      };
  }
}
