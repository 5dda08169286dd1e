"""varlen_attention: sequences packed end to end (FlashAttention's
cu_seqlens layout).

The definition: sequence s is scaled_dot_product_attention on its own
slices (the float64 twin on them), so each is checked against that, at
every SIMD level, through the tiled path, the decode rows (every sequence
<= 4 queries) and key chunks (few, long sequences); and every check that
a kernel never reads past a sequence: the arrays are views of a larger
buffer whose tail is NaN, and another sequence's keys never change a
result."""
import numpy as np
import pytest

import cattn
from cattn import _reference

from conftest import TOL, exact16

DTYPES = [np.float32, np.float64]


def packed(rng, dtype, lens_q, lens_k, H=4, Hkv=2, E=16, Ev=8):
    """q, k, v packed in views of NaN-tailed buffers, and the offsets."""
    cq = np.concatenate([[0], np.cumsum(lens_q)]).astype(np.int64)
    ck = np.concatenate([[0], np.cumsum(lens_k)]).astype(np.int32)
    out = []
    for n, h, e in ((cq[-1], H, E), (ck[-1], Hkv, E), (ck[-1], Hkv, Ev)):
        buf = np.full((n + 70, h, e), np.nan, dtype)
        buf[:n] = rng.standard_normal((n, h, e))
        out.append(buf[:n])
    return (*out, cq, ck)


def per_sequence(q, k, v, cq, ck, **kw):
    """The twin: each sequence alone, (total_q, H, Ev) and (total_q, H)."""
    t = lambda x: x.transpose(1, 0, 2)            # noqa: E731
    out = np.zeros(q.shape[:2] + v.shape[2:])
    lse = np.zeros(q.shape[:2])
    for s in range(len(cq) - 1):
        o, l = _reference.scaled_dot_product_attention(
            t(q[cq[s]:cq[s + 1]]), t(k[ck[s]:ck[s + 1]]),
            t(v[ck[s]:ck[s + 1]]), enable_gqa=True,
            sinks=None if kw.get("sinks") is None else
            np.broadcast_to(kw["sinks"], (len(cq) - 1, q.shape[1]))[s],
            alibi_slopes=None if kw.get("alibi_slopes") is None else
            np.broadcast_to(kw["alibi_slopes"], (len(cq) - 1,
                                                 q.shape[1]))[s],
            **{n: x for n, x in kw.items()
               if n not in ("sinks", "alibi_slopes")})
        out[cq[s]:cq[s + 1]] = t(o)
        lse[cq[s]:cq[s + 1]] = l.T
    return out, lse


