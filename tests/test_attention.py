"""scaled_dot_product_attention, self_attention and attention_weights against
the float64 reference, on every SIMD level."""
import itertools

import numpy as np
import pytest

import cattn
from conftest import TOL
from cattn import _reference

sdpa = cattn.scaled_dot_product_attention
DTYPES = [np.float32, np.float64]
# Normwise relative error bounds against float64 (the contract).
NORM_TOL = TOL["attention"]


def qkv(rng, shape_q, shape_k, shape_v, dtype):
    return tuple(rng.standard_normal(s).astype(dtype)
                 for s in (shape_q, shape_k, shape_v))


def check(q, k, v, mask=None, dtype=None, **kw):
    """Run cattn and the reference; compare out and lse."""
    dtype = (dtype or np.result_type(q, k, v)).type
    out, lse = sdpa(q, k, v, mask, return_lse=True, **kw)
    ref_out, ref_lse = _reference.scaled_dot_product_attention(
        q, k, v, mask, **kw)
    assert out.shape == ref_out.shape and out.dtype == dtype
    assert lse.shape == ref_lse.shape and lse.dtype == dtype
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref_out))
    fin = np.isfinite(ref_out)
    diff = np.linalg.norm(out[fin] - ref_out[fin])
    scale = max(np.linalg.norm(ref_out[fin]), 1e-300)
    assert diff <= NORM_TOL[dtype] * scale, diff / scale
    np.testing.assert_array_equal(np.isneginf(lse), np.isneginf(ref_lse))
    ok = np.isfinite(ref_lse)
    np.testing.assert_allclose(lse[ok], ref_lse[ok],
                               rtol=NORM_TOL[dtype], atol=NORM_TOL[dtype])
    return out, lse


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("L, S", [(1, 1), (5, 9), (9, 5), (64, 64),
                                  (130, 257), (257, 130), (1, 3000),
                                  (3, 2500)])
@pytest.mark.parametrize("is_causal", [False, True, "bottom_right"])
def test_shapes_and_causal(dtype, L, S, is_causal, isa, rng):
    q, k, v = qkv(rng, (2, 3, L, 16), (2, 3, S, 16), (2, 3, S, 24), dtype)
    check(q, k, v, is_causal=is_causal)


@pytest.mark.parametrize("heads", [1, 16])
def test_long_keys_split_or_not(heads, isa, rng):
    # Few work items: keys split into chunks; many: one pass over all keys.
    # Both must cover every key (S well past one chunk of 1024).
    q, k, v = qkv(rng, (heads, 100, 16), (heads, 2600, 16),
                  (heads, 2600, 8), np.float32)
    check(q, k, v)
    check(q, k, v, is_causal="bottom_right", window=(1500, None))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("E, Ev", [(1, 1), (1, 7), (33, 5), (64, 128),
                                   (300, 20)])
