"""cattn.dask against the single-machine functions: every chunking path
(batch, heads, query chunks, key chunks merged by log-sum-exp), masks,
causal and windows across chunks, GQA, MultiHeadAttention; under the local
threaded scheduler and on a dask.distributed LocalCluster on loopback."""
import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import cattn                                            # noqa: E402
from conftest import TOL as TOLERANCES                   # noqa: E402
import cattn.dask as cd                                 # noqa: E402

# float32: the merged result against one kernel call over all keys.
TOL = TOLERANCES["elementwise"]


def chunked(x, chunks):
    return da.from_array(x, chunks=chunks)


def close(got, want):
    tol = TOL[want.dtype.type]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    inf = np.isinf(want)
    np.testing.assert_array_equal(got[inf], want[inf])
    ok = np.isfinite(want)
    scale = max(np.abs(want[ok]).max(initial=0), 1.0)
    assert np.abs(got[ok] - want[ok]).max(initial=0) <= tol * scale


CASES = [
    # (q shape, q chunks, kv shape, kv chunks, keywords)
    ((4, 2, 64, 8), (2, 1, 64, 8), (4, 2, 64, 8), (2, 1, 64, 8), {}),
    ((4, 2, 64, 8), (4, 2, 16, 8), (4, 2, 96, 8), (4, 2, 32, 8), {}),
    ((2, 3, 50, 8), (1, 3, 20, 8), (2, 3, 70, 8), (1, 3, 25, 8),
     {"is_causal": True}),
    ((2, 3, 50, 8), (2, 3, 17, 8), (2, 3, 70, 8), (2, 3, 9, 8),
     {"is_causal": "bottom_right", "window": (12, 3)}),
    ((2, 4, 40, 8), (1, 2, 20, 8), (2, 2, 60, 8), (1, 1, 15, 8),
     {"enable_gqa": True, "is_causal": True}),
    ((1, 100, 16), (1, 30, 16), (1, 300, 16), (1, 64, 16),
     {"window": (None, 5)}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("qs, qc, ks, kc, kw", CASES)
def test_against_one_kernel_call(qs, qc, ks, kc, kw, dtype, rng):
    q = rng.standard_normal(qs).astype(dtype)
    k = rng.standard_normal(ks).astype(dtype)
    v = rng.standard_normal(ks[:-1] + (5,)).astype(dtype)
    want, want_lse = cattn.scaled_dot_product_attention(q, k, v,
                                                        return_lse=True, **kw)
    out, lse = cd.scaled_dot_product_attention(
        chunked(q, qc), chunked(k, kc), chunked(v, kc[:-1] + (5,)),
        return_lse=True, **kw)
    assert out.chunks[-2] == chunked(q, qc).chunks[-2]
    got, got_lse = da.compute(out, lse, scheduler="threads")
    assert got.dtype == dtype and got.shape == want.shape
    close(got, want)
    np.testing.assert_array_equal(np.isneginf(got_lse), np.isneginf(want_lse))
    fin = np.isfinite(want_lse)
    close(got_lse[fin], want_lse[fin])


def test_masks_and_broadcast_key_value(rng):
    q = rng.standard_normal((3, 2, 40, 8))
    k = rng.standard_normal((1, 2, 90, 8))          # shared by the batch
    v = rng.standard_normal((1, 2, 90, 4))
    bool_mask = rng.random((3, 1, 40, 90)) < 0.7
    bool_mask[0, 0, 5] = False                      # a row that sees nothing
    float_mask = rng.standard_normal((40, 90))
    for mask in (bool_mask, float_mask, chunked(float_mask, (20, 30))):
        want = cattn.scaled_dot_product_attention(
            q, k, v, np.asarray(mask), is_causal=True)
        got = cd.scaled_dot_product_attention(
            chunked(q, (1, 2, 20, 8)), chunked(k, (1, 2, 30, 8)),
            chunked(v, (1, 2, 30, 4)), mask, is_causal=True)
        close(got.compute(scheduler="threads"), want)


def test_gqa_with_per_head_mask(rng):
    q = rng.standard_normal((2, 4, 30, 8))
    k = rng.standard_normal((2, 2, 50, 8))
    mask = rng.random((2, 4, 30, 50)) < 0.8
    want = cattn.scaled_dot_product_attention(q, k, k, mask, enable_gqa=True)
    got = cd.scaled_dot_product_attention(
        chunked(q, (1, 4, 10, 8)), chunked(k, (1, 2, 25, 8)),
        chunked(k, (1, 2, 25, 8)), chunked(mask, (1, 4, 10, 25)),
        enable_gqa=True)
    close(got.compute(scheduler="threads"), want)


def test_self_attention_and_numpy_inputs(rng):
    x = rng.standard_normal((2, 60, 8)).astype(np.float32)
    want = cattn.self_attention(x, is_causal=True)
    got = cd.self_attention(chunked(x, (1, 20, 8)), is_causal=True)
    close(got.compute(scheduler="threads"), want)
    # NumPy inputs become one chunk each
    close(cd.self_attention(x).compute(scheduler="threads"),
          cattn.self_attention(x))


@pytest.mark.parametrize("call", ["self", "qvv", "qkv"])
def test_multi_head_attention(call, rng):
    kw = {"kdim": 6, "vdim": 5} if call == "qkv" else {}
    mha = cattn.MultiHeadAttention(16, 4, num_kv_heads=2 if call == "self"
                                   else None, dtype=np.float64, rng=0, **kw)
    x = rng.standard_normal((4, 30, 16))
    key = value = None
    if call != "self":
        key = rng.standard_normal((4, 45, mha.kdim))
    if call == "qkv":
        value = rng.standard_normal((4, 45, mha.vdim))
    S = 30 if key is None else 45
    pad = np.zeros((4, S), bool)
    pad[1, -7:] = True
    want = mha(x, key, value, key_padding_mask=pad, is_causal=call == "self")
    got = cd.multi_head_attention(
        mha, chunked(x, (2, 10, 16)),
        None if key is None else chunked(key, (2, 15, mha.kdim)),
        None if value is None else chunked(value, (2, 15, mha.vdim)),
        key_padding_mask=pad, is_causal=call == "self")
    close(got.compute(scheduler="threads"), want)


def test_empty_and_errors(rng):
    q = rng.standard_normal((2, 5, 4))
    k = rng.standard_normal((2, 0, 4))
    out, lse = cd.scaled_dot_product_attention(q, k, k, return_lse=True)
    assert (out.compute() == 0).all() and np.isneginf(lse.compute()).all()
    with pytest.raises(TypeError, match="query has dtype int64"):
        cd.scaled_dot_product_attention(np.zeros((2, 2), np.int64), q[0], q[0])
    with pytest.raises(ValueError, match="same last dimension E"):
        cd.scaled_dot_product_attention(q, q[..., :3], q)
    with pytest.raises(ValueError, match="is_causal"):
        cd.scaled_dot_product_attention(q, q, q, is_causal="no")
    with pytest.raises(ValueError, match="does not broadcast"):
        cd.scaled_dot_product_attention(q, q, q, np.ones((3, 5), bool))


def test_errors_match_the_eager_calls_and_name_the_callee(rng):
    """The Dask functions validate with the frame's rules: the same
    exception type and message as the NumPy call, naming the function the
    user called."""
    q = rng.standard_normal((2, 5, 4))
    bad = [((q, q[..., :3], q), {}, "same last dimension E"),
           ((q, q, q[:, :4]), {}, "same number of keys S"),
           ((q, q, q), {"window": (-1, 0)}, "window left bound"),
           ((q, q, q), {"scale": float("inf")}, "scale must be finite"),
           ((q, q, q, np.zeros((5, 5), np.int32)), {}, "attn_mask has dtype")]
    for args, kw, match in bad:
        with pytest.raises(Exception, match=match) as eager:
            cattn.scaled_dot_product_attention(*args, **kw)
        with pytest.raises(type(eager.value)) as lazy:
            cd.scaled_dot_product_attention(*args, **kw)
        func, message = str(lazy.value).split(": ", 1)
        assert func == "cattn.dask.scaled_dot_product_attention"
        assert message == str(eager.value).split(": ", 1)[1]
    with pytest.raises(ValueError, match="^cattn.dask.self_attention: "):
        cd.self_attention(q, is_causal="no")
    mha = cattn.MultiHeadAttention(4, 2, dtype=np.float64, rng=0)
    x = rng.standard_normal((2, 5, 4))
    for pad, exc in ((np.zeros((2, 5), np.int8), TypeError),
                     (np.zeros((2, 4), bool), ValueError)):
        with pytest.raises(exc) as eager:
            mha(x, key_padding_mask=pad)
        with pytest.raises(exc, match="^cattn.dask.multi_head_attention: "
                           "key_padding_mask"):
            cd.multi_head_attention(mha, x, key_padding_mask=pad)
        assert "MultiHeadAttention: key_padding_mask" in str(eager.value)


def test_task_threads_policy():
    from cattn.dask import _task_threads
    assert _task_threads(3) == 3
    assert _task_threads(None) is None            # main thread, no worker
    result = da.from_array(np.zeros(4), chunks=1).map_blocks(
        lambda b: np.full(b.shape, _task_threads(None) or 0)).compute(
            scheduler="threads")
    assert (result == 1).all()                    # pool threads: one each


def test_distributed_local_cluster(rng):
    distributed = pytest.importorskip("distributed")
    q = rng.standard_normal((4, 2, 80, 8)).astype(np.float32)
    k = rng.standard_normal((4, 2, 120, 8)).astype(np.float32)
    mha = cattn.MultiHeadAttention(8, 2, rng=0)
    x = rng.standard_normal((4, 24, 8)).astype(np.float32)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                  processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        out = cd.scaled_dot_product_attention(
            chunked(q, (2, 2, 40, 8)), chunked(k, (2, 2, 30, 8)),
            chunked(k, (2, 2, 30, 8)), is_causal="bottom_right")
        close(client.compute(out).result(),
              cattn.scaled_dot_product_attention(q, k, k,
                                                 is_causal="bottom_right"))
        y = cd.multi_head_attention(mha, chunked(x, (2, 12, 8)),
                                    is_causal=True)
        close(client.compute(y).result(), mha(x, is_causal=True))
        # the workers' OpenMP default is one thread (the nanny's setting)
        threads = client.run(lambda: cattn.show_config(mode="dicts")
                             ["openmp"]["default_threads"])
        assert set(threads.values()) == {1}


def test_nan_and_fully_masked_rows_across_key_chunks(rng):
    q = rng.standard_normal((2, 30, 8))
    k = rng.standard_normal((2, 60, 8))
    q[0, 3, 0] = np.nan                      # NaN row: NaN in every chunk
    mask = np.ones((30, 60), bool)
    mask[7] = False                          # sees nothing: 0, lse -inf
    mask[9, :45] = False                     # sees only the last key chunk
    want, want_lse = cattn.scaled_dot_product_attention(q, k, k, mask,
                                                        return_lse=True)
    out, lse = cd.scaled_dot_product_attention(
        chunked(q, (1, 10, 8)), chunked(k, (1, 15, 8)), chunked(k, (1, 15, 8)),
        mask, return_lse=True)
    got, got_lse = da.compute(out, lse, scheduler="threads")
    close(got, want)
    assert np.isnan(got[0, 3]).all() and (got[:, 7] == 0).all()
    assert np.isneginf(got_lse[:, 7]).all()
    np.testing.assert_array_equal(np.isnan(got_lse), np.isnan(want_lse))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_hidden_nonfinite_values_across_key_chunks(bad, rng):
    # Key 50's value is inf/NaN; causal rows before 50 cannot see it and
    # stay finite, also where their key chunks are merged with its chunk
    # at weight 0 -- as in one kernel call.
    q = rng.standard_normal((2, 60, 8))
    k = rng.standard_normal((2, 60, 8))
    v = rng.standard_normal((2, 60, 8))
    v[:, 50, 1] = bad
    want = cattn.scaled_dot_product_attention(q, k, v, is_causal=True)
    got = cd.scaled_dot_product_attention(
        chunked(q, (1, 20, 8)), chunked(k, (1, 15, 8)), chunked(v, (1, 15, 8)),
        is_causal=True).compute(scheduler="threads")
    close(got, want)
    assert np.isfinite(got[:, :50]).all() and not np.isfinite(got[:, 50:]).all()
