# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Blocked matrix multiplication: the BLIS loops around a register micro-kernel.

Loops, outermost first, for one C (m x n) += A (m x k) · B (k x n):

    5. jc: columns of C in blocks of NC       (packed B block lives in L3)
    4. pc: depth in blocks of KC              (pack B[pc, jc] once, shared)
    3. ic: rows in blocks of MC               (each thread packs its A block, L2)
    2. jr: NR-wide panels of the B block      (one B micro-panel in L1)
    1. ir: MR-tall panels of the A block      -> micro-kernel, MR x NR of C

Parallel design.  Inside one OpenMP region the team walks loops 5 and 4
together; for each (jc, pc) it packs the shared B block cooperatively (a
static prange over its NR panels, then the implicit barrier), and then every
thread computes its own share of C (a prange over `nwork` shares, then the
barrier that keeps B alive until all shares are done).  A share is a range
of MR panels of rows, or, when C has fewer row panels than threads (a few
rows, as in decoding), a range of NR panels of columns.  A stack of many
small products is split by whole matrices instead, each thread running the
same loops serially on its own buffers.

Determinism.  Each element of C is reduced over k in the same order
whatever the split: the KC blocking comes from the kernel table, not from
the thread count, and the micro-kernel contract makes edge tiles bitwise
equal to full ones.  So every num_threads gives the same bits.

