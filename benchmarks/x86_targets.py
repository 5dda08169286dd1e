"""Attention against torch at each x86 SIMD level, by both estimators.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python benchmarks/x86_targets.py [--levels avx2,avx512] [--pairs 15]

One process per level.  The avx2 process runs with ``CATTN_ISA=avx2`` and
torch limited the same way (``ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2``, set before torch
is imported); the avx512 process with neither.  Within a process, each case
is timed as ``--pairs`` interleaved pairs of single calls (cattn torch,
torch cattn, ...), and reported two ways, since on a shared machine the two
can disagree:

- best: time(torch)'s best over the pairs / time(cattn)'s best;
- median: the median of the per-pair ratios time(torch) / time(cattn),
  with their range.

Above 1 means cattn is faster.  causal/full is cattn's own: the causal
call's time over the full call's, interleaved the same way (below 1 means
causal saves time; half the scores are visible, so 0.5 is the floor of a
kernel with no per-block costs).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

TORCH_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
              "MKL_ENABLE_INSTRUCTIONS": "AVX2"}

SDPA = [(4, 8, 1024, 1024, 64), (1, 8, 4096, 4096, 64),
        (1, 16, 2048, 2048, 128), (32, 8, 128, 128, 64)]
# (label, dtype, (B, H, L, S, E), levels it is a target on)
CASES = ([(f"B{B} H{H} L=S={L} E{E}", "float32", (B, H, L, S, E), "both")
          for B, H, L, S, E in SDPA]
         + [("float64 B4 H8 L=S=1024 E64", "float64", (4, 8, 1024, 1024, 64),
             "avx2"),
            ("decode B1 H32 L1 S4096 E128", "float32", (1, 32, 1, 4096, 128),
             "both")])


def pairs(f_a, f_b, n):
    """Times of n interleaved pairs (a b, b a, ...) of single calls."""
    f_a(), f_b(), f_a(), f_b()              # warm-up: pools, pages, caches
    ta, tb = [], []
    for i in range(n):
        order = ((f_a, ta), (f_b, tb)) if i % 2 == 0 else ((f_b, tb), (f_a, ta))
        for f, out in order:
            t0 = time.perf_counter()
            f()
            out.append(time.perf_counter() - t0)
    return ta, tb


def estimators(t_cattn, t_peer):
    ratios = [p / c for c, p in zip(t_cattn, t_peer)]
    return {"best": min(t_peer) / min(t_cattn),
            "median": statistics.median(ratios),
            "lo": min(ratios), "hi": max(ratios),
            "ms": min(t_cattn) * 1e3}


def worker(level, n_pairs):
    import numpy as np
    import torch
    import torch.nn.functional as F
    import cattn
    threads = cattn.show_config(mode="dicts")["openmp"]["default_threads"]
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    out = {"active": cattn.show_config(mode="dicts")["simd"]["active"],
           "torch": torch.__version__, "threads": threads, "rows": []}
    for label, dtype, (B, H, L, S, E), where in CASES:
        if where not in ("both", level):
            continue
        q, k, v = (rng.standard_normal((B, H, n, E), dtype=np.float32)
                   .astype(dtype) for n in (L, S, S))
        tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))

        def ours(**kw):
            return cattn.scaled_dot_product_attention(q, k, v, **kw)

        def theirs(**kw):
            with torch.inference_mode():
                return F.scaled_dot_product_attention(tq, tk, tv, **kw)

        t_c, t_t = pairs(ours, theirs, n_pairs)
        row = estimators(t_c, t_t)
        # Decode reads K and V once and is bound by memory: GB/s, not
        # GFLOP/s (this VM streams about 49 GB/s on two threads).
        row["rate"] = (2 * B * H * S * E * q.itemsize if L == 1
                       else 4 * B * H * L * S * E) / (row["ms"] * 1e-3) / 1e9
        out["rows"].append(dict(row, case=label))
        if label == "B4 H8 L=S=1024 E64":
            t_full, t_causal = pairs(ours, lambda: ours(is_causal=True),
                                     n_pairs)
            # With the full call as the reference, the "ratios" are
            # time(causal) / time(full).
            e = estimators(t_full, t_causal)
            out["rows"].append(dict(e, case="causal / full, B4 H8 L=S=1024 E64",
                                    ms=min(t_causal) * 1e3, rate=None))
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", default="avx2,avx512")
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.pairs)
    for level in args.levels.split(","):
        env = dict(os.environ)
        for name in ("CATTN_ISA", *TORCH_AVX2):
            env.pop(name, None)
        if level == "avx2":
            env.update(TORCH_AVX2, CATTN_ISA="avx2")
        elif level != "avx512":
            sys.exit(f"x86_targets: --levels takes avx2 and avx512, got {level!r}")
        res = json.loads(subprocess.run(
            [sys.executable, __file__, "--worker", level,
             "--pairs", str(args.pairs)],
            env=env, check=True, capture_output=True, text=True).stdout)
        print(f"\n{level}: cattn {res['active']}, torch {res['torch']}, "
              f"{res['threads']} threads, {args.pairs} interleaved pairs; "
              "ratios time(torch)/time(cattn) unless named")
        print(f"{'case':<36} {'best':>6} {'median':>7} {'range':>11} "
              f"{'cattn ms':>9} {'GFLOP/s or GB/s (decode)'}")
        for r in res["rows"]:
            gf = f"{r['rate']:8.0f}" if r["rate"] else ""
            print(f"{r['case']:<36} {r['best']:6.2f} {r['median']:7.2f} "
                  f"{r['lo']:5.2f}-{r['hi']:<5.2f} {r['ms']:9.2f} {gf}")


if __name__ == "__main__":
    main()
