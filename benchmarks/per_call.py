"""Per-call cost of small calls against PyTorch, interleaved in one process.

    python benchmarks/per_call.py          (pin one core: taskset -c 0 ...)

Decoding loops call attention and softmax once per token on tiny arrays, so
what a call costs besides its arithmetic (validation, hand-off, thread team)
matters.  Each case is timed by cattn's one timing method
(cattn._timing.compare) with many short pairs: 41 interleaved pairs of
samples of about 10 ms (thousands of calls each); it prints the best
per-call time of each side, the median of the per-pair ratios with its
spread (10-90 % over pairs) and the ratio of the best samples.
"""
from __future__ import annotations

import numpy as np

import cattn
from benchmarks.common import compare as sampled

try:
    import torch
except ImportError:       # pragma: no cover - torch is an optional peer
    torch = None

PAIRS = 41


def compare(name, ours, theirs):
    got = sampled(ours, theirs, PAIRS, settle=0.01, seconds=0.01)
    ratios = sorted(o / t for o, t in zip(got.ours, got.peer))
    print(f"| {name} | {min(got.ours) * 1e6:.2f} | "
          f"{min(got.peer) * 1e6:.2f} | "
          f"{1 / got.median:.2f} | "
          f"{ratios[len(ratios) // 10]:.2f}-{ratios[-len(ratios) // 10 - 1]:.2f}"
          f" | {1 / got.best:.2f} |")


def main():
    rng = np.random.default_rng(0)
    print(f"| case (float32) | cattn µs (best) | torch µs (best) | "
          f"cattn/torch (median of pairs) | spread (10-90 %) | best/best |")
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
