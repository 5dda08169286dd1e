"""Many cores, on paper: how the real schedules of the asv cases would
keep 16, 64 and 192 threads busy.

    python benchmarks/many_cores.py [--threads 16 64 192]

Each asv case of bench_attention and bench_nn (full size) runs under
``cattn._frame.record_schedules()`` with its thread default raised to T
(threadpoolctl): the drivers plan the call for T threads as they would run
it -- block sizes, schedule, work items, each item's cost in (query, key)
pairs -- and return the plan instead of computing.  The model replays the
plan on T equal threads: a dynamic phase hands its items out in order, one
at a time, to the first free thread; a static phase gives each thread one
contiguous share (OpenMP's schedule(static)); a barrier ends each phase.

Per case and T: the items of its largest phase, items per thread, the
largest item's share of that phase's work, and busy = work / (T x modelled
time), the share of the T threads' time spent working (1 is perfect).  A
call that records several plans (a layer, 64 decoding steps) shows its
least busy one.  The model counts work only: no memory bandwidth, cache
or thread start-up; matmul and the softmax family, whose items are rows
and tiles of at least one per thread for these shapes, are not modelled.
"""
from __future__ import annotations

import argparse
import heapq
import itertools
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmarks import bench_attention, bench_nn  # noqa: E402
from cattn import _frame  # noqa: E402

# (asv class, the method timed, the parameter sets kept): every case whose
# calls take the default thread count.
CASES = [
    (bench_attention.SDPA, "time_sdpa",
     lambda case, dtype, threads: threads == "all" and dtype == "float32"),
    (bench_attention.SDPALowPrecision, "run", None),
    (bench_attention.SDPAVariants, "time_sdpa", None),
    (bench_attention.SDPAGrad, "time_grad", None),
    (bench_attention.TopK, "time_select", None),
    (bench_attention.SDPABatchesOfLengths, "time_attention", None),
    (bench_nn.MHAForward, "time_forward",
     lambda dtype: dtype == "float32"),
    (bench_nn.MHADecode, "time_decode_64_steps", None),
]


def replay(plan, T):
    """(busy, items, items per thread, largest item's share) of `plan` on
    T threads."""
    elapsed = work = 0.0
    biggest = max(plan["phases"], key=lambda ph: np.sum(ph[1]))[1]
    for kind, costs in plan["phases"]:
        c = np.asarray(costs, dtype=np.float64)
        if c.size == 0:
            continue
        work += c.sum()
        team = min(T, plan["threads"])
        if kind == "static":
            elapsed += max(s.sum() for s in np.array_split(c, min(team, c.size)))
        else:
            free = [0.0] * team
            for x in c:
                heapq.heappush(free, heapq.heappop(free) + x)
            elapsed += max(free)
    busy = work / (T * elapsed) if elapsed else 1.0
    share = float(np.max(biggest) / max(np.sum(biggest), 1))
    return busy, len(biggest), len(biggest) / T, share


def plans_of(cls, method, params, T):
    from threadpoolctl import threadpool_limits
    bench = cls()
    bench.setup(*params)
    fn = getattr(bench, method)
    with threadpool_limits(T, user_api="openmp"), \
            _frame.record_schedules() as log:
        fn(*params) if method != "run" else fn()
    return log


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+",
                        default=[16, 64, 192])
    args = parser.parse_args()
    head = " | ".join(f"T={t}" for t in args.threads)
    print("Each cell: items of the largest phase (per thread), the largest "
          "item's share of it, busy (bold below 75 %).")
    print(f"| case | schedule at T={args.threads[-1]} | {head} |")
    print("|---|---|" + "---|" * len(args.threads))
    for cls, method, keep in CASES:
        grid = itertools.product(*cls.params) if getattr(
            cls, "params", None) else [()]
        for params in grid:
            if keep is not None and not keep(*params):
                continue
            name = cls.__name__ + "".join(f" {p}" for p in params)
            cells, kind = [], ""
            for T in args.threads:
                plans = plans_of(cls, method, params, T)
                if not plans:
                    cells.append("(no plan)")
                    continue
                worst = min(plans, key=lambda pl: replay(pl, T)[0])
                busy, items, per, share = replay(worst, T)
                kind = f"{worst['driver']}: {worst['kind']}"
                mark = "**" if busy < 0.75 else ""
                cells.append(f"{items} ({per:.1f}), {share:.1%}, "
                             f"{mark}{busy:.0%}{mark}")
            print(f"| {name} | {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
