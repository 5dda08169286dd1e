# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Fused scaled-dot-product attention: tiled, online softmax, O(tile) memory.

For each (batch·head, block of BQ queries) the kernel walks the key blocks
of BK keys in order, never forming the L x S score matrix.  It works on the
transposed score tile Sᵀ (keys down, queries across), so the softmax steps
run along contiguous queries with full vectors and P comes out already in
the layout the P·V product packs with plain copies:

    Sᵀ  = scale · K_blk Q_blkᵀ            GEMM micro-kernel, alpha = scale
    Sᵀ += maskᵀ; -inf where hidden         attn_mask, causal, window
    m'  = max(m, colmax Sᵀ)                running max per query
    Pᵀ  = exp(Sᵀ - m'), a = exp(m - m')    column kernels, include/attention/
    l   = a·l + colsum Pᵀ                  running sum (float64)
    O   = a·O + P V_blk                    GEMM micro-kernel, beta = 1
and finally O / l (0 for a query that saw no key) and lse = m + log l.

K and V are packed once per batch·head into micro-kernel panels, shared by
all query blocks (Q is packed once per query block).  Key blocks no query of
a block can see (causal, window) are skipped: visiting one is an exact no-op
for that query (a = 1, P = 0), so skipping never changes a bit.

Parallel design.  The work items are (batch·head, query block, key chunk);
each is computed by one thread in a fixed order into its own rows, so no
result depends on the thread count or on which schedule runs them.  With at
least PER_HEAD_MIN heads per thread, each thread takes whole heads (a
dynamic prange): it packs the head's K and V into its own buffer and
computes all the head's items, with no barrier and K/V hot in its core's
cache (B32 H8 L=S=128: 10-25 % faster than the grouped schedule).
Otherwise batch·heads are taken in groups (enough items to keep every
thread busy, packed K/V of at most the table's group_bytes): for each group
the team packs K and V (a prange over key blocks), then shares the group's
items with a dynamic prange.  Key chunks exist for
decoding (few query blocks, long keys): with fewer than SPLIT_BELOW_ITEMS
items in all, the keys are cut into chunks (the ISA's `chunk` keys) — a
choice made from the shapes alone — each chunk yields a partial (m, l, O),
and the partials are merged in chunk order, as in Flash-Decoding.  With one
thread none of this starts a thread team: the per-head order runs as it is.

The element-wise steps (masks on tiles and rows, the non-finite scan, the
key-chunk partials and their merge) and the block sizes come from the ISA's row of the attention table
(include/attention/, tile.tmpl.h and cattn_attention.h); this driver keeps
the plan, the work items and the tile step.

16-bit storage (float16, bfloat16; _convert.pxd): Q, K and V are read in
their storage and widened exactly as they are packed (or, on the decode
path, as their rows stream), so the float32 kernels run on them unchanged
and no float32 copy is made; the output is rounded once, to nearest even,
as its rows are finished (or written as float32 if `out` is).  A 16-bit
call gives the float32 call's bits on the widened inputs, rounded.

Memory: one arena (_frame.pxd) of per-thread tiles plus the packed K/V of
one group, independent of L·S; allocated before the parallel region, so
failure raises MemoryError naming the function called.
"""
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport exp, log, INFINITY
from libc.stdint cimport int8_t, int64_t, uint8_t
from libc.string cimport memcpy

cimport numpy as cnp
import numpy as np

from ._cpu cimport active_isa, team_enter, team_leave
from ._frame cimport C_FUNC, C_GROUP, C_K_LENS, C_Q_LENS
from ._frame cimport (Arena, Frame, Operand, Operands, adjust_scores,
                      adjusts_scores, arena_at, arena_free, arena_new, carve,
                      check_rows, item_visibility, read_call)
from ._convert cimport (CATTN_STORAGE_Q8, NATIVE, cattn_q8_view, element,
                       narrow, storage_of, widen)
from ._gemm cimport (GemmKernel, axpy_rows_from, call_ukernel, dot_rows_from,
                     floating, gemm_kernel, pack_a_k, pack_b_for, pack_b_k,
                     panel_depth, shift)
from ._softmax cimport (cattn_rows_f32, cattn_rows_f32_for, cattn_rows_f64,
                       cattn_rows_f64_for)
from ._tables cimport (cattn_attention_blocks, cattn_attention_blocks_for,
                       cattn_cols_f32_for,
                       cattn_cols_f64_for, cattn_topk_f32_for,
                       cattn_topk_f64_for)
from ._visibility cimport (MASK_ADD, MASK_BOOL, MASK_NONE, Visibility,
                           block_any_visible, block_fully_visible, cdiv,
                           first_query, first_visible, imax, imin,
                           last_query, last_visible, mask_rows,
                           ranks_above, set_visibility, visible_pairs)

cnp.import_array()

cdef extern from "cattn_omp.h":
    pass

cdef extern from *:
    """
    /* A read of the cache line at p soon.  An asm statement, not
     * __builtin_prefetch: GCC counts the builtin as free of side effects,
     * finds a function made of prefetches "pure" and deletes its calls. */
    #if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    #define cattn_prefetch(p) \
        __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)(p)))
    #elif defined(__GNUC__) && defined(__aarch64__)
    #define cattn_prefetch(p) \
        __asm__ volatile("prfm pldl1keep, %0" : : "Q"(*(const char *)(p)))
    #else
    #define cattn_prefetch(p) __builtin_prefetch((p), 0, 3)
    #endif
    """
    void cattn_prefetch(const void *p) noexcept nogil


# Block sizes come from the ISA's row of the attention table
# (include/attention/cattn_attention.h): queries in blocks of at least
# bq_target, rounded up to whole NR panels; keys split evenly into blocks of
# at most bk_max in whole MR panels of packed K (a short last block costs a
# whole step's fixed work; causal and windowed blocks are cut to the visible
# keys in MR panels, so they use the same size); chunks of `chunk` keys for
# few work items; the decode path (at most decode_max_l rows) reads
# bk_target keys at a time in chunks of decode_chunk; packed K and V of one
# group of batch·heads stay under group_bytes.  The schedule's constants
# below and group_bytes decide only who computes what, never a bit.
#
# Split keys into chunks when there are fewer work items than this.
cdef int64_t SPLIT_BELOW_ITEMS = 16
# Each thread packs and computes whole heads when there are at least this
# many heads per thread (few heads per thread: whole heads would balance
# badly, so the team shares each head's query blocks instead).
cdef int64_t PER_HEAD_MIN = 8
# Query heads of one key/value head a decode item streams K/V for at once.
cdef enum:
    DECODE_ROWS = 8
    # A paged cache's decode items take every query head of a sequence (up
    # to this many): a page holds all its key/value heads' rows in one
    # block, read from end to end instead of one head's rows at a time.
    DECODE_ROWS_PAGED = 64
    # ... unless that leaves fewer items than this per thread (a few long
    # sequences on many cores): then fewer heads per item.
    DECODE_ITEMS_PER_THREAD = 4


cdef struct Problem:
    Frame f           # sizes, visibility, mask kind, scale (_frame.pxd)
    # Strides (in elements) of the operands, the same for every item.
    int64_t rs_q, cs_q, rs_k, cs_k, rs_v, cs_v, rs_o, cs_o, rs_m, cs_m
    # K and V are held in `storage` (NATIVE or 16-bit, _convert.pxd),
    # elements of in_size bytes; Q in q_storage (q_size bytes: a float32
    # query may meet a 16-bit KV cache); out in out_storage, out_size bytes.
    int storage, q_storage, out_storage
    int64_t in_size, q_size, out_size
    # int8 K and V (storage CATTN_STORAGE_Q8): each operand's values and
    # scales arrays (index 0: K, 1: V); a scale's offset is its first
    # value's offset / q8_block (the layouts are parallel, checked).
    const char *q8_values[2]
    const float *q8_scales[2]
    int64_t q8_block
    # The tile products' kernels (their packers read `storage`): kern for
    # Sᵀ = K Qᵀ, kern_v for O = P V, with the same MR x NR tile.  With
    # pairs (bf16 on AVX512_BF16, _gemm.pxd) Sᵀ sums exact bf16 products
    # in float32; a kern_v with pairs rounds P to bf16 and runs O = P V as
    # Oᵀ = Vᵀ Pᵀ into a transposed accumulator (the default precision).
    GemmKernel kern, kern_v
    # The decode rows' row kernels (softmax/, at the call's level p.f.isa).
    const cattn_rows_f32 *r32
    const cattn_rows_f64 *r64
    # Blocking: query blocks of bq (a multiple of NR), key blocks of bk (a
    # multiple of MR), key chunks of `chunk` (a multiple of bk).
    int64_t bq, bk, nqb, nchunks, chunk
    bint decode       # one query row per block, no packing (rows.tmpl.h)
    # The decode path's items take up to decode_rows of `span` consecutive
    # items: the `group` query heads that share a key/value head (GQA;
    # group 1 without it), or with a paged cache every head of a sequence.
    int64_t span, decode_rows
    # Packed layouts: K as MR-row panels over all S_pad keys, by KC chunks of
    # E; V per key block (vblk words each): NR-column panels, or with pairs
    # Vᵀ as MR-row panels of ev_rows rows.
    int64_t s_pad, ev_pad, ev_rows, vblk, kpack_size, vpack_size
    int64_t vl        # lanes of the column kernels (bq is a multiple)
    # Top-k attention (else NULL): per (batch·head, query) row, the score
    # and index of the worst kept key (_topk.pyx); index -1 keeps all.
    const void *thr
    const int64_t *thr_idx
    # The per-head schedule's order of the items (NULL: 0, 1, ...).
    const int64_t *order
    # A paged KV cache (paged_attention; else pages is NULL): key j of item
    # bh is row j % page_size of page pages[b·max_pages + j // page_size],
    # b = bh // seq_items; an item's K/V operand is its head in page 0,
    # page_stride[0 for K, 1 for V] elements from one page to the next.
    const int64_t *pages
    int64_t max_pages, page_size, seq_items
    int64_t page_stride[2]


cdef struct Scratch:
    # One thread's tiles; sizes in elements of the compute dtype.
    void *qpack       # Qᵀ as NR-column panels: E x bq
    void *st          # score tile Sᵀ: bk x bq (row stride bq), + MR slack:
                      # the P·V product reads whole MR panels of it
    void *acc         # O accumulator: bq x ev_pad
    void *acct        # pairs: Oᵀ accumulator, ev_rows x bq
    void *ptpack      # pairs: Pᵀ as bf16 pair panels, bq x bk / 2 words
    void *colbuf      # 4 x bq: column max, shift, sum; alpha
    void *prev        # decode: the accumulator before a key block, ev_pad
    void *qrow        # decode, 16-bit storage: the query row widened, E
    void *gather      # paged, tiled: one key block's K or V rows, gathered
                      # from their pages in storage, bk x max(E, Ev)
    double *m         # bq running max
    double *l         # bq running sum


cdef inline const void *kv_src(const Problem *p, int which, const void *x,
                              int64_t rs, cattn_q8_view *view) noexcept nogil:
    """What K's (which 0) or V's (1) reader takes for the element at x:
    x itself, or for int8 storage a view with its scales (rows rs apart)."""
    cdef int64_t at
    if p.storage != CATTN_STORAGE_Q8:
        return x
    at = <const char *>x - p.q8_values[which]
    view.values = <const int8_t *>x
    view.scales = p.q8_scales[which] + at // p.q8_block
    view.rs_scales = rs // p.q8_block
    view.block = p.q8_block
    view.col0 = at % p.q8_block
    return view


cdef inline const void *key_row(const Problem *p, int which, const void *x,
                                int64_t bh, int64_t j,
                                int64_t *run) noexcept nogil:
    """Row j of item bh's K (which 0) or V (1), whose row 0 is at x; run[0]
    = how many rows lie evenly spaced from it (to its page's end when the
    cache is paged)."""
    cdef int64_t rs = p.rs_k if which == 0 else p.rs_v, page, slot
    if p.pages == NULL:
        run[0] = 1 << 62
        return shift(x, j * rs, p.in_size)
    page = p.pages[(bh // p.seq_items) * p.max_pages + j // p.page_size]
    slot = j % p.page_size
    run[0] = p.page_size - slot
    return shift(x, page * p.page_stride[which] + slot * rs, p.in_size)


cdef void prefetch_run(const Problem *p, int which, const void *x,
                       int64_t bh, int64_t j, int64_t n) noexcept nogil:
    """Ask for the rows of item bh's K or V from key j to the end of its
    page (at most n): pages lie anywhere in the pool, so the hardware
    prefetcher, which follows a stride, starts over at each one."""
    cdef int64_t run, rs = p.rs_k if which == 0 else p.rs_v, at, nb
    cdef const char *row
    if j >= p.f.S or n <= 0:
        return
    row = <const char *>key_row(p, which, x, bh, j, &run)
    nb = imin(run, n) * rs * p.in_size
    for at in range(0, nb, 64):
        cattn_prefetch(row + at)
    if p.storage == CATTN_STORAGE_Q8:
        row = <const char *>(p.q8_scales[which] + (
            row - p.q8_values[which]) // p.q8_block)
        for at in range(0, nb // p.q8_block * 4, 64):
            cattn_prefetch(row + at)


cdef void stream_keys(const Problem *p, int which, const void **xs,
                      const void **others, int64_t bh, int64_t nr,
                      const floating **qs, floating *s, int64_t ld,
                      const uint8_t *live, int64_t j0, int64_t n,
                      floating *acc) noexcept nogil:
    """Keys j0..j0+n of items bh..bh+nr (row r's K or V at xs[r]; rows of
    one batch row, so their pages are the same), page run by page run,
    each run read once for the rows that share it: which 0, the scores
    s[r·ld + j] = scale · qs[r] · K[j0 + j]; which 1, acc row r (stride
    ev_pad; with nr = 1, `acc` itself) += Σ_j s[r·ld + j] · V[j0 + j] for
    the rows whose live[r] (NULL: all).  A paged cache prefetches the
    next run while it computes one, and after the last the first run of
    what comes next: `others`' (V after K) at j0, or K's next block."""
    cdef int64_t j = j0, run = 0, m = 0, r
    cdef const void *row = NULL
    cdef cattn_q8_view view
    while j < j0 + n:
        for r in range(nr):
            if r == 0 or xs[r] != xs[r - 1]:
                row = key_row(p, which, xs[r], bh + r, j, &run)
                m = imin(run, j0 + n - j)
                if p.pages != NULL:
                    if j + m < j0 + n:
                        prefetch_run(p, which, xs[r], bh + r, j + m,
                                     j0 + n - j - m)
                    elif which == 0:
                        prefetch_run(p, 1, others[r], bh + r, j0, n)
                    else:
                        prefetch_run(p, 0, others[r], bh + r, j0 + n, p.bk)
            if which == 0:
                dot_rows_from(p.f.isa, p.storage, m, p.f.E, qs[r],
                              kv_src(p, 0, row, p.rs_k, &view), p.rs_k,
                              <floating>p.f.scale, s + r * ld + (j - j0))
            elif live == NULL or live[r]:
                axpy_rows_from(p.f.isa, p.storage, m, p.f.Ev,
                               s + r * ld + (j - j0),
                               kv_src(p, 1, row, p.rs_v, &view), p.rs_v,
                               acc + r * p.ev_pad)
        j += m


cdef const void *gathered(const Problem *p, int which, const void *x,
                          int64_t bh, int64_t k0, int64_t nk,
                          void *buf) noexcept nogil:
    """Rows k0..k0+nk of item bh's K or V, copied from their pages into buf
    (rows of E or Ev elements, unit strides as the pages have them), or x's
    own rows when the cache is not paged; the packers then read them as
    one matrix with row stride E (Ev)."""
    cdef int64_t cols = p.f.E if which == 0 else p.f.Ev, j = k0, run, m, r
    cdef int64_t rs = p.rs_k if which == 0 else p.rs_v
    cdef size_t row_bytes = cols * p.in_size
    cdef const char *row
    if p.pages == NULL:
        return shift(x, k0 * rs, p.in_size)
    while j < k0 + nk:
        row = <const char *>key_row(p, which, x, bh, j, &run)
        m = imin(run, k0 + nk - j)
        for r in range(m):
            memcpy(<char *>buf + (j - k0 + r) * row_bytes,
                   row + r * rs * p.in_size, row_bytes)
        j += m
    return buf


cdef inline int64_t keys_of(const Problem *p, int64_t bh) noexcept nogil:
    """The keys item bh has: S, or its key length."""
    return p.f.k_lens[bh] if p.f.k_lens != NULL else p.f.S


cdef inline int64_t block_keys(const Problem *p, int64_t s,
                               int64_t kb) noexcept nogil:
    """Keys of block kb packed for an item with s keys (the packed panels'
    depth: pack_kv and attend_block agree on it)."""
    return imax(0, imin(p.bk, s - kb * p.bk))


cdef void pack_kv(const Problem *p, const GemmKernel *kern,
                  const void *k, const void *v, int64_t bh, int64_t kb,
                  floating *kpack, floating *vpack, uint8_t *vflag,
                  void *gbuf) noexcept nogil:
    """Pack key block kb (keys kb·bk..) of item bh's K (as the A operand of
    Sᵀ = K Qᵀ) and V (as the B operand of O = P V), only the keys it has
    (block_keys: never a key past its length, which may be another
    sequence's or outside the array); vflag[kb]: the block's values had
    infs or NaNs (zeroed in the pack)."""
    cdef int64_t k0 = kb * p.bk, nk = block_keys(p, keys_of(p, bh), kb)
    cdef int64_t t, pc, kc
    cdef floating *vblock = vpack + kb * p.vblk
    cdef cattn_q8_view view
    # A paged cache: the block's rows gathered first (gbuf), then packed
    # as a matrix of row stride E (Ev); int8 pages never come here (their
    # scales would need gathering too: they take the decode path).
    cdef int64_t rs_k = p.f.E if p.pages != NULL else p.rs_k
    cdef int64_t rs_v = p.f.Ev if p.pages != NULL else p.rs_v
    cdef const void *src = gathered(p, 0, k, bh, k0, nk, gbuf)
    for t in range(imax(1, cdiv(p.f.E, kern.kc))):
        pc = t * kern.kc
        kc = imin(kern.kc, p.f.E - pc)
        pack_a_k(kern, nk, kc,
                 kv_src(p, 0, shift(src, pc * p.cs_k, p.in_size), rs_k,
                        &view),
                 rs_k, p.cs_k, kpack + panel_depth(kern, pc) * p.s_pad
                 + k0 * panel_depth(kern, kc))
    src = gathered(p, 1, v, bh, k0, nk, gbuf)
    # Values that are inf or NaN: the P·V product would multiply them by the
    # exact zeros of hidden keys (0·inf = NaN) and so reach rows that cannot
    # see them, depending on which blocks a row visits.  The packed copy
    # gets 0 in their place, and the block is flagged: attend_block adds
    # them back only where the weight is not 0 (nonfinite_values).
    cdef const GemmKernel *kv = &p.kern_v
    if kv.pairs:
        if floating is float:       # Vᵀ: Ev rows, depth the block's keys
            pack_a_k(kv, p.f.Ev, nk, src, p.cs_v, rs_v, vblock)
            vflag[kb] = kv.zero_nonfinite(
                p.ev_rows * panel_depth(kv, nk), vblock)
    else:
        pack_b_k(kv, nk, p.f.Ev, kv_src(p, 1, src, rs_v, &view),
                 rs_v, p.cs_v, 0, cdiv(p.f.Ev, kv.nr), vblock)
        vflag[kb] = sanitize(p, nk * p.ev_pad, vblock)


cdef inline bint nonfinite(floating x) noexcept nogil:
    return x - x != 0                   # inf - inf and NaN - NaN are NaN


cdef inline bint any_nonfinite(const Problem *p, int64_t n,
                               const floating *x) noexcept nogil:
    """True if x[0:n] holds an inf or a NaN (tile.tmpl.h)."""
    if floating is float:
        return p.f.c32.any_nonfinite(n, x)
    else:
        return p.f.c64.any_nonfinite(n, x)


cdef inline bint sanitize(const Problem *p, int64_t n,
                          floating *x) noexcept nogil:
    """Replace the infs and NaNs of x[0:n] by 0; True if there were any."""
    if floating is float:
        return p.f.c32.zero_nonfinite(n, x)
    else:
        return p.f.c64.zero_nonfinite(n, x)


cdef void nonfinite_values(const Problem *p, const void *v, int64_t bh,
                           const floating *pt, int64_t j0, int64_t j1,
                           int64_t nq, floating *acc, int64_t rs,
                           int64_t cs) noexcept nogil:
    """acc[q, c] (at acc[q·rs + c·cs]) += P[q, j]·V[j, c] for the inf/NaN
    values V[j, c] of keys j0..j1 (left out of the packed V) and the
    queries whose weight P[q, j] (the Pᵀ tile pt, row stride bq, row 0 =
    key j0) is not 0: a value reaches exactly the rows that give it
    weight."""
    cdef int64_t j, c, r, run
    cdef floating x, wgt
    cdef const void *row
    for j in range(j0, j1):
        row = key_row(p, 1, v, bh, j, &run)
        for c in range(p.f.Ev):
            x = <floating>element(p.storage, floating is float, row,
                                  c * p.cs_v)
            if not nonfinite(x):
                continue
            for r in range(nq):
                wgt = pt[(j - j0) * p.bq + r]
                if wgt != 0:
                    acc[r * rs + c * cs] = acc[r * rs + c * cs] + wgt * x


cdef inline bint hide_below(int isa, int64_t n, floating *x,
                            const floating *t) noexcept nogil:
    if floating is float:
        return cattn_topk_f32_for(isa).hide_below(n, x, t)
    else:
        return cattn_topk_f64_for(isa).hide_below(n, x, t)


cdef void mask_tile(const Problem *p, const Visibility *vis, floating *st,
                    int64_t i0, int64_t nq, int64_t k0, int64_t nk,
                    const void *mask,
                    const floating *thr,
                    const int64_t *thr_idx) noexcept nogil:
    """Add the float mask, or hide (-inf) what the bool mask, causal or the
    window hide, in the transposed tile of keys k0.. x queries i0..; with
    top-k (thr_idx not NULL, this head's rows) also every key outside the
    query's top k."""
    cdef int64_t j, q, lo, hi, ti
    cdef int isa = p.f.isa
    cdef floating *row
    if p.f.mask_kind == MASK_ADD:
        if floating is float:
            cattn_cols_f32_for(isa).tile_mask_add(
                nk, nq, st, p.bq, <const float *>mask + i0 * p.rs_m
                + k0 * p.cs_m, p.rs_m, p.cs_m)
        else:
            cattn_cols_f64_for(isa).tile_mask_add(
                nk, nq, st, p.bq, <const double *>mask + i0 * p.rs_m
                + k0 * p.cs_m, p.rs_m, p.cs_m)
    elif p.f.mask_kind == MASK_BOOL:
        if floating is float:
            cattn_cols_f32_for(isa).tile_mask_bool(
                nk, nq, st, p.bq, <const uint8_t *>mask + i0 * p.rs_m
                + k0 * p.cs_m, p.rs_m, p.cs_m)
        else:
            cattn_cols_f64_for(isa).tile_mask_bool(
                nk, nq, st, p.bq, <const uint8_t *>mask + i0 * p.rs_m
                + k0 * p.cs_m, p.rs_m, p.cs_m)
    for j in range(nk):
        row = st + j * p.bq
        lo = first_query(vis, k0 + j) - i0
        hi = last_query(vis, k0 + j) - i0
        if lo > 0 or hi < nq - 1:
            if floating is float:
                cattn_cols_f32_for(isa).hide_outside(nq, row, lo, hi)
            else:
                cattn_cols_f64_for(isa).hide_outside(nq, row, lo, hi)
        # Top-k: hide what ranks below the query's worst kept key; the
        # vector pass settles every lane but ties and NaN (rare), which
        # take the exact rule.
        if thr_idx != NULL and hide_below(isa, nq, row, thr + i0):
            for q in range(nq):
                ti = thr_idx[i0 + q]
                if ti < 0 or row[q] > thr[i0 + q]:
                    continue                # kept (or the row keeps all)
                if row[q] < thr[i0 + q] or (k0 + j != ti and not ranks_above(
                        row[q], k0 + j, thr[i0 + q], ti)):
                    row[q] = -INFINITY


cdef inline bint online_softmax(const Problem *p, int64_t nk, int64_t nq,
                                int64_t nq_pad, floating *st, int64_t ld,
                                Scratch *w, floating *alpha) noexcept nogil:
    """Pᵀ = exp(Sᵀ - m'), with m, l updated in w (cols.tmpl.h); True if
    acc must be rescaled by alpha."""
    if floating is float:
        return p.f.c32.online_softmax(
            nk, nq, nq_pad, st, ld, w.m, w.l, <float *>w.colbuf, alpha)
    else:
        return p.f.c64.online_softmax(
            nk, nq, nq_pad, st, ld, w.m, w.l, <double *>w.colbuf, alpha)


cdef inline void scale_rows(const Problem *p, int64_t nq, int64_t n,
                            floating *acc, int64_t ld,
                            const floating *alpha) noexcept nogil:
    if floating is float:
        p.f.c32.scale_rows(nq, n, acc, ld, alpha)
    else:
        p.f.c64.scale_rows(nq, n, acc, ld, alpha)


cdef void attend_block(const Problem *p, const Visibility *vis,
                       const GemmKernel *kern, const void *q, const floating *kpack,
                       const floating *vpack, const uint8_t *vflag,
                       const void *v, const void *mask,
                       const floating *thr, const int64_t *thr_idx,
                       int64_t bh, int64_t qb, int64_t chunk,
                       Scratch *w) noexcept nogil:
    """Online-softmax attention of query block qb of item bh (visibility
    vis) over key chunk `chunk`; leaves (m, l, acc) for its rows in w, the
    rows at or past vis.L as rows that saw nothing."""
    cdef int64_t mr = kern.mr, nr = kern.nr, kc_max = kern.kc
    cdef int64_t i0 = qb * p.bq, nrows = imin(p.bq, p.f.L - i0)
    cdef int64_t nq = imax(0, imin(nrows, vis.L - i0))
    cdef int64_t bq = p.bq, ev_pad = p.ev_pad
    cdef int64_t k_lo, k_hi, kb, k0, nk, j0, j1, nj, pc, kc, r, c, t, jq, n_pc
    cdef int64_t kw, pw, lead, kr
    cdef bint full
    cdef floating *qpack = <floating *>w.qpack
    cdef floating *st = <floating *>w.st
    cdef floating *st_j
    cdef floating *acc = <floating *>w.acc
    cdef floating *acct = <floating *>w.acct
    cdef floating *alpha = <floating *>w.colbuf + 3 * bq
    cdef floating scale = <floating>p.f.scale
    cdef const GemmKernel *kv = &p.kern_v

    for r in range(nrows):
        w.m[r] = -INFINITY
        w.l[r] = 0
        for c in range(ev_pad):
            acc[r * ev_pad + c] = 0
    if kv.pairs:
        for r in range(p.ev_rows * bq):
            acct[r] = 0
    if nq == 0:
        return

    # Key blocks this query block may need: the chunk, cut to what its rows
    # can see.
    k_lo = imax(chunk * p.chunk, first_visible(vis, i0))
    k_hi = imin(imin((chunk + 1) * p.chunk, vis.S),
                last_visible(vis, i0 + nq - 1) + 1)
    if k_lo >= k_hi:
        return

    n_pc = imax(1, cdiv(p.f.E, kc_max))
    for t in range(n_pc):
        pc = t * kc_max
        kc = imin(kc_max, p.f.E - pc)
        pack_b_k(kern, kc, nq, shift(q, i0 * p.rs_q + pc * p.cs_q, p.q_size),
                 p.cs_q, p.rs_q, 0, cdiv(nq, nr),
                 qpack + panel_depth(kern, pc) * bq)

    for kb in range(k_lo // p.bk, cdiv(k_hi, p.bk)):
        # The packed block is keys k0..k0+nk; the keys computed, j0..j1, are
        # cut to [k_lo, k_hi) in whole MR panels, so a causal diagonal or a
        # window edge costs at most MR - 1 wasted keys per side, never a
        # block.  (A key outside [k_lo, k_hi) that a panel drags in is
        # hidden by mask_tile: exp(-inf) = 0 adds exactly nothing.)
        k0 = kb * p.bk
        nk = block_keys(p, vis.S, kb)          # as pack_kv packed it
        j0 = imax(k0, k_lo // mr * mr)
        j1 = imin(k0 + nk, cdiv(k_hi, mr) * mr)
        nj = j1 - j0
        st_j = st + (j0 - k0) * bq
        full = block_fully_visible(vis, i0, nq, j0, nj)
        # Sᵀ = scale · K Qᵀ over E in KC chunks (row r of st: key k0 + r).
        # A tile no query of which sees any of its keys (above a causal
        # diagonal, outside a window) is skipped: mask_tile hides it all.
        for t in range(n_pc):
            pc = t * kc_max
            kc = imin(kc_max, p.f.E - pc)
            kw = panel_depth(kern, kc)      # words per packed row / column
            pw = panel_depth(kern, pc)
            for r in range((j0 - k0) // mr, cdiv(j1 - k0, mr)):
                for jq in range(cdiv(nq, nr)):
                    if not full and not block_any_visible(
                            vis, i0 + jq * nr, imin(nr, nq - jq * nr),
                            k0 + r * mr, mr):
                        continue
                    call_ukernel(kern, kc,
                                 kpack + pw * p.s_pad + (k0 + r * mr) * kw, mr,
                                 qpack + pw * bq + jq * nr * kw, nr,
                                 st + r * mr * bq + jq * nr, bq, 1,
                                 imin(mr, j1 - k0 - r * mr),
                                 imin(nr, nq - jq * nr),
                                 scale, 0 if t == 0 else 1)
        if adjusts_scores(&p.f):    # softcap, ALiBi: before the mask
            adjust_scores(&p.f, bh, st_j, bq, nj, cdiv(nq, p.vl) * p.vl,
                          i0 + vis.offset - j0)
        if p.f.mask_kind != MASK_NONE or thr_idx != NULL or not full:
            mask_tile(p, vis, st_j, i0, nq, j0, nj, mask, thr, thr_idx)

        # Online softmax along the queries: Pᵀ = exp(Sᵀ - m').
        # Only the vectors that hold real queries: columns are independent,
        # so a short last block (or a tiny L) skips the padding's work.
        if online_softmax(p, nj, nq, cdiv(nq, p.vl) * p.vl, st_j, bq, w,
                          alpha):
            if kv.pairs:
                if floating is float:
                    kv.scale_cols(p.ev_rows, nq, acct, bq, alpha)
            else:
                scale_rows(p, nq, ev_pad, acc, ev_pad, alpha)

        if kv.pairs:
            # Oᵀ += Vᵀ Pᵀ: Pᵀ rounded to bf16 pairs (whole vectors of
            # queries), Vᵀ packed per block with the keys as depth, from
            # key j0 on (j0 - k0 is a multiple of MR, so a whole word).
            if floating is float:
                kv.pack_b_f32(nj, nq, st_j, bq, nr, <float *>w.ptpack)
            kw = panel_depth(kv, nj)
            for r in range(cdiv(p.f.Ev, mr)):
                for jq in range(cdiv(nq, nr)):
                    call_ukernel(kv, nj, vpack + kb * p.vblk
                                 + r * mr * panel_depth(kv, nk)
                                 + (j0 - k0) // 2 * mr, mr,
                                 <floating *>w.ptpack + jq * nr * kw, nr,
                                 acct + r * mr * bq + jq * nr, bq, 1,
                                 imin(mr, p.f.Ev - r * mr),
                                 imin(nr, nq - jq * nr),
                                 <floating>1, <floating>1)
            if vflag[kb]:
                nonfinite_values(p, v, bh, st_j, j0, j1, nq, acct, 1, bq)
            continue
        # acc += P V.  Pᵀ is already P in panel form: MR consecutive
        # queries of key p sit at st[p*bq + i], an A panel with lda = bq.
        # Each panel of queries sums only the keys its queries may see,
        # [lead, lead + kr) of the block: the rest have weight exactly 0
        # (inf and NaN values are left out of the packed V), and a sum
        # that starts at +0 is unchanged by adding ±0, so cutting them
        # changes no bit.
        for r in range(cdiv(nq, mr)):
            lead, kr = 0, nj
            if not full:
                lead = imax(0, first_visible(vis, i0 + r * mr) - j0)
                kr = imin(nj, last_visible(vis, i0 + imin(nq, r * mr + mr) - 1)
                          + 1 - j0) - lead
                if kr <= 0:
                    continue
            for jq in range(cdiv(p.f.Ev, nr)):
                call_ukernel(kv, kr, st_j + lead * bq + r * mr, bq,
                             vpack + kb * p.vblk + jq * nr * nk
                             + (j0 - k0 + lead) * nr, nr,
                             acc + r * mr * ev_pad + jq * nr, ev_pad, 1,
                             imin(mr, nq - r * mr), imin(nr, p.f.Ev - jq * nr),
                             <floating>1, <floating>1)
        if vflag[kb]:
            nonfinite_values(p, v, bh, st_j, j0, j1, nq, acc, ev_pad, 1)
    if kv.pairs:            # Oᵀ back to acc's layout, for finishing
        for r in range(nq):
            for c in range(p.f.Ev):
                acc[r * ev_pad + c] = acct[c * bq + r]


cdef inline floating row_max(const Problem *p, int64_t n,
                             const floating *x) noexcept nogil:
    if floating is float:
        return p.r32.max(n, x)
    else:
        return p.r64.max(n, x)


cdef inline floating row_exp_sum(const Problem *p, int64_t n, floating *x,
                                 floating shift) noexcept nogil:
    if floating is float:
        return p.r32.exp_sum(n, x, shift, x)
    else:
        return p.r64.exp_sum(n, x, shift, x)


cdef void attend_rows(const Problem *p, const Visibility *vis,
                      const void *q, const int64_t *off_q, const void *k,
                      const int64_t *off_k, const void *v,
                      const int64_t *off_v, const void *mask,
                      const int64_t *off_m, int64_t bh0, int64_t nr,
                      int64_t i, int64_t chunk, Scratch *w,
                      floating *accs) noexcept nogil:
    """Decode path: query row i of the nr items bh0.. (of one batch row:
    query heads sharing a key/value head, or every head of a paged
    sequence) over key chunk `chunk`, streaming K and V rows (unit inner
    stride) in their storage once per key/value head; leaves (m, l, acc)
    of item bh0 + r in w.m[r], w.l[r] and row r of accs (w.acc; row
    stride ev_pad, the compute dtype).  Each row's sums run in the same
    order as for one row alone: sharing the stream never changes a bit."""
    cdef int64_t k_lo, k_hi, kb, nk, j, j1, c, r
    cdef floating *s
    cdef floating *acc
    cdef floating *prev
    cdef floating mx, m_new
    cdef double alpha
    cdef size_t mask_item = 1 if p.f.mask_kind == MASK_BOOL else sizeof(floating)
    cdef uint8_t live[DECODE_ROWS_PAGED]
    cdef const floating *qi[DECODE_ROWS_PAGED]
    cdef const void *ks[DECODE_ROWS_PAGED]
    cdef const void *vs[DECODE_ROWS_PAGED]
    for r in range(nr):
        ks[r] = shift(k, off_k[bh0 + r], p.in_size)
        vs[r] = shift(v, off_v[bh0 + r], p.in_size)
        qi[r] = <const floating *>shift(q, off_q[bh0 + r] + i * p.rs_q,
                                        p.q_size)
        if p.q_storage != NATIVE:
            if floating is float:
                widen(p.q_storage, p.f.isa, p.f.E, qi[r], 1,
                      <float *>w.qrow + r * p.f.E)
            qi[r] = <const floating *>w.qrow + r * p.f.E
        w.m[r] = -INFINITY
        w.l[r] = 0
        acc = accs + r * p.ev_pad
        for c in range(p.f.Ev):
            acc[c] = 0
    # Exactly the keys row i may see, within the chunk (none for a row at
    # or past its per-row length).
    k_lo = imax(chunk * p.chunk, first_visible(vis, i))
    k_hi = imin(imin((chunk + 1) * p.chunk, vis.S),
                last_visible(vis, i) + 1)
    if i >= vis.L:
        k_hi = k_lo
    kb = k_lo
    while kb < k_hi:
        nk = imin(p.bk, k_hi - kb)
        stream_keys(p, 0, ks, vs, bh0, nr, qi, <floating *>w.st, p.bk, NULL,
                    kb, nk, NULL)
        for r in range(nr):
            s = <floating *>w.st + r * p.bk
            acc = accs + r * p.ev_pad
            prev = <floating *>w.prev + r * p.ev_pad
            live[r] = 0
            if adjusts_scores(&p.f):
                adjust_scores(&p.f, bh0 + r, s, nk, 1, nk,
                              kb - i - vis.offset)
            if p.f.mask_kind != MASK_NONE:
                # One row tile of keys kb.. (already cut to what row i may
                # see, so only the mask acts).
                mask_rows(p.f.isa, vis, p.f.mask_kind, <const char *>mask
                          + off_m[bh0 + r] * mask_item, p.rs_m, p.cs_m, s,
                          nk, i, 1, kb, nk)
            mx = row_max(p, nk, s)
            m_new = mx if mx > w.m[r] else <floating>w.m[r]
            if m_new == -INFINITY:
                # Nothing visible yet; a NaN behind the -inf max must
                # propagate.
                for j in range(nk):
                    if s[j] != s[j]:
                        w.l[r] = s[j]
                continue
            alpha = exp(w.m[r] - m_new)
            w.l[r] = w.l[r] * alpha + row_exp_sum(p, nk, s, m_new)
            if alpha != 1:
                for c in range(p.f.Ev):
                    acc[c] = acc[c] * <floating>alpha
            for c in range(p.f.Ev):
                prev[c] = acc[c]
            w.m[r] = m_new
            live[r] = 1
        stream_keys(p, 1, vs, ks, bh0, nr, NULL, <floating *>w.st, p.bk,
                    live, kb, nk, accs)
        for r in range(nr):
            acc = accs + r * p.ev_pad
            if not live[r] or not any_nonfinite(p, p.f.Ev, acc):
                continue
            # An inf or NaN value arrived: redo the block without the keys
            # of weight 0 (hidden ones), whose values must not reach the
            # row (the same rule as nonfinite_values).
            s = <floating *>w.st + r * p.bk
            prev = <floating *>w.prev + r * p.ev_pad
            for c in range(p.f.Ev):
                acc[c] = prev[c]
            j = 0
            while j < nk:
                j1 = j
                while j1 < nk and s[j1] != 0:
                    j1 += 1
                if j1 > j:
                    stream_keys(p, 1, vs + r, ks + r, bh0 + r, 1, NULL,
                                s + j, 0, NULL, kb + j, j1 - j, acc)
                j = j1 + 1
        kb += nk


cdef void add_sink(double sink, int64_t nq, int64_t ev, double *m,
                   double *l, floating *acc, int64_t ld) noexcept nogil:
    """Join the logit `sink` (no value) to the softmax state (m, l, acc) of
    nq rows: l += exp(sink - m), by the larger of the two so nothing
    overflows (acc rescaled when the sink is the larger).  A row that saw
    no key gets m = sink, l = 1: out 0, lse = sink.  A NaN l or sink
    stays NaN."""
    cdef int64_t r, c
    cdef double a
    for r in range(nq):
        if l[r] == 0 and m[r] == -INFINITY:
            m[r] = sink
            l[r] = 1
        elif sink > m[r]:
            a = exp(m[r] - sink)
            l[r] = l[r] * a + 1
            for c in range(ev):
                acc[r * ld + c] = acc[r * ld + c] * <floating>a
            m[r] = sink
        else:
            l[r] = l[r] + exp(sink - m[r])


cdef void write_rows(const Problem *p, Scratch *w, int64_t bh, int64_t nq,
                     int64_t nreal, void *o, floating *lse) noexcept nogil:
    """out = acc / l and lse = m + log l for the first nreal of the block's
    nq rows of item bh (the rest lie past its query length and are never
    written: they may be another sequence's rows), the sink joined first;
    a row that saw no key (l == 0) gets 0 and -inf.  A 16-bit out: the
    rows are finished in place in acc, then rounded into out."""
    cdef int64_t r
    cdef floating *acc = <floating *>w.acc
    nq = nreal
    if p.f.sinks != NULL:
        add_sink(p.f.sinks[bh], nq, p.f.Ev, w.m, w.l, acc, p.ev_pad)
    if p.out_storage == NATIVE:
        if floating is float:
            p.f.c32.finish_rows(
                nq, p.f.Ev, acc, p.ev_pad, w.m, w.l, <float *>o, p.rs_o,
                p.cs_o, lse)
        else:
            p.f.c64.finish_rows(
                nq, p.f.Ev, acc, p.ev_pad, w.m, w.l, <double *>o, p.rs_o,
                p.cs_o, lse)
    elif floating is float:
        p.f.c32.finish_rows(
            nq, p.f.Ev, acc, p.ev_pad, w.m, w.l, acc, p.ev_pad, 1, lse)
        for r in range(nq):
            narrow(p.out_storage, p.f.isa, p.f.Ev, acc + r * p.ev_pad,
                   <char *>o + r * p.rs_o * p.out_size, p.cs_o)


cdef inline void save_partial(const Problem *p, Scratch *w, int64_t nq,
                              floating *part) noexcept nogil:
    """Store (m, l, acc) of nq rows as rows of [m, l, acc[0:Ev]]
    (tile.tmpl.h)."""
    if floating is float:
        p.f.c32.save_partial(
            nq, p.f.Ev, w.m, w.l, <float *>w.acc, p.ev_pad, part)
    else:
        p.f.c64.save_partial(
            nq, p.f.Ev, w.m, w.l, <double *>w.acc, p.ev_pad, part)


cdef inline void merge_partials(const Problem *p, const floating *part,
                                int64_t nq, Scratch *w) noexcept nogil:
    """Combine the nchunks partials of nq rows, in chunk order, into w
    (tile.tmpl.h)."""
    if floating is float:
        p.f.c32.merge_partials(
            nq, p.nchunks, p.f.Ev, part, p.bq * (p.f.Ev + 2), w.m, w.l,
            <float *>w.acc, p.ev_pad)
    else:
        p.f.c64.merge_partials(
            nq, p.nchunks, p.f.Ev, part, p.bq * (p.f.Ev + 2), w.m, w.l,
            <double *>w.acc, p.ev_pad)


cdef void attend_item(const Problem *p, const GemmKernel *kern,
                      const void *q, const void *v,
                      const floating *kv, const uint8_t *vflag,
                      const void *mask, void *o, floating *lse,
                      const int64_t *off_q, const int64_t *off_v,
                      const int64_t *off_m, const int64_t *off_o,
                      int64_t bh, int64_t qb, int64_t ch, Scratch *w,
                      floating *parts) noexcept nogil:
    """Work item (bh, qb, ch) of the tiled path against the packed K/V of
    head bh (`kv`, with its vflag): its rows of out and lse, or its
    partial."""
    cdef int64_t nq = imin(p.bq, p.f.L - qb * p.bq), row_len = p.f.Ev + 2
    cdef const void *mask_bh = NULL
    cdef size_t mask_item = 1 if p.f.mask_kind == MASK_BOOL else sizeof(floating)
    cdef Visibility vis
    item_visibility(&p.f, bh, &vis)
    if p.f.mask_kind != MASK_NONE:
        mask_bh = <const char *>mask + off_m[bh] * mask_item
    attend_block(p, &vis, kern, shift(q, off_q[bh], p.q_size), kv,
                 kv + p.kpack_size, vflag, shift(v, off_v[bh], p.in_size),
                 mask_bh,
                 <const floating *>p.thr + bh * p.f.L
                 if p.thr_idx != NULL else NULL,
                 p.thr_idx + bh * p.f.L if p.thr_idx != NULL else NULL,
                 bh, qb, ch, w)
    if p.nchunks == 1:
        write_rows(p, w, bh, nq, imax(0, imin(nq, vis.L - qb * p.bq)),
                   out_at(p, o, off_o[bh] + qb * p.bq * p.rs_o),
                   lse + bh * p.f.L + qb * p.bq if lse != NULL else NULL)
    else:
        save_partial(p, w, nq, parts + ((bh * p.nqb + qb) * p.nchunks + ch)
                     * p.bq * row_len)


cdef int set_pages(Problem *p, tuple paged, const Operand *ok,
                   const Operand *ov, int64_t nbh, object quant,
                   str func) except -1:
    """Read a paged cache into p (see attention's `paged`) and check its
    contract: the block table's shape and dtype, the pages' shapes, unit
    column strides (the tiled path copies whole rows), int8 values and
    scales parallel along the page axis, and every page a sequence uses
    (its first ceil(key length / page_size) entries) in [0, num_pages)."""
    cdef cnp.ndarray bt = <cnp.ndarray>paged[0]
    cdef cnp.ndarray kp = <cnp.ndarray>paged[1], vp = <cnp.ndarray>paged[2]
    cdef int64_t B, b, i, used, page, num_pages = kp.shape[0]
    if (bt.dtype != np.int64 or bt.ndim != 2 or kp.ndim != 4
            or vp.ndim != 4 or vp.shape[0] != num_pages
            or vp.shape[2] != kp.shape[2] or p.f.q_lens == NULL
            or not cnp.PyArray_IS_C_CONTIGUOUS(bt) or bt.shape[0] == 0
            or nbh % bt.shape[0] or (p.f.E > 1 and ok.cs != 1)
            or (p.f.Ev > 1 and ov.cs != 1)):
        raise AssertionError(f"{func}: cattn internal error: paged cache")
    B = bt.shape[0]
    p.pages = <const int64_t *>cnp.PyArray_DATA(bt)
    p.max_pages = bt.shape[1]
    p.page_size = kp.shape[2]
    p.seq_items = nbh // B
    p.page_stride[0] = kp.strides[0] // kp.itemsize
    p.page_stride[1] = vp.strides[0] // vp.itemsize
    if quant is not None and (
            paged[3].strides[0] * p.q8_block != kp.strides[0] * 4
            or paged[4].strides[0] * p.q8_block != vp.strides[0] * 4):
        raise AssertionError(f"{func}: cattn internal error: int8 pages "
                             "and scales not parallel")
    for b in range(B):
        used = cdiv(p.f.k_lens[b * p.seq_items], p.page_size)
        if used > p.max_pages:
            raise AssertionError(f"{func}: cattn internal error: sequence "
                                 f"{b} needs {used} pages")
        for i in range(used):
            page = p.pages[b * p.max_pages + i]
            if page < 0 or page >= num_pages:
                raise AssertionError(f"{func}: cattn internal error: block "
                                     f"table entry ({b}, {i}) = {page}")
    return 0


cdef bint computes(cnp.ndarray x, bint is_f32):
    """x is held in the compute dtype, or (float32 compute) in a 16-bit
    storage dtype read through its readers."""
    if storage_of(x) != NATIVE:
        return is_f32
    return x.itemsize == (4 if is_f32 else 8)


cdef bint parallel_q8(cnp.ndarray x, cnp.ndarray sc, int64_t block,
                      bint is_f32):
    """int8 values x and float32 scales sc of the same leading shape, unit
    last strides, and every leading stride of x `block` times sc's (in
    elements): a scale's offset is its first value's offset / block."""
    cdef int d, nd = x.ndim
    if (not is_f32 or x.dtype != np.int8 or sc.dtype != np.float32
            or sc.ndim != nd or block < 1 or x.shape[nd - 1] % block
            or sc.shape[nd - 1] * block != x.shape[nd - 1]):
        return False
    if x.size == 0:                     # nothing is read
        return (<object>x).shape[:nd - 1] == (<object>sc).shape[:nd - 1]
    if x.shape[nd - 1] > 1 and (x.strides[nd - 1] != 1
                                or sc.strides[nd - 1] != 4):
        return False
    for d in range(nd - 1):
        if (x.shape[d] != sc.shape[d] or (x.shape[d] > 1 and
                                          x.strides[d] * 4 != sc.strides[d]
                                          * block)):
            return False
    return True


cdef inline void *out_at(const Problem *p, void *o, int64_t i) noexcept nogil:
    """Element i of out, in its storage."""
    return <void *>shift(o, i, p.out_size)


cdef inline void decode_coords(const Problem *p, int64_t item,
                               int64_t *bh0, int64_t *nr, int64_t *qb,
                               int64_t *ch) noexcept nogil:
    """Decode item `item`: its first batch·head bh0 and row count nr (up
    to decode_rows consecutive items of one span), query row qb and key
    chunk ch."""
    cdef int64_t rb = item // (p.nqb * p.nchunks)
    cdef int64_t per_span = cdiv(p.span, p.decode_rows)
    qb[0] = (item // p.nchunks) % p.nqb
    ch[0] = item % p.nchunks
    bh0[0] = (rb // per_span) * p.span + (rb % per_span) * p.decode_rows
    nr[0] = imin(p.decode_rows, p.span - (rb % per_span) * p.decode_rows)


cdef void decode_item(const Problem *p, const void *q, const void *k,
                      const void *v, const void *mask, void *o,
                      floating *lse, const int64_t *off_q,
                      const int64_t *off_k, const int64_t *off_v,
                      const int64_t *off_m, const int64_t *off_o,
                      int64_t item, Scratch *w,
                      floating *parts) noexcept nogil:
    """Work item `item` = (rows, query row, key chunk) of the decode path:
    rows = up to decode_rows consecutive items of one span (attend_rows),
    streamed together."""
    cdef int64_t row_len = p.f.Ev + 2, bh0, nr, qb, ch, r, bh
    decode_coords(p, item, &bh0, &nr, &qb, &ch)
    cdef Visibility vis
    cdef Scratch row_w = w[0]
    item_visibility(&p.f, bh0, &vis)     # the rows' batch row: one visibility
    attend_rows(p, &vis, q, off_q, k, off_k, v, off_v, mask, off_m, bh0, nr,
                qb, ch, w, <floating *>w.acc)
    for r in range(nr):
        bh = bh0 + r
        row_w.m = w.m + r
        row_w.l = w.l + r
        row_w.acc = <floating *>w.acc + r * p.ev_pad
        if p.nchunks == 1:
            write_rows(p, &row_w, bh, 1, qb < vis.L,
                       out_at(p, o, off_o[bh] + qb * p.rs_o),
                       lse + bh * p.f.L + qb if lse != NULL else NULL)
        else:
            save_partial(p, &row_w, 1, parts + ((bh * p.nqb + qb)
                                                * p.nchunks + ch) * row_len)




cdef inline int64_t decode_items(const Problem *p,
                                 int64_t nbh) noexcept nogil:
    """Row groups of the decode path: per span (a key/value head's query
    heads, or a paged sequence's heads), its items in groups of
    decode_rows."""
    return nbh // p.span * cdiv(p.span, p.decode_rows)


cdef void whole_head(const Problem *p, const GemmKernel *kern,
                     const void *q, const void *k, const void *v,
                     const void *mask, void *o, floating *lse,
                     const int64_t *off_q, const int64_t *off_k,
                     const int64_t *off_v, const int64_t *off_m,
                     const int64_t *off_o, int64_t bh, floating *kv,
                     uint8_t *fl, Scratch *w, floating *parts) noexcept nogil:
    """Every item of head bh, packing its K/V (the keys it has) into this
    thread's slot."""
    cdef int64_t kb, j
    for kb in range(cdiv(keys_of(p, bh), p.bk)):
        pack_kv(p, kern, shift(k, off_k[bh], p.in_size),
                shift(v, off_v[bh], p.in_size), bh, kb, kv,
                kv + p.kpack_size, fl, w.gather)
    for j in range(p.nqb * p.nchunks):
        attend_item(p, kern, q, v, kv, fl, mask, o, lse, off_q, off_v, off_m,
                    off_o, bh, j // p.nchunks, j % p.nchunks, w, parts)


cdef void merge_item(const Problem *p, void *o, floating *lse,
                     const int64_t *off_o, int64_t item, Scratch *w,
                     floating *parts) noexcept nogil:
    """Merge the key-chunk partials of item (bh, query block), in order."""
    cdef int64_t bh = item // p.nqb, qb = item % p.nqb
    cdef int64_t nq = imin(p.bq, p.f.L - qb * p.bq)
    cdef Visibility vis
    item_visibility(&p.f, bh, &vis)
    merge_partials(p, parts + item * p.nchunks * p.bq * (p.f.Ev + 2), nq, w)
    write_rows(p, w, bh, nq, imax(0, imin(nq, vis.L - qb * p.bq)),
               out_at(p, o, off_o[bh] + qb * p.bq * p.rs_o),
               lse + bh * p.f.L + qb * p.bq if lse != NULL else NULL)


cdef inline int64_t grouped_head(const Problem *p, int64_t g0,
                                 int64_t item) noexcept nogil:
    """The batch·head of attend item `item` of the group from g0."""
    return g0 + item // (p.nqb * p.nchunks)


cdef inline int64_t grouped_block(const Problem *p,
                                  int64_t item) noexcept nogil:
    """The query block of attend item `item` of a group (its key chunk:
    item % nchunks).  Later query blocks see more keys under a causal
    mask: they are handed out first, so the dynamic schedule ends on small
    items (the order never changes a result).  (Values, not pointers: a
    prange's private variables must be assigned in its body.)"""
    cdef int64_t qb = (item // p.nchunks) % p.nqb
    return p.nqb - 1 - qb if p.f.vis.causal else qb


cdef int64_t item_pairs(const Problem *p, int64_t bh, int64_t qb,
                        int64_t ch):
    """The (query, key) pairs attend_block computes for item (bh, qb, ch):
    its rows that exist, the keys of the chunk they may see."""
    cdef Visibility vis
    item_visibility(&p.f, bh, &vis)
    cdef int64_t i0 = qb * p.bq
    cdef int64_t nq = imax(0, imin(imin(p.bq, p.f.L - i0), vis.L - i0))
    return visible_pairs(&vis, i0, nq, ch * p.chunk,
                         imin((ch + 1) * p.chunk, vis.S))


cdef dict describe(const Problem *p, int64_t nbh, int64_t group,
                   int nthreads):
    """The schedule run() follows with `nthreads` threads, for a model of
    its load balance (benchmarks/many_cores.py): the phases it runs one
    after another (a barrier between), each (OpenMP schedule, the items'
    costs in the order they are handed out).  Cost: the (query, key) pairs
    an item scores, or for packing and merging the rows it moves (each
    about one pair's work)."""
    cdef int64_t per_bh = p.nqb * p.nchunks, nkb = cdiv(p.f.S, p.bk)
    cdef int64_t n, item, bh, qb, ch, nr, gi, g0, ng, j
    cdef cnp.ndarray[int64_t] c
    cdef Visibility vis
    cdef list phases = []
    cdef str kind
    if p.decode:
        kind = "decode rows"
        n = decode_items(p, nbh) * per_bh
        c = np.empty(n, np.int64)
        for item in range(n):
            decode_coords(p, item, &bh, &nr, &qb, &ch)
            item_visibility(&p.f, bh, &vis)
            c[item] = nr * visible_pairs(&vis, qb, qb < vis.L, ch * p.chunk,
                                         imin((ch + 1) * p.chunk, vis.S))
        phases.append(("dynamic", c))
    elif group == 0 or nthreads == 1:
        kind = "whole heads" if nthreads > 1 else "one thread"
        c = np.zeros(nbh, np.int64)
        for item in range(nbh):
            bh = p.order[item] if p.order != NULL else item
            c[item] = keys_of(p, bh)            # packing its K and V
            for j in range(per_bh):
                c[item] += item_pairs(p, bh, j // p.nchunks, j % p.nchunks)
        phases.append(("dynamic", c))
    else:
        kind = f"groups of {group} heads"
        for gi in range(cdiv(nbh, group)):
            g0 = gi * group
            ng = imin(group, nbh - g0)
            c = np.empty(ng * nkb, np.int64)
            for item in range(ng * nkb):
                c[item] = block_keys(p, keys_of(p, g0 + item // nkb),
                                     item % nkb)
            phases.append(("static", c))
            c = np.empty(ng * per_bh, np.int64)
            for item in range(ng * per_bh):
                c[item] = item_pairs(p, grouped_head(p, g0, item),
                                     grouped_block(p, item), item % p.nchunks)
            phases.append(("dynamic", c))
    if p.nchunks > 1:
        phases.append(("static", np.full(nbh * p.nqb, p.bq * p.nchunks,
                                         np.int64)))
    return {"driver": "attention", "kind": kind, "threads": nthreads,
            "phases": phases}


cdef void run(const Problem *p, const void *q, const void *k,
              const void *v, const void *mask, void *o,
              floating *lse, const int64_t *off_q, const int64_t *off_k,
              const int64_t *off_v, const int64_t *off_m,
              const int64_t *off_o, int64_t nbh, int64_t group,
              const Arena *arena, floating *kvpack, uint8_t *vflags,
              floating *parts, int nthreads) noexcept nogil:
    """group > 0: the grouped schedule (the team packs `group` heads, then
    shares their items); group == 0: the per-head schedule (each thread
    packs a whole head into its own slot of kvpack and computes all its
    items: no barriers, K/V hot in the core's own cache); one thread: the
    per-head order without a thread team.  All compute every item the same
    way, so the choice never changes a bit.  vflags holds nkb flags per
    kvpack slot (pack_kv); each thread's Scratch is carved first in its
    arena slot."""
    cdef GemmKernel kern = p.kern
    cdef int64_t per_bh = p.nqb * p.nchunks, nkb = cdiv(p.f.S, p.bk)
    cdef int64_t kv_size = p.kpack_size + p.vpack_size
    cdef int64_t gi, g0, ng, item, bh, qb
    cdef Scratch *w0 = <Scratch *>arena_at(arena, 0, 0)

    if nthreads == 1:       # no thread team for work that fits one thread
        for item in range(decode_items(p, nbh) * per_bh if p.decode
                          else nbh):
            if p.decode:
                decode_item(p, q, k, v, mask, o, lse, off_q, off_k, off_v,
                            off_m, off_o, item, w0, parts)
            else:
                whole_head(p, &kern, q, k, v, mask, o, lse, off_q, off_k,
                           off_v, off_m, off_o, item, kvpack, vflags, w0,
                           parts)
        if p.nchunks > 1:
            for item in range(nbh * p.nqb):
                merge_item(p, o, lse, off_o, item, w0, parts)
        return

    if p.decode:
        for item in prange(decode_items(p, nbh) * per_bh, schedule='dynamic',
                           num_threads=nthreads):
            decode_item(p, q, k, v, mask, o, lse, off_q, off_k, off_v, off_m,
                        off_o, item,
                        <Scratch *>arena_at(arena, threadid(), 0), parts)
    elif group == 0:
        for item in prange(nbh, schedule='dynamic', num_threads=nthreads):
            bh = p.order[item] if p.order != NULL else item
            whole_head(p, &kern, q, k, v, mask, o, lse, off_q, off_k, off_v,
                       off_m, off_o, bh, kvpack + threadid() * kv_size,
                       vflags + threadid() * nkb,
                       <Scratch *>arena_at(arena, threadid(), 0), parts)
    else:
        with parallel(num_threads=nthreads):
            for gi in range(cdiv(nbh, group)):
                g0 = gi * group
                ng = imin(group, nbh - g0)
                for item in prange(ng * nkb, schedule='static'):
                    bh = g0 + item // nkb
                    if (item % nkb) * p.bk >= keys_of(p, bh):
                        continue        # past the head's key length
                    pack_kv(p, &kern, shift(k, off_k[bh], p.in_size),
                            shift(v, off_v[bh], p.in_size), bh, item % nkb,
                            kvpack + (bh - g0) * kv_size,
                            kvpack + (bh - g0) * kv_size + p.kpack_size,
                            vflags + (bh - g0) * nkb,
                            (<Scratch *>arena_at(arena, threadid(), 0)).gather)
                for item in prange(ng * per_bh, schedule='dynamic'):
                    bh = grouped_head(p, g0, item)
                    qb = grouped_block(p, item)
                    attend_item(p, &kern, q, v, kvpack + (bh - g0) * kv_size,
                                vflags + (bh - g0) * nkb, mask, o, lse,
                                off_q, off_v, off_m, off_o, bh, qb,
                                item % p.nchunks,
                                <Scratch *>arena_at(arena, threadid(), 0),
                                parts)

    if p.nchunks == 1:
        return
    for item in prange(nbh * p.nqb, schedule='static', num_threads=nthreads):
        merge_item(p, o, lse, off_o, item,
                   <Scratch *>arena_at(arena, threadid(), 0), parts)


def attention(call, tuple items, q, k, v, mask, o, lse, thr, quant=None,
              ragged=None, paged=None, list schedule=None):
    """Run the fused forward of a validated ``_frame.Call`` over the batch
    `items` (call.batch, or call.items with GQA's group axis).

    q, k, v, o and mask (None, bool or the compute dtype) have shapes
    items-broadcastable + (L, E), (S, E), (S, Ev), (L, Ev), (L, S); o must
    be walkable in place (the frame allocates it so).  q, k and v share
    call.dtype (float32, float64 or 16-bit storage); o has that dtype or,
    for 16-bit storage, float32; lse and the mask the compute dtype.  lse: None or a
    C-contiguous array of nitems·L elements; thr: None or the pair (score,
    index) of each row's worst kept key from _topk.select_top_k, each
    C-contiguous of nitems·L elements.  Every operand's contract is checked
    (Operands.add) before the kernel runs.

    The decode path (few query rows, streamed K/V rows) is chosen here from
    the shapes and layouts alone, never from the thread count.  bfloat16
    runs the bf16 pair products where the ISA has them (call.precision:
    "default" also rounds P to bf16 for P·V, "highest" keeps it float32).

    quant: None, or int8 K and V (cattn.quantize) as (k_scales, v_scales,
    block): k and v are then their int8 values (unit last stride), the
    scales float32 of shape (..., S, E // block) and (..., S, Ev // block)
    laid out in parallel (each leading stride block times smaller), and
    the kernel dequantizes as it reads.

    ragged: None, or packed sequences (varlen_attention) as int64 arrays
    (q_starts, k_starts, order), one start per sequence: q, k, v and o are
    then (heads, total, cols) views of the packed arrays, item s·H + h
    reads its sequence's rows from the starts (Operands.add_ragged; the
    Call's per-item lengths say how many), there is no mask, and the
    per-head schedule takes the items in `order` (longest first: no
    thread is left with a long sequence at the end; the order never
    changes a bit).

    paged: None, or a paged KV cache (paged_attention) as (block_table,
    key_pages, value_pages): block_table int64 C-contiguous (B, max_pages);
    the pages (num_pages, Hkv, page_size, cols), int8 values for quant;
    k and v are then page 0 of them (broadcastable to the items with
    page_size rows), quant's scales page 0 of the scales.  The Call's
    per-item key lengths say how many keys each sequence has; every page
    they use must be a valid page (checked).  int8 pages take the decode
    path at any L (their scales are not gathered).

    schedule: None, or a list to which the call appends the schedule it
    would run with call.threads threads (describe) instead of running: the
    many-core model's view of the real plan.
    """
    cdef Problem p
    read_call(&p.f, call, items)
    cdef int64_t nbh = p.f.nitems
    if nbh == 0 or p.f.L == 0:
        return
    cdef str func = call[C_FUNC]
    cdef Operands ops = Operands(nbh)
    cdef Operand *oq
    cdef Operand *ok
    cdef Operand *ov
    cdef Operand *oo
    cdef int64_t group_kv = call[C_GROUP]
    cdef cnp.ndarray order_a
    p.order = NULL
    cdef int64_t kv_rows = p.f.S if paged is None else paged[1].shape[2]
    p.pages = NULL
    if ragged is None:
        oq = ops.add(q, items, p.f.L, p.f.E, func, "query")
        ok = ops.add(k, items, kv_rows, p.f.E, func, "key")
        ov = ops.add(v, items, kv_rows, p.f.Ev, func, "value")
        oo = ops.add(o, items, p.f.L, p.f.Ev, func, "out")
    else:
        if (mask is not None or quant is not None or p.f.q_lens == NULL
                or thr is not None):
            raise AssertionError(f"{func}: cattn internal error: packed "
                                 "sequences with a mask, top-k or int8")
        # One length per sequence (items[0] of them) from the per-item ones.
        q_lens = call[C_Q_LENS].reshape(items[0], -1)[:, 0].copy()
        k_lens = call[C_K_LENS].reshape(items[0], -1)[:, 0].copy()
        oq = ops.add_ragged(q, ragged[0], q_lens, 1, p.f.E, func, "query")
        ok = ops.add_ragged(k, ragged[1], k_lens, group_kv, p.f.E, func,
                            "key")
        ov = ops.add_ragged(v, ragged[1], k_lens, group_kv, p.f.Ev, func,
                            "value")
        oo = ops.add_ragged(o, ragged[0], q_lens, 1, p.f.Ev, func, "out")
        order_a = ragged[2]
        check_rows(order_a, nbh, func, "order")
        if order_a.dtype != np.int64 or not (
                (np.sort(order_a) == np.arange(nbh)).all()):
            raise AssertionError(f"{func}: cattn internal error: order")
        p.order = <const int64_t *>cnp.PyArray_DATA(order_a)
    if ops.keep[3] is not o:
        raise AssertionError(f"{func}: cattn internal error: out copied")
    cdef Operand *om = ops.add_mask(mask, &p.f, items, func)
    p.rs_q, p.cs_q, p.rs_k, p.cs_k = oq.rs, oq.cs, ok.rs, ok.cs
    p.rs_v, p.cs_v, p.rs_o, p.cs_o = ov.rs, ov.cs, oo.rs, oo.cs
    p.rs_m, p.cs_m = om.rs, om.cs
    p.storage, p.q_storage = storage_of(k), storage_of(q)
    p.out_storage = storage_of(o)
    p.in_size, p.q_size, p.out_size = k.itemsize, q.itemsize, o.itemsize
    if quant is not None:
        p.storage = CATTN_STORAGE_Q8
        p.q8_block = quant[2]
        for i, (x, sc, cols, name) in enumerate(
                ((ops.keep[1], quant[0], p.f.E, "key"),
                 (ops.keep[2], quant[1], p.f.Ev, "value"))):
            osc = ops.add(sc, items, kv_rows, cols // p.q8_block, func,
                          name + " scales")
            if not parallel_q8(x, ops.keep[len(ops.keep) - 1], p.q8_block,
                               p.f.is_f32):
                raise AssertionError(f"{func}: cattn internal error: "
                                     f"quantized {name} layout")
            p.q8_values[i] = <const char *>cnp.PyArray_DATA(x)
            p.q8_scales[i] = <const float *>osc.data
    elif (storage_of(v) != p.storage or v.itemsize != k.itemsize
            or not computes(k, p.f.is_f32)):
        raise AssertionError(f"{func}: cattn internal error: operand dtypes "
                             f"{q.dtype}, {k.dtype}, {v.dtype} -> {o.dtype}")
    if not computes(q, p.f.is_f32) or not computes(o, p.f.is_f32):
        raise AssertionError(f"{func}: cattn internal error: operand dtypes "
                             f"{q.dtype} -> {o.dtype}")
    p.thr = NULL
    p.thr_idx = NULL
    if thr is not None:
        check_rows(thr[0], nbh * p.f.L, func, "top-k scores")
        check_rows(thr[1], nbh * p.f.L, func, "top-k indices")
        p.thr = cnp.PyArray_DATA(thr[0])
        p.thr_idx = <const int64_t *>cnp.PyArray_DATA(thr[1])
    cdef void *lse_ptr = NULL
    if lse is not None:
        check_rows(lse, nbh * p.f.L, func, "lse")
        lse_ptr = cnp.PyArray_DATA(lse)
    cdef int64_t itemsize = 4 if p.f.is_f32 else 8, vl, group, slots
    cdef cattn_attention_blocks blk = cattn_attention_blocks_for(p.f.isa)[0]
    vl = p.f.c32.vl if p.f.is_f32 else p.f.c64.vl
    p.r32 = cattn_rows_f32_for(p.f.isa)
    p.r64 = cattn_rows_f64_for(p.f.isa)
    # A few queries (decoding): stream K and V rows instead of packing
    # tiles.  Top-k needs the tiled path (its scores are the GEMM's bits).
    if paged is not None:
        set_pages(&p, paged, ok, ov, nbh, quant, func)
    cdef bint decode = ((p.f.L <= blk.decode_max_l or (
                            p.pages != NULL and quant is not None))
                        and thr is None
                        and (p.f.E <= 1 or (oq.cs == 1 and ok.cs == 1))
                        and (p.f.Ev <= 1 or ov.cs == 1))
    p.decode = decode
    p.vl = vl
    # bf16 pair products for the scores at both precisions and for P·V at
    # the default one, except with top-k: its selection pass computes the
    # float32 kernel's scores, which the forward must repeat bit for bit.
    cdef bint pairs = (thr is None and not decode
                       and p.q_storage == p.storage)
    p.kern = gemm_kernel(p.f.isa, p.f.is_f32, p.storage, pairs)
    if p.q_storage != p.storage:        # K's packers, Q's own B packer
        p.kern.pack_b = pack_b_for(p.f.isa, p.q_storage)
    p.kern_v = gemm_kernel(p.f.isa, p.f.is_f32, p.storage,
                           pairs and not p.f.highest)
    if p.kern.mr != p.kern_v.mr or p.kern.nr != p.kern_v.nr:
        raise AssertionError(f"{func}: cattn internal error: tile products "
                             "of different tiles")
    cdef GemmKernel kern = p.kern
    p.chunk = max(p.f.S, 1)
    p.nchunks = 1
    if decode:
        # One row per block; keys in fixed chunks, merged in order.
        p.bq = 1
        p.bk = blk.bk_target
        p.nqb = p.f.L
        if p.f.S > blk.decode_chunk:
            p.chunk = blk.decode_chunk
            p.nchunks = cdiv(p.f.S, blk.decode_chunk)
    else:
        # bq: whole NR panels of Qᵀ (and whole vectors of the column
        # kernels); bk: S in equal blocks of whole MR panels of packed K.
        p.bq = cdiv(blk.bq_target, kern.nr) * kern.nr
        p.bq = cdiv(p.bq, vl) * vl
        p.bk = cdiv(cdiv(imax(p.f.S, 1), cdiv(imax(p.f.S, 1), blk.bk_max)),
                    kern.mr) * kern.mr
        p.nqb = cdiv(p.f.L, p.bq)
        if nbh * p.nqb < SPLIT_BELOW_ITEMS and p.f.S > blk.chunk:
            p.chunk = blk.chunk // p.bk * p.bk
            p.nchunks = cdiv(p.f.S, p.chunk)
    p.s_pad = cdiv(p.f.S, kern.mr) * kern.mr
    p.ev_pad = cdiv(p.f.Ev, kern.nr) * kern.nr
    p.ev_rows = cdiv(p.f.Ev, kern.mr) * kern.mr
    p.vblk = (p.ev_rows * panel_depth(&p.kern_v, p.bk) if p.kern_v.pairs
              else p.bk * p.ev_pad)
    p.kpack_size = p.s_pad * max(p.f.E, 1)
    p.vpack_size = cdiv(p.f.S, p.bk) * p.vblk
    cdef int64_t per_bh = p.nqb * p.nchunks
    p.span = p.seq_items if p.pages != NULL else call[C_GROUP]
    p.decode_rows = (1 if not decode else min(<int64_t>DECODE_ROWS_PAGED,
                                              p.span)
                     if p.pages != NULL else min(<int64_t>DECODE_ROWS,
                                                 p.span))
    # A paged decode of few sequences on many threads: halve the rows per
    # item (down to one key/value head's query heads, call[C_GROUP]) until every
    # thread has DECODE_ITEMS_PER_THREAD items.  Rows are independent, so
    # this moves work between threads and never changes a bit.
    while (decode and p.pages != NULL and p.decode_rows > call[C_GROUP]
           and decode_items(&p, nbh) * per_bh
               < DECODE_ITEMS_PER_THREAD * p.f.threads):
        p.decode_rows = max(call[C_GROUP], p.decode_rows // 2)
    cdef int nthreads = <int>min(p.f.threads,
                                 (decode_items(&p, nbh) if decode else nbh)
                                 * per_bh)
    # Enough batch·heads per group for 4 items per thread, within the
    # memory bound (grouping never changes a result).
    cdef int64_t kv_bytes = (p.kpack_size + p.vpack_size) * itemsize
    group = max(1, min(nbh, cdiv(4 * nthreads, per_bh),
                       blk.group_bytes // max(kv_bytes, 1)))
    if (not decode and nbh >= PER_HEAD_MIN * nthreads
            and nthreads * kv_bytes <= blk.group_bytes):
        group = 0                   # the per-head schedule (see run)
    if schedule is not None:        # describe the schedule, run nothing
        schedule.append(describe(&p, nbh, group, nthreads))
        return
    # One thread's slot of the arena: its Scratch and its tiles.
    cdef size_t used = 0
    cdef size_t at_w = carve(&used, sizeof(Scratch))
    cdef size_t at_qpack = carve(&used, max(p.f.E, 1) * p.bq * itemsize)
    cdef int64_t rows = max(p.bq, p.decode_rows)
    cdef size_t at_st = carve(&used, (max(p.bk * p.bq + kern.mr,
                                          p.decode_rows * p.bk)) * itemsize)
    cdef size_t at_acc = carve(&used, rows * p.ev_pad * itemsize)
    cdef size_t at_acct = carve(&used, p.ev_rows * p.bq * itemsize
                                if p.kern_v.pairs else 0)
    cdef size_t at_ptpack = carve(&used, p.bq * panel_depth(&p.kern_v, p.bk)
                                  * itemsize if p.kern_v.pairs else 0)
    cdef size_t at_col = carve(&used, 4 * p.bq * itemsize)
    cdef size_t at_prev = carve(&used, p.decode_rows * p.ev_pad * itemsize)
    cdef size_t at_qrow = carve(&used, p.decode_rows * p.f.E * itemsize)
    cdef size_t at_gather = carve(&used, p.bk * max(p.f.E, p.f.Ev)
                                  * p.in_size
                                  if p.pages != NULL and not decode else 0)
    cdef size_t at_m = carve(&used, rows * sizeof(double))
    cdef size_t at_l = carve(&used, rows * sizeof(double))
    # Shared: one slot of packed K/V (and its flags) per head of a group,
    # or per thread in the per-head schedule; the decode/chunk partials.
    slots = 0 if decode else (group if group > 0 else nthreads)
    cdef size_t shared = 0
    cdef size_t at_kv = carve(&shared, slots * kv_bytes)
    cdef size_t at_flags = carve(&shared, slots * cdiv(p.f.S, p.bk))
    cdef size_t at_parts = carve(&shared, nbh * per_bh * p.bq * (p.f.Ev + 2)
                                 * itemsize if p.nchunks > 1 else 0)
    cdef Arena arena
    cdef Scratch *w
    cdef int t
    # Slot `nthreads` holds the shared buffers.
    arena_new(&arena, nthreads + 1, max(used, shared), func)
    try:
        for t in range(nthreads):
            w = <Scratch *>arena_at(&arena, t, at_w)
            w.qpack = arena_at(&arena, t, at_qpack)
            w.st = arena_at(&arena, t, at_st)
            w.acc = arena_at(&arena, t, at_acc)
            w.acct = arena_at(&arena, t, at_acct)
            w.ptpack = arena_at(&arena, t, at_ptpack)
            w.colbuf = arena_at(&arena, t, at_col)
            w.prev = arena_at(&arena, t, at_prev)
            w.qrow = arena_at(&arena, t, at_qrow)
            w.gather = arena_at(&arena, t, at_gather)
            w.m = <double *>arena_at(&arena, t, at_m)
            w.l = <double *>arena_at(&arena, t, at_l)
        with nogil:
            team_enter()
            if p.f.is_f32:
                run[float](&p, oq.data, ok.data, ov.data, om.data,
                           <void *>oo.data, <float *>lse_ptr,
                           oq.off, ok.off, ov.off, om.off, oo.off, nbh,
                           group, &arena,
                           <float *>arena_at(&arena, nthreads, at_kv),
                           <uint8_t *>arena_at(&arena, nthreads, at_flags),
                           <float *>arena_at(&arena, nthreads, at_parts),
                           nthreads)
            else:
                run[double](&p, oq.data, ok.data, ov.data, om.data,
                            <void *>oo.data, <double *>lse_ptr,
                            oq.off, ok.off, ov.off, om.off, oo.off, nbh,
                            group, &arena,
                            <double *>arena_at(&arena, nthreads, at_kv),
                            <uint8_t *>arena_at(&arena, nthreads, at_flags),
                            <double *>arena_at(&arena, nthreads, at_parts),
                            nthreads)
            team_leave()
    finally:
        arena_free(&arena)


def exp_neg(cnp.ndarray x, cnp.ndarray y):
    """y = exp(x) with the active ISA's exp of the online softmax (defined
    for x <= 0 or NaN), for contiguous 1-D x, y of one dtype; the tests
    measure its error with this."""
    cdef int64_t n = x.shape[0]
    if x.dtype == np.float32:
        cattn_cols_f32_for(active_isa()).exp_neg(
            n, <const float *>cnp.PyArray_DATA(x), <float *>cnp.PyArray_DATA(y))
    else:
        cattn_cols_f64_for(active_isa()).exp_neg(
            n, <const double *>cnp.PyArray_DATA(x),
            <double *>cnp.PyArray_DATA(y))


def softcap_scores(cnp.ndarray x, double cap):
    """x = cap·tanh(x / cap) in place with the active ISA's score cap, for
    contiguous 1-D float32 or float64 x; the tests measure its error with
    this."""
    cdef int64_t n = x.shape[0]
    if x.dtype == np.float32:
        cattn_cols_f32_for(active_isa()).tile_softcap(
            1, n, <float *>cnp.PyArray_DATA(x), n, <float>cap)
    else:
        cattn_cols_f64_for(active_isa()).tile_softcap(
            1, n, <double *>cnp.PyArray_DATA(x), n, cap)
