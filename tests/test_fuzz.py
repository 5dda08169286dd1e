"""Differential fuzzing against the float64 references with hypothesis.

Random shapes (edge-tile sizes, zero-size axes, broadcasting), layouts
(transposed, sliced, negative strides), dtypes, masks, causal/window
variants, GQA, scales, thread counts and SIMD levels (each example runs
at one level this CPU has, drawn like the rest).  The default profile runs a few
hundred cases per property (CI); CATTN_FUZZ=thorough runs 10,000 each.
"""
import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

import cattn  # noqa: E402
from conftest import ISAS, TOL as TOLERANCES             # noqa: E402
from cattn import _config, _reference  # noqa: E402

THOROUGH = os.environ.get("CATTN_FUZZ") == "thorough"
settings.register_profile("ci", max_examples=200, deadline=None,
                          derandomize=True)
settings.register_profile("thorough", max_examples=10_000, deadline=None)
settings.load_profile("thorough" if THOROUGH else "ci")

DTYPES = st.sampled_from([np.float32, np.float64])
TOL = TOLERANCES["layer"]


def at_level(test):
    """Run each example of a @given(data=...) test at a SIMD level drawn
    from every level in use (conftest.ISAS)."""
    def run(data, **kw):
        with _config._isa(data.draw(st.sampled_from(ISAS), label="isa")):
            test(data, **kw)
    run.__name__, run.__doc__ = test.__name__, test.__doc__
    return run


