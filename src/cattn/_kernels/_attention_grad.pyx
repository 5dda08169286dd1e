# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Backward of the fused attention: dQ, dK, dV (and dS, the gradient of a
float mask) from the forward's saved lse, recomputing the tiles, so memory
stays O(tile) per thread plus packed copies of the inputs (never L x S).

For one query head and its key/value head, S = scale·Q Kᵀ + mask:

    P  = exp(S - lse)              0 where hidden; lse saved by the forward
    D  = rowsum(dO ∘ O)            = rowsum(P ∘ dP)
    dV = Pᵀ dO
    dP = dO Vᵀ
    dS = P ∘ (dP - D)              the gradient of a float mask
    dQ = scale · dS K
    dK = scale · dSᵀ Q

Tiles are (block of BQ queries) x (block of BK keys) in S orientation,
queries down and keys across, row stride ld: then Pᵀ and dSᵀ are A operands
of the dV and dK products as they stand (A[i, p] = a[p*ld + i]: key i,
query p), and only dS is packed (transposed) for the dQ product.  Q, dO, K
and V are packed once per head, in every form the five products read.

Determinism.  No atomics: every gradient element is a sum in a fixed
order, made by one of three schedules.  dK and dV of a key block are always
sums over (query head of the group, query block) in that order.

  fused    one work item per key/value head does all of its tiles, key
           block by key block, adding each tile's dS K into dQ as it goes
           (the FlashAttention-2 loop without atomics): 5 products per tile;
  split    items (kv head, key block) make dK and dV; then items (query
           head, query block) make dQ, recomputing P and dS: 7 products per
           tile, but parallel when there are few heads per thread;
  grouped  items (kv head, range of key blocks), KEY_GROUPS ranges per
           head, each adding its tiles' dS K into its own partial dQ; the
           partials are then summed in range order: 5 products per tile
           and parallel inside a single head, for KEY_GROUPS partial dQ
           arrays of memory.

fused and split add dQ over key blocks in the same order and run the same
tile code, so they give the same bits, and the choice between them (fused
when there are at least two kv heads per thread) only changes speed.
grouped sums dQ in another order, so it is chosen from the shapes alone
(fewer than FEW_HEADS kv heads), never from the thread count.  Which tiles
are visited is decided by one predicate (block_any_visible) everywhere.
"""
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport INFINITY, exp
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy, memset

cimport numpy as cnp
import numpy as np

from ._cpu cimport active_isa, team_enter, team_leave
from ._frame cimport C_FUNC, C_GROUP
from ._frame cimport (Arena, Frame, Operand, Operands, adjust_scores,
                      adjusts_scores, arena_at, arena_free, arena_new, carve,
                      check_rows, classify_tiles,
                      add_block_mask, BlockMask, expand_blocks, item_keys,
                      item_visibility, listed_keys, listed_scores,
                      one_storage, read_call, TILE_EMPTY, TILE_FULL,
                      TILE_INTERVAL, TILE_PARTIAL)
from ._convert cimport (NATIVE, cattn_convert, cattn_convert_for, element,
                       widen)
from ._gemm cimport (RowProducts, axpy_rows_at, dot_rows_at, row_products,
                     scatter_rows_at)
from ._gemm cimport (GemmKernel, call_ukernel, floating, gemm_kernel,
                     pack_a, pack_a_k, pack_b_k,
                     shift, tile_product)
from ._softmax cimport (cattn_rows_f32, cattn_rows_f32_for, cattn_rows_f64,
                       cattn_rows_f64_for)
from ._tables cimport cattn_attention_blocks, cattn_attention_blocks_for
from ._visibility cimport (MASK_BOOL, MASK_NONE, Visibility,
                           block_any_visible, block_fully_visible, cdiv,
                           first_query, first_visible, imax, imin, last_query,
                           last_visible, mask_rows, set_visibility,
                           visible_pairs)

cnp.import_array()

cdef extern from "cattn_omp.h":
    pass

# Query and key blocks (rounded up to whole MR and NR panels) and the
# memory bound of the split schedule's groups: the ISA's row of the
# attention block table (grad_bq, grad_bk, grad_group_bytes;
# include/attention/cattn_attention.h).
# Fewer kv heads than this: the grouped schedule, KEY_GROUPS key ranges.
cdef int64_t FEW_HEADS = 8
cdef int64_t KEY_GROUPS = 8

# Schedules (see the module docstring).
cdef enum Schedule:
    FUSED = 0
    SPLIT = 1
    GROUPED = 2


cdef struct Problem:
    Frame f                   # sizes, visibility, mask kind, scale
    int64_t G                 # query heads per key/value head
    int64_t rs_q, cs_q, rs_k, cs_k, rs_v, cs_v, rs_o, cs_o, rs_g, cs_g
    int64_t rs_m, cs_m
    # q, k, v, out and grad_out are held in `storage` (NATIVE or 16-bit,
    # _convert.pxd), in_size bytes each; the gradients in the compute dtype.
    int storage
    int64_t in_size
    GemmKernel kern           # the products' tile, resolved once (entry)
    const cattn_rows_f32 *r32  # the softmax rows' exp (the call's level)
    const cattn_rows_f64 *r64
    int64_t bq, bk, nqb, nkb, ld
    int64_t e_pad, ev_pad     # E, Ev in whole NR panels
    # Packed sizes in elements: one query block (QA, dOA, QB, dOB, D), one
    # key block (KTB, VTB, KB), one kv head with its G query heads.
    int64_t qblk, kblk, head
    # The mask's tiles at these blocks (_frame.classify_tiles), per query
    # head, when the entry may skip an EMPTY one (skip_empty); else NULL.
    # With them, the row extents of PARTIAL and INTERVAL tiles.
    const uint8_t *tiles
    const int64_t *tile_of
    const int16_t *extents
    # A block mask in place of an element mask (as the forward's): its
    # PARTIAL tiles' bytes expanded into Scratch.tmask where read.
    BlockMask bm


cdef struct Scratch:
    void *pt          # P tile, bq x ld (+ MR slack: A panels read past nk)
    void *dt          # dP, then dS, same shape
    void *dspack      # dS as MR-query A panels, bq x bk
    void *dk          # dK accumulator of a key block, bk x e_pad
    void *dv          # dV accumulator, bk x ev_pad
    void *dq          # dQ accumulator of a query block (split), bq x e_pad
    void *packs       # one head's packed operands (fused schedule)
    void *capt        # softcap: the capped scores, bq x ld
    uint8_t *tmask    # block mask: one PARTIAL tile's mask bytes, bq x bk


# ------------------------------------------------------------- packing --

cdef void pack_query_block(const Problem *p, const GemmKernel *kern,
                           const void *q, const void *o,
                           const void *go, int64_t qh, int64_t qb,
                           floating *dst) noexcept nogil:
    """Query block qb of query head qh, in the forms the products read:
    QA (A of S = Q Kᵀ, MR panels, depth E in KC chunks), dOA (A of
    dP = dO Vᵀ), QB (B of dK = dSᵀ Q), dOB (B of dV = Pᵀ dO), and
    D = rowsum(dO ∘ O) accumulated in float64.  Only the rows before the
    head's query length: the products take that many as their depth."""
    cdef Visibility vis
    item_visibility(&p.f, qh, &vis)
    cdef int64_t i0 = qb * p.bq, kc_max = kern.kc
    cdef int64_t nq = imax(0, imin(imin(p.bq, p.f.L - i0), vis.L - i0))
    cdef int64_t t, pc, kc, r, c
    cdef floating *qa = dst
    cdef floating *goa = qa + p.bq * p.f.E
    cdef floating *qbp = goa + p.bq * p.f.Ev
    cdef floating *gob = qbp + p.bq * p.e_pad
    cdef floating *d = gob + p.bq * p.ev_pad
    cdef double acc
    for t in range(cdiv(p.f.E, kc_max)):
        pc = t * kc_max
        kc = imin(kc_max, p.f.E - pc)
        pack_a_k(kern, nq, kc, shift(q, i0 * p.rs_q + pc * p.cs_q, p.in_size),
                 p.rs_q, p.cs_q, qa + pc * p.bq)
    for t in range(cdiv(p.f.Ev, kc_max)):
        pc = t * kc_max
        kc = imin(kc_max, p.f.Ev - pc)
        pack_a_k(kern, nq, kc, shift(go, i0 * p.rs_g + pc * p.cs_g, p.in_size),
                 p.rs_g, p.cs_g, goa + pc * p.bq)
    pack_b_k(kern, nq, p.f.E, shift(q, i0 * p.rs_q, p.in_size), p.rs_q, p.cs_q,
             0, cdiv(p.f.E, kern.nr), qbp)
    pack_b_k(kern, nq, p.f.Ev, shift(go, i0 * p.rs_g, p.in_size), p.rs_g,
             p.cs_g, 0, cdiv(p.f.Ev, kern.nr), gob)
    for r in range(nq):
        acc = 0
        for c in range(p.f.Ev):
            acc += (element(p.storage, floating is float, go,
                            (i0 + r) * p.rs_g + c * p.cs_g)
                    * element(p.storage, floating is float, o,
                              (i0 + r) * p.rs_o + c * p.cs_o))
        d[r] = <floating>acc


