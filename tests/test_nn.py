"""MultiHeadAttention against the head-by-head float64 reference and, when
torch is importable, against torch.nn.MultiheadAttention."""
import io

import numpy as np
import pytest

import cattn
from conftest import TOL
from cattn import _reference

RTOL = TOL["layer"]


def reference(mha, query, key=None, value=None, **kw):
    key = query if key is None else key
    value = key if value is None else value
    return _reference.multi_head_attention(
        mha.state_dict(), query, key, value, mha.num_heads, mha.num_kv_heads,
        **kw)


def close(got, want, dtype):
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype],
                               atol=RTOL[dtype] * max(1.0, np.abs(want).max()))


def randomize_biases(mha, rng):
    if mha.in_proj_bias is not None:
        mha.in_proj_bias[...] = rng.standard_normal(mha.in_proj_bias.shape)
        mha.out_proj_bias[...] = rng.standard_normal(mha.out_proj_bias.shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", [
    dict(), dict(bias=False), dict(kdim=5, vdim=7), dict(num_kv_heads=2),
    dict(num_kv_heads=1), dict(kdim=6, num_kv_heads=2)])
def test_matches_reference(dtype, config, rng):
    mha = cattn.MultiHeadAttention(16, 4, dtype=dtype, rng=0, **config)
    randomize_biases(mha, rng)
    x = rng.standard_normal((3, 9, 16)).astype(dtype)
    mem_k = rng.standard_normal((3, 11, mha.kdim)).astype(dtype)
    mem_v = rng.standard_normal((3, 11, mha.vdim)).astype(dtype)
    if mha.kdim == 16 and mha.vdim == 16:
        out, w = mha(x, need_weights=True, average_attn_weights=False)
        ref_out, ref_w = reference(mha, x)
        close(out, ref_out, dtype)
        close(w, ref_w, dtype)
        close(mha(x, is_causal=True), reference(mha, x, is_causal=True)[0],
              dtype)
    if mha.kdim == mha.vdim:
        close(mha(x, mem_k), reference(mha, x, mem_k)[0], dtype)   # QVV
    out = mha(x, mem_k, mem_v)
    assert out.dtype == dtype and out.shape == (3, 9, 16)
    close(out, reference(mha, x, mem_k, mem_v)[0], dtype)


def test_masks_together(rng):
    mha = cattn.MultiHeadAttention(16, 4, rng=0, dtype=np.float64)
    x = rng.standard_normal((2, 6, 16))
    mem = rng.standard_normal((2, 8, 16))
    kpm = np.zeros((2, 8), bool)
    kpm[0, 5:] = True                   # padding: ignored
    kpm[1, :] = True                    # a fully padded batch entry
    bool_mask = rng.random((6, 8)) < 0.8    # True = may attend
    float_mask = rng.standard_normal((2, 6, 8))
    for attn_mask in (None, bool_mask, float_mask):
        out, w = mha(mem[:, :6], mem, key_padding_mask=kpm,
                     attn_mask=attn_mask, need_weights=True)
        ref_out, ref_w = reference(mha, mem[:, :6], mem, key_padding_mask=kpm,
                                   attn_mask=attn_mask)
        close(out, ref_out, np.float64)
        close(w, ref_w.mean(axis=1), np.float64)
        # Fully padded rows: attention output 0, so only the output bias.
        np.testing.assert_allclose(out[1], np.broadcast_to(
            mha.out_proj_bias, (6, 16)), atol=1e-12)
        assert np.all(w[1] == 0)
    out = mha(x, key_padding_mask=np.zeros((2, 6), bool), is_causal=True,
              attn_mask=np.tril(np.ones((6, 6), bool), -1) | np.eye(6, dtype=bool))
    close(out, reference(mha, x, is_causal=True)[0], np.float64)


