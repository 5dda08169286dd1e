"""The low-precision targets (float16, bfloat16) in one run: each ratio,
its target, and whether it is met.

Run from a venv with cattn, scipy, ml_dtypes and torch==2.13.0 (CPU):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compare_lowp.py

Every comparison is its own interleaved series (A B A B ..., median of a
few calls per turn, median over turns; cattn.__main__.interleaved), so a
noisy neighbour hurts both sides alike.  Ratios are time(other) /
time(cattn 16-bit): > 1 means the 16-bit cattn call is faster.  `--only`
takes a regular expression over the case names.

The comparisons among cattn's own calls run first, before torch has run
in the process: torch's worker threads keep spinning after its calls and
take cores from whatever runs next, which distorted those ratios (the int8
decode read 1.9-2.0x after torch's rows, 3.0-3.1x without them).
"""
import argparse
import re

import ml_dtypes
import numpy as np
import scipy.special

import cattn
from cattn.__main__ import interleaved

BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
SDPA_CASES = [(4, 8, 1024, 1024, 64), (1, 16, 2048, 2048, 128)]
DECODE_CASES = [(1, 32, 1, 4096, 128), (8, 32, 1, 2048, 128)]


def to_torch(torch, x):
    """x as a torch tensor without a copy (bfloat16 through its bits)."""
    if x.dtype == BF16:
        return torch.from_numpy(x.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(x)


def row(name, value, target):
    met = value >= target
    print(f"| {name} | {value:.2f} | >= {target:g} | {'yes' if met else 'NO'} |",
          flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    import torch
    import torch.nn.functional as F
    threads = cattn.show_config(mode="dicts")["openmp"]["default_threads"]
    torch.set_num_threads(threads)
    only = re.compile(args.only)
    rng = np.random.default_rng(0)
    print(f"cattn {cattn.__version__} "
          f"({cattn.show_config(mode='dicts')['simd']['active']}), torch "
          f"{torch.__version__}, {threads} threads; rounds {args.rounds}")
    print("| case | ratio | target | met |")
    print("|---|---|---|---|")

    def sdpa(q, k, v):
        return lambda: cattn.scaled_dot_product_attention(q, k, v)

    def torch_sdpa(q, k, v):
        tq, tk, tv = (to_torch(torch, x) for x in (q, k, v))

        def run():
            with torch.inference_mode():
                return F.scaled_dot_product_attention(tq, tk, tv)
        return run

    for peer in ("cattn", "torch"):          # cattn's own ratios first
        for B, H, L, S, E in SDPA_CASES + DECODE_CASES:
            decode = L == 1
            shape = f"B{B} H{H} L{L} S{S} E{E}"
            q32, k32, v32 = (rng.standard_normal((B, H, n, E),
                                                 dtype=np.float32)
                             for n in (L, S, S))
            for dtype, name in ((BF16, "bf16"), (F16, "fp16")):
                case = f"{name} {'decode' if decode else 'SDPA'} {shape}"
                if not only.search(case):
                    continue
                q, k, v = (x.astype(dtype) for x in (q32, k32, v32))
                ours = sdpa(q, k, v)
                if peer == "torch":
                    t_ours, t_torch = interleaved(
                        [ours, torch_sdpa(q, k, v)], rounds=args.rounds)
                    target = 5 if decode else (2.5 if dtype == BF16 else 2)
                    row(f"{case}: torch {name} / cattn", t_torch / t_ours,
                        target)
                    continue
                t_ours, t_32 = interleaved([ours, sdpa(q32, k32, v32)],
                                           rounds=args.rounds)
                target = 1.8 if decode else (1.6 if dtype == BF16 else 0.95)
                row(f"{case}: cattn float32 / cattn", t_32 / t_ours, target)
        if peer == "cattn":
            int8_rows(args, only, rng, sdpa)
        other_rows(args, only, rng, torch, peer)


def int8_rows(args, only, rng, sdpa):

    for B, H, L, S, E in DECODE_CASES:
        case = f"int8 KV decode B{B} H{H} L{L} S{S} E{E}"
        if not only.search(case):
            continue
        q32, k32, v32 = (rng.standard_normal((B, H, n, E), dtype=np.float32)
                         for n in (L, S, S))
        kq, vq = cattn.quantize(k32), cattn.quantize(v32)
        t_ours, t_32 = interleaved([sdpa(q32, kq, vq), sdpa(q32, k32, v32)],
                                   rounds=args.rounds)
        row(f"{case}: cattn float32 / cattn int8", t_32 / t_ours, 3)


def other_rows(args, only, rng, torch, peer):
    """matmul and softmax: cattn's own and SciPy's ratios (peer "cattn"),
    or torch's and NumPy's (peer "torch")."""
    n = 2048
    a32, b32 = (rng.standard_normal((n, n), dtype=np.float32) for _ in "ab")
    for dtype, name in ((BF16, "bf16"), (F16, "fp16")):
        case = f"{name} matmul {n}^3"
        if not only.search(case) or (peer == "torch") != (dtype == BF16):
            continue
        a, b = a32.astype(dtype), b32.astype(dtype)
        ours = lambda: cattn.matmul(a, b)                      # noqa: E731
        if dtype == BF16:
            ta, tb = to_torch(torch, a), to_torch(torch, b)
            t_ours, t_torch = interleaved([ours, lambda: torch.matmul(ta, tb)],
                                          rounds=args.rounds)
            row(f"{case}: torch bf16 / cattn", t_torch / t_ours, 0.9)
            t_ours, t_np = interleaved([ours, lambda: np.matmul(a, b)],
                                       rounds=2, repeat=1)
            row(f"{case}: numpy ml_dtypes.bfloat16 / cattn", t_np / t_ours, 20)
        else:
            t_ours, t_32 = interleaved([ours, lambda: cattn.matmul(a32, b32)],
                                       rounds=args.rounds)
            row(f"{case}: cattn float32 / cattn", t_32 / t_ours, 0.95)
    if peer == "torch":
        return
    x32 = rng.standard_normal((4096, 4096), dtype=np.float32)
    for dtype, name in ((BF16, "bf16"), (F16, "fp16")):
        case = f"{name} softmax 4096^2"
        if not only.search(case):
            continue
        x = x32.astype(dtype)
        t_ours, t_sp = interleaved(
            [lambda: cattn.softmax(x, axis=-1),
             lambda: scipy.special.softmax(x, axis=-1)], rounds=3, repeat=1)
        row(f"{case}: scipy / cattn", t_sp / t_ours, 10)


if __name__ == "__main__":
    main()
