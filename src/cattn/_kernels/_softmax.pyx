# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Row-wise softmax, log_softmax and logsumexp over a 2-D view.

The caller (cattn.softmax) moves the reduced axes last and hands over
(rows, n) views whose rows are contiguous; rows may be any distance apart.
Parallel design: a static prange over rows, one row per task, each row
reduced by one thread with the row kernels of include/softmax/; a row's
bits depend only on the row, so any num_threads gives the same result.

16-bit storage (float16, bfloat16): each thread widens its row into a
float32 buffer (exact), runs the float32 row kernel and rounds the result
once, to nearest even (include/convert/), so the answer is the float32
answer correctly rounded.
"""
from cython.parallel cimport prange, threadid
from libc.stdint cimport int64_t, uint16_t

cimport numpy as cnp
import numpy as np

from ._cpu cimport active_isa, team_enter, team_leave
from ._frame cimport Arena, arena_at, arena_free, arena_new

from ._convert cimport NATIVE, cattn_convert, cattn_convert_for, storage_of

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



def team_size(int64_t rows, int64_t n, int num_threads):
    """The threads the row drivers run `rows` rows of n elements on, given
    num_threads (at least MIN_ELEMENTS_PER_THREAD elements each): what a
    thread-count test needs to know to be able to fail."""
    return threads_for(rows, n, num_threads)

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


cdef inline void row16(int op, const cattn_convert *cv,
                       const cattn_rows_f32 *k32, int64_t n,
                       const uint16_t *x, void *y, bint y16,
                       float *buf) noexcept nogil:
    """One row of 16-bit storage: widened into buf (exact), the float32
    row kernel, then rounded once to 16 bits (or written as float32)."""
    cv.to_f32(n, x, buf)
    cdef float *dst = buf if y16 else <float *>y
    if op == OP_SOFTMAX:
        k32.softmax(n, buf, dst)
    else:
        k32.log_softmax(n, buf, dst)
    if y16:
        cv.from_f32(n, buf, <uint16_t *>y)


cdef void _map_rows16(int op, const cattn_convert *cv, const uint16_t *x,
                      int64_t rs_x, char *y, int64_t rs_y, bint y16,
                      int64_t rows, int64_t n, const Arena *arena,
                      int nthreads) noexcept nogil:
    cdef int64_t r
    cdef int64_t y_item = 2 if y16 else 4
    cdef const cattn_rows_f32 *k32 = cattn_rows_f32_for(active_isa())
    if nthreads == 1:
        for r in range(rows):
            row16(op, cv, k32, n, x + r * rs_x, y + r * rs_y * y_item, y16,
                  <float *>arena_at(arena, 0, 0))
        return
    for r in prange(rows, schedule='static', num_threads=nthreads):
        row16(op, cv, k32, n, x + r * rs_x, y + r * rs_y * y_item, y16,
              <float *>arena_at(arena, threadid(), 0))


cdef void _reduce_rows16(const cattn_convert *cv, const uint16_t *x,
                         int64_t rs_x, char *y, bint y16, int64_t rows,
                         int64_t n, const Arena *arena,
                         int nthreads) noexcept nogil:
    cdef int64_t r
    cdef float v
    cdef float *buf
    cdef const cattn_rows_f32 *k32 = cattn_rows_f32_for(active_isa())
    for r in prange(rows, schedule='static', num_threads=nthreads):
        buf = <float *>arena_at(arena, threadid(), 0)
        cv.to_f32(n, x + r * rs_x, buf)
        v = k32.logsumexp(n, buf)
        if y16:
            cv.from_f32(1, &v, <uint16_t *>y + r)
        else:
            (<float *>y)[r] = v


cdef int rows16(int op, cnp.ndarray x, cnp.ndarray y, int storage,
                int64_t rows, int64_t n, int nthreads) except -1:
    """softmax/log_softmax (op) or logsumexp (op = -1) of the rows of a
    16-bit x into y (x's dtype or float32), through one float32 row per
    thread."""
    cdef const cattn_convert *cv = cattn_convert_for(active_isa(), storage)
    cdef bint y16 = cnp.PyArray_ITEMSIZE(y) == 2
    cdef int64_t rs_x = x.strides[0] // 2
    cdef int64_t rs_y = (y.strides[0] // cnp.PyArray_ITEMSIZE(y)
                         if y.ndim == 2 else 0)
    cdef Arena arena
    arena_new(&arena, nthreads, n * sizeof(float),
              "logsumexp" if op < 0 else "softmax")
    try:
        with nogil:
            team_enter()
            if op < 0:
                _reduce_rows16(cv, <const uint16_t *>cnp.PyArray_DATA(x),
                               rs_x, <char *>cnp.PyArray_DATA(y), y16, rows,
                               n, &arena, nthreads)
            else:
                _map_rows16(op, cv, <const uint16_t *>cnp.PyArray_DATA(x),
                            rs_x, <char *>cnp.PyArray_DATA(y), rs_y, y16,
                            rows, n, &arena, nthreads)
            team_leave()
    finally:
        arena_free(&arena)
    return 0


# Conversions run in chunks of this many elements, a chunk per task.
cdef int64_t CONVERT_CHUNK = 1 << 16


def convert(cnp.ndarray src, cnp.ndarray dst, int num_threads=1):
    """dst = src between a contiguous 1-D 16-bit array (float16 or
    bfloat16) and a contiguous 1-D float32 array, either way, with the
    active ISA's conversions (the tests check their rounding with this;
    the library rounds its float32 results with it), in chunks over up to
    `num_threads` threads (elementwise: the same bits for any count)."""
    cdef int64_t n = src.shape[0], c, lo, hi
    cdef int s_src = storage_of(src), s_dst = storage_of(dst)
    cdef const cattn_convert *cv = cattn_convert_for(
        active_isa(), s_src if s_src != NATIVE else s_dst)
    cdef bint widen = s_src != NATIVE
    cdef const char *x = <const char *>cnp.PyArray_DATA(src)
    cdef char *y = <char *>cnp.PyArray_DATA(dst)
    cdef int64_t chunks = (n + CONVERT_CHUNK - 1) // CONVERT_CHUNK
    cdef int nthreads = <int>max(1, min(num_threads, chunks))
    with nogil:
        team_enter()
        for c in prange(chunks, schedule='static', num_threads=nthreads):
            lo = c * CONVERT_CHUNK
            hi = min(n, lo + CONVERT_CHUNK)
            if widen:
                cv.to_f32(hi - lo, <const uint16_t *>x + lo, <float *>y + lo)
            else:
                cv.from_f32(hi - lo, <const float *>x + lo,
                            <uint16_t *>y + lo)
        team_leave()


def map_rows(int op, cnp.ndarray x, cnp.ndarray y, int num_threads):
    """y[r] = softmax(x[r]) (op SOFTMAX) or log_softmax(x[r]) for 2-D x, y
    of one float dtype with unit column stride, or 16-bit x (float16,
    bfloat16) with y of x's dtype or float32.  y may be x (in place)."""
    cdef int64_t rows = x.shape[0], n = x.shape[1]
    cdef int64_t rs_x = x.strides[0] // cnp.PyArray_ITEMSIZE(x)
    cdef int64_t rs_y = y.strides[0] // cnp.PyArray_ITEMSIZE(y)
    cdef int nthreads = threads_for(rows, n, num_threads)
    if rows == 0 or n == 0:
        return
    cdef int storage = storage_of(x)
    if storage != NATIVE:
        rows16(op, x, y, storage, rows, n, nthreads)
        return
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        with nogil:
            team_enter()
            _map_rows[float](op, <const float *>cnp.PyArray_DATA(x), rs_x,
                             <float *>cnp.PyArray_DATA(y), rs_y, rows, n,
                             nthreads)
            team_leave()
    else:
        with nogil:
            team_enter()
            _map_rows[double](op, <const double *>cnp.PyArray_DATA(x), rs_x,
                              <double *>cnp.PyArray_DATA(y), rs_y, rows, n,
                              nthreads)
            team_leave()


