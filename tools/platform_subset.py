"""The test subset for an emulated platform (CI runs it on aarch64 under
qemu, where NumPy runs 14-280x slower than natively, so the whole suite is
out of reach): every kernel against its float64 twin at the active SIMD
level, and the same bits for 1 and 2 threads.

    python tools/platform_subset.py

Small arrays only.  Prints one line per check and closes with
"subset: N passed, M failed"; exits 1 on any failure.
"""
import sys
import time

import numpy as np

import cattn
from cattn.__main__ import self_check


def thread_checks(rng):
    """(name, same bits for 1 and 2 threads) for the threaded kernels."""
    q = rng.standard_normal((2, 4, 70, 32), dtype=np.float32)
    kv = rng.standard_normal((2, 4, 150, 32), dtype=np.float32)
    a = rng.standard_normal((130, 97), dtype=np.float32)
    b = rng.standard_normal((97, 141), dtype=np.float32)
    calls = {
        "sdpa float32": lambda n: cattn.scaled_dot_product_attention(
            q, kv, kv, num_threads=n),
        "sdpa causal float64": lambda n: cattn.scaled_dot_product_attention(
            q.astype(np.float64), kv.astype(np.float64), kv.astype(np.float64),
            is_causal=True, num_threads=n),
        "sdpa decode float32": lambda n: cattn.scaled_dot_product_attention(
            q[:, :, :1], kv, kv, num_threads=n),
        "sdpa float16 storage": lambda n: cattn.scaled_dot_product_attention(
            q.astype(np.float16), kv.astype(np.float16),
            kv.astype(np.float16), num_threads=n),
        "matmul float32": lambda n: cattn.matmul(a, b, num_threads=n),
        "softmax float32": lambda n: cattn.softmax(a, num_threads=n),
    }
    try:
        import ml_dtypes
        bf = ml_dtypes.bfloat16
        calls["sdpa bfloat16 storage"] = (
            lambda n: cattn.scaled_dot_product_attention(
                q.astype(bf), kv.astype(bf), kv.astype(bf), num_threads=n))
    except ImportError:
        pass
    for name, call in calls.items():
        one, two = call(1), call(2)
        yield name, one.tobytes() == two.tobytes()


def main():
    rng = np.random.default_rng(20261130)
    simd = cattn.show_config(mode="dicts")["simd"]
    print(f"cattn {cattn.__version__}: SIMD active {simd['active']} "
          f"(supported {', '.join(simd['supported'])})")
    t0 = time.perf_counter()
    passed = failed = 0
    for name, err, tol in self_check(rng):
        ok = bool(err <= tol)
        passed, failed = passed + ok, failed + (not ok)
        print(f"  {name:24s} twin rel. error {err:.2e} (tol {tol:g})  "
              f"{'ok' if ok else 'FAILED'}")
    for name, same in thread_checks(rng):
        passed, failed = passed + same, failed + (not same)
        print(f"  {name:24s} 1 vs 2 threads  "
              f"{'same bits' if same else 'DIFFER: FAILED'}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    print(f"subset: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
