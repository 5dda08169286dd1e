"""The fused-attention figures: cattn vs torch SDPA and a NumPy composition.

Run from a venv with cattn, scipy and torch==2.13.0 (CPU) installed:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compare_attention.py

Each peer is timed against cattn in its own interleaved series (A B A B,
median of 3 calls per turn — 5 for NumPy — median over turns), so one peer's
idle worker threads never sit between the other two.  Ratios > 1 mean cattn
is faster.
"""
import argparse

import numpy as np
import scipy.special

import cattn
from cattn.__main__ import interleaved

CASES = [  # B, H, L, S, E, kwargs
    (4, 8, 1024, 1024, 64, {}),
    (1, 8, 4096, 4096, 64, {}),
    (1, 16, 2048, 2048, 128, {}),
    (32, 8, 128, 128, 64, {}),
    (4, 8, 1024, 1024, 64, {"is_causal": True}),
    (1, 32, 1, 4096, 128, {}),
    (8, 32, 1, 2048, 128, {}),
]


def numpy_attention(q, k, v, is_causal=False):
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * np.float32(q.shape[-1] ** -0.5)
    if is_causal:
        s = s + np.triu(np.full(s.shape[-2:], -np.inf, np.float32), 1)
    return np.matmul(scipy.special.softmax(s, axis=-1), v)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(cattn.show_config(mode="dicts")["openmp"]
                          ["default_threads"])
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; "
          f"cattn SIMD {cattn.show_config(mode='dicts')['simd']['active']}")
    print(f"{'case':<34} {'cattn':>9} {'GFLOP/s':>8} {'torch':>9} "
          f"{'torch/cattn':>11} {'numpy/cattn':>11}")
    times = {}
    for B, H, L, S, E, kw in CASES:
        q = rng.standard_normal((B, H, L, E), dtype=np.float32).astype(dtype)
        k = rng.standard_normal((B, H, S, E), dtype=np.float32).astype(dtype)
        v = rng.standard_normal((B, H, S, E), dtype=np.float32).astype(dtype)
        tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))

        def ours():
            return cattn.scaled_dot_product_attention(q, k, v, **kw)

        def theirs():
            with torch.no_grad():
                return F.scaled_dot_product_attention(tq, tk, tv, **kw)

        t_c, t_t = interleaved([ours, theirs], rounds=args.rounds)
        ratio_np = ""
        if B * H * L * S * 4 <= 1 << 30:
            # OpenBLAS workers spin for a while after each matmul and slow
            # the next calls: five calls per turn, so the median is clean.
            t_c2, t_n = interleaved([ours, lambda: numpy_attention(q, k, v,
                                                                   **kw)],
                                    rounds=max(2, args.rounds // 2), repeat=5)
            ratio_np = f"{t_n / t_c2:11.2f}"
        flops = 4 * B * H * L * S * E / (2 if kw.get("is_causal") else 1)
        label = f"B{B} H{H} L{L} S{S} E{E}" + (" causal" if kw else "")
        times[label] = t_c
        print(f"{label:<34} {t_c * 1e3:7.1f}ms {flops / t_c / 1e9:8.0f} "
              f"{t_t * 1e3:7.1f}ms {t_t / t_c:11.2f} {ratio_np}")
    full = times["B4 H8 L1024 S1024 E64"]
    causal = times["B4 H8 L1024 S1024 E64 causal"]
    print(f"causal / full time (B4 H8 L=S=1024 E64): {causal / full:.2f}")


if __name__ == "__main__":
    main()
