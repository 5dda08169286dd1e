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


def test_element_strides_and_operand_copy_only_odd_layouts():
    x = np.zeros((4, 6), np.float32)
    assert _layout.element_strides(x[:, ::-2]) == (6, -2)
    raw = np.zeros(4 * 6 * 4 + 1, np.uint8)[1:].view(np.float32).reshape(4, 6)
    assert not raw.flags.aligned and _layout.element_strides(raw) is None
    same, rs, cs, off = _layout.operand(x[:, ::-2], (1,))
    assert same.base is x and (rs, cs) == (6, -2) and off.tolist() == [0]
    copy, rs, cs, _ = _layout.operand(raw, ())
    assert copy is not raw and copy.flags.aligned and (rs, cs) == (6, 1)
