"""The attention of current models: softcap (Gemma 2), attention sinks
(gpt-oss) and ALiBi slopes (BLOOM, MPT), computed in the kernels.

Every result is held to the float64 twins of cattn._reference, written
from the definitions (softcap·tanh(s/softcap) after the scale, then the
ALiBi bias -slope·|i + S - L - j|, then the mask; the sink one more logit
in each softmax's denominator), at every SIMD level, through every path
of the forward (tiled, decode rows, key chunks, bf16 pairs), top-k, hard
attention, the weights and the gradient; and, where torch is installed,
to the eager formulas of the models that use them."""
import numpy as np
import pytest

import cattn
from cattn import _reference
from cattn._kernels import _attention

from conftest import TOL, exact16

DTYPES = [np.float32, np.float64]


def normwise(got, want):
    want = np.asarray(want, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    scale = np.linalg.norm(want) or 1.0
    return np.linalg.norm(np.where(np.isnan(want), 0, got - want)) / scale


def qkv(rng, dtype, L, S, E=16, Ev=8, batch=(2, 4), hkv=None, spread=2.0):
    kb = batch[:-1] + (hkv or batch[-1],)
    q = (rng.standard_normal(batch + (L, E)) * spread).astype(dtype)
    k = (rng.standard_normal(kb + (S, E)) * spread).astype(dtype)
    v = rng.standard_normal(kb + (S, Ev)).astype(dtype)
    return q, k, v


def variants(rng, H=4, B=2):
    """Each option alone and all together, with per-head and per-(B, H)
    parameters."""
    slopes = 2.0 ** -np.arange(1, H + 1)
    sinks = rng.standard_normal(H)
    return [
        dict(softcap=20.0),
        dict(softcap=1.5),
        dict(alibi_slopes=slopes),
        dict(alibi_slopes=rng.uniform(0, 0.3, (B, H))),
        dict(sinks=sinks),
        dict(sinks=rng.standard_normal((B, H)) * 3),
        dict(sinks=np.float32(0.5)),
        dict(softcap=5.0, sinks=sinks, alibi_slopes=slopes),
    ]


VARIANT_IDS = ["cap20", "cap1.5", "alibi", "alibi-BH", "sinks", "sinks-BH",
               "sink-scalar", "all"]

# (L, S, other options): the tiled path, decode rows (L <= 4), key chunks
# (few items, long S), causal both ways, a window, masks, GQA.
PATHS = [
    (37, 53, {}),
    (1, 300, {}),
    (3, 2500, {"is_causal": "bottom_right"}),
    (70, 40, {"is_causal": True}),
    (64, 200, {"window": (30, 5), "is_causal": "bottom_right"}),
    (20, 30, {"mask": "bool"}),
    (20, 30, {"mask": "float"}),
    (33, 45, {"gqa": True}),
]


def build(rng, dtype, L, S, opts):
    o = dict(opts)
    gqa = o.pop("gqa", False)
    mask = o.pop("mask", None)
    q, k, v = qkv(rng, dtype, L, S, hkv=2 if gqa else None)
    if mask == "bool":
        m = rng.random((L, S)) < 0.8
        m[3] = False                       # a fully masked row
        o["attn_mask"] = m
    elif mask == "float":
        o["attn_mask"] = rng.standard_normal((4, L, S)).astype(dtype)
    if gqa:
        o["enable_gqa"] = True
    return q, k, v, o


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("L,S,opts", PATHS, ids=str)
def test_forward_matches_reference(dtype, L, S, opts, isa, rng):
    q, k, v, o = build(rng, dtype, L, S, opts)
    for var, name in zip(variants(rng), VARIANT_IDS):
        out, lse = cattn.scaled_dot_product_attention(q, k, v, **o, **var,
                                                      return_lse=True)
        want, want_lse = _reference.scaled_dot_product_attention(
            q, k, v, **o, **var)
        assert out.dtype == dtype, name
        assert normwise(out, want) < TOL["attention"][dtype], name
        fin = np.isfinite(want_lse)
        np.testing.assert_array_equal(np.isfinite(lse), fin)
        np.testing.assert_allclose(lse[fin], want_lse[fin],
                                   rtol=TOL["attention"][dtype],
                                   atol=TOL["attention"][dtype], err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_top_k_hard_and_weights(dtype, isa, rng):
    q, k, v = qkv(rng, dtype, 29, 61, spread=3.0)
    for var, name in zip(variants(rng), VARIANT_IDS):
        if name == "cap1.5":
            continue    # saturated caps tie: the ranks are the rounding's
        for kk in (1, 4):
            got = cattn.scaled_dot_product_attention(q, k, v, top_k=kk,
                                                     is_causal=True, **var)
            want, _ = _reference.scaled_dot_product_attention(
                q, k, v, top_k=kk, is_causal=True, **var)
            assert normwise(got, want) < TOL["attention"][dtype], name
        w = cattn.attention_weights(q, k, **var)
        want_w, _ = _reference.attention_weights(q, k, **var)
        np.testing.assert_allclose(w, want_w, atol=TOL["attention"][dtype],
                                   err_msg=name)
        if "sinks" in var:
            continue
        out, idx = cattn.hard_attention(q, k, v, return_indices=True, **var)
        want_out, want_idx = _reference.hard_attention(q, k, v, **var)
        np.testing.assert_array_equal(idx, want_idx, err_msg=name)
        np.testing.assert_array_equal(out, want_out.astype(dtype))


def test_top_k_agrees_with_its_own_scores(rng):
    """Capped scores tie when they saturate; the selection pass and the
    forward compute them with the same bits, so top_k=1 still equals
    hard_attention exactly."""
    q, k, v = qkv(rng, np.float32, 40, 90, spread=6.0)
    for cap in (0.05, 0.5):
        out, idx = cattn.hard_attention(q, k, v, softcap=cap,
                                        return_indices=True)
        top1 = cattn.scaled_dot_product_attention(q, k, v, top_k=1,
                                                  softcap=cap)
        np.testing.assert_array_equal(out, top1)
        assert (idx >= 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("L,S,causal,gqa", [(17, 45, False, False),
                                            (64, 64, True, True),
                                            (150, 300, "bottom_right", False),
                                            (1, 80, False, True)])
def test_gradient_matches_reference(dtype, L, S, causal, gqa, isa, rng):
    q, k, v = qkv(rng, dtype, L, S, hkv=2 if gqa else None)
    mask = rng.standard_normal((L, S)).astype(dtype)
    for var, name in zip(variants(rng), VARIANT_IDS):
        kw = dict(is_causal=causal, enable_gqa=gqa, **var)
        out, lse = cattn.scaled_dot_product_attention(q, k, v, mask, **kw,
                                                      return_lse=True)
        go = rng.standard_normal(out.shape).astype(dtype)
        got = cattn.scaled_dot_product_attention_grad(
            go, q, k, v, out, lse, mask, need_mask_grad=True, **kw)
        want = _reference.scaled_dot_product_attention_grad(
            go, q, k, v, mask, **kw)
        names = ["query", "key", "value", "mask"]
        assert len(got) == 4 + ("sinks" in var), name
        if "sinks" in var:
            names.append("sinks")
            assert got[4].shape == np.shape(var["sinks"])
        for n, g, w in zip(names, got, [x for x in want if x is not None]):
            assert normwise(g, w) < TOL["gradient"][dtype], (name, n)


def test_sinks_gradient_by_finite_differences(rng):
    q, k, v = qkv(rng, np.float64, 9, 13)
    sinks = rng.standard_normal(4)
    go = rng.standard_normal((2, 4, 9, 8))

    def loss(s):
        return float((cattn.scaled_dot_product_attention(
            q, k, v, sinks=s, softcap=3.0) * go).sum())

    out, lse = cattn.scaled_dot_product_attention(
        q, k, v, sinks=sinks, softcap=3.0, return_lse=True)
    dsinks = cattn.scaled_dot_product_attention_grad(
        go, q, k, v, out, lse, sinks=sinks, softcap=3.0)[3]
    h = 1e-6
    fd = [(loss(sinks + h * e) - loss(sinks - h * e)) / (2 * h)
          for e in np.eye(4)]
    np.testing.assert_allclose(dsinks, fd, rtol=1e-6, atol=1e-9)


def test_sinks_edge_cases(rng):
    q, k, v = qkv(rng, np.float64, 5, 7)
    mask = np.ones((5, 7), bool)
    mask[2] = False                                   # row 2 sees nothing
    sinks = np.array([0.0, 1e4, -np.inf, -3.0])
    out, lse = cattn.scaled_dot_product_attention(
        q, k, v, mask, sinks=sinks, return_lse=True)
    plain, plain_lse = cattn.scaled_dot_product_attention(q, k, v, mask,
                                                          return_lse=True)
    # A row that sees no key: 0, with lse the sink.
    np.testing.assert_array_equal(out[:, :, 2], 0)
    np.testing.assert_array_equal(lse[:, 0, 2], 0.0)
    np.testing.assert_array_equal(lse[:, 1, 2], 1e4)
    # A huge sink takes all the weight without overflow; -inf is no sink.
    np.testing.assert_array_equal(out[:, 1], 0)
    np.testing.assert_allclose(lse[:, 1], 1e4)
    np.testing.assert_array_equal(out[:, 2], plain[:, 2])
    np.testing.assert_array_equal(lse[:, 2], plain_lse[:, 2])
    # A NaN sink propagates.
    bad = cattn.scaled_dot_product_attention(q, k, v, sinks=np.nan)
    assert np.isnan(bad).all()


def test_softcap_accuracy(isa):
    """The cap (tanh, x / cap by a reciprocal) against float64: within
    5 ulp, exact at ±inf, ±0
    and NaN."""
    for dtype, ulps in ((np.float32, 5), (np.float64, 5)):
        x = np.concatenate([np.linspace(-40, 40, 20001),
                            np.geomspace(1e-30, 1, 300),
                            -np.geomspace(1e-30, 1, 300),
                            [0.125, 0.12499999, 0.1250001]]).astype(dtype)
        for cap in (1.0, 30.0):
            y = x.copy()
            _attention.softcap_scores(y, cap)
            want = cap * np.tanh(x.astype(np.float64) / cap)
            ulp = np.spacing(np.abs(want).astype(dtype)).astype(np.float64)
            assert (np.abs(y - want) / ulp).max() <= ulps, (dtype, cap)
        s = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0], dtype)
        _attention.softcap_scores(s, 2.0)
        np.testing.assert_array_equal(s[:2], [2.0, -2.0])
        assert np.isnan(s[2]) and s[3] == 0 and np.signbit(s[4])


def test_threads_do_not_change_bits(isa, rng):
    for L, S in ((3, 5000), (100, 300)):
        q, k, v = qkv(rng, np.float32, L, S)
        kw = dict(softcap=10.0, sinks=rng.standard_normal(4),
                  alibi_slopes=rng.uniform(0, 1, 4), return_lse=True)
        one = cattn.scaled_dot_product_attention(q, k, v, num_threads=1, **kw)
        two = cattn.scaled_dot_product_attention(q, k, v, num_threads=2, **kw)
        for a, b in zip(one, two):
            np.testing.assert_array_equal(a, b)
        go = rng.standard_normal(one[0].shape).astype(np.float32)
        g1 = cattn.scaled_dot_product_attention_grad(
            go, q, k, v, *one, softcap=10.0, sinks=kw["sinks"],
            alibi_slopes=kw["alibi_slopes"], num_threads=1)
        g2 = cattn.scaled_dot_product_attention_grad(
            go, q, k, v, *one, softcap=10.0, sinks=kw["sinks"],
            alibi_slopes=kw["alibi_slopes"], num_threads=2)
        for a, b in zip(g1, g2):
            np.testing.assert_array_equal(a, b)


def test_16bit_equals_float32_rounded_once(rng):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    for dtype in (np.float16, ml_dtypes.bfloat16):
        q, k, v = (x.astype(dtype) for x in qkv(rng, np.float32, 21, 70))
        kw = dict(softcap=7.0, sinks=rng.standard_normal(4),
                  alibi_slopes=rng.uniform(0, 0.5, 4))
        with exact16():
            got = cattn.scaled_dot_product_attention(q, k, v, **kw)
            want = cattn.scaled_dot_product_attention(
                *(x.astype(np.float32) for x in (q, k, v)),
                **kw).astype(dtype)
        np.testing.assert_array_equal(got.view(np.uint16),
                                      want.view(np.uint16))


def test_bf16_default_precision_within_bounds(rng):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf16 = ml_dtypes.bfloat16
    q, k, v = (x.astype(bf16) for x in qkv(rng, np.float32, 64, 200))
    kw = dict(softcap=7.0, sinks=rng.standard_normal(4),
              alibi_slopes=rng.uniform(0, 0.5, 4))
    got = cattn.scaled_dot_product_attention(q, k, v, **kw)
    want, _ = _reference.scaled_dot_product_attention(q, k, v, **kw)
    assert normwise(got, want) < 1e-2


# ------------------------------------------------- the models' own code --

def _torch():
    return pytest.importorskip("torch")


@pytest.mark.torch
def test_matches_gpt_oss_eager_sinks(rng):
    """gpt-oss's eager attention: the sink joins each row as a column,
    softmax, the column is dropped (transformers' modeling_gpt_oss)."""
    torch = _torch()
    q, k, v = qkv(rng, np.float64, 12, 12)
    sinks = rng.standard_normal(4)
    mask = np.triu(np.full((12, 12), -np.inf), 1)
    tq, tk, tv, ts = (torch.tensor(x, requires_grad=True)
                      for x in (q, k, v, sinks))
    s = tq @ tk.transpose(-1, -2) * 0.25 + torch.tensor(mask)
    sink_col = ts.reshape(1, -1, 1, 1).expand(2, -1, 12, 1)
    logits = torch.cat([s, sink_col], dim=-1)
    logits = logits - logits.max(dim=-1, keepdim=True).values
    probs = torch.softmax(logits, dim=-1)[..., :-1]
    ref = probs @ tv
    go = rng.standard_normal(ref.shape)
    ref.backward(torch.tensor(go))
    out, lse = cattn.scaled_dot_product_attention(
        q, k, v, mask, scale=0.25, sinks=sinks, return_lse=True)
    np.testing.assert_allclose(out, ref.detach().numpy(), atol=1e-12)
    grads = cattn.scaled_dot_product_attention_grad(
        go, q, k, v, out, lse, mask, scale=0.25, sinks=sinks)
    for g, t in zip(grads, (tq, tk, tv, ts)):
        np.testing.assert_allclose(g, t.grad.numpy(), atol=1e-11)


@pytest.mark.torch
def test_matches_gemma2_eager_softcap(rng):
    """Gemma 2's eager attention: scores scaled, divided by the cap,
    tanh, multiplied back, then the mask."""
    torch = _torch()
    q, k, v = qkv(rng, np.float64, 10, 14, spread=4.0)
    mask = rng.standard_normal((10, 14))
    tq, tk, tv = (torch.tensor(x, requires_grad=True) for x in (q, k, v))
    s = tq @ tk.transpose(-1, -2) * 0.25
    s = torch.tanh(s / 50.0) * 50.0 + torch.tensor(mask)
    ref = torch.softmax(s, dim=-1) @ tv
    go = rng.standard_normal(ref.shape)
    ref.backward(torch.tensor(go))
    out, lse = cattn.scaled_dot_product_attention(
        q, k, v, mask, scale=0.25, softcap=50.0, return_lse=True)
    np.testing.assert_allclose(out, ref.detach().numpy(), atol=1e-12)
    grads = cattn.scaled_dot_product_attention_grad(
        go, q, k, v, out, lse, mask, scale=0.25, softcap=50.0)
    for g, t in zip(grads, (tq, tk, tv)):
        np.testing.assert_allclose(g, t.grad.numpy(), atol=1e-11)


@pytest.mark.torch
def test_matches_alibi_as_a_float_mask(rng):
    """ALiBi written out as a float mask (the L x S array the kernel never
    builds), given to torch's own SDPA."""
    torch = _torch()
    q, k, v = qkv(rng, np.float64, 9, 31)
    slopes = 2.0 ** (-8 * np.arange(1, 5) / 4)          # BLOOM's slopes
    i, j = np.arange(9)[:, None], np.arange(31)[None, :]
    bias = -slopes[:, None, None] * np.abs(i + 31 - 9 - j)
    ref = torch.nn.functional.scaled_dot_product_attention(
        *(torch.tensor(x) for x in (q, k, v)), attn_mask=torch.tensor(bias))
    out = cattn.scaled_dot_product_attention(q, k, v, alibi_slopes=slopes)
    np.testing.assert_allclose(out, ref.numpy(), atol=1e-12)


# ------------------------------------------------------------- bad input --

@pytest.mark.parametrize("kw,err,match", [
    (dict(softcap=0.0), ValueError, "softcap must be None or a finite "
     "number > 0, got 0.0"),
    (dict(softcap=-1), ValueError, "softcap"),
    (dict(softcap=np.inf), ValueError, "softcap"),
    (dict(softcap=np.nan), ValueError, "softcap"),
    (dict(softcap="1"), TypeError, "softcap must be None or a real number"),
    (dict(softcap=True), TypeError, "softcap"),
    (dict(sinks=np.zeros(3)), ValueError, r"sinks of shape \(3,\) does not "
     r"broadcast to the heads: batch shape \(\.\.\., H\) = \(2, 4\)"),
    (dict(sinks=np.zeros((3, 4))), ValueError, "sinks of shape"),
    (dict(sinks=np.zeros(4, bool)), TypeError, "sinks must hold real "
     "numbers, got dtype bool"),
    (dict(sinks=np.zeros(4, complex)), TypeError, "sinks must hold real"),
    (dict(sinks=["a"] * 4), TypeError, "sinks must hold real"),
    (dict(alibi_slopes=np.zeros(5)), ValueError, "alibi_slopes of shape"),
    (dict(alibi_slopes=[0.1, np.inf, 0, 0]), ValueError,
     "alibi_slopes must be finite, got inf"),
    (dict(alibi_slopes=[0.1, np.nan, 0, 0]), ValueError,
     "alibi_slopes must be finite"),
])
def test_bad_inputs(kw, err, match, rng):
    q, k, v = qkv(rng, np.float32, 4, 6)
    with pytest.raises(err, match="scaled_dot_product_attention: " + match):
        cattn.scaled_dot_product_attention(q, k, v, **kw)


def test_hard_attention_has_no_sinks(rng):
    q, k, v = qkv(rng, np.float32, 4, 6)
    with pytest.raises(TypeError, match="sinks"):
        cattn.hard_attention(q, k, v, sinks=np.zeros(4))
    with pytest.raises(ValueError, match="hard_attention: softcap"):
        cattn.hard_attention(q, k, v, softcap=0)


# ------------------------------------------- the layer and Dask, the same --

def _layer(dtype=np.float64):
    rng = np.random.default_rng(5)
    mha = cattn.MultiHeadAttention(32, 4, num_kv_heads=2, dtype=dtype,
                                   rng=0, softcap=5.0, sinks=True,
                                   alibi_slopes=2.0 ** -np.arange(1, 5))
    mha.sinks[:] = rng.standard_normal(4)
    return mha


def test_layer_options_match_reference(rng):
    mha = _layer()
    x = rng.standard_normal((2, 9, 32))
    y, w = mha(x, is_causal=True, need_weights=True, average_attn_weights=False)
    b = mha.in_proj_bias

    def heads(t, n):
        return t.reshape(2, 9, n, 8).transpose(0, 2, 1, 3)
    q = heads(x @ mha.q_proj_weight.T + b[:32], 4)
    k = heads(x @ mha.k_proj_weight.T + b[32:48], 2)
    v = heads(x @ mha.v_proj_weight.T + b[48:], 2)
    kw = dict(is_causal=True, enable_gqa=True, softcap=5.0, sinks=mha.sinks,
              alibi_slopes=mha.alibi_slopes)
    o, _ = _reference.scaled_dot_product_attention(q, k, v, **kw)
    want = (o.transpose(0, 2, 1, 3).reshape(2, 9, 32) @ mha.out_proj_weight.T
            + mha.out_proj_bias)
    np.testing.assert_allclose(y, want, atol=1e-12)
    want_w, _ = _reference.attention_weights(q, k, **kw)
    np.testing.assert_allclose(w, want_w, atol=1e-12)
    # Decoding token by token with a cache gives the same rows.
    cache = mha.new_cache(2, 9)
    steps = np.concatenate([mha(x[:, t:t + 1], cache=cache)
                            for t in range(9)], axis=1)
    np.testing.assert_allclose(steps, y, atol=1e-12)


def test_layer_sinks_are_a_weight(rng):
    mha = _layer()
    x = rng.standard_normal((2, 6, 32))
    g = rng.standard_normal((2, 6, 32))
    _, grads = mha.backward(g, x, is_causal=True)
    assert sorted(grads) == sorted(mha.state_dict())
    assert "sinks" in grads and grads["sinks"].shape == (4,)
    h = 1e-6
    for i in range(4):
        e = np.zeros(4)
        e[i] = h
        mha.sinks += e
        up = (mha(x, is_causal=True) * g).sum()
        mha.sinks -= 2 * e
        down = (mha(x, is_causal=True) * g).sum()
        mha.sinks += e
        assert abs((up - down) / (2 * h) - grads["sinks"][i]) < 1e-7
    other = cattn.MultiHeadAttention(32, 4, num_kv_heads=2,
                                     dtype=np.float64, sinks=True,
                                     softcap=5.0,
                                     alibi_slopes=mha.alibi_slopes)
    other.load_state_dict(mha.state_dict())
    np.testing.assert_array_equal(other(x), mha(x))


@pytest.mark.parametrize("kw,match", [
    (dict(softcap=0), "MultiHeadAttention: softcap must be None or a "
     "finite number > 0"),
    (dict(alibi_slopes=np.ones(3)), r"MultiHeadAttention: alibi_slopes of "
     r"shape \(3,\) does not broadcast"),
])
def test_layer_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        cattn.MultiHeadAttention(32, 4, **kw)


def test_dask_matches_reference(rng):
    da = pytest.importorskip("dask.array")
    import cattn.dask
    q = rng.standard_normal((2, 4, 64, 8))
    k = rng.standard_normal((2, 2, 80, 8))
    v = rng.standard_normal((2, 2, 80, 8))
    kw = dict(softcap=3.0, sinks=rng.standard_normal(4),
              alibi_slopes=rng.uniform(0, 0.3, 4), is_causal="bottom_right",
              enable_gqa=True)
    for mask in (None, rng.random((64, 80)) < 0.8,
                 rng.standard_normal((64, 80))):
        out, lse = cattn.dask.scaled_dot_product_attention(
            da.from_array(q, chunks=(1, 2, 32, 8)),
            da.from_array(k, chunks=(1, 2, 16, 8)),
            da.from_array(v, chunks=(1, 2, 16, 8)), mask, return_lse=True,
            **kw)
        want, want_lse = _reference.scaled_dot_product_attention(
            q, k, v, mask, **kw)
        np.testing.assert_allclose(out.compute(scheduler="sync"), want,
                                   atol=1e-12)
        np.testing.assert_allclose(lse.compute(scheduler="sync"), want_lse,
                                   atol=1e-12)
    mha = _layer()
    x = rng.standard_normal((2, 40, 32))
    got = cattn.dask.multi_head_attention(
        mha, da.from_array(x, chunks=(1, 20, 32)), is_causal=True)
    np.testing.assert_allclose(got.compute(scheduler="sync"),
                               mha(x, is_causal=True), atol=1e-12)
