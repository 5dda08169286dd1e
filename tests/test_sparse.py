"""Sparse attention: each query row attends only the keys it lists
(`indices`, DeepSeek Sparse Attention's top-k selection), against the
float64 twin that folds the lists into a dense mask (_reference.listed_mask,
what transformers' eager DeepSeek-V3.2 does) and against cattn's own dense
call with that mask."""
import numpy as np
import pytest

import cattn
from cattn import _reference
from cattn._kernels import _frame as _kframe

from conftest import TOL
from test_variants import VARIANT_IDS, normwise, qkv, variants
from test_variants import build as variants_build

sdpa = cattn.scaled_dot_product_attention


def pick(rng, lead, L, S, k, empty=0.2, dtype=np.int32):
    """Random distinct keys per row (no locality), shape lead + (L, k), a
    fraction `empty` of the slots -1."""
    rows = np.argsort(rng.random(lead + (L, S)), axis=-1)[..., :k]
    rows = np.where(rng.random(rows.shape) < empty, -1, rows)
    return rows.astype(dtype)


def check(got, want, dtype):
    out, lse = got
    wout, wlse = want
    assert out.dtype == dtype
    assert normwise(out, wout) < TOL["attention"][dtype]
    fin = np.isfinite(wlse)
    np.testing.assert_array_equal(np.isfinite(lse), fin)
    np.testing.assert_allclose(lse[fin], wlse[fin],
                               rtol=TOL["attention"][dtype],
                               atol=TOL["attention"][dtype])


# (L, S, k, options): prefill rows, decode rows with key chunks (k >
# decode_chunk), causal both ways, a window, masks, GQA, lengths.
PATHS = [
    (37, 53, 9, {}),
    (1, 5000, 3000, {}),
    (3, 600, 80, {"is_causal": "bottom_right"}),
    (70, 40, 40, {"is_causal": True}),
    (64, 200, 50, {"window": (30, 5), "is_causal": "bottom_right"}),
    (20, 30, 12, {"mask": "bool"}),
    (20, 30, 12, {"mask": "float"}),
    (33, 45, 10, {"gqa": True}),
    (2, 4000, 2500, {"gqa": True, "is_causal": "bottom_right"}),
]


def build(rng, dtype, L, S, k, opts):
    """test_variants' operands and options for a path, and one list per
    key/value head (B, Hkv, L, k) with GQA, else one shared by all heads."""
    q, key, v, o = variants_build(rng, dtype, L, S, opts)
    lead = (2, 2) if o.get("enable_gqa") else (2, 1)
    return q, key, v, pick(rng, lead, L, S, k), o


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("L,S,k,opts", PATHS, ids=str)
def test_matches_reference(dtype, L, S, k, opts, isa, rng):
    q, key, v, idx, o = build(rng, dtype, L, S, k, opts)
    for var, name in zip(variants(rng) + [{}], VARIANT_IDS + ["plain"]):
        got = sdpa(q, key, v, **o, **var, indices=idx, return_lse=True)
        want = _reference.scaled_dot_product_attention(
            q, key, v, **o, **var, indices=idx)
        check(got, want, dtype)


def test_equals_dense_call_with_folded_mask(isa, rng):
    """The masked dense call computes the same softmax over the same keys:
    equal within float32 rounding (the row path sums in another order)."""
    q, key, v = qkv(rng, np.float32, 300, 300, E=64, Ev=64)
    idx = pick(rng, (2, 1), 300, 300, 64)
    for causal in (False, True):
        got = sdpa(q, key, v, indices=idx, is_causal=causal)
        want = sdpa(q, key, v, is_causal=causal,
                    attn_mask=_reference.listed_mask(idx, q, key))
        assert normwise(got, want) < 2e-6


def test_lists_broadcast_and_any_integer_dtype(rng):
    q, key, v = qkv(rng, np.float64, 6, 20)
    idx = pick(rng, (), 1, 20, 5, dtype=np.int64)        # (1, k): every row
    want = _reference.scaled_dot_product_attention(q, key, v, indices=idx)
    for same in (idx, idx.astype(np.int16), np.sort(idx, axis=-1),
                 np.broadcast_to(idx, (2, 4, 6, 5)), idx.tolist()):
        got = sdpa(q, key, v, indices=same, return_lse=True)
        check(got, _reference.scaled_dot_product_attention(
            q, key, v, indices=same), np.float64)
    check(sdpa(q, key, v, indices=idx, return_lse=True), want, np.float64)


def test_empty_lists_and_fully_hidden_rows(rng):
    q, key, v = qkv(rng, np.float32, 5, 9)
    for idx in (np.full((5, 3), -1), np.zeros((5, 0), np.int32)):
        out, lse = sdpa(q, key, v, indices=idx, return_lse=True)
        assert not out.any() and np.isneginf(lse).all()
    # Row 0 under causal attention sees key 0 only: listing key 4 alone
    # leaves it nothing; a sink then takes all its weight.
    idx = np.full((5, 2), -1)
    idx[:, 0] = 4
    out, lse = sdpa(q, key, v, indices=idx, is_causal=True,
                    sinks=np.full(4, 0.5), return_lse=True)
    assert not out[..., :4, :].any() and (lse[..., :4] == 0.5).all()
    want = _reference.scaled_dot_product_attention(
        q, key, v, indices=idx, is_causal=True, sinks=np.full(4, 0.5))
    check((out, lse), want, np.float32)


