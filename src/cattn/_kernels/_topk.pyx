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
Keys that are hidden or score -inf are never candidates.

Result per row: the root of the heap (score t, key index j) when the row
has at least k candidates, else index -1.  The second pass keeps key j'
with score s iff j' == j or (s, j') ranks above (t, j): exactly the k
selected keys, decided from the score alone, so it needs no state across
key blocks or chunks.

Work items (batch·head, query block) are independent and each is computed
by one thread in a fixed order, so no result depends on the thread count.
"""
from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY
from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free

cimport numpy as cnp
import numpy as np

from ._cpu cimport active_isa
from ._gemm cimport (GemmKernel, floating, gemm_kernel_f32, gemm_kernel_f64,
                     pack_a, pack_b, tile_product)
from ._visibility cimport (MASK_BOOL, MASK_NONE, Visibility,
                           block_any_visible, block_fully_visible, cdiv,
                           first_visible, imax, imin, last_visible, mask_rows,
                           ranks_above, set_visibility)

cnp.import_array()

cdef extern from "cattn_omp.h":
    pass

cdef int64_t BQ_TARGET = 96
cdef int64_t BK_TARGET = 256
# Keys tested against a full heap's root at a time.
cdef int64_t SCAN = 16


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
    void *heap_v      # bq x topk scores
    int64_t *heap_j   # bq x topk key indices
    int64_t *size     # bq heap sizes


cdef inline void sift_down(floating *hv, int64_t *hj, int64_t n,
                           int64_t pos) noexcept nogil:
    """Restore the heap (every parent ranks below its children, the root is
    the worst kept key) below `pos`."""
    cdef int64_t child
    cdef floating v = hv[pos]
    cdef int64_t j = hj[pos]
    while True:
        child = 2 * pos + 1
        if child >= n:
            break
        if child + 1 < n and ranks_above(hv[child], hj[child],
                                         hv[child + 1], hj[child + 1]):
            child += 1                      # the worse of the two children
        if not ranks_above(v, j, hv[child], hj[child]):
            break
        hv[pos] = hv[child]
        hj[pos] = hj[child]
        pos = child
    hv[pos] = v
    hj[pos] = j


cdef inline void offer(floating *hv, int64_t *hj, int64_t *size,
                       int64_t k, floating s, int64_t j) noexcept nogil:
    """Offer key j with score s to a row's heap of at most k keys."""
    cdef int64_t pos, parent
    if size[0] < k:
        pos = size[0]
        size[0] += 1
        while pos > 0:                      # sift up past better parents
            parent = (pos - 1) // 2
            if not ranks_above(hv[parent], hj[parent], s, j):
                break
            hv[pos] = hv[parent]
            hj[pos] = hj[parent]
            pos = parent
        hv[pos] = s
        hj[pos] = j
    elif ranks_above(s, j, hv[0], hj[0]):
        hv[0] = s
        hj[0] = j
        sift_down(hv, hj, k, 0)


cdef void select_block(const Problem *p, const GemmKernel *kern,
                       const floating *q, const floating *k,
                       const void *mask, int64_t qb, floating *thr,
                       int64_t *idx, Scratch *w) noexcept nogil:
    """Top-k of the rows of query block qb of one head; writes thr and idx
    (this head's rows)."""
    cdef int64_t mr = kern.mr, nr = kern.nr, kc_max = kern.kc, ld = p.ld
    cdef int64_t i0 = qb * p.bq, nq = imin(p.bq, p.L - i0)
    cdef int64_t t, pc, kc, r, j, jj, jn, kb, k0, nk, k_lo, k_hi
    cdef bint reach
    cdef floating root
    cdef floating *qa = <floating *>w.qa
    cdef floating *ktb = <floating *>w.ktb
    cdef floating *st = <floating *>w.st
    cdef floating *hv
    cdef floating *row
    cdef int64_t *hj
    cdef floating s
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
            row = st + r * ld
            hv = <floating *>w.heap_v + r * p.topk
            hj = w.heap_j + r * p.topk
            j = 0
            while j < nk:
                jn = imin(j + SCAN, nk)
                if w.size[r] == p.topk:
                    # Once the heap is full most keys rank below its root:
                    # skip SCAN of them at a time when none reaches it
                    # (`not s < root` also catches NaN).
                    root = hv[0]
                    reach = False
                    for jj in range(j, jn):
                        reach = reach | (not row[jj] < root)
                    if not reach:
                        j = jn
                        continue
                for jj in range(j, jn):
                    s = row[jj]
                    if s != -INFINITY:
                        offer(hv, hj, &w.size[r], p.topk, s, k0 + jj)
                j = jn
    for r in range(nq):
        if w.size[r] == p.topk:
            thr[i0 + r] = (<floating *>w.heap_v)[r * p.topk]
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
            scratch[t].heap_v = checked_alloc(p.bq * topk * itemsize)
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
            free(scratch[t].heap_v)
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
