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

# Packers of float32 panels, reading their source through a void pointer
# (include/gemm/cattn_gemm.h, convert/, cattn_gemm_bf16.h).
ctypedef void (*pack_a_fn)(int64_t, int64_t, const void *, int64_t, int64_t,
                           int64_t, float *) noexcept nogil
ctypedef void (*pack_b_fn)(int64_t, int64_t, const void *, int64_t, int64_t,
                           int64_t, int64_t, int64_t, float *) noexcept nogil
ctypedef void (*pack_b_f32_fn)(int64_t, int64_t, const float *, int64_t,
                               int64_t, float *) noexcept nogil
ctypedef void (*pack_a64_fn)(int64_t, int64_t, const void *, int64_t,
                             int64_t, int64_t, double *) noexcept nogil
ctypedef void (*pack_b64_fn)(int64_t, int64_t, const void *, int64_t,
                             int64_t, int64_t, int64_t, int64_t,
                             double *) noexcept nogil
ctypedef int (*zero_nonfinite_fn)(int64_t, float *) noexcept nogil
ctypedef void (*scale_cols_fn)(int64_t, int64_t, float *, int64_t,
                               const float *) noexcept nogil
ctypedef void (*cols_to_rows_fn)(int64_t, int64_t, const float *, int64_t,
                                 float *, int64_t) noexcept nogil


# A micro-kernel with its blocking and the packers for one kind of operand
# (BLIS's context): a row of the float64 or float32 table, the float32
# kernel with a 16-bit storage's widening packers, or the bf16 pair kernel
# (pairs: panels of bf16 pairs, ceil(depth / 2) 32-bit words per row or
# column).  Drivers pack and multiply only through it.
cdef struct GemmKernel:
    int isa                  # the level it was resolved at (its packers')
    const void *ukernel      # cattn_gemm_ukernel_f32_fn (pairs too) or _f64_fn
    const void *ukernel_narrow   # the same bits for edges of <= nr_narrow
    int64_t nr_narrow            # columns (one vector; 0: none)
    const char *name
    int64_t mr, nr, kc, mc, nc
    bint pairs
    pack_a_fn pack_a         # float32 panels from `storage`
    pack_b_fn pack_b
    pack_a_fn pack_a_f32     # float32 panels from float32 (a dS tile)
    pack_a64_fn pack_a64     # float64 panels (the float64 kernel)
    pack_b64_fn pack_b64
    pack_b_f32_fn pack_b_f32  # pairs: a float32 tile rounded to bf16 (Pᵀ)
    zero_nonfinite_fn zero_nonfinite  # pairs: packed words' inf/NaN halves
    scale_cols_fn scale_cols  # pairs: the attention's Oᵀ accumulator
    cols_to_rows_fn cols_to_rows  # pairs: Oᵀ back to rows

# The kernel for operands held in `storage` computed in float32 (is_f32)
# or float64; with `pairs`, bf16 storage runs the pair kernel where the
# ISA has one, else the float32 kernel on widened panels.
cdef GemmKernel gemm_kernel(int isa, bint is_f32, int storage,
                            bint pairs) noexcept nogil
# The float32 kernels' B packer for operands held in `storage`: a driver
# whose two operands differ in storage (a float32 query against a 16-bit
# KV cache) swaps it into a kernel without pairs.
cdef pack_b_fn pack_b_for(int isa, int storage) noexcept nogil


cdef inline int64_t panel_depth(const GemmKernel *kern,
                                int64_t depth) noexcept nogil:
    """Words (float32-sized slots) a packed row or column of `depth`
    elements takes: pairs of bf16 share one."""
    return (depth + 1) // 2 if kern.pairs else depth

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

# A block of A in the compute dtype itself (the backward's dS tile).
cdef void pack_a(const GemmKernel *kern, int64_t mc, int64_t kc, const floating *a,
                 int64_t rs_a, int64_t cs_a, int64_t mr, floating *dst) noexcept nogil

# Through a kernel's packers: A or B read from the storage the kernel was
# made for (gemm_kernel).
cdef void pack_a_k(const GemmKernel *kern, int64_t mc, int64_t kc,
                   const void *a, int64_t rs_a, int64_t cs_a,
                   floating *dst) noexcept nogil
cdef void pack_b_k(const GemmKernel *kern, int64_t kc, int64_t nc,
                   const void *b, int64_t rs_b, int64_t cs_b, int64_t q0,
                   int64_t q1, floating *dst) noexcept nogil

# Row-streaming kernels (include/gemm/cattn_gemv.h): products with a few
# rows, read from their storage (the float32 rows of a 16-bit or int8
# operand widen as they stream, convert/).  A driver resolves the level's
# and storage's row once (row_products) and its row loops call through it.
ctypedef void (*dot_rows_f32_fn)(int64_t, int64_t, const float *,
                                 const void *, int64_t, float,
                                 float *) noexcept nogil
