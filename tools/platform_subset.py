"""The test subset for an emulated platform (CI runs it on aarch64 under
qemu, where NumPy runs 14-280x slower than natively, so the whole suite is
out of reach): every kernel against its float64 twin, and the same bits for
1 and 2 threads, at each SIMD level the CPU supports up to the active one
(CATTN_ISA caps it, as for the test suite).

    python tools/platform_subset.py

Small arrays only.  Prints one line per check and closes with
"subset: N passed, M failed"; exits 1 on any failure.
"""
import sys
import time

import numpy as np

import cattn
from cattn import _config, _reference
from cattn.__main__ import self_check


def rel(got, want):
    """Normwise relative error of got against the float64 twin."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-300))


def exp_checks():
    """(name, max error in ulp, 2) of the vector exps -- the softmax's and
    the column kernels' (x <= 0) -- against a wider exp, on a grid
    through over- and underflow; and (name, 0 or 1, 0) for their special
    values (inf, -inf, NaN, 0)."""
    from cattn._kernels import _attention, _softmax
    for dtype, lo, hi in ((np.float32, -110, 95), (np.float64, -750, 712)):
        wide = np.float64 if dtype == np.float32 else np.longdouble
        for name, fn, top in (("exp", _softmax.exp, hi),
                              ("exp_neg", _attention.exp_neg, 0)):
            x = np.linspace(lo, top, 20_011).astype(dtype)
            got = np.empty_like(x)
            fn(x, got)
            want = np.exp(x.astype(wide))
            with np.errstate(over="ignore"):
                want_d = want.astype(dtype)
            normal = np.isfinite(want_d) & (want_d >= np.finfo(dtype).tiny)
            ulp = np.abs(got[normal] - want[normal]) / np.spacing(want_d[normal])
            yield f"{name} {np.dtype(dtype).name} (ulp)", float(ulp.max()), 2.0
            special = np.array([-np.inf, np.nan, 0.0, top and np.inf], dtype)
            out = np.empty_like(special)
            fn(special, out)
            bad = not (out[0] == 0 and np.isnan(out[1]) and out[2] == 1
                       and out[3] == (np.inf if top else 1)
                       and np.all(got[want_d == 0] == 0)
                       and np.all(np.isinf(got[np.isinf(want_d)])))
            yield f"{name} {np.dtype(dtype).name} specials", float(bad), 0.0


def feature_checks(rng):
    """(name, error, tolerance) for what self_check leaves out: 16-bit and
    int8 storage (the widening loads), the score changes (softcap's tanh,
    ALiBi, sinks, masks, windows), strided and edge-tile products, and
    fully masked rows."""
    q = rng.standard_normal((2, 4, 37, 24), dtype=np.float32)
    kv = rng.standard_normal((2, 4, 45, 24), dtype=np.float32)
    sdpa = cattn.scaled_dot_product_attention
    twin = _reference.scaled_dot_product_attention
    try:
        import ml_dtypes
        storage = ((np.float16, 1e-3), (ml_dtypes.bfloat16, 5e-3))
    except ImportError:
        storage = ((np.float16, 1e-3),)
    for dt, tol in storage:
        q16, kv16 = q.astype(dt), kv.astype(dt)
        want = twin(q16.astype(np.float64), kv16.astype(np.float64),
                    kv16.astype(np.float64), is_causal=True)[0]
        yield (f"sdpa {np.dtype(dt).name} storage",
               rel(sdpa(q16, kv16, kv16, is_causal=True), want), tol)
        want = twin(q16[:, :, :1].astype(np.float64), kv16.astype(np.float64),
                    kv16.astype(np.float64))[0]
        yield (f"decode {np.dtype(dt).name} storage",
               rel(sdpa(q16[:, :, :1], kv16, kv16), want), tol)
    if len(storage) > 1:
        # the bf16 pair kernel's packers on every layout, odd depths, edges
        bf = storage[1][0]
        a = rng.standard_normal((37, 29)).astype(bf)
        b = rng.standard_normal((41, 29)).astype(bf).T
        for name, x, y in (("matmul bfloat16", a, b),
                           ("matmul bfloat16 transposed", b.T, a.T)):
            out = np.empty((x.shape[0], y.shape[1]), np.float32)
            cattn.matmul(x, y, out=out)
            want = _reference.matmul(x.astype(np.float64), y.astype(np.float64))
            yield name, rel(out, want), 1e-5
        q16 = rng.standard_normal((1, 3, 29, 23)).astype(bf)
        k16 = rng.standard_normal((1, 3, 53, 23)).astype(bf)
        v16 = rng.standard_normal((1, 3, 53, 19)).astype(bf)
        want = twin(*(t.astype(np.float64) for t in (q16, k16, v16)))[0]
        # "default" rounds P to bf16 where the pair kernel runs
        for precision, tol in (("default", 5e-3), ("highest", 1e-5)):
            out = np.empty((1, 3, 29, 19), np.float32)
            sdpa(q16, k16, v16, precision=precision, out=out)
            yield f"sdpa bfloat16 E=23 {precision}", rel(out, want), tol
    kq = cattn.quantize(kv, block_size=8)
    kd = kq.dequantize().astype(np.float64)
    yield ("sdpa int8 KV", rel(sdpa(q, kq, kq), twin(q, kd, kd)[0]), 1e-5)
    yield ("decode int8 KV", rel(sdpa(q[:, :, :1], kq, kq),
                                 twin(q[:, :, :1], kd, kd)[0]), 1e-5)
    slopes = np.linspace(0.05, 0.5, 4)
    sinks = np.linspace(-1, 1, 4)
    mask = rng.random((37, 45)) < 0.8
    mask[5] = False                               # a fully masked row
    for dtype, tol in ((np.float32, 1e-5), (np.float64, 1e-12)):
        a, b = q.astype(dtype), kv.astype(dtype)
        kw = dict(softcap=3.0, alibi_slopes=slopes, sinks=sinks,
                  attn_mask=mask)
        yield (f"sdpa cap+alibi+sinks+mask {np.dtype(dtype).name}",
               rel(sdpa(a, b, b, **kw), twin(a, b, b, **kw)[0]), tol)
        kw = dict(window=(7, 3), softcap=50.0)
        yield (f"sdpa window+cap {np.dtype(dtype).name}",
               rel(sdpa(a, b, b, **kw), twin(a, b, b, **kw)[0]), tol)
        x = rng.standard_normal((23, 41)).astype(dtype)[::-2, 1::3]
        y = rng.standard_normal((14, 13)).astype(dtype)[::-1]
        yield (f"matmul strided {np.dtype(dtype).name}",
               rel(cattn.matmul(x, y), _reference.matmul(x, y)), tol)


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
    simd = cattn.show_config(mode="dicts")["simd"]
    levels = simd["supported"][:simd["supported"].index(simd["active"]) + 1]
    print(f"cattn {cattn.__version__}: SIMD levels {', '.join(levels)} "
          f"(compiled {', '.join(simd['compiled'])})")
    t0 = time.perf_counter()
    passed = failed = 0
    for level in levels:
        rng = np.random.default_rng(20261130)
        with _config._isa(level):
            kernels = cattn.show_config(mode="dicts")["kernels"]
            print(f"- {level}: {kernels['matmul_float32']}, "
                  f"{kernels['matmul_float64']}")
            for name, err, tol in (*self_check(rng), *exp_checks(),
                                   *feature_checks(rng)):
                ok = bool(err <= tol)
                passed, failed = passed + ok, failed + (not ok)
                print(f"  {name:34s} error {err:.2e} (tol {tol:g})"
                      f"  {'ok' if ok else 'FAILED'}")
            for name, same in thread_checks(rng):
                passed, failed = passed + same, failed + (not same)
                print(f"  {name:34s} 1 vs 2 threads  "
                      f"{'same bits' if same else 'DIFFER: FAILED'}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    print(f"subset: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