@st.composite
def arrays(draw, shape, dtype):
    """Random values in a random layout: C, transposed copy, negative
    strides or a strided slice -- the same values either way."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    x = rng.standard_normal(shape).astype(dtype) * draw(
        st.sampled_from([1.0, 10.0]))
    layout = draw(st.sampled_from(["C", "F", "neg", "slice"]))
    if layout == "F":
        x = np.asfortranarray(x)
    elif layout == "neg" and x.ndim:
        x = np.flip(np.flip(x, -1).copy(), -1)
    elif layout == "slice" and x.ndim:
        big = np.repeat(x, 2, axis=-1)
        x = big[..., ::2]
    return x


def close(got, want, dtype, slack=0.0):
    got = np.asarray(got, np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    fin = np.isfinite(want)
    scale = max(1.0, float(np.abs(want[fin]).max(initial=0)))
    np.testing.assert_allclose(got[fin], want[fin], rtol=TOL[dtype],
                               atol=TOL[dtype] * scale + slack)


@given(data=st.data(), dtype=DTYPES)
@at_level
def test_sdpa_matches_reference(data, dtype):
    B = data.draw(st.integers(0, 2))
    Hkv = data.draw(st.integers(1, 3))
    group = data.draw(st.integers(1, 3))
    gqa = group > 1
    H = Hkv * group
    L = data.draw(st.integers(0, 70))
    S = data.draw(st.integers(0, 300))
    E = data.draw(st.integers(1, 40))
    Ev = data.draw(st.integers(1, 40))
    q = data.draw(arrays((B, H, L, E), dtype))
    k = data.draw(arrays((B, Hkv, S, E), dtype))
    v = data.draw(arrays((B, Hkv, S, Ev), dtype))
    is_causal = data.draw(st.sampled_from([False, True, "bottom_right"]))
    window = data.draw(st.one_of(st.none(), st.tuples(
        st.one_of(st.none(), st.integers(0, 80)),
        st.one_of(st.none(), st.integers(0, 80)))))
    mask = None
    kind = data.draw(st.sampled_from(["none", "bool", "float"]))
    if kind != "none":
        keep = data.draw(st.tuples(*[st.booleans()] * 4))
        mshape = tuple(n if kept else 1 for n, kept in zip((B, H, L, S), keep))
        rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
        if kind == "bool":
            mask = rng.random(mshape) < 0.8
        else:
            mask = (rng.standard_normal(mshape) * 2).astype(dtype)
    scale = data.draw(st.one_of(st.none(), st.floats(-2, 2)))
    threads = data.draw(st.sampled_from([1, 2, 3]))
    out, lse = cattn.scaled_dot_product_attention(
        q, k, v, mask, is_causal=is_causal, window=window, scale=scale,
        enable_gqa=gqa, return_lse=True, num_threads=threads)
    ref_out, ref_lse = _reference.scaled_dot_product_attention(
        q, k, v, mask, is_causal=is_causal, window=window, scale=scale,
        enable_gqa=gqa)
    assert out.shape == ref_out.shape and out.dtype == dtype
    # Forward error model: each score carries a rounding error of about
    # E·eps·|scale|·max|q|·max|k|; a weight moves by at most that (times
    # itself), so the output by twice that times max|v|.  Large inputs make
    # float32 scores of several hundred, where this dominates.
    eps = np.finfo(dtype).eps
    if q.size and k.size and v.size:
        sc = 1 / np.sqrt(E) if scale is None else abs(scale)
        ds = E * eps * sc * np.abs(q).max() * np.abs(k).max()
        slack = 4 * ds * np.abs(v).max()
    else:
        ds = slack = 0.0
    close(out, ref_out, dtype, slack)
    close(lse, ref_lse, dtype, 4 * ds)


@given(data=st.data(), dtype=DTYPES)
@at_level
def test_softmax_family_matches_reference(data, dtype):
    shape = tuple(data.draw(st.lists(st.integers(0, 40), min_size=1,
                                     max_size=3)))
    x = data.draw(arrays(shape, dtype))
    if x.size:
        rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
        specials = np.array([np.inf, -np.inf, np.nan, 1e30, -1e30], dtype)
        hit = rng.random(x.shape) < data.draw(st.sampled_from([0, 0.05, 0.5]))
        x = np.where(hit, rng.choice(specials, x.shape), x)
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape),
                                                      len(shape) - 1)))
    threads = data.draw(st.sampled_from([1, 2]))
    for ours, ref in ((cattn.softmax, _reference.softmax),
                      (cattn.log_softmax, _reference.log_softmax),
                      (cattn.logsumexp, _reference.logsumexp)):
        got = ours(x, axis=axis, num_threads=threads)
        assert got.dtype == dtype
        close(got, ref(x, axis=axis), dtype)


@given(data=st.data(), dtype=DTYPES)
@at_level
def test_matmul_matches_reference(data, dtype):
    m = data.draw(st.integers(0, 40))
    k = data.draw(st.integers(0, 300))
    n = data.draw(st.integers(0, 140))
    batch_a = tuple(data.draw(st.lists(st.sampled_from([1, 2, 3]),
                                       max_size=2)))
    batch_b = batch_a[data.draw(st.integers(0, len(batch_a))):]
    a = data.draw(arrays(batch_a + (m, k), dtype))
    b = data.draw(arrays(batch_b + (k, n), dtype))
    if not batch_a and data.draw(st.booleans()):
        a = data.draw(arrays((k,), dtype))            # a 1-D operand
    if not batch_b and data.draw(st.booleans()):
        b = data.draw(arrays((k,), dtype))
    threads = data.draw(st.sampled_from([1, 2, 3]))
    got = cattn.matmul(a, b, num_threads=threads)
    want = _reference.matmul(a, b)
    assert got.shape == want.shape
    bound = 2 * max(k, 1) * np.finfo(dtype).eps * np.matmul(
        np.abs(np.asarray(a, np.float64)), np.abs(np.asarray(b, np.float64)))
    np.testing.assert_array_less(np.abs(got - want), bound + 1e-300)


STORAGE16 = st.sampled_from(["float16", "bfloat16"])


@given(data=st.data(), name=STORAGE16)
@at_level
def test_sdpa_16bit_matches_float32_and_reference(data, name):
    """16-bit inputs in random shapes, layouts and options: at
    precision="highest" the bits of the float32 call rounded once (where no
    bf16 pair kernel runs; else within its bounds), at the default within
    the float64 twin's bound for the dtype; int8 keys and values within
    float32 rounding of the call on their dequantized values."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    dtype = np.dtype(ml_dtypes.bfloat16 if name == "bfloat16" else name)
    B = data.draw(st.integers(0, 2))
    H = data.draw(st.sampled_from([1, 2, 4]))
    Hkv = data.draw(st.sampled_from([h for h in (1, 2, 4) if H % h == 0]))
    L = data.draw(st.integers(0, 70))
    S = data.draw(st.integers(0, 300))
    E = data.draw(st.sampled_from([1, 8, 32, 64]))
    q = data.draw(arrays((B, H, L, E), np.float32)).astype(dtype)
    k = data.draw(arrays((B, Hkv, S, E), np.float32)).astype(dtype)
    v = data.draw(arrays((B, Hkv, S, E), np.float32)).astype(dtype)
    kw = dict(enable_gqa=Hkv != H,
              is_causal=data.draw(st.sampled_from([False, True,
                                                   "bottom_right"])),
              window=data.draw(st.sampled_from([None, (3, 1), (None, 0)])),
              num_threads=data.draw(st.sampled_from([1, 2, 3])))
    f32 = [x.astype(np.float32) for x in (q, k, v)]
    want = cattn.scaled_dot_product_attention(*f32, **kw)
    ref, _ = _reference.scaled_dot_product_attention(
        *(x.astype(np.float64) for x in (q, k, v)),
        **{a: b for a, b in kw.items() if a != "num_threads"})
    eps = float(ml_dtypes.finfo(dtype).eps)
    rowmax = np.abs(ref).max(axis=-1, keepdims=True) if ref.size else ref
    # P·V's error scales with the values it averages, not with the output
    # (which may cancel to ~0): float32 P adds ~2**-24 of them, bf16 P 2**-8.
    vmax = float(np.abs(v.astype(np.float64)).max(initial=0))
    for precision in ("highest", "default"):
        got = cattn.scaled_dot_product_attention(
            q, k, v, precision=precision, **kw)
        assert got.dtype == dtype
        if precision == "highest" and name == "float16":
            np.testing.assert_array_equal(
                got.view(np.uint16), want.astype(dtype).view(np.uint16))
        g = got.astype(np.float64)
        pv = 2.0 ** -8 if precision == "default" and name == "bfloat16" \
            else 2.0 ** -20
        assert np.all(np.abs(g - ref) <= eps * rowmax + pv * vmax + 1e-30)
    if E % 8 == 0:
        kq, vq = cattn.quantize(k, 8), cattn.quantize(v, 8)
        got = cattn.scaled_dot_product_attention(q, kq, vq, **kw)
        deq = cattn.scaled_dot_product_attention(
            q, kq.dequantize(), vq.dequantize(), **kw)
        np.testing.assert_allclose(got.astype(np.float32),
                                   deq.astype(dtype).astype(np.float32),
                                   rtol=2 * eps, atol=2 * eps)
