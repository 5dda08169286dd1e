# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Fused scaled-dot-product attention: tiled, online softmax, O(tile) memory.

For each (batch·head, query block of BQ rows) the kernel walks the key
blocks of BK keys in order, never forming the L x S score matrix:

    S   = scale · Q_blk K_blkᵀ            GEMM micro-kernel, alpha = scale
    S  += mask; S = -inf where hidden      attn_mask, causal, window
    m'  = max(m, rowmax S)                 running max per row
    P   = exp(S - m'), a = exp(m - m')     row kernels of include/softmax/
    l   = a·l + rowsum P                   running sum
    O   = a·O + P V_blk                    GEMM micro-kernel, beta = 1
and finally O / l (0 for a row that saw no key) and lse = m + log l.

Key blocks that no row of the query block can see (causal, window) are
skipped.  Visiting a block a row cannot see is an exact no-op for that row
(a = 1, P = 0), so skipping never changes a bit.

Parallel design.  Work items are (batch·head, query block, key chunk),
handed out dynamically; each item is computed by one thread in a fixed
order into its own rows, so the result does not depend on the thread count.
Key chunks exist for decoding (few query blocks, long keys): when there are
fewer than SPLIT_BELOW_ITEMS items, the keys are cut into chunks of CHUNK
keys — a choice made from the shapes alone, never from the thread count —
each chunk yields a partial (m, l, O), and the partials are merged in chunk
order, as in Flash-Decoding.

