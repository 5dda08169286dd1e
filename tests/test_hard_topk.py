"""hard_attention and top_k= against the float64 references (_reference.
hard_attention, top_k_keep), ties, special values, masks and threads."""
import numpy as np
import pytest

import cattn
from cattn import _reference

sdpa = cattn.scaled_dot_product_attention
hard = cattn.hard_attention


def integer_inputs(rng, shape_q, shape_k, shape_v, dtype, levels=3):
    """Small integers: every score is exact in float32 and float64, so the
    kernel and the reference rank the same keys, ties included (many)."""
    return tuple(rng.integers(-levels, levels + 1, s).astype(dtype)
                 for s in (shape_q, shape_k, shape_v))


def check_hard(q, k, v, mask=None, **kw):
    out, idx = hard(q, k, v, mask, return_indices=True, **kw)
    kw.pop("num_threads", None)
    ref_out, ref_idx = _reference.hard_attention(q, k, v, mask, **kw)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(out, ref_out.astype(out.dtype))
    assert out.dtype == np.result_type(q, k, v)
    return out, idx


def check_top_k(q, k, v, top_k, mask=None, **kw):
    out, lse = sdpa(q, k, v, mask, top_k=top_k, return_lse=True, **kw)
    kw.pop("num_threads", None)
    ref, ref_lse = _reference.scaled_dot_product_attention(
        q, k, v, mask, top_k=top_k, **kw)
    tol = 1e-5 if out.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(lse, ref_lse, rtol=tol, atol=tol)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("L, S", [(1, 1), (7, 5), (100, 300), (300, 100),
                                  (2, 2000)])
@pytest.mark.parametrize("is_causal", [False, True, "bottom_right"])
def test_hard_with_ties(dtype, L, S, is_causal, isa, rng):
    # levels=1 in 4 dimensions: few distinct scores, ties everywhere; the
    # lowest index must win.
    q, k, v = integer_inputs(rng, (2, L, 4), (2, S, 4), (2, S, 6), dtype,
                             levels=1)
    check_hard(q, k, v, is_causal=is_causal)


@pytest.mark.parametrize("top_k", [1, 2, 5, 64, 299])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_top_k_with_ties(top_k, dtype, isa, rng):
    q, k, v = integer_inputs(rng, (2, 3, 70, 4), (2, 3, 300, 4),
                             (2, 3, 300, 8), dtype)
    check_top_k(q, k, v, top_k)
    check_top_k(q, k, v, top_k, is_causal="bottom_right", window=(40, 2))


