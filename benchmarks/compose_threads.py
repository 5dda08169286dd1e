"""Threads that compose: K Python threads calling cattn at once, against
one caller using every core.

    python benchmarks/compose_threads.py [--rounds N]

For each case, the same N calls are made three ways, and the aggregate
throughput (calls per second) of each is compared with one caller running
all N calls with ``num_threads=C`` (C = this process's OpenMP default):

* ``K x default``  K threads, ``num_threads=None``: the default shares the
  cores among the calls in flight (about C/K threads each);
* ``K x C``        K threads, ``num_threads=C`` each: K·C OpenMP threads on
  C cores, what the default gave before it was shared.

Rounds interleave the configurations (A B C, C B A, ...); the table gives
the median of per-round ratios and the ratio of best times (higher than 1:
faster than one caller with all cores).  The target is >= 0.95 for K = 2
and 4 with the default.
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time

import numpy as np

import cattn
from cattn._kernels import _cpu

CASES = {
    "sdpa f32 B1 H8 L=S=512 E64": dict(shape=(1, 8, 512, 64), calls=24),
    "sdpa f32 B1 H2 L=S=1024 E64 causal": dict(shape=(1, 2, 1024, 64),
                                             calls=24, is_causal=True),
    "decode f32 B1 H8 S=4096 E128": dict(shape=(1, 8, 4096, 128), calls=96,
                                         decode=True),
    "softmax f32 (512, 4096)": dict(shape=(512, 4096), calls=96,
                                    softmax=True),
}


def make_call(case, num_threads):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(case["shape"]).astype(np.float32)
    if case.get("softmax"):
        return lambda: cattn.softmax(x, num_threads=num_threads)
    q = x[:, :, -1:] if case.get("decode") else x
    causal = case.get("is_causal", False)
    return lambda: cattn.scaled_dot_product_attention(
        q, x, x, is_causal=causal, num_threads=num_threads)


def run(call, callers, calls):
    """Seconds for `calls` calls split over `callers` threads."""
    per = [calls // callers + (i < calls % callers) for i in range(callers)]
    start = threading.Barrier(callers + 1)

    def work(n):
        start.wait()
        for _ in range(n):
            call()

    threads = [threading.Thread(target=work, args=(n,)) for n in per]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    cores = _cpu.max_threads()
    isa = cattn.show_config(mode="dicts")["simd"]["active"]
    print(f"C = {cores} threads, SIMD level {isa}, {args.rounds} rounds; "
          "throughput ratio against 1 caller x num_threads=C "
          "(median of rounds / best times)")
    print("| case | K | K x default | K x C (old default) |")
    print("|---|---|---|---|")
    for name, case in CASES.items():
        one = make_call(case, cores)
        default = make_call(case, None)
        one(), default()
        for k in (1, 2, 4):
            configs = {"one": (one, 1), "default": (default, k),
                       "all": (one, k)}
            times = {c: [] for c in configs}
            order = list(configs)
            for r in range(args.rounds):
                for c in (order if r % 2 == 0 else order[::-1]):
                    fn, callers = configs[c]
                    times[c].append(run(fn, callers, case["calls"]))
            cells = []
            for c in ("default", "all"):
                ratios = [a / b for a, b in zip(times["one"], times[c])]
                cells.append(f"{statistics.median(ratios):.2f} / "
                             f"{min(times['one']) / min(times[c]):.2f}")
            print(f"| {name} | {k} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
