# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Row-wise softmax, log_softmax and logsumexp over a 2-D view.

The caller (cattn.softmax) moves the reduced axes last and hands over
(rows, n) views whose rows are contiguous; rows may be any distance apart.
Parallel design: a static prange over rows, one row per task, each row
reduced by one thread with the row kernels of include/softmax/; a row's
bits depend only on the row, so any num_threads gives the same result.
"""
from cython.parallel cimport prange
from libc.stdint cimport int64_t

cimport numpy as cnp
import numpy as np

from ._cpu cimport active_isa

cnp.import_array()

cdef extern from "cattn_omp.h":
    pass

ctypedef fused floating:
    float
    double

# Rows shorter than this many elements in total are not worth a second
# thread.
cdef int64_t MIN_ELEMENTS_PER_THREAD = 1 << 15

cdef enum RowOp:
    OP_SOFTMAX = 0
    OP_LOG_SOFTMAX = 1

SOFTMAX = OP_SOFTMAX
LOG_SOFTMAX = OP_LOG_SOFTMAX


cdef inline int threads_for(int64_t rows, int64_t n, int num_threads) noexcept nogil:
    cdef int64_t useful = rows * n // MIN_ELEMENTS_PER_THREAD
    if useful < 1:
        useful = 1
    if useful > rows:
        useful = rows
    return <int>(useful if useful < num_threads else num_threads)


cdef inline void map_row(int op, const cattn_rows_f32 *k32,
                         const cattn_rows_f64 *k64, int64_t n,
                         const floating *x, floating *y) noexcept nogil:
    if floating is float:
        if op == OP_SOFTMAX:
            k32.softmax(n, x, y)
        else:
            k32.log_softmax(n, x, y)
    else:
        if op == OP_SOFTMAX:
            k64.softmax(n, x, y)
        else:
            k64.log_softmax(n, x, y)


cdef void _map_rows(int op, const floating *x, int64_t rs_x, floating *y,
                    int64_t rs_y, int64_t rows, int64_t n,
                    int nthreads) noexcept nogil:
    cdef int64_t r
    cdef const cattn_rows_f32 *k32 = cattn_rows_f32_for(active_isa())
    cdef const cattn_rows_f64 *k64 = cattn_rows_f64_for(active_isa())
    if nthreads == 1:       # no thread team for work that fits one thread
        for r in range(rows):
            map_row(op, k32, k64, n, x + r * rs_x, y + r * rs_y)
        return
    for r in prange(rows, schedule='static', num_threads=nthreads):
        map_row(op, k32, k64, n, x + r * rs_x, y + r * rs_y)


cdef void _reduce_rows(const floating *x, int64_t rs_x, floating *y,
                       int64_t rows, int64_t n, int nthreads) noexcept nogil:
    cdef int64_t r
    cdef const cattn_rows_f32 *k32 = cattn_rows_f32_for(active_isa())
    cdef const cattn_rows_f64 *k64 = cattn_rows_f64_for(active_isa())
    if nthreads == 1:
        for r in range(rows):
            if floating is float:
                y[r] = k32.logsumexp(n, x + r * rs_x)
            else:
                y[r] = k64.logsumexp(n, x + r * rs_x)
        return
    for r in prange(rows, schedule='static', num_threads=nthreads):
        if floating is float:
            y[r] = k32.logsumexp(n, x + r * rs_x)
        else:
            y[r] = k64.logsumexp(n, x + r * rs_x)


def map_rows(int op, cnp.ndarray x, cnp.ndarray y, int num_threads):
    """y[r] = softmax(x[r]) (op SOFTMAX) or log_softmax(x[r]) for 2-D x, y
    of one float dtype with unit column stride.  y may be x (in place)."""
    cdef int64_t rows = x.shape[0], n = x.shape[1]
    cdef int64_t rs_x = x.strides[0] // x.itemsize
    cdef int64_t rs_y = y.strides[0] // y.itemsize
    cdef int nthreads = threads_for(rows, n, num_threads)
    if rows == 0 or n == 0:
        return
    if x.dtype == np.float32:
        with nogil:
            _map_rows[float](op, <const float *>cnp.PyArray_DATA(x), rs_x,
                             <float *>cnp.PyArray_DATA(y), rs_y, rows, n,
                             nthreads)
    else:
        with nogil:
            _map_rows[double](op, <const double *>cnp.PyArray_DATA(x), rs_x,
                              <double *>cnp.PyArray_DATA(y), rs_y, rows, n,
                              nthreads)


def logsumexp_rows(cnp.ndarray x, cnp.ndarray y, int num_threads):
    """y[r] = logsumexp(x[r]) for 2-D x with unit column stride and
    contiguous 1-D y of the same dtype."""
    cdef int64_t rows = x.shape[0], n = x.shape[1]
    cdef int64_t rs_x = x.strides[0] // x.itemsize
    cdef int nthreads = threads_for(rows, n, num_threads)
    if rows == 0:
        return
    if x.dtype == np.float32:
        with nogil:
            _reduce_rows[float](<const float *>cnp.PyArray_DATA(x), rs_x,
                                <float *>cnp.PyArray_DATA(y), rows, n,
                                nthreads)
    else:
        with nogil:
            _reduce_rows[double](<const double *>cnp.PyArray_DATA(x), rs_x,
                                 <double *>cnp.PyArray_DATA(y), rows, n,
                                 nthreads)


def exp(cnp.ndarray x, cnp.ndarray y):
    """y = exp(x) with the active ISA's vector exp, for contiguous 1-D x, y
    of one dtype (the tests measure its error with this)."""
    cdef int64_t n = x.shape[0]
    if x.dtype == np.float32:
        cattn_rows_f32_for(active_isa()).exp(
            n, <const float *>cnp.PyArray_DATA(x), <float *>cnp.PyArray_DATA(y))
    else:
        cattn_rows_f64_for(active_isa()).exp(
            n, <const double *>cnp.PyArray_DATA(x), <double *>cnp.PyArray_DATA(y))


def kernel_name(dtype):
    """Name of the row kernels the active ISA uses for `dtype`."""
    if np.dtype(dtype) == np.float32:
        return cattn_rows_f32_for(active_isa()).name.decode()
    return cattn_rows_f64_for(active_isa()).name.decode()
