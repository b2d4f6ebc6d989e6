import { describe, expect, test } from "vitest";
import { closeDecision, CloseCode, DEFAULT_BACKOFF, jittered } from "../../src/client";

const low = () => 0;
const high = () => 0.999_999;

describe("close-code policy", () => {
  test.each([1000, 1008, 1009])("no reconnect after %i", (code) => {
    expect(closeDecision(code, 0, low).reconnect).toBe(false);
  });

  test("1012 (restart/drain): at once, jittered, and not counted as a failure", () => {
    const soon = closeDecision(CloseCode.SERVICE_RESTART, 7, low);
    const late = closeDecision(CloseCode.SERVICE_RESTART, 7, high);
    expect(soon).toMatchObject({ reconnect: true, delayMs: 0, countsAsFailure: false });
    if (!late.reconnect) throw new Error("expected a reconnect");
    expect(late.delayMs).toBeLessThanOrEqual(DEFAULT_BACKOFF.restartJitterMs);
    expect(late.delayMs).toBeGreaterThan(DEFAULT_BACKOFF.restartJitterMs * 0.9);
  });

  test("1013 (at capacity): a long backoff, longer than for a dropped connection", () => {
    const busy = closeDecision(CloseCode.TRY_AGAIN_LATER, 0, low);
    const dropped = closeDecision(CloseCode.ABNORMAL, 0, high);
    if (!busy.reconnect || !dropped.reconnect) throw new Error("expected reconnects");
    expect(busy.delayMs).toBeGreaterThanOrEqual(DEFAULT_BACKOFF.busyBaseMs / 2);
    expect(busy.delayMs).toBeGreaterThan(dropped.delayMs);
    const capped = closeDecision(CloseCode.TRY_AGAIN_LATER, 30, high);
    if (!capped.reconnect) throw new Error("expected a reconnect");
    expect(capped.delayMs).toBeLessThanOrEqual(DEFAULT_BACKOFF.busyMaxMs);
  });

  test.each([1001, 1006, 1011, 4008, 4013, CloseCode.HEARTBEAT_TIMEOUT])(
    "%i: reconnect with exponential backoff",
    (code) => {
      const decision = closeDecision(code, 2, low);
      expect(decision).toMatchObject({ reconnect: true, countsAsFailure: true, refreshToken: false });
    },
  );

  test("4001 (token expired): reconnect with a fresh token", () => {
    expect(closeDecision(CloseCode.TOKEN_EXPIRED, 0, low)).toMatchObject({ reconnect: true, refreshToken: true });
  });
});

describe("exponential backoff with jitter", () => {
  test("doubles per attempt up to the cap, half of each step random", () => {
    const steps = [0, 1, 2, 3, 10].map((n) => [jittered(100, 1000, n, low), jittered(100, 1000, n, high)]);
    expect(steps).toEqual([
      [50, 100],
      [100, 200],
      [200, 400],
      [400, 800],
      [500, 1000],
    ]);
  });

  test("two clients with different random draws do not retry in lockstep", () => {
    const a = jittered(250, 10_000, 3, () => 0.1);
    const b = jittered(250, 10_000, 3, () => 0.9);
    expect(Math.abs(a - b)).toBeGreaterThan(500);
  });
});
