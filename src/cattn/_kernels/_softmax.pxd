# The row kernels of include/softmax/ (contract in cattn_softmax.h), shared
# by the softmax drivers and the attention kernel's online softmax.
from libc.stdint cimport int64_t

cdef extern from "softmax/cattn_softmax.h":
    ctypedef struct cattn_rows_f32:
        const char *name
        void (*softmax)(int64_t, const float *, float *) noexcept nogil
        void (*log_softmax)(int64_t, const float *, float *) noexcept nogil
        float (*logsumexp)(int64_t, const float *) noexcept nogil
        void (*exp)(int64_t, const float *, float *) noexcept nogil
        float (*max)(int64_t, const float *) noexcept nogil
        float (*exp_sum)(int64_t, const float *, float, float *) noexcept nogil
    ctypedef struct cattn_rows_f64:
        const char *name
        void (*softmax)(int64_t, const double *, double *) noexcept nogil
        void (*log_softmax)(int64_t, const double *, double *) noexcept nogil
        double (*logsumexp)(int64_t, const double *) noexcept nogil
        void (*exp)(int64_t, const double *, double *) noexcept nogil
        double (*max)(int64_t, const double *) noexcept nogil
        double (*exp_sum)(int64_t, const double *, double, double *) noexcept nogil
    const cattn_rows_f32 *cattn_rows_f32_for(int isa) nogil
    const cattn_rows_f64 *cattn_rows_f64_for(int isa) nogil