ctypedef void (*axpy_rows_f32_fn)(int64_t, int64_t, const float *,
                                  const void *, int64_t, float *) noexcept nogil
ctypedef void (*dot_rows_f64_fn)(int64_t, int64_t, const double *,
                                 const void *, int64_t, double,
                                 double *) noexcept nogil
ctypedef void (*axpy_rows_f64_fn)(int64_t, int64_t, const double *,
                                  const void *, int64_t,
                                  double *) noexcept nogil
# The same over listed rows: rows[j] = rows + at[j]·rs (_at kernels).
ctypedef void (*dot_rows_at_f32_fn)(int64_t, int64_t, const float *,
                                    const void *, int64_t, const int64_t *,
                                    float, float *) noexcept nogil
ctypedef void (*axpy_rows_at_f32_fn)(int64_t, int64_t, const float *,
                                     const void *, int64_t, const int64_t *,
                                     float *) noexcept nogil
ctypedef void (*dot_rows_at_f64_fn)(int64_t, int64_t, const double *,
                                    const void *, int64_t, const int64_t *,
                                    double, double *) noexcept nogil
ctypedef void (*axpy_rows_at_f64_fn)(int64_t, int64_t, const double *,
                                     const void *, int64_t, const int64_t *,
                                     double *) noexcept nogil
# rows[at[j]·rs + c] += coef[j]·x[c], rows of the compute dtype.
ctypedef void (*scatter_rows_at_f32_fn)(int64_t, int64_t, const float *,
                                        const float *, float *, int64_t,
                                        const int64_t *) noexcept nogil
ctypedef void (*scatter_rows_at_f64_fn)(int64_t, int64_t, const double *,
                                        const double *, double *, int64_t,
                                        const int64_t *) noexcept nogil

cdef struct RowProducts:
    # out[j] = scale · (x · rows[j]) for j < n (rows[j] = rows + j·rs, k
    # contiguous elements each), and acc[0:k] += Σ_j coef[j] · rows[j] in
    # order of j; the float64 pair is NULL for a 16-bit or int8 storage.
    # The _at ones read rows[j] = rows + at[j]·rs instead (listed keys),
    # prefetched for rows read once from memory if row_products was asked
    # for `far` ones (a decode step), else for rows other queries reuse.
    dot_rows_f32_fn dot32
    axpy_rows_f32_fn axpy32
    dot_rows_f64_fn dot64
    axpy_rows_f64_fn axpy64
    dot_rows_at_f32_fn dot32_at
    axpy_rows_at_f32_fn axpy32_at
    dot_rows_at_f64_fn dot64_at
    axpy_rows_at_f64_fn axpy64_at
    # The sparse gradient's scatter into listed rows (the compute dtype,
    # whatever the storage).
    scatter_rows_at_f32_fn scatter32
    scatter_rows_at_f64_fn scatter64

cdef RowProducts row_products(int isa, int storage, bint far) noexcept nogil


cdef inline void dot_rows(const RowProducts *rp, int64_t n, int64_t k,
                          const floating *x, const void *rows, int64_t rs,
                          floating scale, floating *out) noexcept nogil:
    if floating is float:
        rp.dot32(n, k, x, rows, rs, scale, out)
    else:
        rp.dot64(n, k, x, rows, rs, scale, out)


cdef inline void axpy_rows(const RowProducts *rp, int64_t n, int64_t k,
                           const floating *coef, const void *rows,
                           int64_t rs, floating *acc) noexcept nogil:
    if floating is float:
        rp.axpy32(n, k, coef, rows, rs, acc)
    else:
        rp.axpy64(n, k, coef, rows, rs, acc)


cdef inline void dot_rows_at(const RowProducts *rp, int64_t n, int64_t k,
                             const floating *x, const void *rows,
                             int64_t rs, const int64_t *at, floating scale,
                             floating *out) noexcept nogil:
    if floating is float:
        rp.dot32_at(n, k, x, rows, rs, at, scale, out)
    else:
        rp.dot64_at(n, k, x, rows, rs, at, scale, out)


cdef inline void axpy_rows_at(const RowProducts *rp, int64_t n, int64_t k,
                              const floating *coef, const void *rows,
                              int64_t rs, const int64_t *at,
                              floating *acc) noexcept nogil:
    if floating is float:
        rp.axpy32_at(n, k, coef, rows, rs, at, acc)
    else:
        rp.axpy64_at(n, k, coef, rows, rs, at, acc)


cdef inline void scatter_rows_at(const RowProducts *rp, int64_t n, int64_t k,
                                 const floating *coef, const floating *x,
                                 floating *rows, int64_t rs,
                                 const int64_t *at) noexcept nogil:
    if floating is float:
        rp.scatter32(n, k, coef, x, rows, rs, at)
    else:
        rp.scatter64(n, k, coef, x, rows, rs, at)
