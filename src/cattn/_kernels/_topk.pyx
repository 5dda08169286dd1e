# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Top-k key selection per query row, tiled, O(L·k) memory: the first pass
of hard attention (k = 1) and of top-k attention.

For each (batch·head, block of BQ queries) the kernel walks the key blocks
of BK keys, computing the score tile S = scale · Q Kᵀ (+ mask) with the
GEMM micro-kernel -- the same products, depth chunks and mask as the
forward kernel, so every score has the forward's bits -- and keeps, per
query row, the k best keys seen so far in a heap whose root is the worst
of them.  Ranking (ranks_above): NaN first, then larger scores, then the
lower key index, so ties are broken by index and the selection is exact.
Keys that are hidden or score -inf are never candidates.  The heap holds
integer rank keys (rank_key) with the same order, and once it is full a
vector scan (topk/cattn_topk.h) skips the scores below its root.

Result per row: the root of the heap (score t, key index j) when the row
has at least k candidates, else index -1.  The second pass keeps key j'
with score s iff j' == j or (s, j') ranks above (t, j): exactly the k
selected keys, decided from the score alone, so it needs no state across
key blocks or chunks.

Work items (batch·head, query block) are independent and each is computed
by one thread in a fixed order, so no result depends on the thread count.
"""
from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY, NAN
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free

cimport numpy as cnp
import numpy as np

from ._cpu cimport active_isa
from ._gemm cimport (GemmKernel, floating, gemm_kernel_f32, gemm_kernel_f64,
                     pack_a, pack_b, tile_product)
from ._visibility cimport (MASK_BOOL, MASK_NONE, Visibility,
                           block_any_visible, block_fully_visible, cdiv,
                           first_visible, imax, imin, last_visible, mask_rows,
                           set_visibility)

cnp.import_array()

cdef extern from "cattn_omp.h":
    pass

cdef extern from "topk/cattn_topk.h":
    int64_t cattn_first_reaching_f32(int isa, int64_t n, const float *x,
                                     float t) nogil
    int64_t cattn_first_reaching_f64(int isa, int64_t n, const double *x,
                                     double t) nogil

cdef int64_t BQ_TARGET = 96
cdef int64_t BK_TARGET = 256


cdef struct Problem:
    Visibility vis
    int64_t L, S, E, topk
    int64_t rs_q, cs_q, rs_k, cs_k, rs_m, cs_m
    int mask_kind
    double scale
    int64_t bq, bk, ld, nqb


cdef struct Scratch:
    void *qa          # Q block as A panels, bq x E
    void *ktb         # K block as B panels, E x ld (by KC chunks)
    void *st          # score tile, bq x ld
    uint64_t *heap_k  # bq x topk rank keys of the kept scores (rank_key)
    int64_t *heap_j   # bq x topk key indices
    int64_t *size     # bq heap sizes


# Sign bits, and the rank key of NaN (above every other score).
cdef uint32_t SIGN32 = (<uint32_t>1) << 31
cdef uint64_t SIGN64 = (<uint64_t>1) << 63
cdef uint64_t NAN_KEY = ~(<uint64_t>0)


cdef inline uint64_t rank_key(floating s) noexcept nogil:
    """An unsigned integer ordered as ranks_above orders scores: NaN above
    everything, then larger scores, -0 equal to +0.  The sign-magnitude
    bits become an unsigned order (negatives flipped, positives offset),
    so a heap step is one integer compare instead of a NaN-aware float
    compare, and GCC can make it branch-free."""
    cdef uint32_t u32
    cdef uint64_t u64
    if s != s:
        return NAN_KEY
    if s == 0:
        s = 0
    if floating is float:
        u32 = (<uint32_t *>&s)[0]
        return <uint64_t>(~u32 if u32 & SIGN32 else u32 | SIGN32)
    else:
        u64 = (<uint64_t *>&s)[0]
        return ~u64 if u64 & SIGN64 else u64 | SIGN64


cdef inline void store_score(uint64_t key, floating *out) noexcept nogil:
    """out[0] = the score whose rank_key is key (NaN for NaN; +0 for ±0)."""
    cdef uint32_t u32
    cdef uint64_t u64
    if key == NAN_KEY:
        out[0] = NAN
    elif floating is float:
        u32 = <uint32_t>key
        u32 = u32 & ~SIGN32 if u32 & SIGN32 else ~u32
        out[0] = (<float *>&u32)[0]
    else:
        u64 = key & ~SIGN64 if key & SIGN64 else ~key
        out[0] = (<double *>&u64)[0]


cdef inline bint ranks_below(uint64_t ka, int64_t ja, uint64_t kb,
                             int64_t jb) noexcept nogil:
    """(ka, ja) ranks below (kb, jb): a lower key, or the same key and a
    higher index (so ties go to the lower index)."""
    return (ka < kb) | ((ka == kb) & (ja > jb))


cdef inline void push(uint64_t *hk, int64_t *hj, int64_t n, uint64_t key,
                      int64_t j) noexcept nogil:
    """Add (key, j) to a heap of n < k entries (every parent ranks below its
    children: the root is the worst kept key)."""
    cdef int64_t pos = n, parent
    while pos > 0:
        parent = (pos - 1) >> 1
        if not ranks_below(key, j, hk[parent], hj[parent]):
            break
        hk[pos] = hk[parent]
        hj[pos] = hj[parent]
        pos = parent
    hk[pos] = key
    hj[pos] = j


cdef inline void replace_root(uint64_t *hk, int64_t *hj, int64_t n,
                              uint64_t key, int64_t j) noexcept nogil:
    """Put (key, j), which ranks above the root, in the root's place and
    sift it down past worse children (the worse child picked by
    arithmetic, not a branch: it is a coin toss on random scores)."""
    cdef int64_t pos = 0, c
    while True:
        c = 2 * pos + 1
        if c >= n:
            break
        if c + 1 < n:
            c += ranks_below(hk[c + 1], hj[c + 1], hk[c], hj[c])
        if not ranks_below(hk[c], hj[c], key, j):
            break
        hk[pos] = hk[c]
        hj[pos] = hj[c]
        pos = c
    hk[pos] = key
    hj[pos] = j


cdef inline int64_t first_reaching(int isa, int64_t n, const floating *x,
                                   floating t) noexcept nogil:
    if floating is float:
        return cattn_first_reaching_f32(isa, n, x, t)
    else:
        return cattn_first_reaching_f64(isa, n, x, t)


cdef inline void offer_row(const floating *row, int64_t nk, int64_t k0,
                           int64_t topk, uint64_t *hk, int64_t *hj,
                           int64_t *size, int isa) noexcept nogil:
    """Offer keys k0..k0+nk of one row (scores `row`) to its heap of
    *size <= topk keys.  Keys scoring -inf (hidden) are never candidates."""
    cdef int64_t j = 0, n = size[0]
    cdef floating root = 0, s
    cdef uint64_t key
    if n == topk:
        store_score(hk[0], &root)
    while j < nk:
        if n < topk:
            s = row[j]
            if s != -INFINITY:
                push(hk, hj, n, rank_key(s), k0 + j)
                n += 1
                if n == topk:
                    store_score(hk[0], &root)
            j += 1
            continue
        # A full heap: jump to the next score not below the worst kept one
        # (most are below it), then rank it exactly.
        j += first_reaching(isa, nk - j, row + j, root)
        if j >= nk:
            break
        s = row[j]
        if s != -INFINITY:
            key = rank_key(s)
            if ranks_below(hk[0], hj[0], key, k0 + j):
                replace_root(hk, hj, topk, key, k0 + j)
                store_score(hk[0], &root)
        j += 1
    size[0] = n


cdef void select_block(const Problem *p, const GemmKernel *kern,
                       const floating *q, const floating *k,
                       const void *mask, int64_t qb, floating *thr,
                       int64_t *idx, Scratch *w) noexcept nogil:
    """Top-k of the rows of query block qb of one head; writes thr and idx
    (this head's rows)."""
    cdef int64_t mr = kern.mr, nr = kern.nr, kc_max = kern.kc, ld = p.ld
    cdef int64_t i0 = qb * p.bq, nq = imin(p.bq, p.L - i0)
    cdef int64_t t, pc, kc, r, kb, k0, nk, k_lo, k_hi
    cdef int isa = active_isa()
    cdef floating *qa = <floating *>w.qa
    cdef floating *ktb = <floating *>w.ktb
    cdef floating *st = <floating *>w.st
    for r in range(nq):
        w.size[r] = 0
    for t in range(cdiv(p.E, kc_max)):
        pc = t * kc_max
        kc = imin(kc_max, p.E - pc)
        pack_a(nq, kc, q + i0 * p.rs_q + pc * p.cs_q, p.rs_q, p.cs_q, mr,
               qa + pc * p.bq)
    k_lo = imax(first_visible(&p.vis, i0), 0)
    k_hi = imin(last_visible(&p.vis, i0 + nq - 1) + 1, p.S)
    for kb in range(k_lo // p.bk, cdiv(k_hi, p.bk) if k_lo < k_hi else 0):
        k0 = kb * p.bk
        nk = imin(p.bk, p.S - k0)
        if not block_any_visible(&p.vis, i0, nq, k0, nk):
            continue
        for t in range(cdiv(p.E, kc_max)):
            pc = t * kc_max
            kc = imin(kc_max, p.E - pc)
            pack_b(kc, nk, k + k0 * p.rs_k + pc * p.cs_k, p.cs_k, p.rs_k, nr,
                   0, cdiv(nk, nr), ktb + pc * ld)
        tile_product(kern, p.E, qa, p.bq, ktb, ld, nq, nk, <floating>p.scale,
                     st, ld)
        if p.mask_kind != MASK_NONE or not block_fully_visible(&p.vis, i0, nq,
                                                               k0, nk):
            mask_rows(&p.vis, p.mask_kind, mask, p.rs_m, p.cs_m, st, ld, i0,
                      nq, k0, nk)
        for r in range(nq):
            offer_row(st + r * ld, nk, k0, p.topk, w.heap_k + r * p.topk,
                      w.heap_j + r * p.topk, &w.size[r], isa)
    for r in range(nq):
        if w.size[r] == p.topk:
            store_score(w.heap_k[r * p.topk], thr + i0 + r)
            idx[i0 + r] = w.heap_j[r * p.topk]
        else:
            thr[i0 + r] = -INFINITY
            idx[i0 + r] = -1


cdef void run(const Problem *p, const floating *q, const floating *k,
              const void *mask, const int64_t *off_q, const int64_t *off_k,
              const int64_t *off_m, floating *thr, int64_t *idx, int64_t nbh,
              Scratch *scratch, int nthreads) noexcept nogil:
    cdef GemmKernel kern
    if floating is float:
        kern = gemm_kernel_f32(active_isa())
    else:
        kern = gemm_kernel_f64(active_isa())
    cdef int64_t item, bh, qb
    cdef size_t mask_item = 1 if p.mask_kind == MASK_BOOL else sizeof(floating)
    cdef const void *mask_bh
    for item in prange(nbh * p.nqb, schedule='dynamic', num_threads=nthreads):
        bh = item // p.nqb
        qb = item % p.nqb
        mask_bh = NULL
        if p.mask_kind != MASK_NONE:
            mask_bh = <const char *>mask + off_m[bh] * mask_item
        select_block(p, &kern, q + off_q[bh], k + off_k[bh], mask_bh, qb,
                     thr + bh * p.L, idx + bh * p.L, scratch + threadid())


cdef void *checked_alloc(size_t nbytes) except NULL:
    cdef void *ptr = calloc(nbytes if nbytes > 0 else 1, 1)
    if ptr == NULL:
        raise MemoryError(f"top-k selection: cannot allocate {nbytes} bytes "
                          f"of scratch")
    return ptr


def select_top_k(cnp.ndarray q, cnp.ndarray k, mask, cnp.ndarray thr,
                 cnp.ndarray idx, const int64_t[::1] off_q,
                 const int64_t[::1] off_k, const int64_t[::1] off_m,
                 tuple strides, tuple sizes, int mask_kind, bint causal,
                 int64_t diag, left, right, double scale, int64_t topk,
                 int num_threads):
    """Per query row of nbh = len(off_q) heads, the worst of its top-k keys:
    thr (nbh, L) its score, idx (nbh, L) its index, or -1 if the row has
    fewer than topk candidate keys; thr and idx C-contiguous.

    sizes = (L, S, E); strides = (rs_q, cs_q, rs_k, cs_k, rs_m, cs_m) in
    elements; mask None, uint8 (bool) or q's dtype.  Validated by the
    caller; topk >= 1.
    """
    cdef Problem p
    cdef int64_t nbh = off_q.shape[0], itemsize = q.itemsize
    cdef GemmKernel kern
    p.L, p.S, p.E = sizes
    p.rs_q, p.cs_q, p.rs_k, p.cs_k, p.rs_m, p.cs_m = strides
    set_visibility(&p.vis, p.L, p.S, causal, diag, left, right)
    p.mask_kind = mask_kind
    p.scale = scale
    p.topk = topk
    if nbh == 0 or p.L == 0:
        return
    kern = (gemm_kernel_f32(active_isa()) if q.dtype == np.float32
            else gemm_kernel_f64(active_isa()))
    p.bq = cdiv(BQ_TARGET, kern.mr) * kern.mr
    p.bk = cdiv(BK_TARGET, kern.nr) * kern.nr
    p.ld = p.bk
    p.nqb = cdiv(p.L, p.bq)
    cdef int nthreads = <int>max(1, min(num_threads, nbh * p.nqb))
    cdef Scratch *scratch = <Scratch *>calloc(nthreads, sizeof(Scratch))
    cdef int t
    if scratch == NULL:
        raise MemoryError("top-k selection: out of memory")
    try:
        for t in range(nthreads):
            scratch[t].qa = checked_alloc(p.bq * max(p.E, 1) * itemsize)
            scratch[t].ktb = checked_alloc(max(p.E, 1) * p.ld * itemsize)
            scratch[t].st = checked_alloc(p.bq * p.ld * itemsize)
            scratch[t].heap_k = <uint64_t *>checked_alloc(
                p.bq * topk * sizeof(uint64_t))
            scratch[t].heap_j = <int64_t *>checked_alloc(
                p.bq * topk * sizeof(int64_t))
            scratch[t].size = <int64_t *>checked_alloc(
                p.bq * sizeof(int64_t))
        if q.dtype == np.float32:
            _run[float](&p, q, k, mask, off_q, off_k, off_m,
                        <float *>cnp.PyArray_DATA(thr), idx, nbh, scratch,
                        nthreads)
        else:
            _run[double](&p, q, k, mask, off_q, off_k, off_m,
                         <double *>cnp.PyArray_DATA(thr), idx, nbh, scratch,
                         nthreads)
    finally:
        for t in range(nthreads):
            free(scratch[t].qa)
            free(scratch[t].ktb)
            free(scratch[t].st)
            free(scratch[t].heap_k)
            free(scratch[t].heap_j)
            free(scratch[t].size)
        free(scratch)


cdef _run(const Problem *p, cnp.ndarray q, cnp.ndarray k, mask,
          const int64_t[::1] off_q, const int64_t[::1] off_k,
          const int64_t[::1] off_m, floating *thr, cnp.ndarray idx,
          int64_t nbh, Scratch *scratch, int nthreads):
    cdef const void *mask_ptr = NULL
    if mask is not None:
        mask_ptr = cnp.PyArray_DATA(mask)
    with nogil:
        run(p, <const floating *>cnp.PyArray_DATA(q),
            <const floating *>cnp.PyArray_DATA(k), mask_ptr, &off_q[0],
            &off_k[0], &off_m[0], thr, <int64_t *>cnp.PyArray_DATA(idx), nbh,
            scratch, nthreads)
