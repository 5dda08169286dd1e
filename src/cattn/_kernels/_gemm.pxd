# The blocked GEMM driver, cimported by the attention kernel for its tile
# products.  Contract of the micro-kernels: include/gemm/cattn_gemm.h.
from libc.stdint cimport int64_t

ctypedef fused floating:
    float
    double


# The small integer helpers of every driver (defined once, here, at the
# bottom of the cimport graph).
cdef inline int64_t cdiv(int64_t x, int64_t y) noexcept nogil:
    return (x + y - 1) // y


cdef inline int64_t imin(int64_t x, int64_t y) noexcept nogil:
    return x if x < y else y


cdef inline int64_t imax(int64_t x, int64_t y) noexcept nogil:
    return x if x > y else y


cdef inline const void *shift(const void *p, int64_t i,
                              int64_t size) noexcept nogil:
    """Element i of an array of `size`-byte elements at p (operands whose
    storage dtype is a run-time choice are walked through void pointers)."""
    return <const char *>p + i * size

cdef struct GemmKernel:
    const void *ukernel      # cattn_gemm_ukernel_f32_fn or _f64_fn
    const char *name
    int64_t mr, nr, kc, mc, nc

cdef GemmKernel gemm_kernel_f32(int isa) noexcept nogil
cdef GemmKernel gemm_kernel_f64(int isa) noexcept nogil

cdef void call_ukernel(const GemmKernel *kern, int64_t k, const floating *a,
                       int64_t lda, const floating *b, int64_t ldb,
                       floating *c, int64_t rs_c, int64_t cs_c, int64_t m,
                       int64_t n, floating alpha, floating beta) noexcept nogil

# C = alpha · A B for one attention tile, A and B already packed by KC
# chunks of the depth (see _gemm.pyx).
cdef void tile_product(const GemmKernel *kern, int64_t depth,
                       const floating *a, int64_t a_rows, const floating *b,
                       int64_t b_cols, int64_t m, int64_t n, floating alpha,
                       floating *c, int64_t ldc) noexcept nogil

cdef void pack_a(int64_t mc, int64_t kc, const floating *a, int64_t rs_a,
                 int64_t cs_a, int64_t mr, floating *dst) noexcept nogil

cdef void pack_b(int64_t kc, int64_t nc, const floating *b, int64_t rs_b,
                 int64_t cs_b, int64_t nr, int64_t q0, int64_t q1,
                 floating *dst) noexcept nogil

# The same, reading A or B from `storage` (_convert.pxd: NATIVE, or a
# 16-bit storage dtype widened on the fly into float32 panels).
cdef void pack_a_from(int storage, int64_t mc, int64_t kc, const void *a,
                      int64_t rs_a, int64_t cs_a, int64_t mr,
                      floating *dst) noexcept nogil
cdef void pack_b_from(int storage, int64_t kc, int64_t nc, const void *b,
                      int64_t rs_b, int64_t cs_b, int64_t nr, int64_t q0,
                      int64_t q1, floating *dst) noexcept nogil

# Row-streaming kernels (include/gemm/cattn_gemv.h): products with a few rows.
cdef void dot_rows(int64_t n, int64_t k, const floating *x,
                   const floating *rows, int64_t rs, floating scale,
                   floating *out) noexcept nogil
cdef void axpy_rows(int64_t n, int64_t k, const floating *coef,
                    const floating *rows, int64_t rs,
                    floating *acc) noexcept nogil
cdef void dot_rows_from(int storage, int64_t n, int64_t k,
                        const floating *x, const void *rows, int64_t rs,
                        floating scale, floating *out) noexcept nogil
cdef void axpy_rows_from(int storage, int64_t n, int64_t k,
                         const floating *coef, const void *rows, int64_t rs,
                         floating *acc) noexcept nogil
