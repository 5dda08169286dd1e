"""Per-call cost of small calls against PyTorch, interleaved in one process.

    python benchmarks/per_call.py

Decoding loops call attention and softmax once per token on tiny arrays, so
what a call costs besides its arithmetic (validation, hand-off, thread team)
matters.  Each case times cattn and torch in alternating batches of calls
(A B, B A, ...) and reports the median per-call time of each, the median of
the per-pair ratios with its spread (10-90 % over pairs), and the ratio of
the best batches (the two estimators every published ratio carries).
"""
from __future__ import annotations

import statistics
import time

import numpy as np

import cattn

try:
    import torch
except ImportError:       # pragma: no cover - torch is an optional peer
    torch = None

PAIRS = 41
CALLS = 2000


def per_call(fn):
    t0 = time.perf_counter()
    for _ in range(CALLS):
        fn()
    return (time.perf_counter() - t0) / CALLS


def compare(name, ours, theirs):
    ours(), theirs()
    a, b, ratios = [], [], []
    for i in range(PAIRS):
        if i % 2:
            tb = per_call(theirs)
            ta = per_call(ours)
        else:
            ta = per_call(ours)
            tb = per_call(theirs)
        a.append(ta)
        b.append(tb)
        ratios.append(ta / tb)
    ratios.sort()
    print(f"| {name} | {statistics.median(a) * 1e6:.2f} | "
          f"{statistics.median(b) * 1e6:.2f} | "
          f"{statistics.median(ratios):.2f} | "
          f"{ratios[len(ratios) // 10]:.2f}-{ratios[-len(ratios) // 10 - 1]:.2f}"
          f" | {min(a) / min(b):.2f} |")


def main():
    rng = np.random.default_rng(0)
    print(f"| case (float32) | cattn µs | torch µs | cattn/torch (median) "
          f"| spread (10-90 %) | best/best |")
    print("|---|---|---|---|---|---|")
    q = rng.standard_normal((1, 1, 8, 16)).astype(np.float32)
    k = rng.standard_normal((1, 1, 8, 16)).astype(np.float32)
    v = rng.standard_normal((1, 1, 8, 16)).astype(np.float32)
    tq, tk, tv = (torch.from_numpy(a) for a in (q, k, v))
    sdpa = torch.nn.functional.scaled_dot_product_attention
    compare("SDPA B1 H1 L=S=8 E16",
            lambda: cattn.scaled_dot_product_attention(q, k, v),
            lambda: sdpa(tq, tk, tv).numpy())
    compare("SDPA causal B1 H1 L=S=8 E16",
            lambda: cattn.scaled_dot_product_attention(q, k, v,
                                                       is_causal=True),
            lambda: sdpa(tq, tk, tv, is_causal=True).numpy())
    qd = rng.standard_normal((1, 8, 1, 64)).astype(np.float32)
    kd = rng.standard_normal((1, 8, 64, 64)).astype(np.float32)
    tqd, tkd = torch.from_numpy(qd), torch.from_numpy(kd)
    compare("SDPA decode B1 H8 L1 S64 E64",
            lambda: cattn.scaled_dot_product_attention(qd, kd, kd),
            lambda: sdpa(tqd, tkd, tkd).numpy())
    x = rng.standard_normal((1, 1, 8, 16)).astype(np.float32)
    tx = torch.from_numpy(x)
    compare("softmax (1, 1, 8, 16)", lambda: cattn.softmax(x),
            lambda: torch.softmax(tx, -1).numpy())


if __name__ == "__main__":
    if torch is None:
        raise SystemExit("per_call.py compares against torch: "
                         "pip install torch==2.13.0")
    main()
