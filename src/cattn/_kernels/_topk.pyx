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

The same tiles serve attention_weights (scores): each row's adjusted,
masked scores are written out whole (-inf where hidden), the forward's
scores for the softmax that follows.

Work items (batch·head, query block) are independent and each is computed
by one thread in a fixed order, so no result depends on the thread count.
"""
from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY, NAN
from libc.stdint cimport int64_t, uint32_t, uint64_t

cimport numpy as cnp
import numpy as np

from ._cpu cimport active_isa, team_enter, team_leave
from ._frame cimport C_FUNC
from ._frame cimport (Arena, Frame, Operand, Operands, adjust_scores,
                      adjusts_scores, arena_at, arena_free, arena_new, carve,
                      check_rows, item_visibility, one_storage,
                      read_call)
from ._gemm cimport (GemmKernel, floating, gemm_kernel,
                     pack_a_k, pack_b_k, shift, tile_product)
from ._tables cimport (cattn_attention_blocks, cattn_attention_blocks_for,
                       cattn_topk_f32_for, cattn_topk_f64_for)
from ._visibility cimport (MASK_BOOL, MASK_NONE, Visibility,
                           block_any_visible, block_fully_visible, cdiv,
                           first_visible, imax, imin, last_visible, mask_rows,
                           set_visibility, visible_pairs)

cnp.import_array()

cdef extern from "cattn_omp.h":
    pass

# Query and key blocks of the scans: the ISA's row of the attention block
# table (topk_bq, topk_bk; include/attention/cattn_attention.h).


cdef struct Problem:
    Frame f           # sizes, visibility, mask kind, scale, k (_frame.pxd)
    int64_t rs_q, cs_q, rs_k, cs_k, rs_m, cs_m
    GemmKernel kern   # the score tiles' products, resolved once (_scan):
                      # the forward's (bf16 pairs) for scores, float32 for
                      # top-k (the forward repeats them then)
    int64_t bq, bk, ld, nqb
    int storage       # of q and k (_convert.pxd), in_size bytes each
    int64_t in_size
    # attention_weights: every item's (L, S) scores are written here
    # (nitems·L·S, C order) instead of selecting; NULL: top-k.
    void *scores


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


cdef inline int64_t first_reaching(const Frame *f, int64_t n,
                                   const floating *x,
                                   floating t) noexcept nogil:
    if floating is float:
        return f.k32.first_reaching(n, x, t)
    else:
        return f.k64.first_reaching(n, x, t)


cdef inline void offer_row(const floating *row, int64_t nk, int64_t k0,
                           int64_t topk, uint64_t *hk, int64_t *hj,
                           int64_t *size, const Frame *f) noexcept nogil:
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
        j += first_reaching(f, nk - j, row + j, root)
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
                       const void *q, const void *k,
                       const void *mask, int64_t bh, int64_t qb,
                       floating *thr, int64_t *idx, Scratch *w) noexcept nogil:
    """Top-k of the rows of query block qb of head bh; writes thr and idx
    (this head's rows; none kept past its query length)."""
    cdef int64_t mr = kern.mr, nr = kern.nr, kc_max = kern.kc, ld = p.ld
    cdef int64_t i0 = qb * p.bq, nrows = imin(p.bq, p.f.L - i0), nq
    cdef Visibility vis
    item_visibility(&p.f, bh, &vis)
    nq = imax(0, imin(nrows, vis.L - i0))
    cdef int64_t t, pc, kc, r, kb, k0, nk, k_lo, k_hi
    cdef floating *qa = <floating *>w.qa
    cdef floating *ktb = <floating *>w.ktb
    cdef floating *st = <floating *>w.st
    cdef floating *out = NULL
    cdef int64_t j
    if p.scores != NULL:            # every score hidden until computed
        out = <floating *>p.scores + (bh * p.f.L + i0) * p.f.S
        for r in range(nrows * p.f.S):
            out[r] = -INFINITY
    for r in range(nrows):
        w.size[r] = 0
    for t in range(cdiv(p.f.E, kc_max)):
        pc = t * kc_max
        kc = imin(kc_max, p.f.E - pc)
        pack_a_k(kern, nq, kc, shift(q, i0 * p.rs_q + pc * p.cs_q, p.in_size),
                 p.rs_q, p.cs_q, qa + pc * p.bq)
    k_lo = imax(first_visible(&vis, i0), 0)
    k_hi = imin(last_visible(&vis, i0 + nq - 1) + 1, vis.S)
    if nq == 0:
        k_hi = k_lo
    for kb in range(k_lo // p.bk, cdiv(k_hi, p.bk) if k_lo < k_hi else 0):
        k0 = kb * p.bk
        nk = imin(p.bk, vis.S - k0)
        if not block_any_visible(&vis, i0, nq, k0, nk):
            continue
        for t in range(cdiv(p.f.E, kc_max)):
            pc = t * kc_max
            kc = imin(kc_max, p.f.E - pc)
            pack_b_k(kern, kc, nk,
                     shift(k, k0 * p.rs_k + pc * p.cs_k, p.in_size), p.cs_k,
                     p.rs_k, 0, cdiv(nk, nr), ktb + pc * ld)
        tile_product(kern, p.f.E, qa, p.bq, ktb, ld, nq, nk, <floating>p.f.scale,
                     st, ld)
        if adjusts_scores(&p.f):    # softcap, ALiBi: as the forward
            adjust_scores(&p.f, bh, st, ld, nq, nk, k0 - i0 - vis.offset)
        if p.f.mask_kind != MASK_NONE or not block_fully_visible(&vis, i0, nq,
                                                               k0, nk):
            mask_rows(p.f.c32, p.f.c64, &vis, p.f.mask_kind, mask, p.rs_m, p.cs_m,
                      st, ld, i0, nq, k0, nk)
        if out != NULL:
            for r in range(nq):
                for j in range(nk):
                    out[r * p.f.S + k0 + j] = st[r * ld + j]
            continue
        for r in range(nq):
            offer_row(st + r * ld, nk, k0, p.f.top_k, w.heap_k + r * p.f.top_k,
                      w.heap_j + r * p.f.top_k, &w.size[r], &p.f)
    if out != NULL:
        return
    for r in range(nrows):
        if w.size[r] == p.f.top_k:
            store_score(w.heap_k[r * p.f.top_k], thr + i0 + r)
            idx[i0 + r] = w.heap_j[r * p.f.top_k]
        else:
            thr[i0 + r] = -INFINITY
            idx[i0 + r] = -1


cdef void run(const Problem *p, const void *q, const void *k,
              const void *mask, const int64_t *off_q, const int64_t *off_k,
              const int64_t *off_m, floating *thr, int64_t *idx, int64_t nbh,
              const Arena *arena, int nthreads) noexcept nogil:
    cdef GemmKernel kern = p.kern
    cdef int64_t item, bh, qb
    cdef size_t mask_item = 1 if p.f.mask_kind == MASK_BOOL else sizeof(floating)
    cdef const void *mask_bh
    for item in prange(nbh * p.nqb, schedule='dynamic', num_threads=nthreads):
        bh = item // p.nqb
        qb = item % p.nqb
        mask_bh = NULL
        if p.f.mask_kind != MASK_NONE:
            mask_bh = <const char *>mask + off_m[bh] * mask_item
        # (scores: no thr and idx; select_block writes p.scores instead)
        select_block(p, &kern, shift(q, off_q[bh], p.in_size),
                     shift(k, off_k[bh], p.in_size), mask_bh, bh, qb,
                     thr + bh * p.f.L if thr != NULL else NULL,
                     idx + bh * p.f.L if idx != NULL else NULL,
                     <Scratch *>arena_at(arena, threadid(), 0))


cdef dict describe(const Problem *p, int64_t nbh, int nthreads):
    """The schedule run() follows (see _attention.describe): one dynamic
    phase of (batch·head, query block) items, each costing the (query,
    key) pairs it scores."""
    cdef cnp.ndarray[int64_t] c = np.empty(nbh * p.nqb, np.int64)
    cdef int64_t item, i0
    cdef Visibility vis
    for item in range(nbh * p.nqb):
        item_visibility(&p.f, item // p.nqb, &vis)
        i0 = (item % p.nqb) * p.bq
        c[item] = visible_pairs(&vis, i0, imax(0, imin(imin(p.bq, p.f.L - i0),
                                                   vis.L - i0)), 0, vis.S)
    return {"driver": "top-k", "kind": "query blocks", "threads": nthreads,
            "phases": [("dynamic", c)]}


def select_top_k(call, tuple items, q, k, mask, thr, idx,
                 list schedule=None):
    """Per query row of the batch `items` of a validated ``_frame.Call``
    (call.top_k >= 1), the worst of its top-k keys: thr its score, idx its
    index, or -1 if the row has fewer than k candidate keys.

    q, k (call.dtype: float32, float64 or 16-bit storage, widened as they
    are packed) and mask (None, bool or the compute dtype) broadcast from
    items + (L, E), (S, E), (L, S); thr (compute dtype) and idx (int64) are
    C-contiguous with nitems·L elements.  Contracts checked before the
    kernel runs (Operands.add).  schedule: as _attention.attention's.
    """
    if call.top_k < 1:
        raise AssertionError(f"{call.func}: cattn internal error: top-k "
                             f"needs k >= 1")
    _scan(call, items, q, k, mask, thr, idx, None, schedule)


def scores(call, tuple items, q, k, mask, out, list schedule=None):
    """Every score of the batch `items` of a validated ``_frame.Call`` into
    `out` (compute dtype, C-contiguous, nitems·L·S elements): scale·q·kᵀ
    capped and biased (adjust_scores), masked, -inf where the mask, causal
    or the window hide a key -- the tiled forward's scores bit for bit,
    with its products (bf16 pairs included), for attention_weights.
    Arguments as select_top_k's."""
    _scan(call, items, q, k, mask, None, None, out, schedule)


cdef _scan(call, tuple items, q, k, mask, thr, idx, out, list schedule):
    cdef Problem p
    read_call(&p.f, call, items)
    cdef int64_t nbh = p.f.nitems
    if nbh == 0 or p.f.L == 0:
        return
    cdef str func = call[C_FUNC]
    cdef cnp.ndarray thr_a = thr, idx_a = idx
    p.scores = NULL
    if out is not None:
        check_rows(out, nbh * p.f.L * p.f.S, func, "scores")
        p.scores = cnp.PyArray_DATA(out)
        p.f.top_k = 0
    else:
        check_rows(thr_a, nbh * p.f.L, func, "top-k scores")
        check_rows(idx_a, nbh * p.f.L, func, "top-k indices")
    cdef Operands ops = Operands(nbh)
    cdef Operand *oq = ops.add(q, items, p.f.L, p.f.E, func, "query")
    cdef Operand *ok = ops.add(k, items, p.f.S, p.f.E, func, "key")
    cdef Operand *om = ops.add_mask(mask, &p.f, items, func)
    p.rs_q, p.cs_q, p.rs_k, p.cs_k = oq.rs, oq.cs, ok.rs, ok.cs
    p.rs_m, p.cs_m = om.rs, om.cs
    p.storage = one_storage(func, (q, k), &p.in_size)
    cdef int64_t itemsize = 4 if p.f.is_f32 else 8
    p.kern = gemm_kernel(p.f.isa, p.f.is_f32, p.storage, p.scores != NULL)
    cdef GemmKernel kern = p.kern
    cdef const cattn_attention_blocks *blk = cattn_attention_blocks_for(
        p.f.isa)
    p.bq = cdiv(blk.topk_bq, kern.mr) * kern.mr
    p.bk = cdiv(blk.topk_bk, kern.nr) * kern.nr
    p.ld = p.bk
    p.nqb = cdiv(p.f.L, p.bq)
    cdef int nthreads = <int>max(1, min(p.f.threads, nbh * p.nqb))
    if schedule is not None:
        schedule.append(describe(&p, nbh, nthreads))
        return
    # One thread's slot: its Scratch (carved first), tiles and heaps.
    cdef size_t used = 0
    cdef size_t at_w = carve(&used, sizeof(Scratch))
    cdef size_t at_qa = carve(&used, p.bq * max(p.f.E, 1) * itemsize)
    cdef size_t at_ktb = carve(&used, max(p.f.E, 1) * p.ld * itemsize)
    cdef size_t at_st = carve(&used, p.bq * p.ld * itemsize)
    cdef size_t at_hk = carve(&used, p.bq * p.f.top_k * sizeof(uint64_t))
    cdef size_t at_hj = carve(&used, p.bq * p.f.top_k * sizeof(int64_t))
    cdef size_t at_size = carve(&used, p.bq * sizeof(int64_t))
    cdef Arena arena
    cdef Scratch *w
    cdef int t
    cdef void *thr_p = cnp.PyArray_DATA(thr_a) if thr is not None else NULL
    cdef int64_t *idx_p = (<int64_t *>cnp.PyArray_DATA(idx_a)
                           if idx is not None else NULL)
    arena_new(&arena, nthreads, used, func)
    try:
        for t in range(nthreads):
            w = <Scratch *>arena_at(&arena, t, at_w)
            w.qa = arena_at(&arena, t, at_qa)
            w.ktb = arena_at(&arena, t, at_ktb)
            w.st = arena_at(&arena, t, at_st)
            w.heap_k = <uint64_t *>arena_at(&arena, t, at_hk)
            w.heap_j = <int64_t *>arena_at(&arena, t, at_hj)
            w.size = <int64_t *>arena_at(&arena, t, at_size)
        with nogil:
            team_enter()
            if p.f.is_f32:
                run[float](&p, oq.data, ok.data, om.data, oq.off, ok.off,
                           om.off, <float *>thr_p, idx_p, nbh, &arena,
                           nthreads)
            else:
                run[double](&p, oq.data, ok.data, om.data, oq.off, ok.off,
                            om.off, <double *>thr_p, idx_p, nbh, &arena,
                            nthreads)
            team_leave()
    finally:
        arena_free(&arena)
