"""paged_attention: new tokens over a paged KV cache.

The definition: sequence b's keys and values are the rows its block table
names, in order; the result is scaled_dot_product_attention of its query
(the last L tokens) on them with is_causal="bottom_right" (the float64
twin on the gathered rows).  Checked at every SIMD level through the
decode path (L <= 4, and int8 pages at any L) and the tiled path (a key
block gathered out of its pages), with page sizes that do not divide the
blocks, 16-bit and int8 pages; unused pages and table entries hold NaN or
garbage and never matter."""
import numpy as np
import pytest

import cattn
from cattn import _reference

from conftest import TOL, exact16

DTYPES = [np.float32, np.float64]


def cache(rng, dtype, seq, page_size=16, P=None, Hkv=2, E=32, Ev=24):
    """Pages (NaN where unused), a shuffled block table (-1 past each
    sequence's pages) and the lengths."""
    need = [-(-int(n) // page_size) for n in seq]
    P = P or sum(need) + 5
    kp = np.full((P, Hkv, page_size, E), np.nan, dtype)
    vp = np.full((P, Hkv, page_size, Ev), np.nan, dtype)
    table = np.full((len(seq), max(need) + 2), -1, np.int64)
    free = list(rng.permutation(P))
    for b, n in enumerate(seq):
        for i in range(need[b]):
            page = free.pop()
            table[b, i] = page
            kp[page] = rng.standard_normal(kp.shape[1:])
            vp[page] = rng.standard_normal(vp.shape[1:])
    return kp, vp, table, np.asarray(seq, np.int64)


def gathered(pages, table, n):
    ps = pages.shape[2]
    return np.stack([pages[table[j // ps], :, j % ps] for j in range(n)],
                    axis=1)


def reference(q, kp, vp, table, seq, **kw):
    out, lse = [], []
    for b in range(q.shape[0]):
        o, l = _reference.scaled_dot_product_attention(
            q[b], gathered(kp, table[b], seq[b]),
            gathered(vp, table[b], seq[b]), enable_gqa=True,
            is_causal="bottom_right", **kw)
        out.append(o)
        lse.append(l)
    return np.stack(out), np.stack(lse)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("L", [1, 3, 9, 70])
@pytest.mark.parametrize("page_size", [16, 5, 1])
def test_matches_gathered_reference(dtype, L, page_size, isa, rng):
    seq = [L + 3, 300, max(L, 40)] if page_size > 1 else [L + 3, L + 50, L]
    kp, vp, table, seq = cache(rng, dtype, seq, page_size)
    q = rng.standard_normal((3, 4, L, 32)).astype(dtype)
    for kw in ({}, {"softcap": 4.0, "sinks": np.array([0.5, 0.0, -1.0, 2.0]),
                    "alibi_slopes": np.array([0.5, 0.25, 0.1, 0.05]),
                    "window": (50, None)}):
        out, lse = cattn.paged_attention(q, kp, vp, table, seq,
                                         return_lse=True, **kw)
        want, want_lse = reference(q, kp, vp, table, seq, **kw)
        assert np.isfinite(out).all()
        assert np.linalg.norm(out - want) <= TOL["attention"][dtype] * max(
            np.linalg.norm(want), 1)
        np.testing.assert_allclose(lse, want_lse, atol=1e-5,
                                   rtol=TOL["attention"][dtype])


def test_low_precision_pages(rng):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    kp, vp, table, seq = cache(rng, np.float32, [12, 130, 64], 16)
    kp, vp = np.nan_to_num(kp), np.nan_to_num(vp)
    for L in (1, 9):
        q = rng.standard_normal((3, 4, L, 32)).astype(np.float32)
        for dtype in (np.float16, ml_dtypes.bfloat16):
            k16, v16 = kp.astype(dtype), vp.astype(dtype)
            with exact16():                # a float32 query on 16-bit pages
                got = cattn.paged_attention(q, k16, v16, table, seq)
                want = cattn.paged_attention(q, k16.astype(np.float32),
                                             v16.astype(np.float32), table,
                                             seq)
                np.testing.assert_array_equal(got, want)
                got16 = cattn.paged_attention(q.astype(dtype), k16, v16,
                                              table, seq)
                assert got16.dtype == dtype
        kq, vq = cattn.quantize(kp, 8), cattn.quantize(vp, 8)
        got = cattn.paged_attention(q, kq, vq, table, seq)
        want, _ = reference(q, kq.dequantize(), vq.dequantize(), table, seq)
        assert np.linalg.norm(got - want) <= 1e-5 * np.linalg.norm(want)


def test_threads_and_unused_table_entries(isa, rng):
    kp, vp, table, seq = cache(rng, np.float32, [600, 30, 1000, 7], 16)
    q = rng.standard_normal((4, 4, 5, 32)).astype(np.float32)
    one = cattn.paged_attention(q, kp, vp, table, seq, num_threads=1)
    two = cattn.paged_attention(q, kp, vp, table, seq, num_threads=2)
    np.testing.assert_array_equal(one, two)
    wild = table.copy()
    wild[wild < 0] = 10 ** 9             # past every sequence's pages
    np.testing.assert_array_equal(
        cattn.paged_attention(q, kp, vp, wild, seq), one)


def test_decode_rows_split_for_many_threads(isa, rng):
    """A few sequences on many threads: the paged decode hands out fewer
    heads per item (down to one key/value head's query heads) so every
    thread has work; rows are independent, so the bits stay those of one
    thread."""
    kp, vp, table, seq = cache(rng, np.float32, [900, 40, 2500], 16, Hkv=2)
    q = rng.standard_normal((3, 16, 1, 32)).astype(np.float32)
    one = cattn.paged_attention(q, kp, vp, table, seq, num_threads=1)
    for t in (2, 7, 64):
        np.testing.assert_array_equal(
            cattn.paged_attention(q, kp, vp, table, seq, num_threads=t), one)
    want, _ = reference(q, kp, vp, table, seq)
    assert np.linalg.norm(one - want) <= TOL["attention"][np.float32] * (
        np.linalg.norm(want))


# ------------------------------------------------ the layer's paged cache --

@pytest.mark.parametrize("storage", [None, "bfloat16", "int8"])
def test_paged_cache_serves_many_sequences(storage, rng):
    """Sequences that start, grow and end at different times, batched
    together as they decode, give what the layer gives on each whole
    sequence with is_causal=True; freed pages are reused."""
    if storage == "bfloat16":
        storage = pytest.importorskip("ml_dtypes").bfloat16
    mha = cattn.MultiHeadAttention(64, 4, num_kv_heads=2, dtype=np.float32,
                                   rng=0, softcap=8.0, sinks=True)
    mha.sinks[:] = rng.standard_normal(4)
    pool = mha.new_paged_cache(num_pages=12, page_size=4, dtype=storage)
    x = {n: rng.standard_normal((1, t, 64)).astype(np.float32)
         for n, t in (("a", 9), ("b", 5), ("c", 7))}
    got = {n: [] for n in x}
    a, b = pool.add_sequence(), pool.add_sequence()
    got["a"].append(mha(x["a"][:, :6], cache=pool, sequences=[a]))
    got["b"].append(mha(x["b"][:, :2], cache=pool, sequences=[b]))
    for t in range(3):                     # a and b decode together
        step = mha(np.concatenate([x["a"][:, 6 + t:7 + t],
                                   x["b"][:, 2 + t:3 + t]]),
                   cache=pool, sequences=[a, b])
        got["a"].append(step[:1])
        got["b"].append(step[1:])
    pool.free(a)
    c = pool.add_sequence()               # takes a's pages
    got["c"].append(mha(x["c"], cache=pool, sequences=[c]))
    assert pool.length(c) == 7 and pool.length(b) == 5
    tol = 1e-5 if storage is None else 3e-2
    for n in ("a", "c"):
        np.testing.assert_allclose(np.concatenate(got[n], axis=1),
                                   mha(x[n], is_causal=True), atol=tol)
    np.testing.assert_allclose(np.concatenate(got["b"], axis=1),
                               mha(x["b"], is_causal=True), atol=tol)
    with pytest.raises(ValueError, match="the paged cache is full"):
        mha(rng.standard_normal((1, 40, 64)).astype(np.float32), cache=pool,
            sequences=[pool.add_sequence()])
    with pytest.raises(ValueError, match="no sequence 0"):
        mha(x["a"][:, :1], cache=pool, sequences=[a])
    with pytest.raises(ValueError, match="needs sequences="):
        mha(x["a"][:, :1], cache=pool)


@pytest.mark.parametrize("L", [1, 5])
def test_chunks_and_prefix(L, isa, rng):
    """Llama 4's chunked layers decoding from pages: a new token sees the
    cached keys of its own chunk only (the others' pages hold NaN here and
    are never read); a prefix every token sees."""
    seq = [L + 40, 150, L + 7]
    kp, vp, table, seq = cache(rng, np.float64, seq, page_size=8)
    q = rng.standard_normal((3, 4, L, 32))
    for kw in (dict(chunk_size=16), dict(prefix=12), dict(chunk_size=64)):
        got = cattn.paged_attention(q, kp, vp, table, seq, **kw)
        for b in range(3):
            m = _reference.visible(L, seq[b], "bottom_right", None,
                                   kw.get("chunk_size"), kw.get("prefix"))
            want, _ = _reference.scaled_dot_product_attention(
                q[b], gathered(kp, table[b], seq[b]),
                gathered(vp, table[b], seq[b]), m, enable_gqa=True)
            np.testing.assert_allclose(got[b], want, rtol=1e-12,
                                       atol=1e-12)
    if L == 1:
        # The pages before the token's chunk hold NaN: never read.
        kp2, vp2 = kp.copy(), vp.copy()
        for b in range(3):
            for p in range((int(seq[b]) - 1) // 16 * 16 // 8):
                kp2[table[b, p]] = np.nan
                vp2[table[b, p]] = np.nan
        np.testing.assert_array_equal(
            cattn.paged_attention(q, kp2, vp2, table, seq, chunk_size=16),
            cattn.paged_attention(q, kp, vp, table, seq, chunk_size=16))
