"""int8 quantized keys and values (cattn.quantize, q8_0 blocks).

The twin: QuantizedArray.dequantize() in float32, then the float64 or
float32 attention on it.  The tiled path packs the dequantized values
themselves (bit for bit the float32 call on dequantize()); the decode path
sums per block (scale_b · (q · values_b)), so it is held to float32
rounding of that call instead.  The error model of quantize() itself is
checked against its inputs."""
import numpy as np
import pytest

import cattn
from cattn import _reference

ml_dtypes = pytest.importorskip("ml_dtypes")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16,
                                   ml_dtypes.bfloat16], ids=str)
@pytest.mark.parametrize("block", [1, 8, 32, 64])
def test_quantize_error_model(dtype, block, rng):
    """Each element within half a step (scale / 2) of x, plus float32
    rounding; values in [-127, 127]; zero blocks exact; the block's
    largest magnitude maps to +-127."""
    x = (rng.standard_normal((3, 5, 64)) * 10 ** rng.uniform(
        -3, 3, (3, 5, 1))).astype(dtype)
    x[0, 0, :block] = 0                              # a zero block
    qa = cattn.quantize(x, block_size=block)
    assert qa.values.dtype == np.int8 and qa.scales.dtype == np.float32
    assert qa.shape == x.shape and qa.scales.shape == (3, 5, 64 // block)
    assert np.abs(qa.values.astype(int)).max() <= 127
    step = np.repeat(qa.scales, block, axis=-1).astype(np.float64)
    xf = x.astype(np.float32).astype(np.float64)
    err = np.abs(qa.dequantize().astype(np.float64) - xf)
    assert np.all(err <= step / 2 + 4e-7 * step * 127)
    np.testing.assert_array_equal(qa.dequantize()[0, 0, :block], 0)
    blocks = np.abs(qa.values.reshape(3, 5, -1, block)).max(axis=-1)
    np.testing.assert_array_equal(blocks[qa.scales > 0], 127)


def test_quantized_array_indexing(rng):
    qa = cattn.quantize(rng.standard_normal((2, 3, 10, 64)))
    sub = qa[:, 1:, :4]
    np.testing.assert_array_equal(sub.dequantize(), qa.dequantize()[:, 1:, :4])
    assert qa[..., None, :, :].shape == (2, 3, 1, 10, 64)
    with pytest.raises(IndexError, match="block axis"):
        qa[..., :16]
    with pytest.raises(IndexError, match="block axis"):
        qa[0, 0, 0, 0]


# (L, S, kwargs): decode rows (streamed, per-block sums) and tiles.
CASES = [(1, 3000, {}), (1, 300, {"is_causal": "bottom_right"}),
         (3, 200, {"mask": True}), (40, 300, {"is_causal": True}),
         (50, 70, {"window": (5, 2)}), (64, 2100, {}),
         (20, 25, {"gqa": True, "is_causal": True}), (0, 5, {}), (4, 0, {})]


@pytest.mark.parametrize("qdtype", [np.float32, np.float16,
                                    ml_dtypes.bfloat16], ids=str)
@pytest.mark.parametrize("L,S,opts", CASES,
                         ids=[f"{c[0]}x{c[1]}-{c[2]}" for c in CASES])
def test_sdpa_on_int8_kv(qdtype, L, S, opts, isa, rng):
    opts = dict(opts)
    hkv = 1 if opts.pop("gqa", False) else 3
    mask = None
    if opts.pop("mask", False):
        mask = rng.random((L, S)) < 0.7
        mask[0] = False                           # a fully masked row
    if hkv != 3:
        opts["enable_gqa"] = True
    q = rng.standard_normal((2, 3, L, 64)).astype(qdtype)
    k, v = (rng.standard_normal((2, hkv, S, 64)).astype(np.float32)
            for _ in range(2))
    kq, vq = cattn.quantize(k), cattn.quantize(v)
    got, lse = cattn.scaled_dot_product_attention(q, kq, vq, mask,
                                                  return_lse=True, **opts)
    assert got.dtype == np.dtype(qdtype) and lse.dtype == np.float32
    kd, vd = kq.dequantize(), vq.dequantize()
    want, want_lse = cattn.scaled_dot_product_attention(
        q, kd, vd, mask, return_lse=True, precision="highest", **opts)
    want = want.astype(qdtype)        # the output takes the query's dtype
    if L > 4:      # tiles: the packed values are dequantize()'s, exactly
        np.testing.assert_array_equal(got.astype(np.float32),
                                      want.astype(np.float32))
    else:          # rows: per-block sums, float32 rounding (then 16-bit)
        tol = max(2e-6, float(ml_dtypes.finfo(qdtype).eps))
        np.testing.assert_allclose(got.astype(np.float32),
                                   want.astype(np.float32), atol=tol,
                                   rtol=tol)
    np.testing.assert_allclose(lse, want_lse, atol=2e-6, rtol=2e-6)
    # and the float64 twin on the dequantized values
    ref, _ = _reference.scaled_dot_product_attention(
        q.astype(np.float64), kd.astype(np.float64), vd.astype(np.float64),
        mask, **opts)
    eps = 2.0 ** -8 if qdtype != np.float32 else 1e-5
    assert np.all(np.abs(got.astype(np.float64) - ref)
                  <= eps * (np.abs(ref).max(axis=-1, keepdims=True) + 1e-30))


def test_int8_kv_threads_and_layouts(isa, rng):
    q = rng.standard_normal((2, 4, 1, 64)).astype(np.float32)
    kq = cattn.quantize(rng.standard_normal((2, 4, 900, 64)))
    vq = cattn.quantize(rng.standard_normal((2, 4, 900, 64)))
    base = cattn.scaled_dot_product_attention(q, kq, vq, num_threads=1)
    for nt in (2, 3):
        np.testing.assert_array_equal(cattn.scaled_dot_product_attention(
            q, kq, vq, num_threads=nt), base)
    # a slice of a larger cache (leading strides of the storage)
    np.testing.assert_array_equal(cattn.scaled_dot_product_attention(
        q[:1], kq[:1], vq[:1]), base[:1])


def test_int8_cache_of_a_layer(rng):
    """new_cache(dtype="int8"): appended keys and values are quantized once;
    each step equals the attention over the dequantized cache; the whole
    generation stays within the q8 error of the float32 layer."""
    mha = cattn.MultiHeadAttention(64, 4, num_kv_heads=2, rng=0)
    x = rng.standard_normal((1, 20, 64)).astype(np.float32)
    want = mha(x, is_causal=True)
    cache = mha.new_cache(1, 32, dtype="int8")
    assert cache.dtype == "int8" and cache.key.block_size == 16
    steps = np.concatenate([mha(x[:, t:t + 1], cache=cache)
                            for t in range(20)], axis=1)
    assert np.linalg.norm(steps - want) <= 2e-2 * np.linalg.norm(want)
    with pytest.raises(ValueError, match="need_weights"):
        mha(x[:, :1], cache=cache, need_weights=True)