def logsumexp_rows(cnp.ndarray x, cnp.ndarray y, int num_threads):
    """y[r] = logsumexp(x[r]) for 2-D x with unit column stride and
    contiguous 1-D y of the same dtype (float32 also for 16-bit x)."""
    cdef int64_t rows = x.shape[0], n = x.shape[1]
    cdef int64_t rs_x = x.strides[0] // cnp.PyArray_ITEMSIZE(x)
    cdef int nthreads = threads_for(rows, n, num_threads)
    if rows == 0:
        return
    cdef int storage = storage_of(x)
    if storage != NATIVE:
        rows16(-1, x, y, storage, rows, n, nthreads)
        return
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        with nogil:
            team_enter()
            _reduce_rows[float](<const float *>cnp.PyArray_DATA(x), rs_x,
                                <float *>cnp.PyArray_DATA(y), rows, n,
                                nthreads)
            team_leave()
    else:
        with nogil:
            team_enter()
            _reduce_rows[double](<const double *>cnp.PyArray_DATA(x), rs_x,
                                 <double *>cnp.PyArray_DATA(y), rows, n,
                                 nthreads)
            team_leave()


def exp(cnp.ndarray x, cnp.ndarray y):
    """y = exp(x) with the active ISA's vector exp, for contiguous 1-D x, y
    of one dtype (the tests measure its error with this)."""
    cdef int64_t n = x.shape[0]
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
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
