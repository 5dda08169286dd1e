"""scaled_dot_product_attention_grad against the float64 reference (which
builds the full weights and never sees lse), central finite differences,
and torch autograd when torch is importable; on every SIMD level."""
import numpy as np
import pytest

import cattn
from conftest import TOL
from cattn import _reference

sdpa = cattn.scaled_dot_product_attention
grad = cattn.scaled_dot_product_attention_grad
DTYPES = [np.float32, np.float64]
# Normwise relative error of each gradient against float64.
NORM_TOL = TOL["gradient"]


def inputs(rng, shape_q, shape_k, shape_v, dtype):
    return tuple(rng.standard_normal(s).astype(dtype)
                 for s in (shape_q, shape_k, shape_v))


def forward_backward(q, k, v, mask=None, go=None, rng=None, **kw):
    out, lse = sdpa(q, k, v, mask, return_lse=True, **kw)
    if go is None:
        go = rng.standard_normal(out.shape).astype(out.dtype)
    return go, out, lse, grad(go, q, k, v, out, lse, mask, **kw)


def check(q, k, v, mask=None, rng=None, **kw):
    """cattn's gradients against the reference's, normwise per gradient."""
    go, out, lse, got = forward_backward(q, k, v, mask, rng=rng, **kw)
    kw.pop("num_threads", None)
    want = _reference.scaled_dot_product_attention_grad(go, q, k, v, mask,
                                                        **kw)
    dtype = out.dtype.type
    for name, g, w, x in zip(("query", "key", "value"), got, want,
                             (q, k, v)):
        assert g.shape == np.shape(x) and g.dtype == dtype, name
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=name)
        diff = np.linalg.norm(np.nan_to_num(g - w))
        # Floor: where the gradient cancels to ~0 (one key: dS = 0 exactly
        # only in exact arithmetic), measure against the size of the terms.
        big = max(np.abs(a[np.isfinite(a)]).max(initial=0) for a in (q, k, v))
        scale = max(np.linalg.norm(np.nan_to_num(w)),
                    np.linalg.norm(go) * big, 1e-30)
        assert diff <= NORM_TOL[dtype] * scale, (name, diff / scale)
    return got


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("L, S", [(1, 1), (5, 9), (9, 5), (70, 200),
                                  (200, 70), (130, 257)])
@pytest.mark.parametrize("is_causal", [False, True, "bottom_right"])
def test_against_reference(dtype, L, S, is_causal, isa, rng):
    q, k, v = inputs(rng, (2, 3, L, 16), (2, 3, S, 16), (2, 3, S, 24),
                     dtype)
    check(q, k, v, is_causal=is_causal, rng=rng)


