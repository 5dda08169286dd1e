"""A/B of two builds of cattn over the asv suite's own cases.

    python benchmarks/ab_builds.py --a "/old/venv/bin/python" \\
        --b "env PYTHONPATH=src .venv/bin/python" --rounds 6

Two builds of one package cannot share a process, so each round runs one
process per build over every cattn case of benchmarks/benchmarks (the
peers' cases are left out), in the order A B, B A, A B, ...; a case's time
in a round is its best of several calls.  Per case the table gives the
median over rounds of time(B) / time(A) and its spread (min-max): above 1
means B is slower.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import itertools
import json
import os
import re
import pathlib
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
MODULES = ["bench_attention", "bench_linalg", "bench_nn", "bench_special"]
SKIP = ("Peer", "Versus", "SeqLenSweep")


def cases():
    """(name, class, method, params) of every cattn timing in the suite."""
    sys.path.insert(0, str(HERE))
    for modname in MODULES:
        mod = importlib.import_module(f"benchmarks.{modname}")
        for cname, cls in inspect.getmembers(mod, inspect.isclass):
            if cls.__module__ != mod.__name__ or cname.startswith(SKIP) \
                    or any(s in cname for s in SKIP):
                continue
            grid = getattr(cls, "params", [])
            if grid and not isinstance(grid[0], list):
                grid = [grid]
            for meth in sorted(m for m in dir(cls) if m.startswith("time_")):
                for combo in itertools.product(*grid) if grid else [()]:
                    name = f"{cname}.{meth}({', '.join(map(str, combo))})"
                    yield name, cls, meth, combo


def best_time(fn, budget=0.25):
    """Best per-call time of fn over about `budget` seconds (>= 3 calls;
    tiny calls are timed in batches)."""
    fn()
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    batch = max(1, int(0.002 / max(once, 1e-9)))
    best = float("inf")
    deadline = time.perf_counter() + budget
    for i in itertools.count():
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        best = min(best, (time.perf_counter() - t0) / batch)
        if i >= 2 and time.perf_counter() > deadline:
            return best


def worker(path, only):
    out = {}
    for name, cls, meth, combo in cases():
        if only and not re.search(only, name):
            continue
        obj = cls()
        try:
            if hasattr(obj, "setup"):
                obj.setup(*combo)
        except NotImplementedError:
            continue
        out[name] = best_time(lambda: getattr(obj, meth)(*combo))
    with open(path, "w") as f:
        json.dump(out, f)


def run(cmd, path, only):
    subprocess.run(shlex.split(cmd) + [__file__, "--worker", path,
                                       "--only", only], check=True)
    with open(path) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", help="command running build A's python")
    ap.add_argument("--b", help="command running build B's python")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--only", default="",
                    help="regular expression: the cases to run")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.only)
    ratios = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = ("a", "b") if r % 2 == 0 else ("b", "a")
            got = {who: run(getattr(args, who), os.path.join(tmp, who),
                            args.only) for who in order}
            for name in got["a"]:
                if name in got["b"]:
                    ratios.setdefault(name, []).append(
                        got["b"][name] / got["a"][name])
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    print("| case | time(B)/time(A), median | spread (min-max) |")
    print("|---|---|---|")
    for name, rs in ratios.items():
        print(f"| {name} | {statistics.median(rs):.3f} | "
              f"{min(rs):.3f}-{max(rs):.3f} |")
    meds = [statistics.median(rs) for rs in ratios.values()]
    print(f"\n{len(meds)} cases: median of medians "
          f"{statistics.median(meds):.3f}, worst {max(meds):.3f}, best "
          f"{min(meds):.3f}")


if __name__ == "__main__":
    main()