Buffers are allocated before the parallel region, with the GIL, so a failed
allocation raises MemoryError instead of failing inside a thread.
"""
from cython.parallel cimport parallel, prange, threadid
from libc.stdint cimport int64_t
from libc.stdlib cimport free
from libc.string cimport memset

cimport numpy as cnp
import numpy as np

from ._convert cimport (CATTN_STORAGE_BF16, NATIVE, cattn_convert,
                       cattn_convert_for,
                       storage_of, widen)
from ._cpu cimport active_isa, team_enter, team_leave
from ._frame cimport Operand, Operands

cnp.import_array()

cdef extern from "cattn_omp.h":
    pass

cdef extern from "gemm/cattn_gemm.h":
    ctypedef void (*cattn_gemm_ukernel_f32_fn)(
        int64_t, const float *, int64_t, const float *, int64_t, float *,
        int64_t, int64_t, int64_t, int64_t, float, float) noexcept nogil
    ctypedef void (*cattn_gemm_ukernel_f64_fn)(
        int64_t, const double *, int64_t, const double *, int64_t, double *,
        int64_t, int64_t, int64_t, int64_t, double, double) noexcept nogil
    ctypedef struct cattn_gemm_kernel_f32:
        const char *name
        int64_t mr, nr, kc, mc, nc
        cattn_gemm_ukernel_f32_fn ukernel
        int64_t nr_narrow
        cattn_gemm_ukernel_f32_fn ukernel_narrow
        pack_a_fn pack_a
        pack_b_fn pack_b
    ctypedef struct cattn_gemm_kernel_f64:
        const char *name
        int64_t mr, nr, kc, mc, nc
        cattn_gemm_ukernel_f64_fn ukernel
        int64_t nr_narrow
        cattn_gemm_ukernel_f64_fn ukernel_narrow
        void (*pack_a)(int64_t, int64_t, const void *, int64_t, int64_t,
                       int64_t, double *) noexcept nogil
        void (*pack_b)(int64_t, int64_t, const void *, int64_t, int64_t,
                       int64_t, int64_t, int64_t, double *) noexcept nogil
    const cattn_gemm_kernel_f32 *cattn_gemm_kernel_f32_for(int isa) nogil
    const cattn_gemm_kernel_f64 *cattn_gemm_kernel_f64_for(int isa) nogil

cdef extern from "gemm/cattn_gemm_bf16.h":
    ctypedef struct cattn_gemm_kernel_bf16:
        const char *name
        int64_t mr, nr, kc, mc, nc
        cattn_gemm_ukernel_f32_fn ukernel
        pack_a_fn pack_a
        pack_b_fn pack_b
        pack_b_f32_fn pack_b_f32
        zero_nonfinite_fn zero_nonfinite
        scale_cols_fn scale_cols
        cols_to_rows_fn cols_to_rows
    const cattn_gemm_kernel_bf16 *cattn_gemm_kernel_bf16_for(int isa) nogil

cdef extern from "gemm/cattn_gemv.h":
    ctypedef struct cattn_gemv_f32:
        const char *name
        void (*dot_rows)(int64_t, int64_t, const float *, const void *,
                         int64_t, float, float *) noexcept nogil
        void (*axpy_rows)(int64_t, int64_t, const float *, const void *,
                          int64_t, float *) noexcept nogil
        dot_rows_at_f32_fn dot_rows_at
        axpy_rows_at_f32_fn axpy_rows_at
        dot_rows_at_f32_fn dot_rows_far_at
        axpy_rows_at_f32_fn axpy_rows_far_at
        scatter_rows_at_f32_fn scatter_rows_at
    ctypedef struct cattn_gemv_f64:
        const char *name
        void (*dot_rows)(int64_t, int64_t, const double *, const void *,
                         int64_t, double, double *) noexcept nogil
        void (*axpy_rows)(int64_t, int64_t, const double *, const void *,
                          int64_t, double *) noexcept nogil
        dot_rows_at_f64_fn dot_rows_at
        axpy_rows_at_f64_fn axpy_rows_at
        dot_rows_at_f64_fn dot_rows_far_at
        axpy_rows_at_f64_fn axpy_rows_far_at
        scatter_rows_at_f64_fn scatter_rows_at
    const cattn_gemv_f32 *cattn_gemv_f32_for(int isa) nogil
    const cattn_gemv_f64 *cattn_gemv_f64_for(int isa) nogil

cdef extern from "<stdlib.h>" nogil:
    int posix_memalign(void **memptr, size_t alignment, size_t size)


# ---------------------------------------------------------------- kernels --

cdef GemmKernel gemm_kernel(int isa, bint is_f32, int storage,
                            bint pairs) noexcept nogil:
    cdef const cattn_gemm_kernel_f32 *k32 = cattn_gemm_kernel_f32_for(isa)
    cdef const cattn_gemm_kernel_f64 *k64
    cdef const cattn_gemm_kernel_bf16 *kbf = cattn_gemm_kernel_bf16_for(isa)
    cdef GemmKernel g
    g.isa = isa
    g.pairs = False
    g.pack_a_f32 = k32.pack_a
    g.pack_a64 = NULL
    g.pack_b64 = NULL
    g.pack_b_f32 = NULL
    g.zero_nonfinite = NULL
    g.scale_cols = NULL
    g.cols_to_rows = NULL
    if not is_f32:
        k64 = cattn_gemm_kernel_f64_for(isa)
        g.ukernel = <const void *>k64.ukernel
        g.ukernel_narrow = <const void *>k64.ukernel_narrow
        g.nr_narrow = k64.nr_narrow
        g.name = k64.name
        g.mr, g.nr, g.kc, g.mc, g.nc = k64.mr, k64.nr, k64.kc, k64.mc, k64.nc
        g.pack_a = NULL
        g.pack_b = NULL
        g.pack_a_f32 = NULL
        g.pack_a64, g.pack_b64 = k64.pack_a, k64.pack_b
        return g
    if pairs and storage == CATTN_STORAGE_BF16 and kbf.ukernel != NULL:
        g.ukernel = <const void *>kbf.ukernel
        g.ukernel_narrow, g.nr_narrow = NULL, 0     # no narrow pair kernel
        g.name = kbf.name
        g.mr, g.nr, g.kc, g.mc, g.nc = kbf.mr, kbf.nr, kbf.kc, kbf.mc, kbf.nc
        g.pairs = True
        g.pack_a, g.pack_b, g.pack_b_f32 = kbf.pack_a, kbf.pack_b, kbf.pack_b_f32
        g.zero_nonfinite, g.scale_cols = kbf.zero_nonfinite, kbf.scale_cols
        g.cols_to_rows = kbf.cols_to_rows
        return g
    g.ukernel = <const void *>k32.ukernel
    g.ukernel_narrow = <const void *>k32.ukernel_narrow
    g.nr_narrow = k32.nr_narrow
    g.name = k32.name
    g.mr, g.nr, g.kc, g.mc, g.nc = k32.mr, k32.nr, k32.kc, k32.mc, k32.nc
    g.pack_a = (k32.pack_a if storage == NATIVE
                else cattn_convert_for(isa, storage).pack_a)
    g.pack_b = pack_b_for(isa, storage)
    return g


cdef pack_b_fn pack_b_for(int isa, int storage) noexcept nogil:
    if storage == NATIVE:
        return cattn_gemm_kernel_f32_for(isa).pack_b
    return cattn_convert_for(isa, storage).pack_b


cdef void call_ukernel(const GemmKernel *kern, int64_t k, const floating *a,
                       int64_t lda, const floating *b, int64_t ldb,
                       floating *c, int64_t rs_c, int64_t cs_c, int64_t m,
                       int64_t n, floating alpha, floating beta) noexcept nogil:
    # An edge of at most one vector of columns takes the narrow kernel:
    # the same bits for a fraction of the full tile's work.
    cdef const void *uk = (kern.ukernel_narrow if n <= kern.nr_narrow
                           else kern.ukernel)
    if floating is float:
        (<cattn_gemm_ukernel_f32_fn>uk)(
            k, a, lda, b, ldb, c, rs_c, cs_c, m, n, alpha, beta)
    else:
        (<cattn_gemm_ukernel_f64_fn>uk)(
            k, a, lda, b, ldb, c, rs_c, cs_c, m, n, alpha, beta)


cdef void pack_a(const GemmKernel *kern, int64_t mc, int64_t kc,
                 const floating *a, int64_t rs_a, int64_t cs_a, int64_t mr,
                 floating *dst) noexcept nogil:
    if floating is float:
        kern.pack_a_f32(mc, kc, a, rs_a, cs_a, mr, dst)
    else:
        kern.pack_a64(mc, kc, a, rs_a, cs_a, mr, dst)


cdef void pack_a_k(const GemmKernel *kern, int64_t mc, int64_t kc,
                   const void *a, int64_t rs_a, int64_t cs_a,
                   floating *dst) noexcept nogil:
    if floating is float:
        kern.pack_a(mc, kc, a, rs_a, cs_a, kern.mr, dst)
    else:
        kern.pack_a64(mc, kc, a, rs_a, cs_a, kern.mr, dst)


cdef void pack_b_k(const GemmKernel *kern, int64_t kc, int64_t nc,
                   const void *b, int64_t rs_b, int64_t cs_b, int64_t q0,
                   int64_t q1, floating *dst) noexcept nogil:
    if floating is float:
        kern.pack_b(kc, nc, b, rs_b, cs_b, kern.nr, q0, q1, dst)
    else:
        kern.pack_b64(kc, nc, b, rs_b, cs_b, kern.nr, q0, q1, dst)


cdef void tile_product(const GemmKernel *kern, int64_t depth,
                       const floating *a, int64_t a_rows, const floating *b,
                       int64_t b_cols, int64_t m, int64_t n, floating alpha,
                       floating *c, int64_t ldc) noexcept nogil:
    """c[0:m, 0:n] (row stride ldc) = alpha · A B over `depth` in KC chunks,
    beta = 0 on the first chunk and 1 after (a depth of 0 writes zeros).

    A is packed as MR panels per chunk (chunk starting at depth pc at
    a + pc·a_rows), B as NR panels per chunk (at b + pc·b_cols): the layout
    the attention kernels pack their query and key blocks in.  Every
    element is summed over the chunks in order, as the forward's tiles
    are, so the backward and the top-k selection see the forward's scores
    bit for bit."""
    cdef int64_t mr = kern.mr, nr = kern.nr, kc_max = kern.kc
    cdef int64_t t, pc, kc, kw, r, jk
    for t in range(cdiv(depth, kc_max) if depth > 0 else 1):
        pc = t * kc_max
        kc = imin(kc_max, depth - pc)
        kw = panel_depth(kern, kc)
        for r in range(cdiv(m, mr)):
            for jk in range(cdiv(n, nr)):
                call_ukernel(kern, kc,
                             a + panel_depth(kern, pc) * a_rows + r * mr * kw,
                             mr, b + panel_depth(kern, pc) * b_cols
                             + jk * nr * kw, nr,
                             c + r * mr * ldc + jk * nr, ldc, 1,
                             imin(mr, m - r * mr), imin(nr, n - jk * nr),
                             alpha, 0 if t == 0 else 1)


cdef RowProducts row_products(int isa, int storage, bint far) noexcept nogil:
    cdef const cattn_gemv_f32 *g32 = cattn_gemv_f32_for(isa)
    cdef const cattn_gemv_f64 *g64 = cattn_gemv_f64_for(isa)
    cdef const cattn_convert *cv
    cdef RowProducts rp
    rp.dot32, rp.axpy32 = g32.dot_rows, g32.axpy_rows
    rp.dot64, rp.axpy64 = g64.dot_rows, g64.axpy_rows
    if far:
        rp.dot32_at, rp.axpy32_at = g32.dot_rows_far_at, g32.axpy_rows_far_at
        rp.dot64_at, rp.axpy64_at = g64.dot_rows_far_at, g64.axpy_rows_far_at
    else:
        rp.dot32_at, rp.axpy32_at = g32.dot_rows_at, g32.axpy_rows_at
        rp.dot64_at, rp.axpy64_at = g64.dot_rows_at, g64.axpy_rows_at
    rp.scatter32, rp.scatter64 = g32.scatter_rows_at, g64.scatter_rows_at
    if storage != NATIVE:               # widened as they stream, float32
        cv = cattn_convert_for(isa, storage)
        rp.dot32, rp.axpy32 = cv.dot_rows, cv.axpy_rows
        if far:
            rp.dot32_at, rp.axpy32_at = cv.dot_rows_far_at, cv.axpy_rows_far_at
        else:
            rp.dot32_at, rp.axpy32_at = cv.dot_rows_at, cv.axpy_rows_at
        rp.dot64, rp.axpy64 = NULL, NULL
        rp.dot64_at, rp.axpy64_at = NULL, NULL
    return rp


# ------------------------------------------------------------------ loops --

cdef struct Product:
    # One product C = alpha·A·B + beta·C, strides in elements.  A and B are
    # held in `storage` (_convert.pxd), elements of `size` bytes; C in the
    # compute dtype.
    const void *a
    const void *b
    void *c
    int64_t m, n, k
    int64_t rs_a, cs_a, rs_b, cs_b, rs_c, cs_c
    int storage
    int64_t size
    int isa           # the call's SIMD level, resolved once
    RowProducts rows  # its row products for `storage` (gemv_item)
    const cattn_convert *cv   # 16-bit storage's conversions, else NULL


cdef void compute_share(const GemmKernel *kern, const Product *op,
                        int64_t jc, int64_t nc, int64_t pc, int64_t kc,
                        floating beta, int64_t share, int64_t nshares,
                        const floating *bpack, floating *apack) noexcept nogil:
    """Loops 3, 2, 1 for share `share` of `nshares` of the C block
    C[:, jc:jc+nc], depth pc:pc+kc, against the packed B block."""
    cdef floating *c = <floating *>op.c
    cdef int64_t mr = kern.mr, nr = kern.nr
    cdef int64_t row_panels = cdiv(op.m, mr), col_panels = cdiv(nc, nr)
    cdef int64_t i_lo = 0, i_hi = op.m, q_lo = 0, q_hi = col_panels
    cdef int64_t ic, mc, q, jr, r, ir, kw = panel_depth(kern, kc)
    if nshares > 1 and row_panels >= nshares:
        i_lo = imin(share * row_panels // nshares * mr, op.m)
        i_hi = imin((share + 1) * row_panels // nshares * mr, op.m)
    elif nshares > 1:
        q_lo = share * col_panels // nshares
        q_hi = (share + 1) * col_panels // nshares
    if i_lo >= i_hi or q_lo >= q_hi:
        return
    ic = i_lo
    while ic < i_hi:                                   # loop 3
        mc = imin(kern.mc, i_hi - ic)
        pack_a_k(kern, mc, kc,
                 shift(op.a, ic * op.rs_a + pc * op.cs_a, op.size),
                 op.rs_a, op.cs_a, apack)
        for q in range(q_lo, q_hi):                            # loop 2
            jr = q * nr
            for r in range(cdiv(mc, mr)):                      # loop 1
                ir = r * mr
                call_ukernel(kern, kc, apack + ir * kw, mr, bpack + jr * kw, nr,
                             c + (ic + ir) * op.rs_c + (jc + jr) * op.cs_c,
                             op.rs_c, op.cs_c, imin(mr, mc - ir),
                             imin(nr, nc - jr), <floating>1, beta)
        ic += mc


cdef void gemm_serial(const GemmKernel *kern, const Product *op,
                      floating beta, floating *bpack,
                      floating *apack) noexcept nogil:
    """The five loops on the calling thread alone."""
    cdef int64_t jb, jc, nc, pb, pc, kc
    for jb in range(cdiv(op.n, kern.nc)):                       # loop 5
        jc = jb * kern.nc
        nc = imin(kern.nc, op.n - jc)
        for pb in range(cdiv(op.k, kern.kc)):                   # loop 4
            pc = pb * kern.kc
            kc = imin(kern.kc, op.k - pc)
            pack_b_k(kern, kc, nc,
                     shift(op.b, pc * op.rs_b + jc * op.cs_b, op.size),
                     op.rs_b, op.cs_b, 0, cdiv(nc, kern.nr), bpack)
            compute_share(kern, op, jc, nc, pc, kc,
                          beta if pc == 0 else <floating>1, 0, 1, bpack,
                          apack)


cdef void fill_beta(const Product *op, floating beta) noexcept nogil:
    """C := beta·C for k == 0 (beta == 0: C := 0 without reading C)."""
    cdef floating *c = <floating *>op.c
    cdef int64_t i, j
    for i in range(op.m):
        for j in range(op.n):
            if beta == 0:
                c[i * op.rs_c + j * op.cs_c] = 0
            else:
                c[i * op.rs_c + j * op.cs_c] *= beta


cdef int gemm_batch(const void *a, const void *b, floating *c,
                    const int64_t *off_a, const int64_t *off_b,
                    const int64_t *off_c, int64_t nbatch, Product op,
                    floating beta, const GemmKernel *kern_in, int nthreads,
                    bint by_matrix,
                    floating *bpack, floating *apack,
                    int64_t b_stride, int64_t a_stride) noexcept nogil:
    """C[i] = A[i]·B[i] + beta·C[i] for each of `nbatch` products whose
    element offsets are off_a/off_b/off_c; `op` holds the shared shape and
    strides.  Buffers: `bpack` (one per thread if by_matrix, else shared)
    and `apack`, one per thread, `b_stride`/`a_stride` elements apart."""
    cdef GemmKernel kern = kern_in[0]
    cdef int64_t bi, jb, jc, nc, pb, pc, kc, q, share
    cdef int tid
    cdef Product mine

    if op.k == 0:
        for bi in range(nbatch):
            mine = op
            mine.c = c + off_c[bi]
            fill_beta(&mine, beta)
        return 0

    if nthreads == 1:
        for bi in range(nbatch):
            mine = op
            mine.a = shift(a, off_a[bi], op.size)
            mine.b = shift(b, off_b[bi], op.size)
            mine.c = c + off_c[bi]
            gemm_serial(&kern, &mine, beta, bpack, apack)
        return 0

    if by_matrix:
        # Whole products per thread: no barrier inside a product.
        with parallel(num_threads=nthreads):
            tid = threadid()
            for bi in prange(nbatch, schedule='static'):
                mine = op
                mine.a = shift(a, off_a[bi], op.size)
                mine.b = shift(b, off_b[bi], op.size)
                mine.c = c + off_c[bi]
                gemm_serial(&kern, &mine, beta, bpack + tid * b_stride,
                            apack + tid * a_stride)
        return 0

    with parallel(num_threads=nthreads):
        for bi in range(nbatch):
            mine = op
            mine.a = shift(a, off_a[bi], op.size)
            mine.b = shift(b, off_b[bi], op.size)
            mine.c = c + off_c[bi]
            for jb in range(cdiv(op.n, kern.nc)):               # loop 5
                jc = jb * kern.nc
                nc = imin(kern.nc, op.n - jc)
                for pb in range(cdiv(op.k, kern.kc)):           # loop 4
                    pc = pb * kern.kc
                    kc = imin(kern.kc, op.k - pc)
                    for q in prange(cdiv(nc, kern.nr), schedule='static'):
                        pack_b_k(&kern, kc, nc,
                                 shift(b, off_b[bi] + pc * op.rs_b
                                       + jc * op.cs_b, op.size),
                                 op.rs_b, op.cs_b, q, q + 1, bpack)
                    for share in prange(nthreads, schedule='static'):
                        compute_share(&kern, &mine, jc, nc, pc, kc,
                                      beta if pc == 0 else <floating>1,
                                      share, nthreads, bpack,
                                      apack + threadid() * a_stride)
    return 0


# ------------------------------------------------------- few rows of A --

# Products with at most this many rows of C skip packing: packing B costs as
# much as the product itself there.  Columns are cut into fixed chunks (never
# by the thread count) so the vector/tail split of a column never moves.
cdef int64_t GEMV_MAX_M = 4
cdef int64_t GEMV_CHUNK = 512


cdef bint gemv_applies(int64_t m, int64_t k, int64_t rs_a, int64_t cs_a,
                       int64_t rs_b, int64_t cs_b) noexcept nogil:
    return m <= GEMV_MAX_M and k > 0 and (cs_b == 1 or (rs_b == 1 and
                                                         cs_a == 1))


cdef void gemv_item(const Product *op, int64_t i, int64_t j0,
                    floating *tmp) noexcept nogil:
    """Row i, columns [j0, j0 + GEMV_CHUNK) of C = A·B, streaming B.
    tmp: k + GEMV_CHUNK elements of this thread's scratch.  A 16-bit row
    of A is widened into tmp; B is streamed in its storage."""
    cdef floating *c = <floating *>op.c
    cdef int64_t nj = imin(GEMV_CHUNK, op.n - j0), p, j
    cdef floating *row = tmp + op.k
    cdef const floating *coef = <const floating *>shift(op.a, i * op.rs_a,
                                                        op.size)
    if op.storage != NATIVE:
        if floating is float:
            widen(op.cv, op.k, coef, op.cs_a, tmp)
        coef = tmp
    elif op.cs_a != 1:
        for p in range(op.k):
            tmp[p] = coef[p * op.cs_a]
        coef = tmp
    if op.cs_b == 1:
        # C[i, :] = Σ_p A[i, p] · B[p, :]: axpy over contiguous rows of B.
        for j in range(nj):
            row[j] = 0
        axpy_rows(&op.rows, op.k, nj, coef, shift(op.b, j0, op.size),
                  op.rs_b, row)
    else:
        # C[i, j] = A[i, :] · B[:, j]: dot products with contiguous columns.
        dot_rows(&op.rows, nj, op.k, coef,
                 shift(op.b, j0 * op.cs_b, op.size), op.cs_b, <floating>1,
                 row)
    for j in range(nj):
        c[i * op.rs_c + (j0 + j) * op.cs_c] = row[j]


cdef void gemv_batch(const void *a, const void *b, floating *c,
                     const int64_t *off_a, const int64_t *off_b,
                     const int64_t *off_c, int64_t nbatch, Product op,
                     int nthreads, floating *scratch,
                     int64_t scratch_stride) noexcept nogil:
    cdef int64_t chunks = cdiv(op.n, GEMV_CHUNK), per = op.m * chunks
    cdef int64_t item, bi, r
    cdef Product mine
    for item in prange(nbatch * per, schedule='static', num_threads=nthreads):
        bi = item // per
        r = item % per
        mine = op
        mine.a = shift(a, off_a[bi], op.size)
        mine.b = shift(b, off_b[bi], op.size)
        mine.c = c + off_c[bi]
        gemv_item(&mine, r // chunks, (r % chunks) * GEMV_CHUNK,
                  scratch + threadid() * scratch_stride)


# ------------------------------------------------------------ entry point --

cdef void *aligned_buffer(size_t nbytes) except NULL:
    cdef void *p = NULL
    if posix_memalign(&p, 64, nbytes if nbytes > 0 else 64) != 0:
        raise MemoryError(f"cattn.matmul: cannot allocate {nbytes} bytes "
                          "of packing buffers")
    return p


# Below this many multiply-adds per call a second thread costs more than it
# saves (thread wake-up is a few microseconds).
cdef int64_t MIN_WORK_PER_THREAD = 1 << 17


def matmul(cnp.ndarray a, cnp.ndarray b, cnp.ndarray c, tuple batch,
           int num_threads, bint pairs=False):
    """C[i] = A[i]·B[i] for every product of the broadcast `batch`.

    a (..., m, k) and b (..., k, n) broadcast to `batch`; c is batch +
    (m, n), walkable in place (the caller allocates it so).  a and b share
    one dtype: float32 or float64, with c of that dtype, or a 16-bit
    storage dtype (float16, bfloat16) with c float32 (the caller rounds
    it).  Each operand's contract -- trailing shape, broadcast to `batch`,
    every element a product reaches inside the array's own memory -- is
    checked (the frame's Operands) before any kernel reads it; odd layouts
    of a and b are copied.  `pairs`: bfloat16 runs the bf16 pair kernel
    where the ISA has one (the default precision).  Releases the GIL.
    """
    cdef int storage = storage_of(a)
    if storage_of(b) != storage or (c.dtype != a.dtype if storage == NATIVE
                                    else c.dtype != np.float32):
        raise AssertionError("cattn internal error: matmul operand dtypes "
                             f"{a.dtype}, {b.dtype} -> {c.dtype}")
    cdef int64_t m = a.shape[a.ndim - 2], k = a.shape[a.ndim - 1]
    cdef int64_t n = b.shape[b.ndim - 1], nbatch = 1, d
    for d in batch:
        nbatch *= d
    cdef Operands ops = Operands(nbatch)
    cdef Operand *oa = ops.add(a, batch, m, k, "matmul", "a")
    cdef Operand *ob = ops.add(b, batch, k, n, "matmul", "b")
    cdef Operand *oc = ops.add(c, batch, m, n, "matmul", "out")
    if ops.keep[2] is not c:
        raise AssertionError("cattn internal error: matmul output copied")
    if cnp.PyArray_TYPE(c) == cnp.NPY_FLOAT32:
        _matmul[float](oa.data, ob.data, storage, cnp.PyArray_ITEMSIZE(a),
                       <float *>oc.data, oa.off, ob.off, oc.off, nbatch,
                       m, n, k, oa.rs, oa.cs, ob.rs, ob.cs, oc.rs, oc.cs,
                       num_threads, pairs)
    else:
        _matmul[double](oa.data, ob.data, storage, cnp.PyArray_ITEMSIZE(a),
                        <double *>oc.data, oa.off, ob.off, oc.off, nbatch,
                        m, n, k, oa.rs, oa.cs, ob.rs, ob.cs, oc.rs, oc.cs,
                        num_threads, pairs)


cdef _matmul(const void *a, const void *b, int storage, int64_t size,
             floating *c, const int64_t *off_a, const int64_t *off_b,
             const int64_t *off_c, int64_t nbatch, int64_t m, int64_t n,
             int64_t k, int64_t rs_a, int64_t cs_a, int64_t rs_b,
             int64_t cs_b, int64_t rs_c, int64_t cs_c, int num_threads,
             bint pairs):
    cdef Product op
    cdef int isa = active_isa()
    cdef GemmKernel kern = gemm_kernel(isa, floating is float, storage, pairs)
    cdef int64_t work, a_stride, b_stride, nc_max
    cdef bint by_matrix
    cdef floating *apack = NULL
    cdef floating *bpack = NULL
    cdef int nthreads
    if nbatch == 0 or m == 0 or n == 0:
        return
    # A C laid out by columns is computed as Cᵀ = Bᵀ·Aᵀ, which keeps the
    # micro-kernel's vector stores; every element sees the same operations.
    if rs_c == 1 and cs_c != 1:
        a, b = b, a
        off_a, off_b = off_b, off_a
        m, n = n, m
        rs_a, cs_a, rs_b, cs_b = cs_b, rs_b, cs_a, rs_a
        rs_c, cs_c = cs_c, rs_c
    op.a, op.b, op.c = NULL, NULL, NULL
    op.storage, op.size, op.isa = storage, size, isa
    op.rows = row_products(isa, storage, False)
    op.cv = cattn_convert_for(isa, storage) if storage != NATIVE else NULL
    op.m, op.n, op.k = m, n, k
    op.rs_a, op.cs_a, op.rs_b, op.cs_b, op.rs_c, op.cs_c = (
        rs_a, cs_a, rs_b, cs_b, rs_c, cs_c)

    work = m * n * (k if k > 0 else 1)
    nthreads = num_threads
    if work * nbatch < MIN_WORK_PER_THREAD * nthreads:
        nthreads = <int>max(1, work * nbatch // MIN_WORK_PER_THREAD)

    if gemv_applies(m, k, rs_a, cs_a, rs_b, cs_b):
        nthreads = <int>min(nthreads, nbatch * m * cdiv(n, GEMV_CHUNK))
        apack = <floating *>aligned_buffer(
            nthreads * (k + GEMV_CHUNK) * sizeof(floating))
        try:
            with nogil:
                team_enter()
                gemv_batch(a, b, c, off_a, off_b, off_c, nbatch,
                           op, nthreads, apack, k + GEMV_CHUNK)
                team_leave()
        finally:
            free(apack)
        return
    by_matrix = nthreads > 1 and (nbatch >= 4 * nthreads or (
        nbatch >= nthreads and (nbatch % nthreads == 0
                                or work < 4 * MIN_WORK_PER_THREAD)))

    nc_max = cdiv(min(n, kern.nc), kern.nr) * kern.nr
    b_stride = kern.kc * nc_max
    a_stride = kern.mc * kern.kc
    try:
        bpack = <floating *>aligned_buffer(
            (nthreads if by_matrix else 1) * b_stride * sizeof(floating))
        apack = <floating *>aligned_buffer(
            nthreads * a_stride * sizeof(floating))
        with nogil:
            team_enter()
            gemm_batch(a, b, c, off_a, off_b, off_c, nbatch, op,
                       <floating>0, &kern, nthreads, by_matrix, bpack, apack,
                       b_stride, a_stride)
            team_leave()
    finally:
        free(bpack)
        free(apack)


cdef GemmKernel kernel_of(dtype):
    cdef cnp.ndarray probe = np.empty(0, dtype)
    cdef int storage = storage_of(probe)
    return gemm_kernel(active_isa(), probe.dtype != np.float64, storage,
                       storage == CATTN_STORAGE_BF16)


def kernel_name(dtype):
    """Name of the micro-kernel the active ISA uses for `dtype`'s products
    (bfloat16: the bf16 pair kernel where the ISA has one)."""
    return kernel_of(dtype).name.decode()


def kernel_blocking(dtype):
    """(MR, NR, KC, MC, NC) of the active micro-kernel for `dtype`."""
    cdef GemmKernel g = kernel_of(dtype)
    return (g.mr, g.nr, g.kc, g.mc, g.nc)