SEQUENCES = {
    "mixed": ([5, 1, 12, 0, 40], [5, 1, 12, 7, 40]),
    "cross": ([3, 20, 9], [50, 2, 0]),
    "decode": ([1, 2, 1, 4], [300, 7, 1200, 33]),
    "long": ([3, 5], [2500, 1800]),
    "spread": ([32, 700, 64, 2, 300], [32, 700, 64, 2, 300]),
}
OPTIONS = [
    {},
    {"is_causal": True},
    {"is_causal": "bottom_right", "window": (20, 0)},
    {"softcap": 4.0, "sinks": np.array([0.5, -1.0, 2.0, 0.0]),
     "alibi_slopes": np.array([0.5, 0.25, 0.125, 0.0625]),
     "is_causal": "bottom_right"},
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seqs", list(SEQUENCES))
@pytest.mark.parametrize("opts", range(len(OPTIONS)))
def test_varlen_matches_sequences(dtype, seqs, opts, isa, rng):
    q, k, v, cq, ck = packed(rng, dtype, *SEQUENCES[seqs])
    kw = OPTIONS[opts]
    out, lse = cattn.varlen_attention(q, k, v, cq, ck, enable_gqa=True,
                                      return_lse=True, **kw)
    want, want_lse = per_sequence(q, k, v, cq, ck, **kw)
    assert out.dtype == dtype and lse.shape == q.shape[:2]
    assert np.isfinite(out).all()
    assert np.linalg.norm(out - want) <= TOL["attention"][dtype] * max(
        np.linalg.norm(want), 1.0)
    fin = np.isfinite(want_lse)
    np.testing.assert_array_equal(np.isfinite(lse), fin)
    np.testing.assert_allclose(lse[fin], want_lse[fin], atol=1e-5,
                               rtol=TOL["attention"][dtype])


def test_other_sequences_never_matter(rng):
    q, k, v, cq, ck = packed(rng, np.float32, [40, 9, 30], [40, 9, 30])
    out = cattn.varlen_attention(q, k, v, cq, ck, enable_gqa=True,
                                 is_causal=True)
    k2, v2 = k.copy(), v.copy()
    k2[ck[1]:ck[2]] = np.inf                  # sequence 1's keys, values
    v2[ck[1]:ck[2]] = np.nan
    out2 = cattn.varlen_attention(q, k2, v2, cq, ck, enable_gqa=True,
                                  is_causal=True)
    for s in (0, 2):
        np.testing.assert_array_equal(out2[cq[s]:cq[s + 1]],
                                      out[cq[s]:cq[s + 1]])


def test_threads_out_and_16bit(isa, rng):
    q, k, v, cq, ck = packed(rng, np.float32, [32, 700, 64, 2, 300],
                             [32, 700, 64, 2, 300])
    one = cattn.varlen_attention(q, k, v, cq, ck, enable_gqa=True,
                                 num_threads=1, return_lse=True)
    two = cattn.varlen_attention(q, k, v, cq, ck, enable_gqa=True,
                                 num_threads=2, return_lse=True)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    buf = np.zeros(q.shape[:2] + (8,), np.float32)
    got = cattn.varlen_attention(q, k, v, cq, ck, enable_gqa=True, out=buf)
    assert got is buf
    np.testing.assert_array_equal(buf, one[0])
    ml_dtypes = pytest.importorskip("ml_dtypes")
    for dtype in (np.float16, ml_dtypes.bfloat16):
        x16 = [x.astype(dtype) for x in (q, k, v)]
        with exact16():
            got = cattn.varlen_attention(*x16, cq, ck, enable_gqa=True)
            want = cattn.varlen_attention(
                *(x.astype(np.float32) for x in x16), cq, ck,
                enable_gqa=True).astype(dtype)
        np.testing.assert_array_equal(got.view(np.uint16),
                                      want.view(np.uint16))


def test_empty(rng):
    q, k, v, cq, ck = packed(rng, np.float64, [0, 0], [0, 3])
    out, lse = cattn.varlen_attention(q, k, v, cq, ck, enable_gqa=True,
                                      return_lse=True)
    assert out.shape == (0, 4, 8) and lse.shape == (0, 4)
    q, k, v, cq, ck = packed(rng, np.float64, [2], [0])
    out = cattn.varlen_attention(q, k, v, cq, ck, enable_gqa=True,
                                 sinks=np.zeros(4))
    np.testing.assert_array_equal(out, 0)


@pytest.mark.parametrize("kw", [dict(chunk_size=8, is_causal="bottom_right"),
                                dict(chunk_size=5),
                                dict(prefix=6, is_causal=True)], ids=str)
def test_chunks_and_prefix_per_sequence(kw, isa, rng):
    """chunk_size and prefix count positions from each sequence's start:
    the twin is each sequence alone with the rule folded into its mask."""
    q, k, v, cq, ck = packed(rng, np.float64, *SEQUENCES["mixed"])
    out = cattn.varlen_attention(q, k, v, cq, ck, enable_gqa=True, **kw)
    t = lambda x: x.transpose(1, 0, 2)            # noqa: E731
    for s in range(len(cq) - 1):
        L, S = cq[s + 1] - cq[s], ck[s + 1] - ck[s]
        m = _reference.visible(L, S, kw.get("is_causal", False), None,
                               kw.get("chunk_size"), kw.get("prefix"))
        want, _ = _reference.scaled_dot_product_attention(
            t(q[cq[s]:cq[s + 1]]), t(k[ck[s]:ck[s + 1]]),
            t(v[ck[s]:ck[s + 1]]), m, enable_gqa=True)
        np.testing.assert_allclose(out[cq[s]:cq[s + 1]], t(want),
                                   rtol=1e-12, atol=1e-12)
