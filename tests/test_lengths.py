"""Per-row lengths of a padded batch: query_lengths and key_lengths.

The definition (cattn._reference.attention_with_lengths): batch row b is
attention on its first query_lengths[b] queries and key_lengths[b] keys
alone -- causal alignments, windows and ALiBi count from them -- and its
rows past the query length are 0 with lse -inf.  The kernels skip the
padding instead of masking it, so what it holds (inf, NaN) never matters;
tests hold them to the twin at every SIMD level, through the tiled path,
the decode rows, key chunks, top-k, hard attention and the gradient."""
import numpy as np
import pytest

import cattn
from cattn import _reference

from conftest import TOL, exact16

DTYPES = [np.float32, np.float64]


def normwise(got, want):
    want = np.asarray(want, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    return np.linalg.norm(got - want) / (np.linalg.norm(want) or 1.0)


def batch(rng, dtype, L, S, B=4, H=4, hkv=4, E=16, Ev=8):
    q = rng.standard_normal((B, H, L, E)).astype(dtype)
    k = rng.standard_normal((B, hkv, S, E)).astype(dtype)
    v = rng.standard_normal((B, hkv, S, Ev)).astype(dtype)
    # Full, empty, short and random rows.
    ql = np.array([L, 0, max(L // 3, 1), rng.integers(0, L + 1)])[:B]
    kl = np.array([S, rng.integers(0, S + 1), 1, max(S // 2, 1)])[:B]
    return q, k, v, ql, kl


def poison(q, k, v, ql, kl):
    """Copies with inf and NaN everywhere past the lengths."""
    q, k, v = q.copy(), k.copy(), v.copy()
    for b in range(q.shape[0]):
        q[b, :, ql[b]:] = np.nan
        k[b, :, kl[b]:] = np.inf
        v[b, :, kl[b]:] = np.nan
    return q, k, v


# (L, S, options): tiled, decode rows, key chunks, causal both ways, a
# window, masks, GQA, top-k, the variants.
CASES = [
    (37, 53, {}),
    (2, 300, {"is_causal": "bottom_right"}),
    (3, 2500, {}),
    (70, 40, {"is_causal": True}),
    (64, 200, {"window": (30, 5), "is_causal": "bottom_right"}),
    (20, 30, {"mask": "bool"}),
    (20, 30, {"mask": "float"}),
    (33, 45, {"gqa": True, "is_causal": "bottom_right"}),
    (29, 61, {"top_k": 4}),
    (40, 90, {"softcap": 5.0, "sinks": True, "alibi": True,
              "is_causal": "bottom_right"}),
]


def options(rng, dtype, L, S, opts):
    o = dict(opts)
    hkv = 2 if o.pop("gqa", False) else 4
    mask = o.pop("mask", None)
    if mask == "bool":
        o["attn_mask"] = rng.random((L, S)) < 0.8
    elif mask == "float":
        o["attn_mask"] = rng.standard_normal((4, L, S)).astype(dtype)
    if o.pop("sinks", False):
        o["sinks"] = rng.standard_normal(4)
    if o.pop("alibi", False):
        o["alibi_slopes"] = rng.uniform(0, 0.3, (4, 4))
    if hkv != 4:
        o["enable_gqa"] = True
    return hkv, o


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("L,S,opts", CASES, ids=str)
def test_matches_reference_whatever_the_padding_holds(dtype, L, S, opts,
                                                      isa, rng):
    hkv, o = options(rng, dtype, L, S, opts)
    q, k, v, ql, kl = batch(rng, dtype, L, S, hkv=hkv)
    out, lse = cattn.scaled_dot_product_attention(
        q, k, v, query_lengths=ql, key_lengths=kl, return_lse=True, **o)
    want, want_lse = _reference.attention_with_lengths(q, k, v, ql, kl, **o)
    assert normwise(out, want) < TOL["attention"][dtype]
    fin = np.isfinite(want_lse)
    np.testing.assert_array_equal(np.isfinite(lse), fin)
    np.testing.assert_allclose(lse[fin], want_lse[fin],
                               rtol=TOL["attention"][dtype], atol=1e-5)
    for b in range(4):                        # rows past the length
        np.testing.assert_array_equal(out[b, :, ql[b]:], 0)
        assert (lse[b, :, ql[b]:] == -np.inf).all()
    bad = cattn.scaled_dot_product_attention(
        *poison(q, k, v, ql, kl), query_lengths=ql, key_lengths=kl, **o)
    np.testing.assert_array_equal(bad, out)


def test_one_length_alone_and_broadcasting(rng):
    q, k, v, ql, kl = batch(rng, np.float64, 12, 20)
    only_k = cattn.scaled_dot_product_attention(q, k, v, key_lengths=kl)
    want, _ = _reference.attention_with_lengths(q, k, v, 12, kl)
    assert normwise(only_k, want) < 1e-12
    only_q = cattn.scaled_dot_product_attention(q, k, v, query_lengths=ql,
                                                is_causal="bottom_right")
    want, _ = _reference.attention_with_lengths(q, k, v, ql, 20,
                                                is_causal="bottom_right")
    assert normwise(only_q, want) < 1e-12
    # One length for every row: the same as slicing.
    one = cattn.scaled_dot_product_attention(q, k, v, query_lengths=7,
                                             key_lengths=np.int32(9))
    sliced = cattn.scaled_dot_product_attention(q[:, :, :7], k[:, :, :9],
                                                v[:, :, :9])
    assert normwise(one[:, :, :7], sliced) < 1e-12
    # Unbatched (H, L, E) inputs take a scalar.
    out = cattn.scaled_dot_product_attention(q[0], k[0], v[0],
                                             key_lengths=5)
    assert normwise(out, cattn.scaled_dot_product_attention(
        q[0], k[0, :, :5], v[0, :, :5])) < 1e-12


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("L,S,causal,gqa", [(17, 45, False, False),
                                            (64, 64, True, True),
                                            (150, 300, "bottom_right", False),
                                            (1, 80, "bottom_right", True)])
def test_gradient_matches_reference(dtype, L, S, causal, gqa, isa, rng):
    q, k, v, ql, kl = batch(rng, dtype, L, S, hkv=2 if gqa else 4)
    mask = rng.standard_normal((L, S)).astype(dtype)
    sinks = rng.standard_normal(4)
    for kw in ({}, {"softcap": 4.0, "sinks": sinks,
                    "alibi_slopes": rng.uniform(0, 0.3, 4)}):
        kw = dict(kw, is_causal=causal, enable_gqa=gqa)
        out, lse = cattn.scaled_dot_product_attention(
            q, k, v, mask, query_lengths=ql, key_lengths=kl,
            return_lse=True, **kw)
        go = rng.standard_normal(out.shape).astype(dtype)
        got = cattn.scaled_dot_product_attention_grad(
            go, q, k, v, out, lse, mask, query_lengths=ql, key_lengths=kl,
            need_mask_grad=True, **kw)
        want = _reference.attention_grad_with_lengths(go, q, k, v, ql, kl,
                                                      mask, **kw)
        for g, w in zip(got, [w for w in want if w is not None]):
            assert normwise(g, w) < TOL["gradient"][dtype]
        # The padding's contents reach no gradient.
        pq, pk, pv = poison(q, k, v, ql, kl)
        pgo = go.copy()
        for b in range(4):
            pgo[b, :, ql[b]:] = np.nan
        got2 = cattn.scaled_dot_product_attention_grad(
            pgo, pq, pk, pv, out, lse, mask, query_lengths=ql,
            key_lengths=kl, need_mask_grad=True, **kw)
        for g, g2 in zip(got, got2):
            np.testing.assert_array_equal(g, g2)


def test_hard_attention(rng):
    q, k, v, ql, kl = batch(rng, np.float32, 30, 50)
    out, idx = cattn.hard_attention(q, k, v, query_lengths=ql,
                                    key_lengths=kl, return_indices=True,
                                    is_causal="bottom_right")
    want, _ = _reference.attention_with_lengths(
        q, k, v, ql, kl, top_k=1, is_causal="bottom_right")
    np.testing.assert_allclose(out, want, atol=1e-6)
    for b in range(4):
        assert (idx[b, :, ql[b]:] == -1).all()
        assert (idx[b] < max(kl[b], 1)).all()


def test_threads_and_16bit(isa, rng):
    q, k, v, ql, kl = batch(rng, np.float32, 100, 3000, B=3)
    kw = dict(query_lengths=ql[:3], key_lengths=kl[:3], return_lse=True,
              is_causal="bottom_right")
    one = cattn.scaled_dot_product_attention(q, k, v, num_threads=1, **kw)
    two = cattn.scaled_dot_product_attention(q, k, v, num_threads=2, **kw)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    ml_dtypes = pytest.importorskip("ml_dtypes")
    for dtype in (np.float16, ml_dtypes.bfloat16):
        x16 = [x.astype(dtype) for x in (q, k, v)]
        with exact16():
            got = cattn.scaled_dot_product_attention(*x16, **kw)[0]
            want = cattn.scaled_dot_product_attention(
                *(x.astype(np.float32) for x in x16), **kw)[0].astype(dtype)
        np.testing.assert_array_equal(got.view(np.uint16),
                                      want.view(np.uint16))


def test_dask_with_lengths(rng):
    da = pytest.importorskip("dask.array")
    import cattn.dask
    q, k, v, ql, kl = batch(rng, np.float64, 64, 80, B=4, hkv=2)
    for kw in ({}, {"softcap": 3.0, "sinks": rng.standard_normal(4),
                    "alibi_slopes": rng.uniform(0, 0.3, 4),
                    "is_causal": "bottom_right"},
               {"is_causal": True, "window": (10, 0)}):
        out, lse = cattn.dask.scaled_dot_product_attention(
            da.from_array(q, chunks=(1, 2, 32, 16)),
            da.from_array(k, chunks=(1, 2, 16, 16)),
            da.from_array(v, chunks=(1, 2, 16, 8)), enable_gqa=True,
            return_lse=True, query_lengths=ql, key_lengths=kl, **kw)
        want, want_lse = _reference.attention_with_lengths(
            q, k, v, ql, kl, enable_gqa=True, **kw)
        np.testing.assert_allclose(out.compute(scheduler="sync"), want,
                                   atol=1e-12)
        got_lse = lse.compute(scheduler="sync")
        fin = np.isfinite(want_lse)
        np.testing.assert_array_equal(np.isfinite(got_lse), fin)
        np.testing.assert_allclose(got_lse[fin], want_lse[fin], atol=1e-12)


@pytest.mark.parametrize("kw", [{"is_causal": "bottom_right"},
                                {"is_causal": True, "window": (9, 2)}])
def test_block_of_a_call_is_its_rows(rng, isa, kw):
    # A block of queries [q0, q0 + n) against every key, placed by
    # Call.origin with the whole call's lengths (what cattn.dask runs per
    # chunk), gives the whole call's rows bit for bit: visibility, ALiBi
    # and lengths count on global positions in the kernel.
    from cattn import _frame
    q, k, v, ql, kl = batch(rng, np.float32, 40, 56)
    slopes = rng.uniform(0, 0.3, 4)
    want, want_lse = cattn.scaled_dot_product_attention(
        q, k, v, alibi_slopes=slopes, query_lengths=ql, key_lengths=kl,
        return_lse=True, **kw)
    (q, k, v), _, call = _frame.describe(
        "f", q, k, v, alibi_slopes=slopes, query_lengths=ql,
        key_lengths=kl, **kw)
    for q0, n in ((0, 16), (16, 24), (33, 7)):   # tiled (n > 4) as whole
        block = call._replace(L=n, origin=(q0, 0))
        o = np.empty(call.batch + (n, v.shape[-1]), np.float32)
        lse = np.empty(call.batch + (n,), np.float32)
        _frame.forward(block, q[..., q0:q0 + n, :], k, v, None, o, lse)
        np.testing.assert_array_equal(o, want[..., q0:q0 + n, :])
        np.testing.assert_array_equal(lse, want_lse[..., q0:q0 + n])
