// Exactly-once delivery per response across reconnects. The gateway's `seq` counts
// per response (created = 0, each delta +1, done last; a merged delta frame carries
// the seq of its last delta, so seq may skip). After `response.resume {last_seq}` or
// re-sending a `request_id`, frames the page already has may come again: anything at
// or below the last seq seen is a duplicate and is dropped.

export class SeqGate {
  /** -1: nothing seen, not even `response.created`; what `response.resume` sends as `last_seq`. */
  lastSeq = -1;
  duplicates = 0;

  /** True when the frame is new (and records it); false for a duplicate to drop. */
  accept(seq: number): boolean {
    if (seq <= this.lastSeq) {
      this.duplicates += 1;
      return false;
    }
    this.lastSeq = seq;
    return true;
  }
}
