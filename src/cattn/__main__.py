"""python -m cattn: a self-check against NumPy, then cattn vs NumPy/SciPy.

Prints the configuration, checks each kernel against its float64 reference
on this machine (exit status 1 if any check fails), then times cattn against
the NumPy/SciPy equivalent on default sizes by the method every published
ratio uses (cattn._timing: interleaved pairs of batched samples; the ratio
of the best samples and the median of the per-pair ratios), and prints
both.  Takes well under a minute on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import cattn
from cattn import _reference
from cattn._timing import Comparison, compare


def self_check(rng: np.random.Generator) -> list[tuple[str, float, float]]:
    """(name, relative error, tolerance) for each kernel on random data."""
    results = []
    for dtype, tol in ((np.float32, 1e-5), (np.float64, 1e-12)):
        x = rng.standard_normal((64, 1000)).astype(dtype) * 5
        for name, ours, ref in (
                ("softmax", cattn.softmax, _reference.softmax),
                ("log_softmax", cattn.log_softmax, _reference.log_softmax),
                ("logsumexp", cattn.logsumexp, _reference.logsumexp)):
            want = ref(x)
            err = np.abs(ours(x) - want).max() / max(np.abs(want).max(), 1.0)
            results.append((f"{name} {np.dtype(dtype).name}", err, tol))
        q = rng.standard_normal((2, 4, 100, 32)).astype(dtype)
        kv = rng.standard_normal((2, 4, 300, 32)).astype(dtype)
        for label, kw in (("sdpa", {}), ("sdpa causal", {"is_causal": True}),
                          ("sdpa decode", {"q": q[:, :, :1]})):
            qq = kw.pop("q", q)
            want = _reference.scaled_dot_product_attention(qq, kv, kv, **kw)[0]
            got = cattn.scaled_dot_product_attention(qq, kv, kv, **kw)
            err = np.linalg.norm(got - want) / np.linalg.norm(want)
            results.append((f"{label} {np.dtype(dtype).name}", err, tol))
        # the backward, and top-k (exact selection: same keys as the twin)
        out, lse = cattn.scaled_dot_product_attention(q, kv, kv,
                                                      is_causal=True,
                                                      return_lse=True)
        g = rng.standard_normal(out.shape).astype(dtype)
        grads = cattn.scaled_dot_product_attention_grad(g, q, kv, kv, out,
                                                        lse, is_causal=True)
        want_g = _reference.scaled_dot_product_attention_grad(
            g, q, kv, kv, is_causal=True)
        err = max(np.linalg.norm(a - b) / np.linalg.norm(b)
                  for a, b in zip(grads, want_g[:3]))
        results.append((f"sdpa grad {np.dtype(dtype).name}", err, 2 * tol))
        want = _reference.scaled_dot_product_attention(q, kv, kv,
                                                       top_k=8)[0]
        got = cattn.scaled_dot_product_attention(q, kv, kv, top_k=8)
        err = np.linalg.norm(got - want) / np.linalg.norm(want)
        results.append((f"sdpa top_k=8 {np.dtype(dtype).name}", err, tol))
        a = rng.standard_normal((300, 257)).astype(dtype)
        b = rng.standard_normal((257, 301)).astype(dtype)
        want = _reference.matmul(a, b)
        err = np.abs(cattn.matmul(a, b) - want).max() / np.abs(want).max()
        results.append((f"matmul {np.dtype(dtype).name}", err, tol))
    return results


Peer = Callable[..., Any]


def _softmax_peers() -> tuple[str, Peer, Peer]:
    """scipy.special's softmax and logsumexp, or the plain NumPy
    composition when SciPy is not installed (it is optional)."""
    try:
        import scipy.special  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        def softmax(x: np.ndarray[Any, Any], axis: int) -> Any:
            e = np.exp(x - x.max(axis=axis, keepdims=True))
            return e / e.sum(axis=axis, keepdims=True)

        def logsumexp(x: np.ndarray[Any, Any], axis: int) -> Any:
            m = x.max(axis=axis, keepdims=True)
            return np.log(np.exp(x - m).sum(axis=axis)) + np.squeeze(m, axis)
        return "numpy exp/sum", softmax, logsumexp
    return "scipy.special", scipy.special.softmax, scipy.special.logsumexp


Row = tuple[str, str, Comparison, float | None]


def benchmarks(rng: np.random.Generator, quick: bool) -> list[Row]:
    rows: list[Row] = []
    pairs = 3 if quick else 5
    peer, peer_softmax, peer_logsumexp = _softmax_peers()
    n = 2048 if quick else 4096
    x = rng.standard_normal((n, n)).astype(np.float32)
    for name, ours, theirs in (
            ("softmax", lambda: cattn.softmax(x),
             lambda: peer_softmax(x, axis=-1)),
            ("logsumexp", lambda: cattn.logsumexp(x),
             lambda: peer_logsumexp(x, axis=-1))):
        rows.append((f"{name} float32 ({n}, {n})", peer,
                     compare(ours, theirs, pairs), None))
    B, H, L, E = (2, 8, 512, 64) if quick else (4, 8, 1024, 64)
    q = rng.standard_normal((B, H, L, E)).astype(np.float32)

    def numpy_attention() -> Any:
        s = np.matmul(q, np.swapaxes(q, -1, -2)) * np.float32(E ** -0.5)
        return np.matmul(peer_softmax(s, axis=-1), q)

    rows.append((f"sdpa float32 B{B} H{H} L=S={L} E{E}", "numpy+" + (
        "scipy" if peer == "scipy.special" else "numpy"),
        compare(lambda: cattn.scaled_dot_product_attention(q, q, q),
                numpy_attention, pairs), 4.0 * B * H * L * L * E))
    size = 1024 if quick else 2048
    for dtype in (np.float32, np.float64):
        a = rng.standard_normal((size, size)).astype(dtype)
        b = rng.standard_normal((size, size)).astype(dtype)
        rows.append((f"matmul {np.dtype(dtype).name} {size}^3", "numpy.matmul",
                     compare(lambda: cattn.matmul(a, b),
                             lambda: np.matmul(a, b), pairs),
                     2.0 * size ** 3))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cattn",
                                     description=(__doc__ or "cattn").splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes (a few seconds)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)

    cattn.show_config()
    print("\nself-check against the float64 NumPy references")
    ok = True
    for name, err, tol in self_check(rng):
        passed = err <= tol
        ok &= passed
        print(f"  {name:<22} max rel. error {err:9.2e} (tol {tol:.0e})  "
              f"{'ok' if passed else 'FAIL'}")

    print("\ntimings (interleaved batched samples; ratio = time(peer) / "
          "time(cattn), best / median of pairs; > 1: cattn faster)")
    if os.environ.get("OPENBLAS_CORETYPE"):
        print("  note: OPENBLAS_CORETYPE is set, which can slow numpy's BLAS")
    print(f"  {'case':<34} {'peer':<14} {'cattn':>10} {'peer':>10} "
          f"{'ratio':>12} {'cattn GFLOP/s':>14}")
    for case, peer, got, flops in benchmarks(rng, args.quick):
        t_ours, t_theirs = min(got.ours), min(got.peer)
        gflops = f"{flops / t_ours / 1e9:14.1f}" if flops else ""
        print(f"  {case:<34} {peer:<14} {t_ours * 1e3:8.1f}ms "
              f"{t_theirs * 1e3:8.1f}ms {got.best:5.2f} / {got.median:4.2f}"
              f" {gflops}")
    if not ok:
        print("\nself-check FAILED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
