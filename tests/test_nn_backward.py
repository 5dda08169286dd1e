"""MultiHeadAttention.backward against central finite differences (float64)
and, when torch is importable, torch autograd through the same weights."""
import numpy as np
import pytest

import cattn

# (embed_dim, num_heads, layer keywords, call: self / qvv / qkv)
LAYERS = [
    (8, 2, {}, "self"),
    (8, 2, {}, "qvv"),
    (8, 4, {"kdim": 5, "vdim": 3}, "qkv"),
    (8, 4, {"num_kv_heads": 2}, "self"),
    (6, 3, {"bias": False}, "qkv"),
]


def make(rng, E, H, kw, call, B=2, L=4, S=5):
    mha = cattn.MultiHeadAttention(E, H, dtype=np.float64, rng=1, **kw)
    state = mha.state_dict()
    if "in_proj_bias" in state:       # nonzero biases, so their gradients
        state["in_proj_bias"] = rng.standard_normal(
            state["in_proj_bias"].shape)
        state["out_proj.bias"] = rng.standard_normal(E)
        mha.load_state_dict(state)
    x = rng.standard_normal((B, L, E))
    key = value = None
    if call != "self":
        key = rng.standard_normal((B, S, mha.kdim))
    if call == "qkv":
        value = rng.standard_normal((B, S, mha.vdim))
    return mha, x, key, value


def numeric_grad(f, x, h=1e-6):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        plus = f()
        x[idx] = old - h
        minus = f()
        x[idx] = old
        g[idx] = (plus - minus) / (2 * h)
    return g


@pytest.mark.parametrize("E, H, kw, call", LAYERS)
@pytest.mark.parametrize("masks", [{}, {"is_causal": True},
                                   {"padding": True}])
def test_finite_differences(E, H, kw, call, masks, rng):
    mha, x, key, value = make(rng, E, H, kw, call)
    S = x.shape[1] if key is None else key.shape[1]
    fwd_kw = {"is_causal": masks.get("is_causal", False)}
    if masks.get("padding"):
        pad = np.zeros((x.shape[0], S), bool)
        pad[0, -2:] = True
        fwd_kw["key_padding_mask"] = pad
    g = rng.standard_normal(x.shape)
    (dx, dk, dv), grads = mha.backward(g, x, key, value, **fwd_kw)

    def loss():
        return float((g * mha(x, key, value, **fwd_kw)).sum())

    inputs = [(dx, x), (dk, key), (dv, value)]
    for got, arr in inputs:
        if arr is None:
            assert got is None
            continue
        np.testing.assert_allclose(got, numeric_grad(loss, arr), rtol=1e-6,
                                   atol=1e-8)
    state = mha.state_dict()
    assert list(grads) == list(state)
    for name, w in state.items():
        assert grads[name].shape == w.shape and grads[name].dtype == w.dtype

        def loss_w(name=name, w=w):
            mha.load_state_dict({**state, name: w})
            return loss()
        np.testing.assert_allclose(grads[name], numeric_grad(loss_w, w),
                                   rtol=1e-6, atol=1e-8, err_msg=name)
        mha.load_state_dict(state)


def test_unbatched_and_float32(rng):
    mha = cattn.MultiHeadAttention(16, 4, rng=0)
    x = rng.standard_normal((7, 16)).astype(np.float32)
    g = rng.standard_normal((7, 16)).astype(np.float32)
    (dx, dk, dv), grads = mha.backward(g, x)
    (dx_b, _, _), grads_b = mha.backward(g[None], x[None])
    assert dx.shape == (7, 16) and dk is None and dv is None
    np.testing.assert_array_equal(dx, dx_b[0])
    for name in grads:
        assert grads[name].dtype == np.float32
        np.testing.assert_array_equal(grads[name], grads_b[name])


@pytest.mark.torch
@pytest.mark.parametrize("call", ["self", "qvv", "qkv"])
def test_against_torch_autograd(call, rng):
    torch = pytest.importorskip("torch")
    E, H = 16, 4
    kw = {"kdim": 12, "vdim": 10} if call == "qkv" else {}
    mha, x, key, value = make(rng, E, H, kw, call, B=3, L=6, S=9)
    layer = torch.nn.MultiheadAttention(E, H, batch_first=True,
                                        dtype=torch.float64, **kw)
    layer.load_state_dict({k: torch.from_numpy(v.copy())
                           for k, v in mha.state_dict().items()})
    tx = torch.from_numpy(x).requires_grad_()
    tk = tx if key is None else torch.from_numpy(key).requires_grad_()
    tv = tk if value is None else torch.from_numpy(value).requires_grad_()
    pad = np.zeros((3, tk.shape[1]), bool)
    pad[1, :2] = True
    out, _ = layer(tx, tk, tv, key_padding_mask=torch.from_numpy(pad),
                   need_weights=False)
    g = rng.standard_normal(out.shape)
    out.backward(torch.from_numpy(g))
    (dx, dk, dv), grads = mha.backward(g, x, key, value,
                                       key_padding_mask=pad)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    if key is not None:
        np.testing.assert_allclose(dk, tk.grad.numpy(), rtol=1e-9,
                                   atol=1e-11)
    if value is not None:
        np.testing.assert_allclose(dv, tv.grad.numpy(), rtol=1e-9,
                                   atol=1e-11)
    for name, param in layer.named_parameters():
        np.testing.assert_allclose(grads[name], param.grad.numpy(),
                                   rtol=1e-9, atol=1e-11, err_msg=name)


def test_sgd_lowers_the_loss(rng):
    # The docs' promise: a few lines of NumPy SGD train the layer.
    mha = cattn.MultiHeadAttention(16, 4, rng=0)
    x = rng.standard_normal((8, 10, 16)).astype(np.float32)
    target = np.roll(x, 2, axis=1)
    first = last = None
    for _ in range(40):
        y = mha(x, is_causal=True)
        loss = float(((y - target) ** 2).mean())
        first = loss if first is None else first
        last = loss
        _, grads = mha.backward(2 * (y - target) / y.size, x, is_causal=True)
        mha.load_state_dict({n: w - 1.0 * grads[n]
                             for n, w in mha.state_dict().items()})
    assert last < 0.7 * first