def test_head_dims(dtype, E, Ev, isa, rng):
    q, k, v = qkv(rng, (2, 19, E), (2, 45, E), (2, 45, Ev), dtype)
    check(q, k, v)
    check(q, k, v, is_causal=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_online_softmax_exp_error_in_ulp(dtype, isa):
    """The exp of the column kernels (x <= 0 only: scores minus their
    running max) has the same <= 2 ulp bound as the softmax's."""
    from cattn._kernels import _attention
    if dtype == np.float32:
        x = np.linspace(-110, 0, 400_003).astype(dtype)
        want = np.exp(x.astype(np.float64))
    else:
        x = np.linspace(-750, 0, 400_003)
        want = np.exp(x.astype(np.longdouble))
    got = np.empty_like(x)
    _attention.exp_neg(x, got)
    want_d = want.astype(dtype)
    normal = want_d >= np.finfo(dtype).tiny
    ulp = np.abs(got[normal] - want[normal]) / np.spacing(want_d[normal])
    assert ulp.max() <= 2.0
    assert np.all(got[want_d == 0] == 0)
    special = np.array([-np.inf, np.nan, 0.0, -0.0, -1e30], dtype=dtype)
    out = np.empty_like(special)
    _attention.exp_neg(special, out)
    assert out[0] == 0 and np.isnan(out[1]) and out[2] == 1 and out[3] == 1
    assert out[4] == 0


def test_p16_exp_error_bound(isa):
    """The exp of a P that P·V rounds to bf16 (the default precision's pair
    products): relative error <= 1.02e-4, 1/19 of bf16's half-ulp (2^-9),
    exactly 1 at 0 (the row's maximum), and the exact exp's special values;
    where no such exp is written it is the exact one."""
    from cattn._kernels import _attention
    x = np.linspace(-87, 0, 400_003).astype(np.float32)
    want = np.exp(x.astype(np.float64))
    got, exact = np.empty_like(x), np.empty_like(x)
    _attention.exp_neg(x, got, p16=True)
    _attention.exp_neg(x, exact)
    rel = np.abs(got / want - 1)
    assert rel.max() <= 1.02e-4
    if isa.startswith("avx512"):
        assert rel.max() > 1e-5          # the cheaper polynomial is in use
    else:
        assert np.array_equal(got, exact)
    special = np.array([-np.inf, np.nan, 0.0, -0.0, -1e30],
                       dtype=np.float32)
    out = np.empty_like(special)
    _attention.exp_neg(special, out, p16=True)
    assert out[0] == 0 and np.isnan(out[1]) and out[2] == 1 and out[3] == 1
    assert out[4] == 0


def test_bf16_default_precision_within_bf16_rounding(rng):
    """The tiled bf16 path at the default precision (P rounded to bf16,
    the cheaper exp) stays as close to the float64 answer on the same
    inputs as bf16's rounding of P allows."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf16 = np.dtype(ml_dtypes.bfloat16)
    q, k, v = (rng.standard_normal((2, 2, 200, 64)).astype(bf16)
               for _ in range(3))
    want = _reference.scaled_dot_product_attention(
        *(x.astype(np.float64) for x in (q, k, v)), is_causal=True)[0]
    got = cattn.scaled_dot_product_attention(q, k, v, is_causal=True,
                                             precision="default")
    err = (np.linalg.norm(got.astype(np.float64) - want)
           / np.linalg.norm(want))
    assert err < 4e-3


@pytest.mark.parametrize("dtype", DTYPES)
def test_accuracy_long_sequences(dtype, rng):
    # float32 within 1e-5 normwise of float64 up to S = 8192 (decode split
    # and the tiled path).
    for L, S in ((1, 8192), (64, 8192)):
        q, k, v = qkv(rng, (1, 2, L, 64), (1, 2, S, 64), (1, 2, S, 64), dtype)
        check(q * 2, k, v)


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_every_broadcast_shape_of_a_mask(kind, rng):
    B, H, L, S = 2, 3, 7, 11
    q, k, v = qkv(rng, (B, H, L, 8), (B, H, S, 8), (B, H, S, 8), np.float64)
    full = (B, H, L, S)
    for keep in itertools.product([False, True], repeat=4):
        shape = tuple(n if kept else 1 for n, kept in zip(full, keep))
        for ndim in (4, 2):
            mshape = shape[-ndim:]
            if kind == "bool":
                mask = rng.random(mshape) < 0.7
            else:
                mask = rng.standard_normal(mshape) * 3
                mask[rng.random(mshape) < 0.2] = -np.inf
            check(q, k, v, mask)


def test_mask_causal_window_together(isa, rng):
    q, k, v = qkv(rng, (2, 2, 40, 16), (2, 2, 70, 16), (2, 2, 70, 8),
                  np.float32)
    bool_mask = rng.random((40, 70)) < 0.8
    float_mask = rng.standard_normal((2, 1, 40, 70)).astype(np.float32)
    for is_causal in (False, True, "bottom_right"):
        for window in (None, (3, 0), (5, 2), (None, 4), (10, None), (0, 0)):
            check(q, k, v, bool_mask, is_causal=is_causal, window=window)
            check(q, k, v, float_mask, is_causal=is_causal, window=window)


@pytest.mark.parametrize("hq, hkv", [(8, 2), (8, 1), (6, 3), (4, 4)])
def test_grouped_query_attention(hq, hkv, rng):
    q, k, v = qkv(rng, (2, hq, 9, 16), (2, hkv, 13, 16), (2, hkv, 13, 8),
                  np.float32)
    mask = rng.random((2, hq, 9, 13)) < 0.8
    out = check(q, k, v, enable_gqa=True)[0]
    check(q, k, v, mask, enable_gqa=True, is_causal=True)
    # Same as repeating the heads by hand.
    rep = hq // hkv
    np.testing.assert_allclose(
        out, sdpa(q, np.repeat(k, rep, 1), np.repeat(v, rep, 1)),
        rtol=1e-6, atol=1e-6)


def test_broadcast_batch_is_read_in_place(rng):
    q, k, v = qkv(rng, (4, 3, 10, 8), (1, 3, 20, 8), (3, 20, 8), np.float64)
    check(q, k, v)
    k_wide = np.broadcast_to(k, (4, 3, 20, 8))
    np.testing.assert_array_equal(sdpa(q, k, v), sdpa(q, k_wide, v))


def test_zero_sizes(rng):
    q, k, v = qkv(rng, (0, 2, 5, 4), (0, 2, 6, 4), (0, 2, 6, 3), np.float32)
    assert sdpa(q, k, v).shape == (0, 2, 5, 3)
    q, k, v = qkv(rng, (2, 0, 4), (2, 6, 4), (2, 6, 3), np.float32)
    out, lse = sdpa(q, k, v, return_lse=True)
    assert out.shape == (2, 0, 3) and lse.shape == (2, 0)
    q, k, v = qkv(rng, (2, 5, 4), (2, 0, 4), (2, 0, 3), np.float32)
    out, lse = sdpa(q, k, v, return_lse=True)
    np.testing.assert_array_equal(out, np.zeros((2, 5, 3)))
    np.testing.assert_array_equal(lse, np.full((2, 5), -np.inf))
    q, k, v = qkv(rng, (5, 0), (6, 0), (6, 3), np.float64)
    check(q, k, v)  # E = 0: every score is 0, uniform weights
    q, k, v = qkv(rng, (5, 4), (6, 4), (6, 0), np.float64)
    out, lse = check(q, k, v)
    assert out.shape == (5, 0)


def test_layouts(rng):
    base = qkv(rng, (2, 3, 20, 8), (2, 3, 30, 8), (2, 3, 30, 12), np.float64)
    want = sdpa(*base)
    variants = [
        tuple(np.swapaxes(np.swapaxes(x, -1, -2).copy(), -1, -2)
              for x in base),                                    # transposed
        tuple(x[..., ::-1, :].copy()[..., ::-1, :] for x in base),  # negative
        tuple(np.asfortranarray(x) for x in base),
        tuple(np.repeat(x, 2, axis=-1)[..., ::2] for x in base),  # strided
    ]
    ro = tuple(x.copy() for x in base)
    for x in ro:
        x.flags.writeable = False
    variants.append(ro)
    for arrays in variants:
        np.testing.assert_allclose(sdpa(*arrays), want, rtol=1e-13, atol=0)
    # Heads-last layout (B, L, H, E) viewed as (B, H, L, E), as from a
    # projection: no copy needed.
    q = rng.standard_normal((2, 20, 3, 8)).transpose(0, 2, 1, 3)
    check(q, q, q)


def test_out_argument(rng):
    q, k, v = qkv(rng, (2, 10, 8), (2, 12, 8), (2, 12, 8), np.float32)
    out = np.empty((2, 10, 8), np.float32)
    assert sdpa(q, k, v, out=out) is out
    np.testing.assert_array_equal(out, sdpa(q, k, v))
    out_f = np.empty((2, 10, 8), np.float32, order="F")
    sdpa(q, k, v, out=out_f)
    np.testing.assert_array_equal(out_f, out)
    qq = q.copy()
    sdpa(qq, k, v, out=qq)  # out is the query: computed into a temporary
    np.testing.assert_array_equal(qq, out)


def test_fully_masked_rows_are_exact_zeros(isa, rng):
    q, k, v = qkv(rng, (2, 6, 8), (2, 9, 8), (2, 9, 8), np.float32)
    mask = rng.random((2, 6, 9)) < 0.5
    mask[:, 2] = False
    mask[1, 4] = False
    fmask = np.where(mask, 0.0, -np.inf).astype(np.float32)
    for m in (mask, fmask):
        out, lse = check(q, k, v, m)
        assert np.all(out[:, 2] == 0) and np.all(out[1, 4] == 0)
        assert np.all(np.isneginf(lse[:, 2])) and np.isneginf(lse[1, 4])
    # Causal bottom-right with L > S: the first L - S rows see nothing.
    q, k, v = qkv(rng, (9, 4), (5, 4), (5, 4), np.float64)
    out, lse = check(q, k, v, is_causal="bottom_right")
    assert np.all(out[:4] == 0) and np.all(np.isneginf(lse[:4]))
    # A window that shuts out every key of some rows.
    out, _ = check(q[:3], k, v, window=(0, 0), is_causal="bottom_right")


def test_nan_propagates_to_the_rows_it_touches(isa, rng):
    q, k, v = qkv(rng, (6, 8), (700, 8), (700, 4), np.float32)
    q[1, 3] = np.nan             # row 1 only
    k[650, 0] = np.nan           # every row that sees key 650
    out = sdpa(q, k, v, is_causal="bottom_right")
    ref = _reference.scaled_dot_product_attention(
        q, k, v, is_causal="bottom_right")[0]
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    assert np.isnan(out[1]).all() and np.isnan(out).any(axis=1).all()
    # Hidden by the mask, a NaN does not touch the row.
    mask = np.ones((6, 700), bool)
    mask[:, 650] = False
    q[1, 3] = 0
    assert not np.isnan(sdpa(q, k, v, mask)).any()
    v2 = v.copy()
    v2[3, 0] = np.nan
    check(q, k, v2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("case", ["causal", "bool", "window", "float",
                                  "top_k", "decode", "key_chunks"])
def test_hidden_nonfinite_values_never_reach(dtype, bad, case, isa, rng):
    """A value a row gives weight 0 (its key hidden) never reaches that
    row, whichever blocks or chunks the kernel visits; rows that see it
    get its inf or NaN, as the reference."""
    L, S, j, kw = {"causal": (700, 700, 600, {"is_causal": True}),
                   "bool": (100, 600, 450, {}),
                   "window": (600, 600, 300, {"window": (50, 0)}),
                   "float": (100, 600, 450, {}),
                   "top_k": (100, 600, 450, {"top_k": 5}),
                   "decode": (2, 3000, 2500, {}),
                   "key_chunks": (40, 2100, 1500, {})}[case]
    q, k, v = qkv(rng, (2, L, 16), (2, S, 16), (2, S, 8), dtype)
    v[:, j, 3] = bad
    sees = np.ones((L, S), bool)
    mask = None
    if case in ("bool", "decode", "key_chunks"):
        sees[::2, j] = False
        mask = sees
    elif case == "float":
        sees[::2, j] = False
        mask = np.where(sees, 0.0, -np.inf).astype(dtype)
    elif case == "top_k":
        k[:, j] = -10 * q.mean(axis=1)          # key j scores low: not kept
    out, _ = check(q, k, v, mask, **kw)
    ref, _ = _reference.scaled_dot_product_attention(q, k, v, mask, **kw)
    np.testing.assert_array_equal(np.isinf(out), np.isinf(ref))
    sees_bad = ~np.isfinite(ref[:, :, 3])
    assert sees_bad.any() or case == "top_k"
    assert not sees_bad.all()
    assert np.isfinite(out[~sees_bad]).all()


def test_huge_logits_do_not_overflow(rng):
    q, k, v = qkv(rng, (4, 8), (300, 8), (300, 8), np.float32)
    out = check(q * 1e3, k * 10, v)[0]
    assert np.isfinite(out).all()
    mask = np.full((4, 300), 1e30, np.float32)
    assert np.isfinite(sdpa(q, k, v, mask)).all()


@pytest.mark.parametrize("case", [
    ((2, 4, 100, 32), (2, 4, 300, 32), {}),
    ((1, 2, 1, 64), (1, 2, 5000, 64), {}),                    # split keys
    ((1, 1, 3, 16), (1, 1, 4000, 16), {"is_causal": "bottom_right"}),
    ((3, 50, 16), (3, 50, 16), {"is_causal": True, "window": (7, 0)}),
    # Per-head schedule for 1-3 threads, grouped for 8 (run's docstring).
    ((4, 8, 130, 16), (4, 8, 200, 16), {"is_causal": True}),
    ((2, 4, 40, 16), (2, 4, 2100, 16), {}),      # per-head with key chunks
])
def test_threads_bitwise_equal(case, isa, rng):
    sq, sk, kw = case
    q, k, v = qkv(rng, sq, sk, sk, np.float32)
    base = sdpa(q, k, v, num_threads=1, return_lse=True, **kw)
    for nt in (2, 3, 8):
        got = sdpa(q, k, v, num_threads=nt, return_lse=True, **kw)
        np.testing.assert_array_equal(got[0], base[0])
        np.testing.assert_array_equal(got[1], base[1])


def test_lse_merges_key_chunks_exactly(rng):
    q, k, v = qkv(rng, (5, 16), (90, 16), (90, 8), np.float64)
    o1, l1 = sdpa(q, k[:40], v[:40], return_lse=True)
    o2, l2 = sdpa(q, k[40:], v[40:], return_lse=True)
    lse = np.logaddexp(l1, l2)
    merged = (o1 * np.exp(l1 - lse)[:, None] + o2 * np.exp(l2 - lse)[:, None])
    np.testing.assert_allclose(merged, sdpa(q, k, v), rtol=1e-13, atol=1e-15)


def test_scale(rng):
    q, k, v = qkv(rng, (5, 8), (7, 8), (7, 8), np.float64)
    for scale in (0.0, -1.5, 3.0, 1e-8):
        check(q, k, v, scale=scale)


def test_self_attention_is_vvv(rng):
    x = rng.standard_normal((2, 30, 16)).astype(np.float32)
    np.testing.assert_array_equal(cattn.self_attention(x, is_causal=True),
                                  sdpa(x, x, x, is_causal=True))
    check(x, x, x, window=(4, 4))


def test_cross_attention_qvv(rng):
    dec = rng.standard_normal((2, 7, 16))
    enc = rng.standard_normal((2, 40, 16))
    check(dec, enc, enc)


def test_attention_weights(rng):
    q, k, v = qkv(rng, (2, 4, 9, 8), (2, 2, 13, 8), (2, 2, 13, 8),
                  np.float64)
    mask = rng.random((9, 13)) < 0.6
    mask[3] = False
    for kw in ({}, {"is_causal": True}, {"window": (2, 3)},
               {"is_causal": "bottom_right", "window": (4, None)}):
        w = cattn.attention_weights(q, k, mask, enable_gqa=True, **kw)
        out = sdpa(q, k, v, mask, enable_gqa=True, **kw)
        assert w.shape == (2, 4, 9, 13)
        np.testing.assert_allclose(
            np.matmul(w, np.repeat(v, 2, axis=1)), out, atol=1e-12)
        sums = w.sum(axis=-1)
        np.testing.assert_allclose(sums[sums > 0], 1.0, rtol=1e-12)
        assert np.all(w[:, :, 3] == 0)


@pytest.mark.parametrize("L", [1, 2, 4])
def test_decode_path(L, isa, rng):
    """A few queries take the row path (no packing): every feature there."""
    S = 2100
    q, k, v = qkv(rng, (2, 3, L, 40), (2, 3, S, 40), (2, 3, S, 24),
                  np.float32)
    check(q, k, v)
    check(q, k, v, is_causal="bottom_right", window=(700, None))
    check(q, k, v, rng.random((L, S)) < 0.5)
    check(q, k, v, rng.standard_normal((2, 1, L, S)).astype(np.float32))
    dead = np.ones((L, S), bool)
    dead[0] = False
    out, lse = check(q, k, v, dead)
    assert np.all(out[..., 0, :] == 0) and np.all(np.isneginf(lse[..., 0]))
    k2 = k.copy()
    k2[0, 0, 1500, 3] = np.nan
    out = sdpa(q, k2, v)
    assert np.isnan(out[0, 0]).all() and not np.isnan(out[1]).any()
    # Transposed (non-unit inner stride) operands go the tiled way: same
    # answer within rounding.
    qt = np.swapaxes(np.swapaxes(q, -1, -2).copy(), -1, -2)
    np.testing.assert_allclose(sdpa(qt, k, v), sdpa(q, k, v), rtol=2e-5,
                               atol=2e-6)
    base = sdpa(q, k, v, num_threads=1)
    np.testing.assert_array_equal(sdpa(q, k, v, num_threads=2), base)
