# The storage dtypes (include/convert/cattn_convert.h): float16 and
# bfloat16 arrays computed in float32.  A driver reads an operand of a
# storage dtype through its column of the table: conversions both ways and
# the readers (packers, row streams) that widen on the fly, so no float32
# copy of a 16-bit operand is ever made.
cimport numpy as cnp
from libc.stdint cimport int8_t, int64_t, uint16_t


cdef extern from "convert/cattn_convert.h":
    ctypedef struct cattn_convert:
        const char *name
        void (*to_f32)(int64_t, const uint16_t *, float *) noexcept nogil
        void (*from_f32)(int64_t, const float *, uint16_t *) noexcept nogil
        void (*pack_a)(int64_t, int64_t, const void *, int64_t, int64_t,
                       int64_t, float *) noexcept nogil
        void (*pack_b)(int64_t, int64_t, const void *, int64_t, int64_t,
                       int64_t, int64_t, int64_t, float *) noexcept nogil
        void (*dot_rows)(int64_t, int64_t, const float *, const void *,
                         int64_t, float, float *) noexcept nogil
        void (*axpy_rows)(int64_t, int64_t, const float *, const void *,
                          int64_t, float *) noexcept nogil
        void (*dot_rows_at)(int64_t, int64_t, const float *, const void *,
                            int64_t, const int64_t *, float,
                            float *) noexcept nogil
        void (*axpy_rows_at)(int64_t, int64_t, const float *, const void *,
                             int64_t, const int64_t *, float *) noexcept nogil
        void (*dot_rows_far_at)(int64_t, int64_t, const float *,
                                const void *, int64_t, const int64_t *,
                                float, float *) noexcept nogil
        void (*axpy_rows_far_at)(int64_t, int64_t, const float *,
                                 const void *, int64_t, const int64_t *,
                                 float *) noexcept nogil
    const cattn_convert *cattn_convert_for(int isa, int storage) nogil
    enum cattn_storage:
        CATTN_STORAGE_F16
        CATTN_STORAGE_BF16
        CATTN_STORAGE_Q8
    ctypedef struct cattn_q8_view:
        const int8_t *values
        const float *scales
        int64_t rs_scales, block, col0

# The storage of an operand held in the compute dtype itself.
cdef enum:
    NATIVE = -1


cdef inline int storage_of(cnp.ndarray a) except -2:
    """The storage column of a 16-bit float array, or NATIVE for float32 /
    float64.  bfloat16 is recognised by its dtype (ml_dtypes' arrays have
    no buffer protocol; only their data pointer is read)."""
    if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT16:
        return CATTN_STORAGE_F16
    if cnp.PyArray_ITEMSIZE(a) == 2 and a.dtype.name == "bfloat16":
        return CATTN_STORAGE_BF16
    return NATIVE


cdef inline void widen(const cattn_convert *cv, int64_t n, const void *src,
                       int64_t stride, float *dst) noexcept nogil:
    """dst[0:n] = src[0:n·stride:stride] widened from 16-bit storage (cv:
    the storage's row of the table, cattn_convert_for once per call)."""
    cdef int64_t i
    if stride == 1:
        cv.to_f32(n, <const uint16_t *>src, dst)
    else:
        for i in range(n):
            cv.to_f32(1, <const uint16_t *>src + i * stride, dst + i)


cdef inline void narrow(const cattn_convert *cv, int64_t n, const float *src,
                        void *dst, int64_t stride) noexcept nogil:
    """dst[0:n·stride:stride] = src[0:n] rounded to 16-bit storage (cv as
    for widen)."""
    cdef int64_t i
    if stride == 1:
        cv.from_f32(n, src, <uint16_t *>dst)
    else:
        for i in range(n):
            cv.from_f32(1, src + i, <uint16_t *>dst + i * stride)


cdef inline double element(int storage, bint is_f32, const void *x,
                           int64_t i) noexcept nogil:
    """Element i of an operand held in `storage` (NATIVE: float32 if
    is_f32, else float64), widened; for the drivers' scalar paths.  One
    element widens exactly at any level: the portable row (0) does it."""
    cdef float f
    if storage == NATIVE:
        return (<const float *>x)[i] if is_f32 else (<const double *>x)[i]
    widen(cattn_convert_for(0, storage), 1, <const uint16_t *>x + i, 1, &f)
    return f