def test_top_k_random_scores(isa, rng):
    q, k, v = (rng.standard_normal(s) for s in
               ((2, 2, 130, 16), (2, 2, 1500, 16), (2, 2, 1500, 16)))
    for top_k in (1, 3, 100):
        check_top_k(q, k, v, top_k)
    # few query rows: the forward splits the keys into chunks (decoding
    # shapes); the selection must hold across chunks.
    check_top_k(q[:, :, :2], k, v, 7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_signed_zero_scores_tie(dtype, isa, rng):
    # Zero queries and scale -1 make every product -0; a float mask of +0
    # or -0 then leaves scores of +0 (-0 + +0) and -0 (-0 + -0), which rank
    # equal, so the lowest key indices win.
    q = np.zeros((2, 5, 4), dtype)
    k = rng.standard_normal((2, 40, 4)).astype(dtype)
    v = rng.standard_normal((2, 40, 3)).astype(dtype)
    mask = np.where(rng.random((5, 40)) < 0.5, 0.0, -0.0).astype(dtype)
    assert np.signbit(mask).any() and not np.signbit(mask).all()
    for top_k in (3, 7):
        check_top_k(q, k, v, top_k, mask, scale=-1.0)
    _, idx = hard(q, k, v, mask, scale=-1.0, return_indices=True)
    np.testing.assert_array_equal(idx, 0)


def test_top_k_limits(rng):
    q, k, v = (rng.standard_normal(s) for s in ((3, 20, 8), (3, 30, 8),
                                                (3, 30, 5)))
    full = sdpa(q, k, v)
    np.testing.assert_array_equal(sdpa(q, k, v, top_k=30), full)
    np.testing.assert_array_equal(sdpa(q, k, v, top_k=10 ** 9), full)
    # top_k=1 is hard attention, bit for bit (one weight of exactly 1)
    np.testing.assert_array_equal(sdpa(q, k, v, top_k=1), hard(q, k, v))


def test_masks_gqa_and_layouts(isa, rng):
    q, k, v = integer_inputs(rng, (2, 4, 60, 4), (2, 2, 90, 4),
                             (2, 2, 90, 3), np.float64)
    bool_mask = rng.random((2, 4, 60, 90)) < 0.6
    float_mask = rng.integers(-2, 3, (60, 90)).astype(np.float64)
    float_mask[:, ::7] = -np.inf
    for mask in (bool_mask, float_mask):
        check_hard(q, k, v, mask, enable_gqa=True)
        check_top_k(q, k, v, 4, mask, enable_gqa=True)
    # transposed and negative-stride operands, read-only
    kt = np.swapaxes(np.ascontiguousarray(np.swapaxes(k, -1, -2)), -1, -2)
    kt.flags.writeable = False
    check_hard(q[..., ::-1, :], kt, v[..., ::-1, :], enable_gqa=True)
    check_top_k(q[..., ::-1, :], kt, v, 3, enable_gqa=True)


def test_rows_without_keys_and_special_values(rng):
    q, k, v = (rng.standard_normal(s) for s in ((6, 4), (9, 4), (9, 2)))
    mask = np.ones((6, 9), bool)
    mask[1] = False                           # row 1 sees nothing
    out, idx = check_hard(q, k, v, mask)
    assert idx[1] == -1 and (out[1] == 0).all()
    fmask = np.zeros((6, 9))
    fmask[2] = -np.inf                        # -inf scores are not keys
    fmask[3, 5] = np.nan                      # NaN ranks first
    fmask[4, 6] = np.inf
    out, idx = check_hard(q, k, v, fmask)
    assert idx[2] == -1 and idx[3] == 5 and idx[4] == 6
    got = sdpa(q, k, v, fmask, top_k=2)
    assert np.isnan(got[3]).all() and np.isnan(got[4]).all()
    assert (got[2] == 0).all()
    # fewer candidates than k: all of them are kept
    check_top_k(q, k, v, 5, np.arange(9) < 3)


@pytest.mark.parametrize("shape_q, shape_k", [
    ((2, 0, 4), (2, 5, 4)), ((2, 3, 4), (2, 0, 4)), ((0, 3, 4), (0, 5, 4))])
def test_zero_sizes(shape_q, shape_k, rng):
    q = rng.standard_normal(shape_q)
    k = rng.standard_normal(shape_k)
    v = rng.standard_normal(shape_k[:-1] + (2,))
    out, idx = check_hard(q, k, v)
    assert out.shape == shape_q[:-1] + (2,) and idx.shape == shape_q[:-1]
    np.testing.assert_array_equal(sdpa(q, k, v, top_k=2), sdpa(q, k, v))


def test_out_and_threads(isa, rng):
    q, k, v = (rng.standard_normal(s).astype(np.float32)
               for s in ((4, 300, 16), (4, 700, 16), (4, 700, 16)))
    base_h = hard(q, k, v, num_threads=1, return_indices=True)
    base_t = sdpa(q, k, v, top_k=9, num_threads=1)
    for nt in (2, 3, 8):
        got = hard(q, k, v, num_threads=nt, return_indices=True)
        np.testing.assert_array_equal(got[0], base_h[0])
        np.testing.assert_array_equal(got[1], base_h[1])
        np.testing.assert_array_equal(sdpa(q, k, v, top_k=9, num_threads=nt),
                                      base_t)
    out = np.empty((4, 300, 16), np.float32)
    assert hard(q, k, v, out=out) is out
    np.testing.assert_array_equal(out, base_h[0])
    # out may be an input: the result is gathered first
    q2 = q.copy()
    hard(q2, k, v, out=q2)
    np.testing.assert_array_equal(q2, base_h[0])