Scratch is per thread (packed Q, K and V tiles, the score tile, the
accumulator): O(threads × tile), allocated before the parallel region.
"""
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport exp, log, INFINITY
from libc.stdint cimport int64_t, uint8_t
from libc.stdlib cimport free, malloc

cimport numpy as cnp
import numpy as np

from ._cpu cimport active_isa
from ._gemm cimport (GemmKernel, call_ukernel, floating, gemm_kernel_f32,
                     gemm_kernel_f64, pack_a, pack_b)
from ._softmax cimport (cattn_rows_f32, cattn_rows_f32_for, cattn_rows_f64,
                        cattn_rows_f64_for)

cnp.import_array()

cdef extern from "cattn_omp.h":
    pass

cdef extern from "<stdlib.h>" nogil:
    int posix_memalign(void **memptr, size_t alignment, size_t size)

# Key block: the depth of the P·V product, at most the micro-kernel's KC.
cdef int64_t BK = 256
# Query block, in micro-kernel row panels.
cdef int64_t BQ_PANELS = 8
# Split keys into chunks of CHUNK keys when there are fewer work items.
cdef int64_t SPLIT_BELOW_ITEMS = 16
cdef int64_t CHUNK = 1024

cpdef enum MaskKind:
    MASK_NONE = 0
    MASK_BOOL = 1
    MASK_ADD = 2


cdef struct Problem:
    # Shapes and strides (in elements) shared by every batch·head item.
    int64_t L, S, E, Ev
    int64_t rs_q, cs_q, rs_k, cs_k, rs_v, cs_v, rs_o, cs_o, rs_m, cs_m
    int mask_kind
    # Visibility of key j to query i, d = i + diag: j <= d (causal),
    # d - left <= j (has_left), j <= d + right (has_right).
    bint causal, has_left, has_right
    int64_t diag, left, right
    double scale
    # Blocking.
    int64_t bq, nqb, nchunks, chunk


cdef struct Scratch:
    # One thread's buffers; sizes in elements of the compute dtype.
    void *qpack       # ceil(BQ/MR)·MR x E, packed by KC chunks of E
    void *kpack       # KC x ceil(BK/NR)·NR
    void *vpack       # BK x ceil(Ev/NR)·NR
    void *ppack       # ceil(BQ/MR)·MR x BK
    void *s           # BQ x BK score tile, row stride BK
    void *acc         # BQ x ev_pad accumulator, row stride ev_pad
    double *m         # BQ running max
    double *l         # BQ running sum


cdef inline int64_t cdiv(int64_t x, int64_t y) noexcept nogil:
    return (x + y - 1) // y


cdef inline int64_t imin(int64_t x, int64_t y) noexcept nogil:
    return x if x < y else y


cdef inline int64_t imax(int64_t x, int64_t y) noexcept nogil:
    return x if x > y else y


cdef inline int64_t first_visible(const Problem *p, int64_t i) noexcept nogil:
    """Smallest key index query i may see (may exceed S: none)."""
    cdef int64_t lo = 0
    if p.has_left:
        lo = imax(lo, i + p.diag - p.left)
    return lo


cdef inline int64_t last_visible(const Problem *p, int64_t i) noexcept nogil:
    """Largest key index query i may see (may be < 0: none)."""
    cdef int64_t hi = p.S - 1
    if p.causal:
        hi = imin(hi, i + p.diag)
    if p.has_right:
        hi = imin(hi, i + p.diag + p.right)
    return hi


cdef inline floating row_max(int64_t n, const floating *x) noexcept nogil:
    if floating is float:
        return cattn_rows_f32_for(active_isa()).max(n, x)
    else:
        return cattn_rows_f64_for(active_isa()).max(n, x)


cdef inline floating row_exp_sum(int64_t n, floating *x,
                                 floating shift) noexcept nogil:
    if floating is float:
        return cattn_rows_f32_for(active_isa()).exp_sum(n, x, shift, x)
    else:
        return cattn_rows_f64_for(active_isa()).exp_sum(n, x, shift, x)


cdef void mask_tile(const Problem *p, floating *s, int64_t ldS, int64_t i0,
                    int64_t nq, int64_t k0, int64_t nk, const void *mask,
                    ) noexcept nogil:
    """Add the float mask, or hide (-inf) what the bool mask, causal or the
    window hide, in the nq x nk tile of rows i0.. and keys k0.."""
    cdef int64_t r, j, lo, hi, i
    cdef floating *srow
    cdef const floating *fm
    cdef const uint8_t *bm
    for r in range(nq):
        i = i0 + r
        srow = s + r * ldS
        if p.mask_kind == MASK_ADD:
            fm = <const floating *>mask + i * p.rs_m + k0 * p.cs_m
            for j in range(nk):
                srow[j] = srow[j] + fm[j * p.cs_m]
        elif p.mask_kind == MASK_BOOL:
            bm = <const uint8_t *>mask + i * p.rs_m + k0 * p.cs_m
            for j in range(nk):
                if not bm[j * p.cs_m]:
                    srow[j] = -INFINITY
        lo = first_visible(p, i) - k0
        hi = last_visible(p, i) - k0
        for j in range(imin(imax(lo, 0), nk)):
            srow[j] = -INFINITY
        for j in range(imax(hi + 1, 0), nk):
            srow[j] = -INFINITY


cdef void attend_block(const Problem *p, const GemmKernel *kern,
                       const floating *q, const floating *k,
                       const floating *v, const void *mask,
                       int64_t qb, int64_t chunk, Scratch *w) noexcept nogil:
    """Online-softmax attention of query block qb over key chunk `chunk`;
    leaves (m, l, acc) for its rows in w."""
    cdef int64_t mr = kern.mr, nr = kern.nr, kc_max = kern.kc
    cdef int64_t i0 = qb * p.bq, nq = imin(p.bq, p.L - i0)
    cdef int64_t nq_pad = cdiv(nq, mr) * mr
    cdef int64_t ev_pad = cdiv(p.Ev, nr) * nr
    cdef int64_t k_lo, k_hi, kb, nk, pc, kc, r, c, t, jq, n_pc
    cdef floating *qpack = <floating *>w.qpack
    cdef floating *kpack = <floating *>w.kpack
    cdef floating *vpack = <floating *>w.vpack
    cdef floating *ppack = <floating *>w.ppack
    cdef floating *s = <floating *>w.s
    cdef floating *acc = <floating *>w.acc
    cdef floating *srow
    cdef floating mx, m_new, alpha, rowsum
    cdef floating scale = <floating>p.scale

    for r in range(nq):
        w.m[r] = -INFINITY
        w.l[r] = 0
        for c in range(ev_pad):
            acc[r * ev_pad + c] = 0

    # Keys this block may need: the chunk, cut to what its rows can see,
    # widened to whole BK blocks so block boundaries never move.
    k_lo = imax(chunk * p.chunk, first_visible(p, i0))
    k_hi = imin(imin((chunk + 1) * p.chunk, p.S),
                last_visible(p, i0 + nq - 1) + 1)
    if k_lo >= k_hi:
        return
    k_lo = k_lo // BK * BK

    n_pc = imax(1, cdiv(p.E, kc_max))
    for t in range(n_pc):
        pc = t * kc_max
        kc = imin(kc_max, p.E - pc)
        pack_a(nq, kc, q + i0 * p.rs_q + pc * p.cs_q, p.rs_q, p.cs_q, mr,
               qpack + pc * nq_pad)

    kb = k_lo
    while kb < k_hi:
        nk = imin(BK - kb % BK, k_hi - kb)
        # S = scale · Q Kᵀ over E in KC chunks.
        for t in range(n_pc):
            pc = t * kc_max
            kc = imin(kc_max, p.E - pc)
            pack_b(kc, nk, k + kb * p.rs_k + pc * p.cs_k, p.cs_k, p.rs_k,
                   nr, 0, cdiv(nk, nr), kpack)
            for r in range(0, nq_pad // mr):
                for jq in range(cdiv(nk, nr)):
                    call_ukernel(kern, kc, qpack + pc * nq_pad + r * mr * kc,
                                 kpack + jq * nr * kc,
                                 s + r * mr * BK + jq * nr, BK, 1,
                                 imin(mr, nq - r * mr), imin(nr, nk - jq * nr),
                                 scale, 0 if t == 0 else 1)
        mask_tile(p, s, BK, i0, nq, kb, nk, mask)

        # Online softmax: P = exp(S - m'), rescale what came before.
        for r in range(nq):
            srow = s + r * BK
            mx = row_max(nk, srow)
            m_new = mx if mx > w.m[r] else <floating>w.m[r]
            if m_new == -INFINITY:
                # Nothing visible yet: P = 0 and the state stays as it is,
                # unless a NaN hides behind the -inf max (it must propagate).
                for c in range(nk):
                    if srow[c] != srow[c]:
                        w.l[r] = srow[c]
                    srow[c] = 0
                continue
            alpha = exp(w.m[r] - m_new)
            rowsum = row_exp_sum(nk, srow, m_new)
            w.l[r] = w.l[r] * alpha + rowsum
            if alpha != 1:
                for c in range(p.Ev):
                    acc[r * ev_pad + c] = acc[r * ev_pad + c] * alpha
            w.m[r] = m_new

        # acc += P V.
        pack_a(nq, nk, s, BK, 1, mr, ppack)
        pack_b(nk, p.Ev, v + kb * p.rs_v, p.rs_v, p.cs_v, nr, 0,
               cdiv(p.Ev, nr), vpack)
        for r in range(0, nq_pad // mr):
            for jq in range(cdiv(p.Ev, nr)):
                call_ukernel(kern, nk, ppack + r * mr * nk,
                             vpack + jq * nr * nk,
                             acc + r * mr * ev_pad + jq * nr, ev_pad, 1,
                             imin(mr, nq - r * mr), imin(nr, p.Ev - jq * nr),
                             <floating>1, <floating>1)
        kb += nk


cdef void write_rows(const Problem *p, Scratch *w, int64_t nq, int64_t ev_pad,
                     floating *o, floating *lse) noexcept nogil:
    """out = acc / l and lse = m + log l for nq rows; a row that saw no key
    (l == 0) gets 0 and -inf."""
    cdef int64_t r, c
    cdef floating *acc = <floating *>w.acc
    cdef double l
    for r in range(nq):
        l = w.l[r]
        for c in range(p.Ev):
            o[r * p.rs_o + c * p.cs_o] = (
                acc[r * ev_pad + c] / <floating>l if l != 0 else 0)
        if lse != NULL:
            lse[r] = <floating>(w.m[r] + log(l)) if l != 0 else -INFINITY


cdef void save_partial(Scratch *w, int64_t nq, int64_t ev_pad, int64_t Ev,
                       floating *part) noexcept nogil:
    """Store (m, l, acc) of nq rows as rows of [m, l, acc[0:Ev]]."""
    cdef int64_t r, c
    cdef floating *acc = <floating *>w.acc
    for r in range(nq):
        part[r * (Ev + 2)] = <floating>w.m[r]
        part[r * (Ev + 2) + 1] = <floating>w.l[r]
        for c in range(Ev):
            part[r * (Ev + 2) + 2 + c] = acc[r * ev_pad + c]


cdef void merge_partials(const Problem *p, const floating *part,
                         int64_t nq, Scratch *w, int64_t ev_pad) noexcept nogil:
    """Combine the nchunks partials of nq rows, in chunk order, into w."""
    cdef int64_t r, c, ch, row_len = p.Ev + 2
    cdef int64_t stride = p.bq * row_len
    cdef floating *acc = <floating *>w.acc
    cdef double big, a
    cdef const floating *pr
    for r in range(nq):
        big = -INFINITY
        for ch in range(p.nchunks):
            pr = part + ch * stride + r * row_len
            if pr[0] > big:
                big = pr[0]
        w.m[r] = big
        w.l[r] = 0
        for c in range(p.Ev):
            acc[r * ev_pad + c] = 0
        if big == -INFINITY:
            continue
        for ch in range(p.nchunks):
            pr = part + ch * stride + r * row_len
            if pr[1] == 0:
                continue
            a = exp(pr[0] - big)
            w.l[r] = w.l[r] + pr[1] * a
            for c in range(p.Ev):
                acc[r * ev_pad + c] = acc[r * ev_pad + c] + pr[2 + c] * <floating>a


cdef void run(const Problem *p, const floating *q, const floating *k,
              const floating *v, const void *mask, floating *o,
              floating *lse, const int64_t *off_q, const int64_t *off_k,
              const int64_t *off_v, const int64_t *off_m,
              const int64_t *off_o, int64_t nbh, Scratch *scratch,
              floating *parts, int nthreads) noexcept nogil:
    cdef GemmKernel kern
    if floating is float:
        kern = gemm_kernel_f32(active_isa())
    else:
        kern = gemm_kernel_f64(active_isa())
    cdef int64_t ev_pad = cdiv(p.Ev, kern.nr) * kern.nr
    cdef int64_t items = nbh * p.nqb * p.nchunks
    cdef int64_t item, bh, qb, ch, nq, row_len = p.Ev + 2
    cdef Scratch *w
    cdef const void *mask_bh
    cdef size_t mask_item = 1 if p.mask_kind == MASK_BOOL else sizeof(floating)

    for item in prange(items, schedule='dynamic', num_threads=nthreads):
        w = scratch + threadid()
        bh = item // (p.nqb * p.nchunks)
        qb = (item // p.nchunks) % p.nqb
        ch = item % p.nchunks
        nq = imin(p.bq, p.L - qb * p.bq)
        mask_bh = NULL
        if p.mask_kind != MASK_NONE:
            mask_bh = <const char *>mask + off_m[bh] * mask_item
        attend_block(p, &kern, q + off_q[bh], k + off_k[bh], v + off_v[bh],
                     mask_bh, qb, ch, w)
        if p.nchunks == 1:
            write_rows(p, w, nq, ev_pad,
                       o + off_o[bh] + qb * p.bq * p.rs_o,
                       lse + bh * p.L + qb * p.bq if lse != NULL else NULL)
        else:
            save_partial(w, nq, ev_pad, p.Ev,
                         parts + ((bh * p.nqb + qb) * p.nchunks + ch)
                         * p.bq * row_len)

    if p.nchunks == 1:
        return
    for item in prange(nbh * p.nqb, schedule='static', num_threads=nthreads):
        w = scratch + threadid()
        bh = item // p.nqb
        qb = item % p.nqb
        nq = imin(p.bq, p.L - qb * p.bq)
        merge_partials(p, parts + item * p.nchunks * p.bq * row_len, nq, w,
                       ev_pad)
        write_rows(p, w, nq, ev_pad, o + off_o[bh] + qb * p.bq * p.rs_o,
                   lse + bh * p.L + qb * p.bq if lse != NULL else NULL)


cdef void *checked_alloc(size_t nbytes) except NULL:
    cdef void *ptr = NULL
    if posix_memalign(&ptr, 64, nbytes if nbytes > 0 else 64) != 0:
        raise MemoryError(f"scaled_dot_product_attention: cannot allocate "
                          f"{nbytes} bytes of scratch")
    return ptr


def attention(cnp.ndarray q, cnp.ndarray k, cnp.ndarray v, mask,
              cnp.ndarray o, lse, const int64_t[::1] off_q,
              const int64_t[::1] off_k, const int64_t[::1] off_v,
              const int64_t[::1] off_m, const int64_t[::1] off_o,
              tuple strides, tuple sizes, int mask_kind, bint causal,
              int64_t diag, left, right, double scale, int num_threads):
    """Run the fused kernel over nbh = len(off_o) batch·head items.

    sizes = (L, S, E, Ev); strides = (rs_q, cs_q, rs_k, cs_k, rs_v, cs_v,
    rs_o, cs_o, rs_m, cs_m) in elements; offsets in elements of each array;
    mask is None, a uint8 array (bool mask) or an array of o's dtype;
    lse is None or a C-contiguous (nbh, L) array of o's dtype; left/right
    are None (unbounded) or ints.  Validated by the caller.
    """
    cdef Problem p
    cdef int64_t nbh = off_o.shape[0]
    cdef GemmKernel kern
    cdef int64_t itemsize = o.itemsize
    p.L, p.S, p.E, p.Ev = sizes
    (p.rs_q, p.cs_q, p.rs_k, p.cs_k, p.rs_v, p.cs_v, p.rs_o, p.cs_o,
     p.rs_m, p.cs_m) = strides
    p.mask_kind = mask_kind
    p.causal = causal
    p.diag = diag
    p.has_left = left is not None
    p.has_right = right is not None
    p.left = left if left is not None else 0
    p.right = right if right is not None else 0
    p.scale = scale
    if nbh == 0 or p.L == 0:
        return
    if o.dtype == np.float32:
        kern = gemm_kernel_f32(active_isa())
    else:
        kern = gemm_kernel_f64(active_isa())
    p.bq = BQ_PANELS * kern.mr
    p.nqb = cdiv(p.L, p.bq)
    p.chunk = max(p.S, 1)
    p.nchunks = 1
    if nbh * p.nqb < SPLIT_BELOW_ITEMS and p.S > CHUNK:
        p.chunk = CHUNK
        p.nchunks = cdiv(p.S, CHUNK)
    cdef int nthreads = <int>min(num_threads, nbh * p.nqb * p.nchunks)

    cdef int64_t mr = kern.mr, nr = kern.nr
    cdef int64_t bq_pad = cdiv(p.bq, mr) * mr
    cdef int64_t ev_pad = cdiv(p.Ev, nr) * nr
    cdef int64_t e_alloc = max(p.E, 1)
    cdef Scratch *scratch = <Scratch *>malloc(nthreads * sizeof(Scratch))
    cdef void *parts = NULL
    cdef int t
    if scratch == NULL:
        raise MemoryError("scaled_dot_product_attention: out of memory")
    for t in range(nthreads):
        scratch[t] = Scratch(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
    try:
        for t in range(nthreads):
            scratch[t].qpack = checked_alloc(bq_pad * e_alloc * itemsize)
            scratch[t].kpack = checked_alloc(
                kern.kc * cdiv(BK, nr) * nr * itemsize)
            scratch[t].vpack = checked_alloc(BK * ev_pad * itemsize)
            scratch[t].ppack = checked_alloc(bq_pad * BK * itemsize)
            scratch[t].s = checked_alloc(p.bq * BK * itemsize)
            scratch[t].acc = checked_alloc(p.bq * ev_pad * itemsize)
            scratch[t].m = <double *>checked_alloc(p.bq * sizeof(double))
            scratch[t].l = <double *>checked_alloc(p.bq * sizeof(double))
        if p.nchunks > 1:
            parts = checked_alloc(nbh * p.nqb * p.nchunks * p.bq
                                  * (p.Ev + 2) * itemsize)
        if o.dtype == np.float32:
            _run[float](&p, q, k, v, mask, o, lse, off_q, off_k, off_v,
                        off_m, off_o, nbh, scratch, <float *>parts, nthreads)
        else:
            _run[double](&p, q, k, v, mask, o, lse, off_q, off_k, off_v,
                         off_m, off_o, nbh, scratch, <double *>parts,
                         nthreads)
    finally:
        for t in range(nthreads):
            free(scratch[t].qpack)
            free(scratch[t].kpack)
            free(scratch[t].vpack)
            free(scratch[t].ppack)
            free(scratch[t].s)
            free(scratch[t].acc)
            free(scratch[t].m)
            free(scratch[t].l)
        free(scratch)
        free(parts)


cdef _run(const Problem *p, cnp.ndarray q, cnp.ndarray k, cnp.ndarray v,
          mask, cnp.ndarray o, lse, const int64_t[::1] off_q,
          const int64_t[::1] off_k, const int64_t[::1] off_v,
          const int64_t[::1] off_m, const int64_t[::1] off_o, int64_t nbh,
          Scratch *scratch, floating *parts, int nthreads):
    cdef const void *mask_ptr = NULL
    cdef floating *lse_ptr = NULL
    if mask is not None:
        mask_ptr = cnp.PyArray_DATA(mask)
    if lse is not None:
        lse_ptr = <floating *>cnp.PyArray_DATA(lse)
    with nogil:
        run(p, <const floating *>cnp.PyArray_DATA(q),
            <const floating *>cnp.PyArray_DATA(k),
            <const floating *>cnp.PyArray_DATA(v), mask_ptr,
            <floating *>cnp.PyArray_DATA(o), lse_ptr, &off_q[0], &off_k[0],
            &off_v[0], &off_m[0], &off_o[0], nbh, scratch, parts, nthreads)