cdef void pack_key_block(const Problem *p, const GemmKernel *kern,
                         const void *k, const void *v, int64_t kvh,
                         int64_t kb, floating *dst) noexcept nogil:
    """Key block kb of kv head kvh: KTB (B of S = Q Kᵀ: NR panels of keys,
    depth E in KC chunks), VTB (B of dP = dO Vᵀ), KB (B of dQ = dS K).
    Only the keys before the head's key length (key_count): the products
    take that many, so the padding is never read."""
    cdef int64_t k0 = kb * p.bk, nk = key_count(p, kvh, kb), kc_max = kern.kc
    cdef int64_t t, pc, kc
    cdef floating *ktb = dst
    cdef floating *vtb = ktb + p.f.E * p.ld
    cdef floating *kbp = vtb + p.f.Ev * p.ld
    for t in range(cdiv(p.f.E, kc_max)):
        pc = t * kc_max
        kc = imin(kc_max, p.f.E - pc)
        pack_b_k(kern, kc, nk, shift(k, k0 * p.rs_k + pc * p.cs_k, p.in_size),
                 p.cs_k, p.rs_k, 0, cdiv(nk, kern.nr), ktb + pc * p.ld)
    for t in range(cdiv(p.f.Ev, kc_max)):
        pc = t * kc_max
        kc = imin(kc_max, p.f.Ev - pc)
        pack_b_k(kern, kc, nk, shift(v, k0 * p.rs_v + pc * p.cs_v, p.in_size),
                 p.cs_v, p.rs_v, 0, cdiv(nk, kern.nr), vtb + pc * p.ld)
    pack_b_k(kern, nk, p.f.E, shift(k, k0 * p.rs_k, p.in_size), p.rs_k, p.cs_k,
             0, cdiv(p.f.E, kern.nr), kbp)


cdef inline int64_t key_count(const Problem *p, int64_t kvh,
                              int64_t kb) noexcept nogil:
    """The keys of block kb of kv head kvh that exist: before its key
    length (the group's query heads share it), at most bk, maybe 0."""
    cdef int64_t s = item_keys(&p.f, kvh * p.G)
    return imax(0, imin(p.bk, s - kb * p.bk))


cdef inline floating *query_pack(const Problem *p, floating *head,
                                 int64_t g, int64_t qb) noexcept nogil:
    return head + (g * p.nqb + qb) * p.qblk


cdef inline floating *key_pack(const Problem *p, floating *head,
                               int64_t kb) noexcept nogil:
    return head + p.G * p.nqb * p.qblk + kb * p.kblk


cdef void pack_head_item(const Problem *p, const GemmKernel *kern,
                         const void *q, const void *k,
                         const void *v, const void *o,
                         const void *go, const int64_t *off_q,
                         const int64_t *off_k, const int64_t *off_v,
                         const int64_t *off_o, const int64_t *off_g,
                         int64_t kvh, int64_t item,
                         floating *head) noexcept nogil:
    """Pack block `item` of kv head kvh: the G·nqb query blocks first, then
    the nkb key blocks."""
    cdef int64_t g, qh
    if item < p.G * p.nqb:
        g = item // p.nqb
        qh = kvh * p.G + g
        pack_query_block(p, kern, shift(q, off_q[qh], p.in_size),
                         shift(o, off_o[qh], p.in_size),
                         shift(go, off_g[qh], p.in_size), qh, item % p.nqb,
                         query_pack(p, head, g, item % p.nqb))
    else:
        item -= p.G * p.nqb
        pack_key_block(p, kern, shift(k, off_k[kvh], p.in_size),
                       shift(v, off_v[kvh], p.in_size), kvh, item,
                       key_pack(p, head, item))


# ---------------------------------------------------------------- tiles --

cdef inline void exp_shifted(const Problem *p, int64_t n, floating *x,
                             floating shift) noexcept nogil:
    if floating is float:
        p.r32.exp_sum(n, x, shift, x)
    else:
        p.r64.exp_sum(n, x, shift, x)


cdef inline void softcap_grad(int64_t n, floating *ds, const floating *c,
                              floating cap) noexcept nogil:
    """ds = d/dx of the loss for x capped to c = cap·tanh(x / cap):
    ds · (1 - tanh²)."""
    cdef int64_t j
    cdef floating t
    for j in range(n):
        t = c[j] / cap
        ds[j] = ds[j] * (1 - t * t)


