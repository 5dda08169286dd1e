"""Accuracy of 16-bit attention against the float64 answer on the same
16-bit inputs: cattn (default and "highest" precision) and torch SDPA.

Run from a venv with cattn, ml_dtypes and torch==2.13.0 (CPU):

    python benchmarks/accuracy_lowp.py [--sizes 1024 4096 8192]

For each dtype and L = S (causal, E = 64, one batch row, two heads): the
normwise relative error ||out - ref|| / ||ref|| and the share of elements
within one ulp of the 16-bit dtype of the exact value (the correctly
rounded answer is within half an ulp).  The reference is the float64
online softmax computed in key blocks (no L x S matrix in memory).
"""
import argparse

import ml_dtypes
import numpy as np

import cattn

BF16, F16 = np.dtype(ml_dtypes.bfloat16), np.dtype(np.float16)


def reference(q, k, v, block=1024):
    """float64 causal attention, block by block over the keys."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    L, S, E = q.shape[-2], k.shape[-2], q.shape[-1]
    m = np.full(q.shape[:-1] + (1,), -np.inf)
    den = np.zeros(q.shape[:-1] + (1,))
    acc = np.zeros(q.shape[:-1] + (v.shape[-1],))
    i = np.arange(L)[:, None]
    for j0 in range(0, S, block):
        s = q @ np.swapaxes(k[..., j0:j0 + block, :], -1, -2) / np.sqrt(E)
        s = np.where(np.arange(j0, min(S, j0 + block))[None, :] <= i, s,
                     -np.inf)
        m_new = np.maximum(m, s.max(axis=-1, keepdims=True))
        a = np.exp(m - m_new)
        p = np.exp(s - m_new)
        den = den * a + p.sum(axis=-1, keepdims=True)
        acc = acc * a + p @ v[..., j0:j0 + block, :]
        m = m_new
    return acc / den


def to_torch(torch, x):
    if x.dtype == BF16:
        return torch.from_numpy(x.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[1024, 4096, 8192])
    args = parser.parse_args()
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    print("| dtype | L = S | cattn default: rel. error, within 1 ulp | "
          "cattn highest | torch 2.13 |")
    print("|---|---|---|---|---|")
    for dtype, name in ((BF16, "bfloat16"), (F16, "float16")):
        for n in args.sizes:
            q, k, v = (rng.standard_normal((1, 2, n, 64), dtype=np.float32)
                       .astype(dtype) for _ in range(3))
            ref = reference(q, k, v)
            ulp = np.spacing(np.abs(ref).astype(dtype)).astype(np.float64)

            def score(out):
                o = out.astype(np.float64)
                err = np.linalg.norm(o - ref) / np.linalg.norm(ref)
                return f"{err:.1e}, {np.mean(np.abs(o - ref) <= ulp):.2%}"
            cells = [score(cattn.scaled_dot_product_attention(
                q, k, v, is_causal=True, precision=p))
                for p in ("default", "highest")]
            if torch is not None:
                with torch.inference_mode():
                    t = F.scaled_dot_product_attention(
                        *(to_torch(torch, x) for x in (q, k, v)),
                        is_causal=True)
                t = (t.view(torch.int16).numpy().view(BF16) if dtype == BF16
                     else t.numpy())
                cells.append(score(t))
            else:
                cells.append("(no torch)")
            print(f"| {name} | {n} | " + " | ".join(cells) + " |",
                  flush=True)


if __name__ == "__main__":
    main()
