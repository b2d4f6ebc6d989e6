"""How long and how hard each scenario runs: the full run and the ``--quick`` smoke run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Config:
    quick: bool
    warmup_s: float
    measure_s: float
    concurrencies: tuple[int, ...]
    latency_measure_s: float
    latency_rounds: int
    cancel_rounds: int
    idle_counts: tuple[int, ...]
    resume_rounds: int
    redis_rounds: int
    soak_s: float  # the soak's whole run, warm-up included
    soak_warmup_s: float

    @classmethod
    def full(cls) -> Config:
        return cls(
            quick=False,
            warmup_s=1.5,
            measure_s=6.0,
            concurrencies=(1, 10, 100, 500),
            latency_measure_s=24.0,
            latency_rounds=4,
            cancel_rounds=5,
            idle_counts=(1_000, 10_000),
            resume_rounds=50,
            redis_rounds=2,
            soak_s=120.0,
            soak_warmup_s=30.0,
        )

    @classmethod
    def smoke(cls) -> Config:
        return cls(
            quick=True,
            warmup_s=0.5,
            measure_s=2.0,
            concurrencies=(1, 100),
            latency_measure_s=3.0,
            latency_rounds=1,
            cancel_rounds=1,
            idle_counts=(1_000,),
            resume_rounds=5,
            redis_rounds=1,
            soak_s=30.0,
            soak_warmup_s=6.0,
        )