def test_lengths_hide_listed_keys_past_them(rng):
    q, key, v = qkv(rng, np.float64, 8, 30)
    idx = pick(rng, (2, 1), 8, 30, 10)
    kl = np.array([30, 12])
    got = sdpa(q, key, v, indices=idx, key_lengths=kl,
               query_lengths=[8, 5], return_lse=True)
    m = _reference.listed_mask(idx, q, key) & (
        np.arange(30) < kl[:, None, None, None])
    want = _reference.scaled_dot_product_attention(q, key, v, attn_mask=m)
    out, lse = got
    np.testing.assert_allclose(out[0], want[0][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out[1, :, :5], want[0][1, :, :5], rtol=1e-12,
                               atol=1e-12)
    assert not out[1, :, 5:].any() and np.isneginf(lse[1, :, 5:]).all()


def test_unlisted_values_never_reach_a_row(rng):
    """inf and NaN in the values and huge keys of keys no row lists change
    nothing; a listed NaN propagates to its row only."""
    q, key, v = qkv(rng, np.float32, 6, 40)
    idx = np.tile(np.arange(0, 40, 2, dtype=np.int32), (6, 1))
    bad_v, bad_k = v.copy(), key.copy()
    bad_v[..., 1::2, :] = np.inf
    bad_v[..., 3, 0] = np.nan
    bad_k[..., 5::2, :] = 1e30
    clean = sdpa(q, key, v, indices=idx)
    np.testing.assert_array_equal(sdpa(q, bad_k, bad_v, indices=idx), clean)
    v2 = v.copy()
    v2[0, 0, 4, 1] = np.nan
    out = sdpa(q, key, v2, indices=idx)
    assert np.isnan(out[0, 0, :, 1]).all()
    assert not np.isnan(np.delete(out.reshape(-1, 8), 1, axis=1)).any()
    # Huge logits do not overflow.
    big = sdpa(q * 1e4, key, v, indices=idx)
    want = _reference.scaled_dot_product_attention(q * 1e4, key, v,
                                                   indices=idx)[0]
    assert normwise(big, want) < TOL["attention"][np.float32]


def test_strided_negative_and_read_only_inputs(rng):
    q, key, v = qkv(rng, np.float64, 10, 24, E=16, Ev=8)
    idx = pick(rng, (2, 1), 10, 24, 7)
    want = sdpa(q, key, v, indices=idx)
    qs = np.ascontiguousarray(q[..., ::-1, :])[..., ::-1, :]   # rows -1
    kt = np.asfortranarray(key)
    vw = np.zeros(v.shape[:-1] + (16,))[..., ::2]
    vw[...] = v
    ro = idx.copy()
    ro.flags.writeable = False
    for args in ((qs, key, v), (q, kt, v), (q, key, vw)):
        np.testing.assert_allclose(sdpa(*args, indices=ro), want,
                                   rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(
        sdpa(q, key, v, indices=np.asfortranarray(idx)), want)


def test_storage_dtypes(isa, rng):
    """16-bit and int8 keys and values: the dense call with the folded mask
    on the same storage, within that storage's rounding."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    q, key, v = qkv(rng, np.float32, 20, 300, E=64, Ev=32)
    idx = pick(rng, (2, 1), 20, 300, 40)
    m = _reference.listed_mask(idx, q, key)
    for dt, tol in ((np.float16, 2e-3), (ml_dtypes.bfloat16, 2e-2)):
        a = [x.astype(dt) for x in (q, key, v)]
        got = sdpa(*a, indices=idx, precision="highest")
        want = sdpa(*a, attn_mask=m, precision="highest")
        assert got.dtype == dt
        assert normwise(got.astype(np.float32), want.astype(np.float32)) < tol
        # A float32 query against a 16-bit cache.
        got = sdpa(q, *a[1:], indices=idx)
        assert normwise(got, sdpa(q, *a[1:], attn_mask=m)) < 1e-5
    kq, vq = cattn.quantize(key, block_size=32), cattn.quantize(v,
                                                              block_size=32)
    got = sdpa(q, kq, vq, indices=idx)
    want = sdpa(q, kq.dequantize(), vq.dequantize(), attn_mask=m)
    assert normwise(got, want) < 1e-5


def test_threads_do_not_change_bits(isa, rng):
    for L, S, k in ((1, 6000, 4000), (70, 300, 60)):
        q, key, v = qkv(rng, np.float32, L, S)
        idx = pick(rng, (2, 1), L, S, k)
        kw = dict(indices=idx, softcap=10.0, sinks=rng.standard_normal(4),
                  alibi_slopes=rng.uniform(0, 1, 4), return_lse=True)
        one = sdpa(q, key, v, num_threads=1, **kw)
        two = sdpa(q, key, v, num_threads=2, **kw)
        for a, b in zip(one, two):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad,err,match", [
    (np.zeros((4, 2)), TypeError, "indices must be an integer array"),
    (np.zeros((4, 2), bool), TypeError, "indices must be an integer array"),
    (np.zeros(3, np.int32), ValueError, r"indices must have shape"),
    (np.zeros((3, 2), np.int32), ValueError, r"do not broadcast"),
    (np.zeros((3, 2, 4, 4, 2), np.int32), ValueError, r"do not broadcast"),
    (np.full((4, 2), 5), ValueError, r"indices\[0, 0\] = 5 is not a key"),
    (np.full((4, 2), 5, np.int32), ValueError,
     r"indices\[0, 0\] = 5 is not a key"),
    (np.full((4, 2), -2, np.int32), ValueError, r"= -2 is not a key"),
    (np.array([[0, 1], [2, 2], [0, 1], [0, 1]], np.int32), ValueError,
     r"indices\[1\] lists key 2 twice"),
])
def test_bad_indices(bad, err, match, rng):
    q, key, v = qkv(rng, np.float32, 4, 5)
    with pytest.raises(err, match="scaled_dot_product_attention: .*" + match):
        sdpa(q, key, v, indices=bad)


def test_top_k_and_indices_exclude_each_other(rng):
    q, key, v = qkv(rng, np.float32, 4, 5)
    with pytest.raises(ValueError, match="top_k and indices"):
        sdpa(q, key, v, indices=np.zeros((4, 1), np.int32), top_k=2)


GRAD_PATHS = [
    (12, 30, 7, {}),
    (20, 40, 12, {"is_causal": True, "gqa": True}),
    (16, 50, 10, {"window": (20, 3), "is_causal": "bottom_right"}),
    (10, 25, 9, {"mask": "bool"}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("L,S,k,opts", GRAD_PATHS, ids=str)
def test_gradient_matches_reference(dtype, L, S, k, opts, isa, rng):
    q, key, v, idx, o = build(rng, dtype, L, S, k, opts)
    for var in ({}, dict(softcap=2.0, alibi_slopes=rng.uniform(0, .3, 4)),
                dict(sinks=rng.standard_normal(4))):
        out, lse = sdpa(q, key, v, **o, **var, indices=idx, return_lse=True)
        go = rng.standard_normal(out.shape).astype(dtype)
        got = cattn.scaled_dot_product_attention_grad(
            go, q, key, v, out, lse, **o, **var, indices=idx)
        want = _reference.scaled_dot_product_attention_grad(
            go, q, key, v, **o, **var, indices=idx)
        for g, w in zip(got[:3], want[:3]):
            assert g.shape == w.shape and g.dtype == dtype
            assert normwise(g, w) < TOL["gradient"][dtype]
        if "sinks" in var:
            np.testing.assert_allclose(got[3], want[4], rtol=1e-5)


def test_gradient_of_a_float_mask_and_lengths(rng):
    q, key, v = qkv(rng, np.float64, 9, 30)
    idx = pick(rng, (2, 1), 9, 30, 8)
    m = rng.standard_normal((9, 30))
    out, lse = sdpa(q, key, v, m, indices=idx, return_lse=True)
    go = rng.standard_normal(out.shape)
    got = cattn.scaled_dot_product_attention_grad(
        go, q, key, v, out, lse, m, indices=idx, need_mask_grad=True)
    want = _reference.scaled_dot_product_attention_grad(
        go, q, key, v, m, indices=idx)
    for g, w in zip(got, want[:4]):
        assert g.shape == w.shape
        assert normwise(g, w) < TOL["gradient"][np.float64]
    # Keys past a length and rows past one pass no gradient.
    kw = dict(indices=idx, key_lengths=[30, 11], query_lengths=[9, 4])
    out, lse = sdpa(q, key, v, return_lse=True, **kw)
    dq, dk, dv = cattn.scaled_dot_product_attention_grad(
        go, q, key, v, out, lse, **kw)
    assert not dk[1, :, 11:].any() and not dv[1, :, 11:].any()
    assert not dq[1, :, 4:].any()
    fold = _reference.listed_mask(idx, q, key) & (
        np.arange(30) < np.array([30, 11])[:, None, None, None])
    want = _reference.scaled_dot_product_attention_grad(
        np.where(np.arange(9)[:, None] < np.array([9, 4])[:, None, None,
                                                          None], go, 0),
        q, key, v, fold)
    assert normwise(dk, want[1]) < 1e-12 and normwise(dv, want[2]) < 1e-12


def test_gradient_threads_and_storage(isa, rng):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    q, key, v = qkv(rng, np.float32, 40, 300, E=32, Ev=16)
    idx = pick(rng, (2, 1), 40, 300, 50)
    out, lse = sdpa(q, key, v, indices=idx, return_lse=True)
    go = rng.standard_normal(out.shape).astype(np.float32)
    one, two = (cattn.scaled_dot_product_attention_grad(
        go, q, key, v, out, lse, indices=idx, num_threads=t) for t in (1, 2))
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    a16 = [x.astype(ml_dtypes.bfloat16) for x in (q, key, v, go)]
    o16, l16 = sdpa(*a16[:3], indices=idx, return_lse=True,
                    precision="highest")
    g16 = cattn.scaled_dot_product_attention_grad(
        a16[3], *a16[:3], o16, l16, indices=idx)
    want = _reference.scaled_dot_product_attention_grad(
        a16[3], *a16[:3], indices=idx)
    for g, w in zip(g16, want[:3]):
        assert g.dtype == ml_dtypes.bfloat16
        assert normwise(g.astype(np.float32), w) < 2e-2


# ------------------------------------------------------- the mask's tiles --

def structured(L, S, kind):
    i, j = np.arange(L)[:, None], np.arange(S)[None, :]
    if kind == "documents":             # 3 packed documents, causal in each
        d = np.searchsorted([L // 3, L // 2], np.arange(max(L, S)),
                            side="right")
        return (d[:L, None] == d[None, :S]) & (j <= i)
    if kind == "prefix":                # bidirectional over 40 keys
        return (j <= i) | (j < 40)
    if kind == "chunks":                # chunked attention, 64 per chunk
        return (i // 64 == j // 64) & (j <= i)
    # Rows of one interval each, but not a run of nondecreasing ends (the
    # extents cannot stand in for the mask): first keys that decrease, and
    # causal rows with rows that see nothing between them.
    if kind == "anti":
        return j >= (L - 1 - i) * S // max(L, 1)
    if kind == "gaps":
        return (j <= i) & (i % 7 != 3)
    return np.random.default_rng(L).random((L, S)) < 0.5


@pytest.mark.parametrize("kind", ["documents", "prefix", "chunks", "anti",
                                  "gaps", "random"])
def test_tile_classes_change_no_bit(kind, isa, rng):
    """Empty tiles skipped, full ones unmasked: the same bits as reading
    every tile, for bool and float masks, broadcast or per head, with
    causal and lengths on top; with NaN and inf inputs a float mask's -inf
    tiles are computed (NaN + -inf must stay NaN, as the dense call has
    it)."""
    q, key, v = qkv(rng, np.float32, 300, 300, E=32, Ev=16)
    m = structured(300, 300, kind)
    fm = np.where(m, np.float32(0), np.float32(-np.inf))
    fm[:, 7] = np.where(m[:, 7], 0.5, -np.inf)      # a partial column
    bad_k = key.copy()
    bad_k[0, 1, 200, 3] = np.nan
    bad_q = q.copy()
    bad_q[1, 2, 100, :] = np.inf
    cases = [dict(attn_mask=m), dict(attn_mask=fm),
             dict(attn_mask=np.stack([m, ~m, m, m])[None], is_causal=True),
             dict(attn_mask=fm, key_lengths=[300, 170],
                  query_lengths=[290, 300]),
             dict(attn_mask=fm, bad=(bad_q, bad_k))]
    for kw in cases:
        a, b = kw.pop("bad", (q, key))
        before = _kframe.use_tile_classes(False)
        try:
            want = sdpa(a, b, v, **kw, return_lse=True)
        finally:
            _kframe.use_tile_classes(before)
        got = sdpa(a, b, v, **kw, return_lse=True)
        for x, y in zip(got, want):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("L,S", [(172, 1024), (150, 2048), (200, 1024)])
def test_hidden_panels_hold_no_stale_scores(L, S, isa, rng):
    """A score panel the extents skip is written -inf, never left to the
    float mask's add: a short last query block's padding columns, exp'd at
    every key block of one thread's scratch, reach +inf, and a later
    block's hidden panel over the same columns would give -inf + inf =
    NaN.  One thread, so the order that brings this about is fixed (each
    SIMD level came out NaN at one of these shapes before)."""
    q, key, v = qkv(rng, np.float32, L, S, E=32, Ev=16, batch=(1, 3))
    fm = np.where(structured(L, S, "anti"), np.float32(0),
                  np.float32(-np.inf))
    before = _kframe.use_tile_classes(False)
    try:
        want = sdpa(q, key, v, fm, num_threads=1, return_lse=True)
    finally:
        _kframe.use_tile_classes(before)
    got = sdpa(q, key, v, fm, num_threads=1, return_lse=True)
    assert np.isfinite(got[0]).all()
    for x, y in zip(got, want):
        np.testing.assert_array_equal(x, y)


def test_tiles_match_reference_with_empty_rows(rng):
    q, key, v = qkv(rng, np.float64, 200, 260)
    m = structured(200, 260, "documents")
    m[150:170] = False                          # rows that see nothing
    got = sdpa(q, key, v, m, return_lse=True)
    check(got, _reference.scaled_dot_product_attention(q, key, v, m),
          np.float64)


@pytest.mark.parametrize("kind", ["documents", "prefix", "chunks", "anti",
                                  "gaps", "random"])
def test_tile_classes_change_no_gradient_bit(kind, rng):
    """The backward skips the same empty tiles at its own blocks: the same
    bits as visiting them, bool and float masks (the mask's gradient too),
    with inf and NaN in grad_out and the values."""
    q, key, v = qkv(rng, np.float32, 300, 300, E=32, Ev=16)
    m = structured(300, 300, kind)
    fm = np.where(m, np.float32(0), np.float32(-np.inf))
    for mask, extra in ((m, {}), (fm, dict(need_mask_grad=True))):
        out, lse = sdpa(q, key, v, mask, return_lse=True)
        go = rng.standard_normal(out.shape).astype(np.float32)
        bad_v = v.copy()
        bad_v[0, 0, 250, 2] = np.inf
        go2 = go.copy()
        go2[1, 1, 30, 0] = np.nan
        for vv, g in ((v, go), (bad_v, go2)):
            before = _kframe.use_tile_classes(False)
            try:
                want = cattn.scaled_dot_product_attention_grad(
                    g, q, key, vv, out, lse, mask, **extra)
            finally:
                _kframe.use_tile_classes(before)
            got = cattn.scaled_dot_product_attention_grad(
                g, q, key, vv, out, lse, mask, **extra)
            for a, b in zip(got, want):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_paged_cache_with_indices(dtype, isa, rng):
    """Listed keys read from their pages: the reference on each sequence's
    gathered keys; a key at or past a sequence's length is not one it has;
    int8 pages read as their dequantized values; any thread count."""
    B, H, Hkv, ps, E, Ev = 2, 4, 2, 4, 16, 8
    kp = rng.standard_normal((10, Hkv, ps, E)).astype(dtype)
    vp = rng.standard_normal((10, Hkv, ps, Ev)).astype(dtype)
    table = np.array([[5, 2, 7, 9], [0, 1, 3, -1]])
    seq = np.array([14, 9])
    for L in (1, 3, 9):
        q = rng.standard_normal((B, H, L, E)).astype(dtype)
        idx = pick(rng, (B, Hkv), L, 14, 6)
        got = cattn.paged_attention(q, kp, vp, table, seq, indices=idx,
                                    return_lse=True)
        for b in range(B):
            rows = table[b, :-(-seq[b] // ps)]
            k = kp[rows].transpose(1, 0, 2, 3).reshape(Hkv, -1, E)
            v = vp[rows].transpose(1, 0, 2, 3).reshape(Hkv, -1, Ev)
            want = _reference.scaled_dot_product_attention(
                q[b], k[:, :seq[b]], v[:, :seq[b]], enable_gqa=True,
                is_causal="bottom_right",
                indices=np.where(idx[b] < seq[b], idx[b], -1))
            check((got[0][b], got[1][b]), want, dtype)
        two = cattn.paged_attention(q, kp, vp, table, seq, indices=idx,
                                    num_threads=2)
        np.testing.assert_array_equal(
            cattn.paged_attention(q, kp, vp, table, seq, indices=idx,
                                  num_threads=1), two)
    if dtype == np.float32:
        kq, vq = cattn.quantize(kp, block_size=8), cattn.quantize(
            vp, block_size=8)
        got = cattn.paged_attention(q, kq, vq, table, seq, indices=idx)
        want = cattn.paged_attention(q, kq.dequantize(), vq.dequantize(),
                                     table, seq, indices=idx)
        assert normwise(got, want) < 1e-6


def test_packed_sequences_with_indices(isa, rng):
    """varlen_attention's packed tokens, each listing keys of its own
    sequence (positions from the sequence's start): the reference on
    each sequence alone; keys past a sequence's length are not its own;
    any thread count; a list of the wrong shape is refused."""
    lq, lk = [5, 1, 12, 0, 3], [9, 4, 20, 2, 0]
    cq = np.concatenate([[0], np.cumsum(lq)])
    ck = np.concatenate([[0], np.cumsum(lk)])
    H, Hkv = 4, 2
    q = rng.standard_normal((cq[-1], H, 8))
    k = rng.standard_normal((ck[-1], Hkv, 8))
    v = rng.standard_normal((ck[-1], Hkv, 6))
    idx = np.argsort(rng.random((cq[-1], Hkv, 20)), -1)[..., :6]
    for causal in (False, "bottom_right"):
        got = cattn.varlen_attention(q, k, v, cq, ck, enable_gqa=True,
                                     indices=idx, is_causal=causal,
                                     return_lse=True)
        for s in range(len(lq)):
            if not lq[s]:
                continue
            seq = [x[a:b].transpose(1, 0, 2) for x, a, b in (
                (q, cq[s], cq[s + 1]), (k, ck[s], ck[s + 1]),
                (v, ck[s], ck[s + 1]))]
            ii = idx[cq[s]:cq[s + 1]].transpose(1, 0, 2)
            want = _reference.scaled_dot_product_attention(
                *seq, enable_gqa=True, is_causal=causal,
                indices=np.where(ii < lk[s], ii, -1))
            check((got[0][cq[s]:cq[s + 1]].transpose(1, 0, 2),
                   got[1][cq[s]:cq[s + 1]].T), want, np.float64)
        one, two = (cattn.varlen_attention(
            q, k, v, cq, ck, enable_gqa=True, indices=idx, num_threads=t)
            for t in (1, 2))
        np.testing.assert_array_equal(one, two)
    with pytest.raises(ValueError, match=r"varlen_attention: indices of "
                       r"shape \(21, 3, 6\) do not broadcast to \(total_q, "
                       r"key/value heads, k\) = \(21, 2, 6\)"):
        cattn.varlen_attention(q, k, v, cq, ck, enable_gqa=True,
                               indices=np.zeros((21, 3, 6), np.int32))


def test_zero_sizes_out_and_gqa_lists(rng):
    """Empty batches, no queries, no keys, no slots: shapes kept, out 0 and
    lse -inf where a row exists, gradients of the inputs' shapes; `out` is
    written in place; per-query-head lists under GQA are refused (a
    group's query heads share their key/value head's list)."""
    for B, L, S, k in [(0, 3, 4, 2), (2, 0, 4, 2), (2, 3, 0, 0), (2, 3, 4, 0),
                       (2, 3, 0, 2)]:
        q = rng.standard_normal((B, 2, L, 8))
        key = rng.standard_normal((B, 2, S, 8))
        idx = np.full((B, 1, L, k), -1, np.int32)
        out, lse = sdpa(q, key, key, indices=idx, return_lse=True)
        assert out.shape == (B, 2, L, 8) and not out.any()
        assert np.isneginf(lse).all()
        grads = cattn.scaled_dot_product_attention_grad(
            np.ones_like(out), q, key, key, out, lse, indices=idx)
        assert [g.shape for g in grads] == [q.shape, key.shape, key.shape]
        assert not any(g.any() for g in grads)
    with pytest.raises(ValueError, match=r"indices\[0, 0\] = 0 is not -1 "
                       r"\(an empty slot\): there are no keys \(S = 0\)"):
        sdpa(np.zeros((1, 1, 2, 4)), np.zeros((1, 1, 0, 4)),
             np.zeros((1, 1, 0, 4)), indices=[[0], [0]])
    q, key, v = qkv(rng, np.float32, 5, 7)
    idx = pick(rng, (2, 1), 5, 7, 3)
    out = np.empty((2, 4, 5, 8), np.float32)
    assert sdpa(q, key, v, indices=idx, out=out) is out
    np.testing.assert_array_equal(out, sdpa(q, key, v, indices=idx))
    with pytest.raises(ValueError, match=r"indices of shape \(2, 4, 5, 1\) "
                       r"do not broadcast to \(\.\.\., key/value heads, L, "
                       r"k\) = \(2, 2, 5, 1\)"):
        sdpa(q, key[:, :2], v[:, :2], enable_gqa=True,
             indices=np.zeros((2, 4, 5, 1), np.int32))


def test_slot_order_changes_no_bit(isa, rng):
    """A row's keys are taken in increasing order whatever the order of
    its slots (where the list is one chunk: every prefill row), so the
    forward and the gradient are the same bits for any permutation."""
    q, key, v = qkv(rng, np.float32, 40, 300)
    idx = pick(rng, (2, 1), 40, 300, 50)
    shuffled = np.take_along_axis(
        idx, np.argsort(rng.random(idx.shape), axis=-1), axis=-1)
    a = sdpa(q, key, v, indices=idx, return_lse=True, is_causal=True)
    b = sdpa(q, key, v, indices=shuffled, return_lse=True, is_causal=True)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    go = rng.standard_normal(a[0].shape).astype(np.float32)
    for x, y in zip(*(cattn.scaled_dot_product_attention_grad(
            go, q, key, v, *a, indices=i, is_causal=True)
            for i in (idx, shuffled))):
        np.testing.assert_array_equal(x, y)


# ------------------------------------------ structure stated directly --
#
# chunk_size (chunked attention) and prefix (prefix-LM) describe what a
# structured mask would: the twin is _reference.visible's mask, folded.

STRUCTURES = [
    (200, 200, dict(chunk_size=64, is_causal=True)),
    (200, 200, dict(chunk_size=50)),                  # bidirectional chunks
    (70, 300, dict(chunk_size=64, is_causal="bottom_right")),
    (1, 300, dict(chunk_size=64, is_causal="bottom_right")),     # decode
    (3, 5000, dict(chunk_size=1024, is_causal="bottom_right")),  # key chunks
    (300, 90, dict(chunk_size=32, is_causal=True)),   # rows past every key
    (200, 200, dict(chunk_size=1000, is_causal=True)),   # one chunk: causal
    (200, 200, dict(prefix=37, is_causal=True)),
    (200, 200, dict(prefix=37, is_causal=True, window=(20, 0))),
    (50, 260, dict(prefix=100, is_causal="bottom_right")),
    (1, 260, dict(prefix=100, is_causal="bottom_right")),
    (120, 120, dict(prefix=500, is_causal=True)),     # all keys: no causal
    (150, 150, dict(chunk_size=40, window=(15, None))),
    (150, 150, dict(chunk_size=40, prefix=10, is_causal=True)),
]


def folded(L, S, o):
    """The twin: the call's visibility as a bool mask, causal folded in."""
    return _reference.visible(L, S, o.get("is_causal", False),
                              o.get("window"), o.get("chunk_size"),
                              o.get("prefix"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("L,S,o", STRUCTURES, ids=str)
def test_structure_matches_reference(dtype, L, S, o, isa, rng):
    q, key, v = qkv(rng, dtype, L, S)
    m = folded(L, S, o)
    for var in ({}, dict(softcap=5.0, alibi_slopes=2.0 ** -np.arange(1, 5),
                         sinks=rng.standard_normal(4))):
        got = sdpa(q, key, v, **o, **var, return_lse=True)
        check(got, _reference.scaled_dot_product_attention(
            q, key, v, m, **var), dtype)
        # The same softmax as the dense call with that mask (which reads
        # it), within rounding (the mask path sums tiles in its own order).
        assert normwise(got[0], sdpa(q, key, v, m, **var)) < TOL[
            "attention"][dtype] * 0.5


@pytest.mark.parametrize("L,S,o", [STRUCTURES[i] for i in (0, 2, 7, 9, 13)],
                         ids=str)
def test_structure_gradient(L, S, o, isa, rng):
    q, key, v = qkv(rng, np.float64, L, S)
    m = folded(L, S, o)
    out, lse = sdpa(q, key, v, **o, return_lse=True)
    go = rng.standard_normal(out.shape)
    got = cattn.scaled_dot_product_attention_grad(go, q, key, v, out, lse,
                                                  **o)
    want = _reference.scaled_dot_product_attention_grad(go, q, key, v, m)
    for g, w in zip(got, want[:3]):
        assert normwise(g, w) < TOL["gradient"][np.float64]


def test_structure_storage_dtypes(isa, rng):
    """float16, bfloat16 and int8 keys and values: the stated structure
    is the dense call with its mask on the same storage (the same rows
    read, the same visibility), within rounding."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    q, key, v = qkv(rng, np.float32, 70, 300, E=64, Ev=32)
    kq, vq = (cattn.quantize(x, block_size=32) for x in (key, v))
    for o in (dict(chunk_size=64, is_causal="bottom_right"),
              dict(prefix=100, is_causal=True)):
        m = folded(70, 300, o)
        for dt, tol in ((np.float16, 2e-3), (ml_dtypes.bfloat16, 2e-2)):
            a = [x.astype(dt) for x in (q, key, v)]
            got = sdpa(*a, **o)
            assert got.dtype == dt
            want = sdpa(*a, attn_mask=m)
            assert normwise(got.astype(np.float32),
                            want.astype(np.float32)) < tol
            # A float32 query against a 16-bit cache.
            assert normwise(sdpa(q, *a[1:], **o),
                            sdpa(q, *a[1:], attn_mask=m)) < 1e-5
        assert normwise(sdpa(q, kq, vq, **o),
                        sdpa(q, kq, vq, attn_mask=m)) < 1e-5


def test_structure_with_lengths_topk_and_indices(rng):
    """Chunks and the prefix count positions from each row's lengths
    (bottom-right), and combine with top-k and listed keys."""
    L, S = 40, 130
    q, key, v = qkv(rng, np.float64, L, S)
    ql, kl = np.array([40, 17]), np.array([130, 61])
    for o in (dict(chunk_size=16, is_causal="bottom_right"),
              dict(prefix=9, is_causal="bottom_right")):
        got = sdpa(q, key, v, **o, query_lengths=ql, key_lengths=kl)
        for b in range(2):
            m = folded(ql[b], kl[b], o)
            want, _ = _reference.scaled_dot_product_attention(
                q[b, :, :ql[b]], key[b, :, :kl[b]], v[b, :, :kl[b]], m)
            assert normwise(got[b, :, :ql[b]], want) < 1e-12
            assert not got[b, :, ql[b]:].any()
        want, _ = _reference.scaled_dot_product_attention(
            q, key, v, folded(L, S, o), top_k=5)
        assert normwise(sdpa(q, key, v, **o, top_k=5), want) < 1e-12
        idx = pick(rng, (2, 1), L, S, 30)
        want, _ = _reference.scaled_dot_product_attention(
            q, key, v, folded(L, S, o), indices=idx)
        assert normwise(sdpa(q, key, v, **o, indices=idx), want) < 1e-12


def test_structure_threads_do_not_change_bits(isa, rng):
    q, key, v = qkv(rng, np.float32, 500, 700, E=32, Ev=32)
    for o in (dict(chunk_size=96, is_causal="bottom_right"),
              dict(prefix=200, is_causal=True), dict(chunk_size=128)):
        one = sdpa(q, key, v, **o, num_threads=1, return_lse=True)
        two = sdpa(q, key, v, **o, num_threads=2, return_lse=True)
        for a, b in zip(one, two):
            np.testing.assert_array_equal(a, b)
        go = rng.standard_normal(one[0].shape).astype(np.float32)
        g1, g2 = (cattn.scaled_dot_product_attention_grad(
            go, q, key, v, *one, **o, num_threads=t) for t in (1, 2))
        for a, b in zip(g1, g2):
            np.testing.assert_array_equal(a, b)


def test_hidden_chunks_never_reach_a_row(rng):
    """A value no visible key carries (inf, NaN) changes nothing: the
    tiles outside a query's chunk are never read."""
    q, key, v = qkv(rng, np.float64, 128, 128)
    want = sdpa(q, key, v, chunk_size=64, is_causal=True)
    v2 = v.copy()
    v2[..., 64:, :] = np.nan          # chunk 1's values: chunk 0 never sees
    got = sdpa(q, key, v2, chunk_size=64, is_causal=True)
    np.testing.assert_array_equal(got[..., :64, :], want[..., :64, :])
    assert np.isnan(got[..., 64:, :]).all()


@pytest.mark.parametrize("kw,err,match", [
    (dict(chunk_size=0), ValueError, "chunk_size must be None or an int >= 1, got 0"),
    (dict(chunk_size=-3), ValueError, "chunk_size must be None or an int >= 1"),
    (dict(chunk_size=2.5), TypeError, "chunk_size must be None or an int"),
    (dict(chunk_size=True), TypeError, "chunk_size must be None or an int"),
    (dict(prefix=0, is_causal=True), ValueError, "prefix must be None or an int >= 1, got 0"),
    (dict(prefix="8", is_causal=True), TypeError, "prefix must be None or an int"),
    (dict(prefix=8), ValueError, "prefix=8 needs is_causal"),
    (dict(block_mask=np.ones((1, 2), np.float32)), TypeError,
     "block_mask must be a bool array"),
    (dict(block_mask=np.ones((3, 3), bool), block_size=2), ValueError,
     r"block_mask of shape \(3, 3\) does not broadcast to \(\.\.\., "
     r"ceil\(L / 2\), ceil\(S / 2\)\) = \(2, 4, 2, 3\)"),
    (dict(block_mask=np.ones(3, bool)), ValueError,
     r"block_mask of shape \(3,\) does not broadcast"),
    (dict(block_mask=np.ones((1, 1), bool), block_size=0), ValueError,
     "block_size must be None or an int >= 1, got 0"),
    (dict(block_mask=np.ones((1, 1), bool), block_size=(4, 2.5)), TypeError,
     "block_size must be None or an int >= 1, got 2.5"),
    (dict(block_mask=np.ones((1, 1), bool), block_size=(1, 2, 3)),
     ValueError, r"block_size must be an int >= 1 or a pair"),
    (dict(block_size=4), ValueError, "block_size=4 needs block_mask"),
])
def test_bad_structure(kw, err, match, rng):
    q, key, v = qkv(rng, np.float32, 4, 6)
    with pytest.raises(err, match="scaled_dot_product_attention: " + match):
        sdpa(q, key, v, **kw)
    out, lse = sdpa(q, key, v, return_lse=True)
    with pytest.raises(err, match="scaled_dot_product_attention_grad: "
                       + match):
        cattn.scaled_dot_product_attention_grad(out, q, key, v, out, lse,
                                                **kw)


# ------------------------------------------------------------ block masks --
# block_mask: which blocks of queries see which blocks of keys, no mask.
# The tiled paths classify their tiles from the table and expand only the
# PARTIAL ones; the rest fold it into a mask.  Either way the result is
# the dense call's with the table expanded (_reference.block_visible),
# bit for bit: the same classes, extents and bytes where a tile is read.

def table(rng, lead, L, S, bq, bk, kind="random"):
    nq, nk = -(-L // bq), -(-S // bk)
    if kind == "diagonal":              # documents of whole blocks
        t = np.eye(nq, nk, dtype=bool)
        return np.broadcast_to(t, lead + t.shape).copy()
    if kind == "band":                  # a local window of blocks, 1 global
        i, j = np.arange(nq)[:, None], np.arange(nk)[None, :]
        t = (abs(i * nk // max(nq, 1) - j) <= 1) | (j == 0)
        return np.broadcast_to(t, lead + t.shape).copy()
    t = rng.random(lead + (nq, nk)) < 0.5
    if t.size:
        t.reshape(-1, nk)[0] = False    # a block row that sees nothing
    return t


BLOCKS = [
    # (L, S, block_size, table kind and leading shape, options)
    (300, 517, 64, ("random", (2, 1)), {}),
    (300, 517, (7, 13), ("random", (2, 4)), {"is_causal": True}),
    (257, 300, 128, ("diagonal", ()), {"is_causal": True}),
    (200, 700, (1, 96), ("band", (1, 1)), {"is_causal": "bottom_right"}),
    (150, 150, 1, ("random", (4,)), {"window": (40, 0)}),
    (130, 90, (1000, 30), ("random", (2, 4)), {}),           # one block row
    (130, 90, (10**30, 7), ("random", (2, 4)), {}),     # past any int64
    (100, 260, (16, 260), ("random", (2, 1)),
     {"key_lengths": [260, 111], "query_lengths": [100, 57]}),
    (96, 200, 32, ("random", (2, 4)),
     {"softcap": 5.0, "alibi_slopes": 2.0 ** -np.arange(1, 5),
      "sinks": np.arange(4.0)}),
    (80, 3000, (40, 128), ("band", (2, 1)), {}),            # key chunks
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("L,S,bs,t,o", BLOCKS, ids=str)
def test_block_mask_is_the_expanded_mask(dtype, L, S, bs, t, o, isa, rng):
    q, key, v = qkv(rng, dtype, L, S)
    bq, bk = (bs, bs) if isinstance(bs, int) else bs
    tb = table(rng, t[1], L, S, bq, bk, t[0])
    m = _reference.block_visible(tb, bs, L, S)
    got = sdpa(q, key, v, **o, block_mask=tb, block_size=bs, return_lse=True)
    want = sdpa(q, key, v, m, **o, return_lse=True)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    mref = m & _reference.visible(L, S, o.get("is_causal", False),
                                  o.get("window"))
    if "key_lengths" in o:       # the twin takes the lengths as the mask's
        kl, ql = o["key_lengths"], o["query_lengths"]
        for b in range(2):
            w, _ = _reference.scaled_dot_product_attention(
                q[b, :, :ql[b]], key[b, :, :kl[b]], v[b, :, :kl[b]],
                np.broadcast_to(mref, (2, 4, L, S))[b, :, :ql[b], :kl[b]])
            assert normwise(got[0][b, :, :ql[b]], w) < TOL["attention"][dtype]
        return
    var = {n: o[n] for n in ("softcap", "alibi_slopes", "sinks") if n in o}
    check(got, _reference.scaled_dot_product_attention(q, key, v, mref,
                                                       **var), dtype)


def test_block_mask_folded_paths(isa, rng):
    """Where a mask is read row by row (decode rows, listed keys, top-k)
    or given too, the table joins it: bool, float, broadcast."""
    L, S = 40, 150
    q, key, v = qkv(rng, np.float64, L, S)
    tb = table(rng, (2, 1), L, S, 8, 16)
    m = _reference.block_visible(tb, (8, 16), L, S)
    idx = pick(rng, (2, 1), L, S, 30)
    bm = rng.random((L, S)) < 0.7
    fm = np.where(rng.random((4, L, S)) < 0.7, rng.standard_normal(
        (4, L, S)), -np.inf)
    for kw, mask in ((dict(indices=idx), m), (dict(top_k=5), m),
                     (dict(attn_mask=bm), m & bm),
                     (dict(attn_mask=fm), np.where(m, fm, -np.inf))):
        got = sdpa(q, key, v, **kw, block_mask=tb, block_size=(8, 16))
        extra = {n: x for n, x in kw.items() if n != "attn_mask"}
        want, _ = _reference.scaled_dot_product_attention(q, key, v, mask,
                                                          **extra)
        assert normwise(got, want) < 1e-12
    for rows in (1, 3):                                 # decode rows
        got = sdpa(q[..., :rows, :], key, v, block_mask=tb[..., :1, :],
                   block_size=(8, 16), is_causal="bottom_right")
        want, _ = _reference.scaled_dot_product_attention(
            q[..., :rows, :], key, v, m[..., :rows, :] & _reference.visible(
                rows, S, "bottom_right"))
        assert normwise(got, want) < 1e-12


def test_block_mask_storage_and_gqa(isa, rng):
    """float16, bfloat16 and int8 keys and values, and GQA's groups: the
    dense call with the expanded mask on the same storage, bit for bit."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    q, key, v = qkv(rng, np.float32, 100, 300, E=64, Ev=32, hkv=2)
    tb = table(rng, (2, 4), 100, 300, 32, 64, "band")
    m = _reference.block_visible(tb, (32, 64), 100, 300)
    kq, vq = (cattn.quantize(x, block_size=32) for x in (key, v))
    for dt in (np.float16, ml_dtypes.bfloat16, None):
        a = ((q, kq, vq) if dt is None else
             tuple(x.astype(dt) for x in (q, key, v)))
        for qq in ((a[0], q) if dt is not None else (q,)):
            got = sdpa(qq, *a[1:], block_mask=tb, block_size=(32, 64),
                       enable_gqa=True, is_causal=True)
            want = sdpa(qq, *a[1:], attn_mask=m, enable_gqa=True,
                        is_causal=True)
            np.testing.assert_array_equal(got, want)


def test_block_mask_gradient(isa, rng):
    """The backward classifies its own tiles from the table: the gradient
    of the dense call with the expanded mask, bit for bit (with NaN in
    grad_out every tile is visited), and the twin's."""
    L, S = 200, 260
    q, key, v = qkv(rng, np.float64, L, S, hkv=2)
    for bs, kind in (((16, 40), "random"), (64, "band")):
        bq, bk = (bs, bs) if isinstance(bs, int) else bs
        tb = table(rng, (2, 4), L, S, bq, bk, kind)
        m = _reference.block_visible(tb, bs, L, S)
        o = dict(enable_gqa=True, is_causal="bottom_right")
        out, lse = sdpa(q, key, v, m, **o, return_lse=True)
        go = rng.standard_normal(out.shape)
        go2 = go.copy()
        go2[1, 3, 7, 2] = np.nan
        for g in (go, go2):
            got = cattn.scaled_dot_product_attention_grad(
                g, q, key, v, out, lse, **o, block_mask=tb, block_size=bs)
            want = cattn.scaled_dot_product_attention_grad(
                g, q, key, v, out, lse, m, **o)
            for a, b in zip(got, want):
                np.testing.assert_array_equal(a, b)
        ref = _reference.scaled_dot_product_attention_grad(
            go, q, np.repeat(key, 2, 1), np.repeat(v, 2, 1),
            m & _reference.visible(L, S, "bottom_right"))
        got = cattn.scaled_dot_product_attention_grad(
            go, q, key, v, out, lse, **o, block_mask=tb, block_size=bs)
        assert normwise(got[0], ref[0]) < TOL["gradient"][np.float64]
        for g, w in zip(got[1:], ref[1:3]):
            w = w.reshape(2, 2, 2, *w.shape[-2:]).sum(2)
            assert normwise(g, w) < TOL["gradient"][np.float64]


def test_block_mask_classes_threads_and_hidden_values(rng):
    """Classes off (every tile expanded and read) give the same bits, any
    thread count too; a value only hidden blocks hold never reaches a
    row."""
    q, key, v = qkv(rng, np.float32, 400, 400, E=32, Ev=16)
    tb = table(rng, (2, 4), 400, 400, 50, 50, "band")
    kw = dict(block_mask=tb, block_size=50, is_causal=True)
    out = sdpa(q, key, v, **kw, return_lse=True)
    go = rng.standard_normal(out[0].shape).astype(np.float32)
    g = cattn.scaled_dot_product_attention_grad(go, q, key, v, *out, **kw)
    before = _kframe.use_tile_classes(False)
    try:
        out0 = sdpa(q, key, v, **kw, return_lse=True)
        g0 = cattn.scaled_dot_product_attention_grad(go, q, key, v, *out,
                                                     **kw)
    finally:
        _kframe.use_tile_classes(before)
    out1 = sdpa(q, key, v, **kw, return_lse=True, num_threads=1)
    g1 = cattn.scaled_dot_product_attention_grad(go, q, key, v, *out, **kw,
                                                 num_threads=1)
    for a, b, c in zip(out + g, out0 + g0, out1 + g1):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    t2 = np.zeros((8, 8), bool)
    t2[:, :4] = True                    # keys 200.. hidden from every row
    v2 = v.copy()
    v2[..., 200:, :] = np.nan
    want = sdpa(q, key[..., :200, :], v[..., :200, :])
    got = sdpa(q, key, v2, block_mask=t2, block_size=50)
    np.testing.assert_array_equal(got, want)
