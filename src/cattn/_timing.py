"""The one timing method behind every speed ratio cattn publishes.

``python -m cattn``, the asv suite (benchmarks/benchmarks/common.py), the
comparison command (benchmarks/compare.py) and the per-call script all time
two callables the same way:

- a *sample* is the mean time of a batch of calls lasting at least
  `SAMPLE_SECONDS` (a call of microseconds is never timed alone: one thread
  wake-up or page fault would be the whole sample);
- before each sample, `SETTLE` seconds of sleep let the other library's
  worker threads stop spinning (libgomp's spin for ~10 ms after a call,
  ONNX Runtime's ~80 ms; on two cores they would hold a core the next
  call needs), and, for a batch, one untimed call wakes this library's
  pool (0.2-3.4 ms measured on this project's VM: a cost of the sleep);
- the two callables alternate, A B, B A, ..., for `pairs` pairs;
- two estimators: the ratio of the best samples (noise on a shared machine
  only ever adds time, so the best samples agree best between runs) and
  the median of the per-pair ratios (each pair ran under the same
  neighbours).  Published ratios carry both.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

SAMPLE_SECONDS = 0.02
SETTLE = 0.1


def calls_per_sample(fn: Callable[[], object],
                     seconds: float = SAMPLE_SECONDS) -> int:
    """Calls of fn that take `seconds` (at least 1), from its best of up to
    three warm calls."""
    fn()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        if best >= seconds:
            return 1
    return max(1, min(100_000, int(seconds / max(best, 1e-8))))


def sample(fn: Callable[[], object], n: int, settle: float = SETTLE) -> float:
    """Mean time of n calls of fn, after `settle` seconds of sleep and, for a
    batch, one untimed call."""
    time.sleep(settle)
    if n > 1:
        fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


@dataclass(frozen=True)
class Comparison:
    """time(peer) / time(ours) by both estimators, and the samples (seconds
    per call) they come from."""
    best: float
    median: float
    ours: tuple[float, ...]
    peer: tuple[float, ...]


def compare(ours: Callable[[], object], peer: Callable[[], object],
            pairs: int = 7, settle: float = SETTLE,
            seconds: float = SAMPLE_SECONDS) -> Comparison:
    """`pairs` interleaved pairs of samples of `ours` and `peer` (ours
    first in even pairs, peer first in odd ones)."""
    n_ours = calls_per_sample(ours, seconds)
    n_peer = calls_per_sample(peer, seconds)
    t_ours: list[float] = []
    t_peer: list[float] = []
    for i in range(pairs):
        turns = [(ours, n_ours, t_ours), (peer, n_peer, t_peer)]
        for fn, n, out in turns if i % 2 == 0 else turns[::-1]:
            out.append(sample(fn, n, settle))
    per_pair = sorted(p / o for p, o in zip(t_peer, t_ours))
    mid = len(per_pair) // 2
    median = (per_pair[mid] if len(per_pair) % 2
              else (per_pair[mid - 1] + per_pair[mid]) / 2)
    return Comparison(min(t_peer) / min(t_ours), median, tuple(t_ours),
                      tuple(t_peer))


def best_times(fns: list[Callable[[], object]], rounds: int = 3,
               settle: float = SETTLE) -> list[float]:
    """Seconds per call of each of `fns`: the best of `rounds` samples,
    the callables taking turns (A B C, A B C, ...)."""
    ns = [calls_per_sample(fn) for fn in fns]
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, (fn, n) in enumerate(zip(fns, ns)):
            best[i] = min(best[i], sample(fn, n, settle))
    return best
