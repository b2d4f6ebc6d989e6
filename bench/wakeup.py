"""How quickly this machine wakes a process: the floor under every latency figure.

Every token the gateway relays wakes it up (the upstream's write) and then wakes
the client (the gateway's write), on another core when the processes are
pinned apart. On a virtual machine the cost of such a wake-up depends on the
host as much as on the guest, and it drifts: on the 2-core machine these
results come from, the cross-core one-way p99 was seen anywhere between 70 µs
and 0.7 ms within one hour. The latency scenario measures it before and after
its runs and prints it beside its figures, so that a reader can tell a slower
gateway from a noisier machine.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from bench.stats import summary


def one_way_us(sender: int, receiver: int, samples: int = 2000, gap_s: float = 0.002) -> Any:
    """One-way wake-up latency in µs (half a ping-pong round trip over a socketpair),
    ``sender`` and ``receiver`` pinned to those cores; ``gap_s`` lets the receiver
    fall asleep between pings, as a paced token stream does."""
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the echoing child
        ours.close()
        os.sched_setaffinity(0, {receiver})
        while data := theirs.recv(64):
            theirs.send(data)
        os._exit(0)
    theirs.close()
    affinity = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {sender})
        latencies = []
        for _ in range(samples):
            started = time.perf_counter_ns()
            ours.send(b"x")
            ours.recv(64)
            latencies.append((time.perf_counter_ns() - started) / 2e3)
            time.sleep(gap_s)
    finally:
        os.sched_setaffinity(0, affinity)
        ours.close()
        os.waitpid(pid, 0)
    return summary(latencies)


def describe(cores: list[int]) -> str:
    """A one-line reading: cross-core (first two cores) and same-core one-way wake-ups."""
    if len(cores) < 2:
        same = one_way_us(cores[0], cores[0])
        return f"same-core wake-up p50 {same['p50']:.0f} µs, p99 {same['p99']:.0f} µs"
    cross = one_way_us(cores[0], cores[1])
    same = one_way_us(cores[0], cores[0])
    return (
        f"one-way wake-up across cores p50 {cross['p50']:.0f} µs, p99 {cross['p99']:.0f} µs; "
        f"on one core p50 {same['p50']:.0f} µs, p99 {same['p99']:.0f} µs"
    )
