"""_kernels/_layout: batch offsets and strides, against NumPy's own
broadcasting (the twin: broadcast_to's strides, enumerated in C order)."""
import numpy as np
import pytest

from cattn._kernels import _layout


def reference_offsets(x, batch):
    full = np.broadcast_to(x, batch + x.shape[-2:])
    item = x.itemsize
    idx = np.indices(batch).reshape(len(batch), -1) if batch else \
        np.zeros((0, 1), dtype=np.int64)
    strides = np.array([s // item for s in full.strides[:len(batch)]],
                       dtype=np.int64)
    return (strides[:, None] * idx).sum(axis=0).astype(np.int64)


@pytest.mark.parametrize("shape, batch", [
    ((3, 4), ()), ((3, 4), (2,)), ((2, 3, 4), (2,)), ((1, 3, 4), (5,)),
    ((2, 1, 3, 4), (2, 6)), ((6, 3, 4), (2, 6)), ((0, 3, 4), (0,)),
    ((2, 3, 4), (0, 2)), ((2, 1, 2, 1, 3, 4), (2, 3, 2, 4)),
])
def test_batch_offsets_match_numpy(shape, batch):
    x = np.zeros(shape, np.float32)
    for view in (x, x[..., ::-1, :], x.swapaxes(-1, -2)):
        got = _layout.batch_offsets(view, batch)
        assert got.dtype == np.int64 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, reference_offsets(view, batch))


def test_batch_offsets_negative_and_odd_strides():
    x = np.zeros((4, 5, 3, 2), np.float64)[::-1, ::2]
    np.testing.assert_array_equal(_layout.batch_offsets(x, (4, 3)),
                                  reference_offsets(x, (4, 3)))


def test_batch_offsets_rejects_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError, match="cannot broadcast"):
        _layout.batch_offsets(np.zeros((3, 2, 2)), (4,))
    with pytest.raises(ValueError, match="cannot broadcast"):
        _layout.batch_offsets(np.zeros((2, 3, 2, 2)), (3,))


def test_element_strides_only_of_walkable_layouts():
    x = np.zeros((4, 6), np.float32)
    assert _layout.element_strides(x[:, ::-2]) == (6, -2)
    raw = np.zeros(4 * 6 * 4 + 1, np.uint8)[1:].view(np.float32).reshape(4, 6)
    assert not raw.flags.aligned and _layout.element_strides(raw) is None


def test_matmul_checks_its_operands_and_copies_odd_layouts():
    """matmul's driver describes its operands through the frame's Operands:
    a misaligned operand is read from an aligned copy (the same values),
    and an operand that does not fit the product is an AssertionError
    before any kernel runs, never a read outside it."""
    import cattn
    from cattn._kernels import _gemm
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 5)).astype(np.float32)
    raw = np.zeros(5 * 4 * 4 + 1, np.uint8)[1:].view(np.float32).reshape(5, 4)
    raw[...] = rng.standard_normal((5, 4))
    np.testing.assert_array_equal(cattn.matmul(a, raw),
                                  cattn.matmul(a, raw.copy()))
    c = np.empty((3, 4), np.float32)
    with pytest.raises(AssertionError, match="operand b of shape"):
        _gemm.matmul(a, raw[:4], c, (), 1)
    with pytest.raises(AssertionError, match="operand out of shape"):
        _gemm.matmul(a, raw, c[:2], (), 1)


def test_kernel_contracts_are_checked_before_any_kernel_runs():
    """The drivers take a Call and arrays, and check every operand against
    it (shape, broadcast to the items, every reachable element inside the
    array) before a kernel reads it: a mismatch is an AssertionError, never
    a read outside the array."""
    import cattn
    from cattn import _frame
    from cattn._kernels import _attention, _attention_grad, _topk
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 3, 8, 4))
    (q, k, v), mask, call = _frame.describe("f", q, q, q)
    o = np.empty_like(q)
    _attention.attention(call, call.batch, q, k, v, None, o, None, None)
    np.testing.assert_array_equal(
        o, cattn.scaled_dot_product_attention(q, k, v))
    bad = [
        dict(k=k[..., :7, :]),                        # S disagrees
        dict(v=v[..., :3]),                           # Ev disagrees
        dict(q=q[:, :2]),                             # does not broadcast
        dict(items=(2, 4)),                           # more items than data
        dict(mask=np.ones((8, 7), bool)),             # mask of another S
        dict(lse=np.empty((2, 3, 7))),                # short lse
        dict(o=np.empty((2, 3, 8, 4))[..., ::2, :]),  # out of another L
    ]
    for case in bad:
        args = dict(items=call.batch, q=q, k=k, v=v, mask=None, o=o,
                    lse=None)
        args.update(case)
        with pytest.raises(AssertionError, match="cattn internal error"):
            _attention.attention(call, args["items"], args["q"], args["k"],
                                 args["v"], args["mask"], args["o"],
                                 args["lse"], None)
    # Operands a driver reads through one kernel's packers share a storage.
    with pytest.raises(AssertionError, match="read as one"):
        _attention.attention(call, call.batch, q, k.astype(np.float32), v,
                             None, o, None, None)
    with pytest.raises(AssertionError, match="read as one"):
        _topk.select_top_k(call._replace(top_k=2), call.batch, q,
                           k.astype(np.float32), None, np.empty((2, 3, 8)),
                           np.empty((2, 3, 8), np.int64))
    # A block of a larger call (Call.origin) places itself by the global
    # lengths: without them it is refused, not read as a whole call.
    with pytest.raises(AssertionError, match="block of a call without"):
        _attention.attention(call._replace(origin=(0, 4)), call.batch, q, k,
                             v, None, o, None, None)
    thr, idx = np.empty((2, 3, 8)), np.empty((2, 3, 8), np.int64)
    with pytest.raises(AssertionError, match="cattn internal error"):
        _topk.select_top_k(call._replace(top_k=2), call.batch, q,
                           k[..., :5, :], None, thr, idx)
    with pytest.raises(AssertionError, match="cattn internal error"):
        _topk.select_top_k(call._replace(top_k=2), call.batch, q, k, None,
                           thr[..., :4], idx)
    lse = np.zeros((2, 3, 8))
    zeros = [np.zeros((2, 3, 8, 4)) for _ in range(3)]
    with pytest.raises(AssertionError, match="cattn internal error"):
        _attention_grad.attention_grad(
            call, call.batch, q[..., np.newaxis, :, :], k, v,
            o[..., np.newaxis, :, :], o[..., np.newaxis, :, :], lse[..., :4],
            None, *zeros, None)
