import { expect, test } from "vitest";
import { SeqGate } from "../../src/client";

test("a frame at or below the last seq is a duplicate; merged deltas may skip seqs", () => {
  const gate = new SeqGate();
  expect(gate.lastSeq).toBe(-1);
  expect([0, 1, 2, 5].map((s) => gate.accept(s))).toEqual([true, true, true, true]);
  // After a resume from last_seq 5 a server (or a re-attach by request_id) may repeat.
  expect([0, 3, 5].map((s) => gate.accept(s))).toEqual([false, false, false]);
  expect(gate.accept(6)).toBe(true);
  expect(gate.duplicates).toBe(3);
  expect(gate.lastSeq).toBe(6);
});