cdef void tile(const Problem *p, const Visibility *vis,
               const GemmKernel *kern,
               const floating *qpack, const floating *kpack,
               const floating *lse, const void *mask, int64_t qh, int64_t i0,
               int64_t nq, int64_t k0, int64_t nk, floating *dmask,
               uint8_t cls, Scratch *w) noexcept nogil:
    """P and dS of queries i0..i0+nq x keys k0..k0+nk (one key block) of
    query head qh (visibility vis) into w.pt and w.dt; lse, mask and dmask
    point at this query head's rows (dmask: row stride S, or NULL).  With
    softcap, dS is that of the scores before the cap (times 1 - tanh², from
    the capped scores kept in w.capt); dmask gets the mask's, after it.
    cls: the tile's class (tile_class_of); a FULL tile's mask is not read
    (it adds ±0 or nothing), nor an INTERVAL one's (its extents hide the
    same keys), as in the forward (forward/masks.pxi)."""
    cdef int64_t ld = p.ld, r, j
    cdef const floating *qa = qpack
    cdef const floating *goa = qa + p.bq * p.f.E
    cdef const floating *d = qpack + p.bq * (p.f.E + p.f.Ev + p.e_pad + p.ev_pad)
    cdef const floating *ktb = kpack
    cdef const floating *vtb = ktb + p.f.E * ld
    cdef floating *pt = <floating *>w.pt
    cdef floating *dt = <floating *>w.dt
    cdef floating *row
    cdef floating *drow
    cdef floating shift, di
    cdef bint bad
    cdef const int16_t *ext

    # S = scale · Q Kᵀ and dP = dO Vᵀ, depth in KC chunks (as the forward,
    # so S has the forward's bits and S - lse <= 0).
    tile_product(kern, p.f.E, qa, p.bq, ktb, ld, nq, nk, <floating>p.f.scale, pt,
                 ld)
    tile_product(kern, p.f.Ev, goa, p.bq, vtb, ld, nq, nk, <floating>1, dt, ld)
    if adjusts_scores(&p.f):        # softcap, ALiBi: as the forward
        adjust_scores(&p.f, qh, pt, ld, nq, nk, k0 - i0 - vis.offset,
                      <floating *>w.capt)
    if (p.f.mask_kind != MASK_NONE or p.bm.t != NULL
            or not block_fully_visible(vis, i0, nq, k0, nk)):
        mask_rows(p.f.c32, p.f.c64, vis,
                  p.f.mask_kind if cls == TILE_PARTIAL else MASK_NONE, mask,
                  p.rs_m, p.cs_m, pt, ld, i0, nq, k0, nk)
        if p.bm.t != NULL and cls == TILE_PARTIAL:
            # `mask` is the item's block mask: this tile's bytes.
            expand_blocks(&p.bm, <const uint8_t *>mask, i0, nq, k0, nk,
                          w.tmask, nk)
            for r in range(nq):
                if floating is float:
                    p.f.c32.row_mask_bool(nk, pt + r * ld, w.tmask + r * nk,
                                          1)
                else:
                    p.f.c64.row_mask_bool(nk, pt + r * ld, w.tmask + r * nk,
                                          1)
        if cls == TILE_INTERVAL:
            ext = tile_extents_of(p, qh, i0 // p.bq, k0 // p.bk)
            for r in range(nq):
                if floating is float:
                    p.f.c32.hide_outside(nk, pt + r * ld, ext[2 * r],
                                         ext[2 * r + 1])
                else:
                    p.f.c64.hide_outside(nk, pt + r * ld, ext[2 * r],
                                         ext[2 * r + 1])

    # P = exp(S - lse); dS = P ∘ (dP - D).  A row that saw no key in the
    # forward (lse = -inf) has P = 0, so no gradient.
    for r in range(nq):
        row = pt + r * ld
        drow = dt + r * ld
        shift = lse[i0 + r]
        if shift == -INFINITY:
            for j in range(nk):
                row[j] = 0
        else:
            exp_shifted(p, nk, row, shift)
        di = d[r]
        bad = False
        for j in range(nk):
            drow[j] = row[j] * (drow[j] - di)
            bad = bad | (drow[j] != drow[j])
        if bad:
            # dS is exactly 0 where P is: a hidden key's value (inf or NaN
            # in dP, so 0·inf = NaN above) never reaches a row that cannot
            # see it.  Recomputed only for rows that came out NaN.
            for j in range(nk):
                if row[j] == 0:
                    drow[j] = 0
        if dmask != NULL:
            memcpy(dmask + (i0 + r) * p.f.S + k0, drow, nk * sizeof(floating))
        if p.f.softcap > 0:
            softcap_grad(nk, drow, <floating *>w.capt + r * ld,
                         <floating>p.f.softcap)


cdef void add_dkdv(const Problem *p, const GemmKernel *kern,
                   const floating *qpack, int64_t nq, int64_t nk,
                   Scratch *w) noexcept nogil:
    """dV += Pᵀ dO and dK += dSᵀ Q for the tile in w (unscaled dK)."""
    cdef int64_t mr = kern.mr, nr = kern.nr, r, je
    cdef const floating *qbp = qpack + p.bq * (p.f.E + p.f.Ev)
    cdef const floating *gob = qbp + p.bq * p.e_pad
    cdef floating *dk = <floating *>w.dk
    cdef floating *dv = <floating *>w.dv
    for r in range(cdiv(nk, mr)):
        for je in range(cdiv(p.f.Ev, nr)):
            call_ukernel(kern, nq, <floating *>w.pt + r * mr, p.ld,
                         gob + je * nr * nq, nr,
                         dv + r * mr * p.ev_pad + je * nr, p.ev_pad, 1,
                         imin(mr, nk - r * mr), imin(nr, p.f.Ev - je * nr),
                         <floating>1, <floating>1)
        for je in range(cdiv(p.f.E, nr)):
            call_ukernel(kern, nq, <floating *>w.dt + r * mr, p.ld,
                         qbp + je * nr * nq, nr,
                         dk + r * mr * p.e_pad + je * nr, p.e_pad, 1,
                         imin(mr, nk - r * mr), imin(nr, p.f.E - je * nr),
                         <floating>1, <floating>1)


cdef void add_dq(const Problem *p, const GemmKernel *kern,
                 const floating *kpack, int64_t nq, int64_t nk, floating *dq,
                 int64_t rs_dq, Scratch *w) noexcept nogil:
    """dq += dS K for the tile in w (unscaled), dq with row stride rs_dq."""
    cdef int64_t mr = kern.mr, nr = kern.nr, r, je
    cdef const floating *kbp = kpack + (p.f.E + p.f.Ev) * p.ld
    cdef floating *dspack = <floating *>w.dspack
    pack_a(kern, nq, nk, <floating *>w.dt, p.ld, 1, mr, dspack)
    for r in range(cdiv(nq, mr)):
        for je in range(cdiv(p.f.E, nr)):
            call_ukernel(kern, nk, dspack + r * mr * nk, mr,
                         kbp + je * nr * nk, nr, dq + r * mr * rs_dq + je * nr,
                         rs_dq, 1, imin(mr, nq - r * mr),
                         imin(nr, p.f.E - je * nr), <floating>1, <floating>1)


cdef void query_blocks_of(const Problem *p, const Visibility *vis,
                          int64_t k0, int64_t nk, int64_t *qb_lo,
                          int64_t *qb_hi) noexcept nogil:
    """Query blocks that may see a key of k0..k0+nk: [qb_lo, qb_hi) (none
    for keys past vis.S)."""
    cdef int64_t lo = imax(first_query(vis, k0), 0)
    cdef int64_t hi = imin(last_query(vis, k0 + nk - 1), vis.L - 1)
    qb_lo[0] = lo // p.bq
    qb_hi[0] = hi // p.bq + 1 if lo <= hi else qb_lo[0]


cdef inline uint8_t tile_class_of(const Problem *p, int64_t qh, int64_t qb,
                                  int64_t kb) noexcept nogil:
    """The class of tile (qb, kb) of query head qh's mask (PARTIAL without
    classes).  Skipping an EMPTY one is exact: every weight of it is 0, so
    it adds nothing to dQ, dK, dV or the mask's gradient (which stays
    0)."""
    if p.tiles == NULL:
        return TILE_PARTIAL
    return p.tiles[p.tile_of[qh] + qb * p.nkb + kb]


cdef inline const int16_t *tile_extents_of(const Problem *p, int64_t qh,
                                           int64_t qb,
                                           int64_t kb) noexcept nogil:
    """The row extents of tile (qb, kb) of query head qh (classified with
    extents): 2 int16 per query row, relative to the key block's start."""
    return p.extents + (p.tile_of[qh] + qb * p.nkb + kb) * 2 * p.bq


cdef void key_block_dkdv(const Problem *p, const GemmKernel *kern,
                         floating *head, const floating *lse,
                         const void *mask, const int64_t *off_m,
                         size_t mask_item, floating *dmask, int64_t kvh,
                         int64_t kb, floating *dq, floating *dk,
                         floating *dv, Scratch *w) noexcept nogil:
    """dK and dV of key block kb of kv head kvh, over the group's query
    heads and query blocks in order; with dq != NULL also adds each tile's
    dS K into dq (the fused schedule; dq: the kv head's G x L x E rows)."""
    cdef int64_t k0 = kb * p.bk, nk = imin(p.bk, p.f.S - k0)
    cdef int64_t nreal = key_count(p, kvh, kb)      # the rest: dK, dV 0
    cdef int64_t g, qb, qb_lo, qb_hi, i0, nq, qh, r, c
    cdef uint8_t cls
    cdef const floating *kpack = key_pack(p, head, kb)
    cdef const floating *qpack
    cdef const void *mask_h
    cdef floating *dmask_h
    cdef floating *dka = <floating *>w.dk
    cdef floating *dva = <floating *>w.dv
    cdef Visibility vis             # the group's heads share their lengths
    item_visibility(&p.f, kvh * p.G, &vis)
    memset(w.dk, 0, p.bk * p.e_pad * sizeof(floating))
    memset(w.dv, 0, p.bk * p.ev_pad * sizeof(floating))
    query_blocks_of(p, &vis, k0, imax(nreal, 1), &qb_lo, &qb_hi)
    if nreal == 0:
        qb_hi = qb_lo
    for g in range(p.G):
        qh = kvh * p.G + g
        mask_h = NULL
        if p.f.mask_kind != MASK_NONE:
            mask_h = <const char *>mask + off_m[qh] * mask_item
        elif p.bm.t != NULL:      # the head's block mask (tile)
            mask_h = p.bm.t + p.bm.off[qh]
        dmask_h = dmask + qh * p.f.L * p.f.S if dmask != NULL else NULL
        for qb in range(qb_lo, qb_hi):
            i0 = qb * p.bq
            nq = imin(p.bq, vis.L - i0)
            if not block_any_visible(&vis, i0, nq, k0, nreal):
                continue
            cls = tile_class_of(p, qh, qb, kb)
            if cls == TILE_EMPTY:
                continue
            qpack = query_pack(p, head, g, qb)
            tile(p, &vis, kern, qpack, kpack, lse + qh * p.f.L, mask_h, qh,
                 i0, nq, k0, nreal, dmask_h, cls, w)
            add_dkdv(p, kern, qpack, nq, nreal, w)
            if dq != NULL:
                add_dq(p, kern, kpack, nq, nreal,
                       dq + (g * p.f.L + i0) * p.f.E, p.f.E, w)
    for r in range(nk):
        for c in range(p.f.E):
            dk[(k0 + r) * p.f.E + c] = dka[r * p.e_pad + c] * <floating>p.f.scale
        for c in range(p.f.Ev):
            dv[(k0 + r) * p.f.Ev + c] = dva[r * p.ev_pad + c]


cdef void query_block_dq(const Problem *p, const GemmKernel *kern,
                         floating *head, const floating *lse,
                         const void *mask, const int64_t *off_m,
                         size_t mask_item, int64_t kvh, int64_t g,
                         int64_t qb, floating *dq, Scratch *w) noexcept nogil:
    """dQ of query block qb of query head g of kv head kvh (split
    schedule), over the key blocks in order; dq: that head's L x E rows."""
    cdef int64_t i0 = qb * p.bq, nq = imin(p.bq, p.f.L - i0)
    cdef int64_t qh = kvh * p.G + g, kb, k_lo, k_hi, r, c, nreal, nk
    cdef uint8_t cls
    cdef const floating *qpack = query_pack(p, head, g, qb)
    cdef const void *mask_h = NULL
    cdef floating *acc = <floating *>w.dq
    cdef Visibility vis
    item_visibility(&p.f, qh, &vis)
    nreal = imin(nq, vis.L - i0)    # rows past the query length: dQ 0
    if p.f.mask_kind != MASK_NONE:
        mask_h = <const char *>mask + off_m[qh] * mask_item
    elif p.bm.t != NULL:          # the head's block mask (tile)
        mask_h = p.bm.t + p.bm.off[qh]
    memset(w.dq, 0, p.bq * p.e_pad * sizeof(floating))
    k_lo = imax(first_visible(&vis, i0), 0)
    k_hi = imin(last_visible(&vis, i0 + nreal - 1) + 1, vis.S)
    if k_lo < k_hi and nreal > 0:
        for kb in range(k_lo // p.bk, cdiv(k_hi, p.bk)):
            nk = key_count(p, kvh, kb)
            if not block_any_visible(&vis, i0, nreal, kb * p.bk, nk):
                continue
            cls = tile_class_of(p, qh, qb, kb)
            if cls == TILE_EMPTY:
                continue
            tile(p, &vis, kern, qpack, key_pack(p, head, kb),
                 lse + qh * p.f.L, mask_h, qh, i0, nreal, kb * p.bk, nk,
                 NULL, cls, w)
            add_dq(p, kern, key_pack(p, head, kb), nreal, nk, acc, p.e_pad,
                   w)
    for r in range(nq):
        for c in range(p.f.E):
            dq[(i0 + r) * p.f.E + c] = acc[r * p.e_pad + c] * <floating>p.f.scale


# --------------------------------------------------------------- drivers --

cdef void run(const Problem *p, const void *q, const void *k,
              const void *v, const void *o, const void *go,
              const floating *lse, const void *mask, const int64_t *off_q,
              const int64_t *off_k, const int64_t *off_v,
              const int64_t *off_o, const int64_t *off_g,
              const int64_t *off_m, floating *dq, floating *dk, floating *dv,
              floating *dmask, int64_t nkv, int schedule, int64_t group,
              const Arena *arena, floating *packs, floating *parts,
              int nthreads) noexcept nogil:
    cdef GemmKernel kern = p.kern
    cdef int64_t per_head = p.G * p.nqb + p.nkb
    cdef int64_t kvh, item, gi, g0, ng, kb, r, g, qb, grp, c, i0, nq
    cdef int64_t ngrp = imin(KEY_GROUPS, p.nkb), head_dq = p.G * p.f.L * p.f.E
    cdef Scratch *w
    cdef floating *head
    cdef floating *part
    cdef floating acc
    cdef size_t mask_item = 1 if p.f.mask_kind == MASK_BOOL else sizeof(floating)

    if schedule == FUSED:
        for kvh in prange(nkv, schedule='dynamic', num_threads=nthreads):
            w = <Scratch *>arena_at(arena, threadid(), 0)   # carved first
            head = <floating *>w.packs
            for item in range(per_head):
                pack_head_item(p, &kern, q, k, v, o, go, off_q, off_k, off_v,
                               off_o, off_g, kvh, item, head)
            for kb in range(p.nkb):
                key_block_dkdv(p, &kern, head, lse, mask, off_m, mask_item,
                               dmask, kvh, kb, dq + kvh * p.G * p.f.L * p.f.E,
                               dk + kvh * p.f.S * p.f.E, dv + kvh * p.f.S * p.f.Ev, w)
            for r in range(p.G * p.f.L * p.f.E):
                dq[kvh * p.G * p.f.L * p.f.E + r] *= <floating>p.f.scale
        return

    with parallel(num_threads=nthreads):
        for gi in range(cdiv(nkv, group)):
            g0 = gi * group
            ng = imin(group, nkv - g0)
            for item in prange(ng * per_head, schedule='static'):
                kvh = g0 + item // per_head
                pack_head_item(p, &kern, q, k, v, o, go, off_q, off_k, off_v,
                               off_o, off_g, kvh, item % per_head,
                               packs + (kvh - g0) * p.head)
            if schedule == GROUPED:
                # Item (kv head, key range): dK, dV of its key blocks and
                # its own partial dQ, summed below in key-range order.
                for item in prange(ng * ngrp, schedule='dynamic'):
                    w = <Scratch *>arena_at(arena, threadid(), 0)   # carved first
                    kvh = g0 + item // ngrp
                    grp = item % ngrp
                    part = parts + ((kvh - g0) * ngrp + grp) * head_dq
                    memset(part, 0, head_dq * sizeof(floating))
                    for kb in range(grp * p.nkb // ngrp,
                                    (grp + 1) * p.nkb // ngrp):
                        key_block_dkdv(p, &kern, packs + (kvh - g0) * p.head,
                                       lse, mask, off_m, mask_item, dmask,
                                       kvh, kb, part, dk + kvh * p.f.S * p.f.E,
                                       dv + kvh * p.f.S * p.f.Ev, w)
                for item in prange(ng * p.G * p.nqb, schedule='static'):
                    kvh = g0 + item // (p.G * p.nqb)
                    g = (item // p.nqb) % p.G
                    i0 = (item % p.nqb) * p.bq
                    nq = imin(p.bq, p.f.L - i0)
                    for r in range((g * p.f.L + i0) * p.f.E,
                                   (g * p.f.L + i0 + nq) * p.f.E):
                        acc = 0
                        for grp in range(ngrp):
                            acc = acc + parts[((kvh - g0) * ngrp + grp)
                                              * head_dq + r]
                        dq[kvh * head_dq + r] = acc * <floating>p.f.scale
                continue
            for item in prange(ng * p.nkb, schedule='dynamic'):
                w = <Scratch *>arena_at(arena, threadid(), 0)   # carved first
                kvh = g0 + item // p.nkb
                kb = item % p.nkb
                key_block_dkdv(p, &kern, packs + (kvh - g0) * p.head, lse,
                               mask, off_m, mask_item, dmask, kvh, kb, NULL,
                               dk + kvh * p.f.S * p.f.E, dv + kvh * p.f.S * p.f.Ev, w)
            for item in prange(ng * p.G * p.nqb, schedule='dynamic'):
                w = <Scratch *>arena_at(arena, threadid(), 0)   # carved first
                kvh = g0 + item // (p.G * p.nqb)
                g = (item // p.nqb) % p.G
                qb = item % p.nqb
                query_block_dq(p, &kern, packs + (kvh - g0) * p.head, lse,
                               mask, off_m, mask_item, kvh, g, qb,
                               dq + (kvh * p.G + g) * p.f.L * p.f.E, w)


cdef int64_t head_pairs(const Problem *p, int64_t qh0, int64_t nqh,
                       int64_t q0, int64_t nq, int64_t k0, int64_t k1):
    """(query, key) pairs of query heads qh0..qh0+nqh-1, rows q0..q0+nq-1
    (cut to each head's rows), keys k0..k1-1."""
    cdef Visibility vis
    cdef int64_t qh, n = 0
    for qh in range(qh0, qh0 + nqh):
        item_visibility(&p.f, qh, &vis)
        n += visible_pairs(&vis, q0, imax(0, imin(nq, vis.L - q0)), k0,
                           imin(k1, vis.S))
    return n


cdef dict describe(const Problem *p, int64_t nkv, int schedule,
                   int64_t group, int nthreads):
    """The schedule run() follows (see _attention.describe): fused, the
    kv heads whole; split, per group of kv heads the packing, the key
    blocks (dK, dV) and the query blocks (dQ); grouped, the packing, the
    key ranges (dK, dV, partial dQ) and the sum of the partials."""
    cdef int64_t per_head = p.G * p.nqb + p.nkb, ngrp = imin(KEY_GROUPS, p.nkb)
    cdef int64_t gi, g0, ng, item, kvh, i, r
    cdef cnp.ndarray[int64_t] c
    cdef list phases = []
    if schedule == FUSED:
        c = np.empty(nkv, np.int64)
        for kvh in range(nkv):
            c[kvh] = (p.G * p.f.L + p.f.S
                      + head_pairs(p, kvh * p.G, p.G, 0, p.f.L, 0, p.f.S))
        return {"driver": "backward", "kind": "whole kv heads",
                "threads": nthreads, "phases": [("dynamic", c)]}
    for gi in range(cdiv(nkv, group)):
        g0 = gi * group
        ng = imin(group, nkv - g0)
        c = np.empty(ng * per_head, np.int64)
        for item in range(ng * per_head):
            i = item % per_head
            c[item] = (imin(p.bq, p.f.L - (i % p.nqb) * p.bq) if i < p.G * p.nqb
                       else imin(p.bk, p.f.S - (i - p.G * p.nqb) * p.bk))
        phases.append(("static", c))
        if schedule == GROUPED:
            c = np.empty(ng * ngrp, np.int64)
            for item in range(ng * ngrp):
                r = item % ngrp
                c[item] = head_pairs(p, (g0 + item // ngrp) * p.G, p.G,
                                     0, p.f.L,
                                     r * p.nkb // ngrp * p.bk,
                                     (r + 1) * p.nkb // ngrp * p.bk)
            phases.append(("dynamic", c))
            phases.append(("static", np.full(ng * p.G * p.nqb, p.bq * ngrp,
                                             np.int64)))
            continue
        c = np.empty(ng * p.nkb, np.int64)
        for item in range(ng * p.nkb):
            c[item] = head_pairs(p, (g0 + item // p.nkb) * p.G, p.G,
                                 0, p.f.L,
                                 (item % p.nkb) * p.bk,
                                 (item % p.nkb + 1) * p.bk)
        phases.append(("dynamic", c))
        c = np.empty(ng * p.G * p.nqb, np.int64)
        for item in range(ng * p.G * p.nqb):
            c[item] = head_pairs(p, g0 * p.G + item // p.nqb, 1,
                                 (item % p.nqb) * p.bq, p.bq, 0, p.f.S)
        phases.append(("dynamic", c))
    return {"driver": "backward",
            "kind": "key ranges" if schedule == GROUPED else "key and query blocks",
            "threads": nthreads, "phases": phases}


cdef int check_outputs(const Frame *f, int64_t nkv, int64_t G, lse, dq,
                       dk, dv, dmask, str func) except -1:
    """The contract of lse and the gradients (attention_grad's docstring):
    C-contiguous, of the sizes nkv kv heads with G query heads each
    make."""
    for a, n, name in ((lse, nkv * G * f.L, "lse"),
                       (dq, nkv * G * f.L * f.E, "dq"),
                       (dk, nkv * f.S * f.E, "dk"),
                       (dv, nkv * f.S * f.Ev, "dv"),
                       (dmask, nkv * G * f.L * f.S, "dmask")):
        if a is not None:
            check_rows(a, n, func, name)
    return 0


def attention_grad(call, tuple kv_items, q, k, v, o, go, lse, mask, dq, dk,
                   dv, dmask, list schedule_log=None,
                   bint skip_empty=False, blocks=None):
    """Gradients of a validated ``_frame.Call`` over the key/value heads
    `kv_items` (nkv of them), each with G = call.group query heads.

    q, o, go (grad_out) and mask (None, bool or the compute dtype) are
    walked over kv_items + (G,) with matrices (L, E), (L, Ev), (L, Ev),
    (L, S); k and v over kv_items with (S, E), (S, Ev).  lse: C-contiguous,
    nkv·G·L elements.  Outputs, C-contiguous and zeroed: dq (nkv·G, L, E),
    dk (nkv, S, E), dv (nkv, S, Ev), dmask None or (nkv·G, L, S).  Every
    contract is checked before the kernel runs.  Returns the schedule.
    schedule_log: as _attention.attention's `schedule` (returns None then).
    skip_empty: the caller allows the mask's EMPTY tiles to be skipped
    (every grad_out finite, and a bool mask or finite scores: each such
    tile then adds exact zeros).
    blocks: None, or a block mask in place of an element mask, as the
    forward's (table uint8 walked over kv_items + (G,) with matrices
    (ceil(L / Bq), ceil(S / Bk)), Bq, Bk); no mask then.
    """
    cdef Problem p
    read_call(&p.f, call, kv_items)
    p.G = call[C_GROUP]
    cdef int64_t nkv = p.f.nitems, group
    if nkv == 0 or p.f.L == 0 or p.f.S == 0:
        return None
    cdef str func = call[C_FUNC]
    cdef tuple q_items = kv_items + (p.G,)
    cdef Operands qops = Operands(nkv * p.G), kops = Operands(nkv)
    cdef Operand *oq = qops.add(q, q_items, p.f.L, p.f.E, func, "query")
    cdef Operand *oo = qops.add(o, q_items, p.f.L, p.f.Ev, func, "out")
    cdef Operand *og = qops.add(go, q_items, p.f.L, p.f.Ev, func, "grad_out")
    cdef Operand *om = qops.add_mask(mask, &p.f, q_items, func)
    cdef Operand *ok = kops.add(k, kv_items, p.f.S, p.f.E, func, "key")
    cdef Operand *ov = kops.add(v, kv_items, p.f.S, p.f.Ev, func, "value")
    check_outputs(&p.f, nkv, p.G, lse, dq, dk, dv, dmask, func)
    p.rs_q, p.cs_q, p.rs_k, p.cs_k = oq.rs, oq.cs, ok.rs, ok.cs
    p.rs_v, p.cs_v, p.rs_o, p.cs_o = ov.rs, ov.cs, oo.rs, oo.cs
    p.rs_g, p.cs_g, p.rs_m, p.cs_m = og.rs, og.cs, om.rs, om.cs
    if blocks is not None and mask is not None:
        raise AssertionError(f"{func}: cattn internal error: a block mask "
                             "with a mask")
    add_block_mask(qops, blocks, q_items, &p.f, func, &p.bm)
    p.storage = one_storage(func, (q, k, v, o, go), &p.in_size)
    cdef int64_t itemsize = 4 if p.f.is_f32 else 8
    p.kern = gemm_kernel(p.f.isa, p.f.is_f32, p.storage, False)
    p.r32 = cattn_rows_f32_for(p.f.isa)
    p.r64 = cattn_rows_f64_for(p.f.isa)
    cdef GemmKernel kern = p.kern
    cdef const cattn_attention_blocks *blk = cattn_attention_blocks_for(
        p.f.isa)
    p.bq = cdiv(blk.grad_bq, kern.mr) * kern.mr
    p.bk = cdiv(blk.grad_bk, kern.nr) * kern.nr
    p.nqb = cdiv(p.f.L, p.bq)
    p.nkb = cdiv(p.f.S, p.bk)
    p.ld = p.bk
    p.e_pad = cdiv(p.f.E, kern.nr) * kern.nr
    p.ev_pad = cdiv(p.f.Ev, kern.nr) * kern.nr
    p.qblk = p.bq * (p.f.E + p.f.Ev + p.e_pad + p.ev_pad + 1)
    p.kblk = (p.f.E + p.f.Ev) * p.ld + p.bk * p.e_pad
    p.head = p.G * p.nqb * p.qblk + p.nkb * p.kblk

    cdef int nthreads = <int>max(1, min(p.f.threads,
                                        nkv * max(p.nkb, p.G * p.nqb)))
    # Few kv heads: grouped (its own bits, chosen from the shapes alone).
    # Else fused when every thread gets two kv heads or more, split when
    # not: the same bits.
    cdef int schedule = SPLIT
    cdef int64_t part_elems = 0
    if nkv < FEW_HEADS:
        schedule = GROUPED
        part_elems = imin(KEY_GROUPS, p.nkb) * p.G * p.f.L * p.f.E
    elif nkv >= 2 * nthreads or nthreads == 1:
        schedule = FUSED
        nthreads = <int>min(nthreads, nkv)
    cdef bint fused = schedule == FUSED
    group = max(1, min(nkv, blk.grad_group_bytes
                       // max((p.head + part_elems) * itemsize, 1)))
    if schedule_log is not None:
        schedule_log.append(describe(&p, nkv, schedule, group, nthreads))
        return None
    # The mask's tiles, once per call at the backward's blocks.
    cdef object tile_arrays = None
    p.tiles = NULL
    p.extents = NULL
    if p.bm.t != NULL and skip_empty:
        tile_arrays = classify_tiles(p.bm.t, p.bm.off, nkv * p.G, &p.f,
                                     p.bm.rs, p.bm.cs, p.bm.Bq, p.bm.Bk, p.bq,
                                     p.bk, p.nqb, True, p.f.threads,
                                     &p.tiles, &p.tile_of, &p.extents)
    elif p.f.mask_kind != MASK_NONE and skip_empty:
        tile_arrays = classify_tiles(om.data, om.off, nkv * p.G, &p.f, p.rs_m,
                                     p.cs_m, 0, 0, p.bq, p.bk, p.nqb, True,
                                     p.f.threads, &p.tiles, &p.tile_of,
                                     &p.extents)
    # One thread's slot: its Scratch (carved first), tiles, and in the
    # fused schedule its head's packs; slot nthreads: the shared packs and
    # the grouped schedule's partial dQ.
    cdef int64_t tile_elems = p.bq * p.ld + kern.mr
    cdef size_t used = 0, shared = 0
    cdef size_t at_w = carve(&used, sizeof(Scratch))
    cdef size_t at_pt = carve(&used, tile_elems * itemsize)
    cdef size_t at_dt = carve(&used, tile_elems * itemsize)
    cdef size_t at_ds = carve(&used, p.bq * p.bk * itemsize)
    cdef size_t at_dk = carve(&used, p.bk * p.e_pad * itemsize)
    cdef size_t at_dv = carve(&used, p.bk * p.ev_pad * itemsize)
    cdef size_t at_dq = carve(&used, p.bq * p.e_pad * itemsize)
    cdef size_t at_packs = carve(&used, p.head * itemsize if fused else 0)
    cdef size_t at_capt = carve(&used, tile_elems * itemsize
                                if p.f.softcap > 0 else 0)
    cdef size_t at_tmask = carve(&used, p.bq * p.bk if p.bm.t != NULL
                                 else 0)
    cdef size_t at_gpacks = carve(&shared,
                                  0 if fused else group * p.head * itemsize)
    cdef size_t at_parts = carve(&shared, group * part_elems * itemsize
                                 if schedule == GROUPED else 0)
    cdef Arena arena
    cdef Scratch *w
    cdef int t
    arena_new(&arena, nthreads, used, func, shared)   # shared: slot nthreads
    cdef const void *mask_ptr = om.data
    cdef void *dmask_ptr = (cnp.PyArray_DATA(dmask) if dmask is not None
                            else NULL)
    cdef const void *lse_ptr = cnp.PyArray_DATA(lse)
    cdef void *dq_ptr = cnp.PyArray_DATA(dq)
    cdef void *dk_ptr = cnp.PyArray_DATA(dk)
    cdef void *dv_ptr = cnp.PyArray_DATA(dv)
    try:
        for t in range(nthreads):
            w = <Scratch *>arena_at(&arena, t, at_w)
            w.pt = arena_at(&arena, t, at_pt)
            w.dt = arena_at(&arena, t, at_dt)
            w.dspack = arena_at(&arena, t, at_ds)
            w.dk = arena_at(&arena, t, at_dk)
            w.dv = arena_at(&arena, t, at_dv)
            w.dq = arena_at(&arena, t, at_dq)
            w.packs = arena_at(&arena, t, at_packs) if fused else NULL
            w.capt = arena_at(&arena, t, at_capt)
            w.tmask = <uint8_t *>arena_at(&arena, t, at_tmask)
        with nogil:
            team_enter()
            if p.f.is_f32:
                run[float](&p, oq.data, ok.data, ov.data, oo.data, og.data,
                           <const float *>lse_ptr,
                           mask_ptr, oq.off, ok.off, ov.off, oo.off, og.off,
                           om.off, <float *>dq_ptr, <float *>dk_ptr,
                           <float *>dv_ptr, <float *>dmask_ptr, nkv,
                           schedule, group, &arena,
                           <float *>arena_at(&arena, nthreads, at_gpacks),
                           <float *>arena_at(&arena, nthreads, at_parts),
                           nthreads)
            else:
                run[double](&p, oq.data, ok.data, ov.data, oo.data,
                            og.data, <const double *>lse_ptr, mask_ptr, oq.off,
                            ok.off, ov.off, oo.off, og.off, om.off,
                            <double *>dq_ptr, <double *>dk_ptr,
                            <double *>dv_ptr, <double *>dmask_ptr, nkv,
                            schedule, group, &arena,
                            <double *>arena_at(&arena, nthreads, at_gpacks),
                            <double *>arena_at(&arena, nthreads, at_parts),
                            nthreads)
            team_leave()
    finally:
        arena_free(&arena)
    return schedule


# ------------------------------------------------------ sparse attention --
#
# The gradient of a call with indices (sparse attention's key lists), row
# by row on the row streams over listed keys, as the forward's row path:
# for query row i and the keys it lists and may see, at[0:n],
#
#     s  = scores of row i against K[at]      (capped, biased, masked)
#     P  = exp(s - lse_i),  D_i = dO_i · O_i
#     dP = dO_i · V[at]ᵀ,   dS = P ∘ (dP - D_i)
#     dQ_i    += scale · Σ_j dS_j K[at_j]
#     dV[at_j] += P_j dO_i,  dK[at_j] += scale · dS_j Q_i
#
# One work item per key/value head does all its query heads' rows in
# order, so every scatter into dK and dV is a sum in a fixed order (no
# atomics): the bits never depend on the thread count.

cdef struct Sparse:
    Frame f
    int64_t G
    int64_t rs_q, rs_k, rs_v, rs_o, rs_g, rs_m, cs_m
    int storage               # q, k, v, out, grad_out: NATIVE or 16-bit
    int64_t in_size
    RowProducts rows
    const cattn_convert *cv   # 16-bit: its widening of q, out, grad_out rows
    const int32_t *sel
    const int64_t *off_sel
    int64_t rs_sel, nsel


cdef struct SparseScratch:
    int64_t *keys             # nsel: the listed keys a row may see
    uint64_t *seen            # S bits, clear (listed_keys)
    void *s                   # nsel: scores, then P
    void *ds                  # nsel: dP, then dS
    void *coef                # nsel: scale · dS (softcap: its derivative)
    void *capped              # nsel: the capped scores (softcap)
    void *rows                # E + 2 Ev: q, out, grad_out rows widened


cdef inline const floating *row_of(const Sparse *p, const void *x,
                                   int64_t at, int64_t n,
                                   floating *buf) noexcept nogil:
    """Row at element `at` of x (n elements, unit stride) in the compute
    dtype: in place, or widened from 16-bit storage into buf."""
    if p.storage == NATIVE:
        return <const floating *>x + at
    if floating is float:
        widen(p.cv, n, <const char *>x + at * p.in_size, 1, buf)
    return buf


cdef void sparse_item(const Sparse *p, int64_t kv, const void *q,
                      const void *k, const void *v, const void *o,
                      const void *go, const floating *lse, const void *mask,
                      const int64_t *off_q, const int64_t *off_k,
                      const int64_t *off_v, const int64_t *off_o,
                      const int64_t *off_g, const int64_t *off_m,
                      floating *dq, floating *dk, floating *dv,
                      floating *dmask, SparseScratch *w) noexcept nogil:
    """Every row of key/value head kv's G query heads (see above)."""
    cdef int64_t L = p.f.L, S = p.f.S, E = p.f.E, Ev = p.f.Ev
    cdef int64_t g, qh, i, j, n
    cdef Visibility vis
    cdef floating *s = <floating *>w.s
    cdef floating *ds = <floating *>w.ds
    cdef floating *coef = <floating *>w.coef
    cdef floating *capped = (<floating *>w.capped if p.f.softcap > 0
                             else NULL)
    cdef floating *buf = <floating *>w.rows
    cdef const floating *qi
    cdef const floating *oi
    cdef const floating *gi
    cdef const void *kh = shift(k, off_k[kv], p.in_size)
    cdef const void *vh = shift(v, off_v[kv], p.in_size)
    cdef size_t mask_item = (1 if p.f.mask_kind == MASK_BOOL
                             else sizeof(floating))
    cdef double d, li, t
    cdef floating scale = <floating>p.f.scale
    for g in range(p.G):
        qh = kv * p.G + g
        item_visibility(&p.f, qh, &vis)
        for i in range(imin(L, vis.L)):
            li = lse[qh * L + i]
            if li == -INFINITY:
                continue                # the row saw nothing
            n = listed_keys(p.sel + p.off_sel[qh] + i * p.rs_sel, 0,
                            p.nsel, &vis, i, w.keys, w.seen)
            if n == 0:
                continue
            qi = row_of(p, q, off_q[qh] + i * p.rs_q, E, buf)
            oi = row_of(p, o, off_o[qh] + i * p.rs_o, Ev, buf + E)
            gi = row_of(p, go, off_g[qh] + i * p.rs_g, Ev, buf + E + Ev)
            dot_rows_at(&p.rows, n, E, qi, kh, p.rs_k, w.keys, scale, s)
            listed_scores(&p.f, qh, &vis, i, w.keys, n, s,
                          <const char *>mask + (off_m[qh] + i * p.rs_m)
                          * mask_item, p.cs_m, capped)
            d = 0
            for j in range(Ev):
                d += <double>gi[j] * oi[j]
            dot_rows_at(&p.rows, n, Ev, gi, vh, p.rs_v, w.keys,
                        <floating>1, ds)
            for j in range(n):
                s[j] = <floating>exp(s[j] - li)         # P
                ds[j] = <floating>(s[j] * (ds[j] - d))  # dS
            if dmask != NULL:
                for j in range(n):
                    dmask[(qh * L + i) * S + w.keys[j]] = ds[j]
            for j in range(n):
                coef[j] = scale * ds[j]
                if capped != NULL:
                    t = capped[j] / p.f.softcap
                    coef[j] = <floating>(coef[j] * (1 - t * t))
            axpy_rows_at(&p.rows, n, E, coef, kh, p.rs_k, w.keys,
                         dq + (qh * L + i) * E)
            scatter_rows_at(&p.rows, n, Ev, s, gi, dv + kv * S * Ev, Ev,
                            w.keys)
            scatter_rows_at(&p.rows, n, E, coef, qi, dk + kv * S * E, E,
                            w.keys)


def sparse_attention_grad(call, tuple kv_items, q, k, v, o, go, lse, mask,
                          dq, dk, dv, dmask, indices):
    """attention_grad for a call with sparse attention's `indices` (int32,
    walked over kv_items + (G,) with matrices (L, k), unit last stride,
    checked by _frame.listed): the same operands and outputs, each with
    unit-stride rows; row by row over the listed keys (see above)."""
    cdef Sparse p
    read_call(&p.f, call, kv_items)
    p.G = call[C_GROUP]
    cdef int64_t nkv = p.f.nitems, itemsize
    if nkv == 0 or p.f.L == 0 or p.f.S == 0:
        return
    cdef str func = call[C_FUNC]
    cdef tuple q_items = kv_items + (p.G,)
    cdef cnp.ndarray sel_a = indices
    p.nsel = sel_a.shape[sel_a.ndim - 1]
    cdef Operands qops = Operands(nkv * p.G), kops = Operands(nkv)
    cdef Operand *oq = qops.add(q, q_items, p.f.L, p.f.E, func, "query")
    cdef Operand *oo = qops.add(o, q_items, p.f.L, p.f.Ev, func, "out")
    cdef Operand *og = qops.add(go, q_items, p.f.L, p.f.Ev, func, "grad_out")
    cdef Operand *om = qops.add_mask(mask, &p.f, q_items, func)
    cdef Operand *osel = qops.add(sel_a, q_items, p.f.L, p.nsel, func,
                                  "indices")
    cdef Operand *ok = kops.add(k, kv_items, p.f.S, p.f.E, func, "key")
    cdef Operand *ov = kops.add(v, kv_items, p.f.S, p.f.Ev, func, "value")
    check_outputs(&p.f, nkv, p.G, lse, dq, dk, dv, dmask, func)
    if (sel_a.dtype != np.int32 or (p.nsel > 1 and osel.cs != 1)
            or (p.f.E > 1 and (oq.cs != 1 or ok.cs != 1))
            or (p.f.Ev > 1 and (oo.cs != 1 or og.cs != 1 or ov.cs != 1))):
        raise AssertionError(f"{func}: cattn internal error: indices or "
                             "rows not unit-strided")
    p.rs_q, p.rs_k, p.rs_v, p.rs_o, p.rs_g = oq.rs, ok.rs, ov.rs, oo.rs, og.rs
    p.rs_m, p.cs_m = om.rs, om.cs
    p.storage = one_storage(func, (q, k, v, o, go), &p.in_size)
    p.rows = row_products(p.f.isa, p.storage, False)
    p.cv = (cattn_convert_for(p.f.isa, p.storage) if p.storage != NATIVE
            else NULL)
    p.sel = <const int32_t *>osel.data
    p.off_sel = osel.off
    p.rs_sel = osel.rs
    itemsize = 4 if p.f.is_f32 else 8
    cdef int nthreads = <int>max(1, min(p.f.threads, nkv))
    cdef size_t used = 0
    cdef size_t at_w = carve(&used, sizeof(SparseScratch))
    cdef size_t at_keys = carve(&used, p.nsel * sizeof(int64_t))
    cdef size_t at_seen = carve(&used, (cdiv(p.f.S, 64) + 1) * 8)
    cdef size_t at_s = carve(&used, p.nsel * itemsize)
    cdef size_t at_ds = carve(&used, p.nsel * itemsize)
    cdef size_t at_coef = carve(&used, p.nsel * itemsize)
    cdef size_t at_cap = carve(&used, p.nsel * itemsize)
    cdef size_t at_rows = carve(&used, (p.f.E + 2 * p.f.Ev) * itemsize)
    cdef Arena arena
    cdef SparseScratch *w
    cdef int t
    cdef int64_t kv
    arena_new(&arena, nthreads, used, func)
    cdef const void *lse_ptr = cnp.PyArray_DATA(lse)
    cdef void *dq_ptr = cnp.PyArray_DATA(dq)
    cdef void *dk_ptr = cnp.PyArray_DATA(dk)
    cdef void *dv_ptr = cnp.PyArray_DATA(dv)
    cdef void *dm_ptr = (cnp.PyArray_DATA(dmask) if dmask is not None
                         else NULL)
    try:
        for t in range(nthreads):
            w = <SparseScratch *>arena_at(&arena, t, at_w)
            w.keys = <int64_t *>arena_at(&arena, t, at_keys)
            w.seen = <uint64_t *>arena_at(&arena, t, at_seen)
            w.s = arena_at(&arena, t, at_s)
            w.ds = arena_at(&arena, t, at_ds)
            w.coef = arena_at(&arena, t, at_coef)
            w.capped = arena_at(&arena, t, at_cap)
            w.rows = arena_at(&arena, t, at_rows)
        with nogil:
            team_enter()
            for kv in prange(nkv, schedule='dynamic', num_threads=nthreads):
                if p.f.is_f32:
                    sparse_item[float](
                        &p, kv, oq.data, ok.data, ov.data, oo.data, og.data,
                        <const float *>lse_ptr, om.data, oq.off, ok.off,
                        ov.off, oo.off, og.off, om.off, <float *>dq_ptr,
                        <float *>dk_ptr, <float *>dv_ptr, <float *>dm_ptr,
                        <SparseScratch *>arena_at(&arena, threadid(), at_w))
                else:
                    sparse_item[double](
                        &p, kv, oq.data, ok.data, ov.data, oo.data, og.data,
                        <const double *>lse_ptr, om.data, oq.off, ok.off,
                        ov.off, oo.off, og.off, om.off, <double *>dq_ptr,
                        <double *>dk_ptr, <double *>dv_ptr,
                        <double *>dm_ptr,
                        <SparseScratch *>arena_at(&arena, threadid(), at_w))
            team_leave()
    finally:
        arena_free(&arena)
