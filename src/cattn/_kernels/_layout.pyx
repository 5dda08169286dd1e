# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Stride arithmetic for the drivers: where each matrix of a broadcast batch
starts.  Called on every public call, so it is compiled: the NumPy
composition it replaces (broadcast_to, arange, reshape per dimension) cost
more than a small attention call itself."""
cimport numpy as cnp
import numpy as np
from libc.stdint cimport int64_t

from ._frame cimport batch_offsets_into, walkable

cnp.import_array()


def batch_offsets(cnp.ndarray x, tuple batch_shape):
    """Element offset of each matrix of `x` (shape (..., r, c)) broadcast to
    `batch_shape`, flattened in C order, as a new int64 array.

    A broadcast dimension (missing or of size 1 in `x`) has stride 0, so a
    shared operand is read in place.  The caller guarantees strides that are
    whole elements; a batch shape `x` does not broadcast to is a ValueError.
    (The frame's batch_offsets_into, which the attention drivers use.)
    """
    cdef int64_t total = 1, d
    for d in batch_shape:
        total *= d
    out = np.empty(total, dtype=np.int64)
    cdef int64_t[::1] o = out
    if batch_offsets_into(x, batch_shape, &o[0] if total > 0 else NULL,
                          total) < 0:
        raise ValueError(f"cannot broadcast shape {(<object>x).shape} to "
                         f"batch {batch_shape}")
    return out


def element_strides(cnp.ndarray arr):
    """Strides of `arr` in elements, or None if the kernels cannot walk it in
    place -- a stride that is not a whole number of elements, or data not
    aligned to its item size (a C load of a misaligned float is undefined
    behaviour) -- and the caller copies."""
    cdef int d
    cdef int64_t item = arr.itemsize
    if not walkable(arr):
        return None
    return tuple([arr.strides[d] // item for d in range(arr.ndim)])


def rows_view(cnp.ndarray a, int64_t rows, int64_t n):
    """A C-contiguous, aligned `a` as a (rows, n) view (the row kernels
    walk it in place), or None for any other `a` (the caller's general
    path).  Per call on the softmax family: one C call instead of flags,
    reshape and a stride check in Python (0.6 us)."""
    cdef cnp.npy_intp dims[2]
    cdef cnp.PyArray_Dims shape
    if not (cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISALIGNED(a)):
        return None
    dims[0], dims[1] = rows, n
    shape.ptr, shape.len = dims, 2
    return cnp.PyArray_Newshape(a, &shape, cnp.NPY_CORDER)