def test_unbatched(rng):
    mha = cattn.MultiHeadAttention(8, 2, rng=0)
    x = rng.standard_normal((5, 8)).astype(np.float32)
    m = rng.standard_normal((7, 8)).astype(np.float32)
    out, w = mha(x, m, need_weights=True)
    assert out.shape == (5, 8) and w.shape == (5, 7)
    np.testing.assert_allclose(out, mha(x[None], m[None])[0], rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(mha(x, mha.project_memory(m)), out, rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("num_kv_heads", [4, 2])
def test_cache_decoding_equals_full_causal(num_kv_heads, rng):
    mha = cattn.MultiHeadAttention(16, 4, num_kv_heads=num_kv_heads, rng=0)
    randomize_biases(mha, rng)
    x = rng.standard_normal((2, 10, 16)).astype(np.float32)
    full = mha(x, is_causal=True)
    cache = mha.new_cache(2, 16)
    pieces = [mha(x[:, :3], cache=cache)]          # a prompt of 3 tokens
    for t in range(3, 10):
        pieces.append(mha(x[:, t:t + 1], cache=cache))
    assert cache.length == 10
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full,
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="cache is full"):
        mha(rng.standard_normal((2, 7, 16)).astype(np.float32), cache=cache)


def test_projected_memory_equals_direct(rng):
    mha = cattn.MultiHeadAttention(16, 4, kdim=6, vdim=5, rng=0)
    x = rng.standard_normal((2, 3, 16)).astype(np.float32)
    mk = rng.standard_normal((2, 9, 6)).astype(np.float32)
    mv = rng.standard_normal((2, 9, 5)).astype(np.float32)
    mem = mha.project_memory(mk, mv)
    np.testing.assert_allclose(mha(x, mem), mha(x, mk, mv), rtol=1e-6,
                               atol=1e-6)


def test_state_dict_round_trip_and_npz(rng):
    a = cattn.MultiHeadAttention(8, 2, kdim=3, vdim=4, rng=0)
    b = cattn.MultiHeadAttention(8, 2, kdim=3, vdim=4, rng=1)
    b.load_state_dict(a.state_dict())
    x = rng.standard_normal((1, 4, 8)).astype(np.float32)
    k = rng.standard_normal((1, 5, 3)).astype(np.float32)
    v = rng.standard_normal((1, 5, 4)).astype(np.float32)
    np.testing.assert_array_equal(a(x, k, v), b(x, k, v))
    buf = io.BytesIO()
    a.save(buf)
    buf.seek(0)
    c = cattn.MultiHeadAttention(8, 2, kdim=3, vdim=4, rng=2)
    c.load(buf)
    np.testing.assert_array_equal(a(x, k, v), c(x, k, v))
    # state_dict returns copies.
    sd = a.state_dict()
    sd["out_proj.weight"][...] = 0
    assert a.out_proj_weight.any()


@pytest.mark.torch
def test_matches_torch(rng):
    torch = pytest.importorskip("torch")
    for kw in (dict(), dict(kdim=5, vdim=6), dict(bias=False)):
        tm = torch.nn.MultiheadAttention(16, 4, batch_first=True,
                                         dtype=torch.float64, **kw).eval()
        if kw.get("bias", True):
            with torch.no_grad():
                tm.in_proj_bias.normal_()
                tm.out_proj.bias.normal_()
        mha = cattn.MultiHeadAttention(16, 4, dtype=np.float64, **kw)
        mha.load_state_dict({k: v.numpy() for k, v in
                             tm.state_dict().items()})
        q = rng.standard_normal((2, 5, 16))
        k = rng.standard_normal((2, 7, mha.kdim))
        v = rng.standard_normal((2, 7, mha.vdim))
        kpm = np.zeros((2, 7), bool)
        kpm[0, 4:] = True
        allowed = rng.random((5, 7)) < 0.8
        allowed[:, 0] = True
        with torch.no_grad():
            t_out, t_w = tm(*(torch.from_numpy(a) for a in (q, k, v)),
                            key_padding_mask=torch.from_numpy(kpm),
                            attn_mask=torch.from_numpy(~allowed),  # torch: True = blocked
                            need_weights=True)
        out, w = mha(q, k, v, key_padding_mask=kpm, attn_mask=allowed,
                     need_weights=True)
        np.testing.assert_allclose(out, t_out.numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(w, t_w.numpy(), rtol=1e-10, atol=1e-12)