@pytest.mark.parametrize("kw", [
    {"window": (7, 0), "is_causal": True},
    {"window": (20, 5)},
    {"window": (None, 3), "is_causal": "bottom_right"},
    {"window": (0, 0)},
    {"scale": 0.3},
    {"scale": -2.0},
])
def test_windows_and_scales(kw, isa, rng):
    q, k, v = inputs(rng, (2, 150, 32), (2, 260, 32), (2, 260, 32),
                     np.float64)
    check(q, k, v, rng=rng, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
def test_masks(dtype, isa, rng):
    q, k, v = inputs(rng, (2, 2, 90, 16), (2, 2, 140, 16), (2, 2, 140, 8),
                     dtype)
    bool_mask = rng.random((2, 1, 90, 140)) < 0.7
    check(q, k, v, bool_mask, rng=rng)
    float_mask = rng.standard_normal((90, 140)).astype(dtype)
    float_mask[:, ::3] = -np.inf
    check(q, k, v, float_mask, rng=rng, is_causal=True)


def test_mask_gradient(isa, rng):
    q, k, v = inputs(rng, (2, 3, 40, 8), (2, 3, 70, 8), (2, 3, 70, 8),
                     np.float64)
    mask = rng.standard_normal((3, 1, 70))       # broadcast over L, batch
    go, out, lse, _ = forward_backward(q, k, v, mask, rng=rng)
    *_, dmask = grad(go, q, k, v, out, lse, mask, need_mask_grad=True)
    want = _reference.scaled_dot_product_attention_grad(go, q, k, v,
                                                        mask)[3]
    assert dmask.shape == mask.shape
    np.testing.assert_allclose(dmask, want, rtol=1e-12, atol=1e-12)


def test_gqa_sums_over_shared_heads(isa, rng):
    q, k, v = inputs(rng, (2, 8, 100, 16), (2, 2, 150, 16), (2, 2, 150, 16),
                     np.float64)
    check(q, k, v, rng=rng, enable_gqa=True, is_causal=True)
    # one kv head for all (MQA), a bool mask per query head
    mask = rng.random((8, 100, 150)) < 0.8
    check(q, k[:, :1], v[:, :1], mask, rng=rng, enable_gqa=True)


def test_broadcast_inputs_get_summed_gradients(rng):
    # key/value shared by the batch; query broadcast over heads.
    q = rng.standard_normal((2, 1, 30, 8))
    k = rng.standard_normal((3, 50, 8))
    v = rng.standard_normal((1, 3, 50, 4))
    got = check(q, k, v, rng=rng)
    assert [g.shape for g in got] == [q.shape, k.shape, v.shape]


def test_layouts_read_in_place(rng):
    base = rng.standard_normal((2, 3, 64, 40))
    q = base[:, :, ::2, :16]                       # strided rows
    k = np.swapaxes(rng.standard_normal((2, 3, 16, 50)), -1, -2)
    v = rng.standard_normal((2, 3, 50, 12))[:, :, ::-1]   # negative stride
    k.flags.writeable = False
    check(q, k, v, rng=rng)
    go, out, lse, want = forward_backward(q, k, v, rng=rng)
    got = grad(np.asfortranarray(go), q.copy(), k.copy(), v.copy(),
               out[..., ::-1][..., ::-1], lse.copy())
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_fully_masked_rows_get_zero_gradients(isa, rng):
    q, k, v = inputs(rng, (1, 6, 8), (1, 9, 8), (1, 9, 8), np.float32)
    mask = np.ones((6, 9), bool)
    mask[2] = False                                 # row 2 sees nothing
    mask[:, 4] = False                              # key 4 seen by no row
    go, out, lse, (dq, dk, dv) = forward_backward(q, k, v, mask, rng=rng)
    assert np.isneginf(lse[0, 2])
    assert (dq[0, 2] == 0).all()
    assert (dk[0, 4] == 0).all() and (dv[0, 4] == 0).all()
    # row 2's grad_out reaches nothing: changing it changes no gradient.
    go2 = go.copy()
    go2[0, 2] = 1e3
    for a, b in zip(grad(go2, q, k, v, out, lse, mask), (dq, dk, dv)):
        np.testing.assert_array_equal(a, b)
    # every key hidden from every query: all zero
    none = np.zeros((6, 9), bool)
    _, _, _, gs = forward_backward(q, k, v, none, rng=rng)
    assert all((g == 0).all() for g in gs)


def test_huge_logits_and_nan(rng):
    q, k, v = inputs(rng, (1, 20, 8), (1, 30, 8), (1, 30, 8), np.float64)
    check(q * 300, k * 300, v, rng=rng)            # saturated softmax
    q[0, 3, 0] = np.nan                            # NaN stays in its row
    go, out, lse, (dq, dk, dv) = forward_backward(q, k, v, rng=rng)
    assert np.isnan(dq[0, 3]).all()
    assert np.isfinite(np.delete(dq[0], 3, axis=0)).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("is_causal", [False, True])
def test_hidden_nonfinite_values_carry_no_gradient(bad, is_causal, rng):
    # Key 250's value is inf/NaN and hidden from every query: the forward
    # ignores it, so every gradient stays finite (dS = 0 where P = 0, even
    # though dP = dO Vᵀ is not finite there) -- and equals the reference's.
    q, k, v = inputs(rng, (2, 300, 8), (2, 300, 8), (2, 300, 8), np.float64)
    v[:, 250, 2] = bad
    mask = np.ones((300, 300), bool)
    mask[:, 250] = False
    got = check(q, k, v, mask, rng=rng, is_causal=is_causal)
    assert all(np.isfinite(g).all() for g in got)
    assert (got[2][:, 250] == 0).all()


@pytest.mark.parametrize("shape_q, shape_k", [
    ((2, 0, 8), (2, 5, 8)), ((2, 4, 8), (2, 0, 8)), ((0, 4, 8), (0, 5, 8)),
    ((2, 4, 0), (2, 5, 0))])
def test_zero_sizes(shape_q, shape_k, rng):
    q = rng.standard_normal(shape_q)
    k = rng.standard_normal(shape_k)
    v = rng.standard_normal(shape_k[:-1] + (3,))
    check(q, k, v, rng=rng)


def test_head_size_past_one_depth_chunk(rng):
    # E = 300 > KC = 256: S and dP are summed over two depth chunks.
    q, k, v = inputs(rng, (2, 40, 300), (2, 70, 300), (2, 70, 270),
                     np.float64)
    check(q, k, v, rng=rng)


def test_finite_differences(rng):
    # loss = sum(go * attention(q, k, v, mask)); central differences in
    # float64 on a few coordinates of every input and the float mask.
    q, k, v = inputs(rng, (2, 5, 4), (2, 7, 4), (2, 7, 3), np.float64)
    mask = rng.standard_normal((5, 7))
    kw = {"is_causal": "bottom_right", "window": (4, None)}
    go, out, lse, _ = forward_backward(q, k, v, mask, rng=rng, **kw)
    grads = grad(go, q, k, v, out, lse, mask, need_mask_grad=True, **kw)

    def loss(q, k, v, mask):
        return float((go * sdpa(q, k, v, mask, **kw)).sum())

    h = 1e-6
    args = [q, k, v, mask]
    for which, g in enumerate(grads):
        for idx in list(np.ndindex(g.shape))[::5]:
            plus = [a.copy() for a in args]
            minus = [a.copy() for a in args]
            plus[which][idx] += h
            minus[which][idx] -= h
            fd = (loss(*plus) - loss(*minus)) / (2 * h)
            assert abs(fd - g[idx]) <= 1e-7 * max(1, abs(fd)), (which, idx)


@pytest.mark.parametrize("heads", [1, 2, 8, 16])
def test_threads_bitwise_equal(heads, isa, rng):
    # 1, 2 heads: the grouped schedule for any thread count; 8 heads: fused
    # with 1-3 threads, split with 8 (same bits); 16 heads: fused.
    q, k, v = inputs(rng, (heads, 300, 32), (heads, 500, 32),
                     (heads, 500, 32), np.float32)
    mask = rng.standard_normal((300, 500)).astype(np.float32)
    go, out, lse, base = forward_backward(q, k, v, mask, rng=rng,
                                          is_causal=True, num_threads=1)
    for nt in (2, 3, 8):
        got = grad(go, q, k, v, out, lse, mask, is_causal=True,
                   num_threads=nt)
        for g, b in zip(got, base):
            np.testing.assert_array_equal(g, b)


def test_mixed_dtypes_compute_in_float64(rng):
    q, k, v = inputs(rng, (4, 8), (6, 8), (6, 8), np.float32)
    go, out, lse, _ = forward_backward(q, k, v, rng=rng)
    got = grad(go.astype(np.float64), q, k, v, out, lse)
    assert all(g.dtype == np.float64 for g in got)


@pytest.mark.torch
@pytest.mark.parametrize("kw", [
    {}, {"is_causal": True}, {"enable_gqa": True}, {"mask": "float"},
    {"mask": "bool"}])
def test_against_torch_autograd(kw, rng):
    torch = pytest.importorskip("torch")
    kw = dict(kw)
    q, k, v = inputs(rng, (2, 4, 40, 16), (2, 2 if kw.get("enable_gqa")
                                           else 4, 60, 16),
                     (2, 2 if kw.get("enable_gqa") else 4, 60, 16),
                     np.float64)
    mask = None
    kind = kw.pop("mask", None)
    if kind == "float":
        mask = rng.standard_normal((40, 60))
    elif kind == "bool":
        mask = rng.random((40, 60)) < 0.8
    go, out, lse, got = forward_backward(q, k, v, mask, rng=rng, **kw)
    tq, tk, tv = (torch.from_numpy(x).requires_grad_() for x in (q, k, v))
    tmask = None if mask is None else torch.from_numpy(mask)
    tout = torch.nn.functional.scaled_dot_product_attention(
        tq, tk, tv, attn_mask=tmask, **kw)
    tout.backward(torch.from_numpy(go))
    for g, t in zip(got, (tq.grad, tk.grad, tv.grad)):
        np.testing.assert_allclose(g, t.numpy(), rtol=1e-10, atol=1e-12)
