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
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free
from libc.string cimport memcpy, memset

cimport numpy as cnp
import numpy as np

from ._cpu cimport active_isa, team_enter, team_leave
from ._frame cimport C_FUNC, C_GROUP, C_K_LENS, C_Q_LENS
from ._frame cimport (Arena, Frame, Operand, Operands, adjust_scores,
                      adjusts_scores, arena_at, arena_free, arena_new, carve,
                      checked_alloc, classify_tiles,
                      add_block_mask, BlockMask, expand_blocks, listed_keys,
                      listed_scores, TILE_EMPTY, TILE_FULL, TILE_INTERVAL,
                      TILE_PARTIAL,
                      check_rows, item_keys, item_visibility,
                      one_storage, read_call)
from ._convert cimport (CATTN_STORAGE_Q8, NATIVE, cattn_convert,
                       cattn_convert_for, cattn_q8_view, element, narrow,
                       storage_of, widen)
from ._gemm cimport (GemmKernel, RowProducts, axpy_rows, axpy_rows_at,
                     call_ukernel, dot_rows_at,
                     dot_rows, floating, gemm_kernel, pack_a_k, pack_b_for,
                     pack_b_k, panel_depth, row_products, shift)
from ._softmax cimport (cattn_rows_f32, cattn_rows_f32_for, cattn_rows_f64,
                       cattn_rows_f64_for)
from ._tables cimport (cattn_attention_blocks, cattn_attention_blocks_for,
                       cattn_cols_f32, cattn_cols_f32_for, cattn_cols_f64,
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
    # The float32 tiles' online-softmax step (cols.tmpl.h): with pairs in
    # kern_v, which rounds P to bf16, the one whose exp is accurate to
    # bf16 (relative error <= 1.02e-4); else the exact one.
    int (*softmax32)(int64_t, int64_t, int64_t, float *, int64_t, double *,
                     double *, float *, float *) noexcept nogil
    # The decode rows' row kernels (softmax/, at the call's level p.f.isa),
    # their products with K and V rows read from `storage`, and the
    # conversions of a 16-bit query and out (NULL for the compute dtype).
    const cattn_rows_f32 *r32
    const cattn_rows_f64 *r64
    RowProducts rows
    const cattn_convert *cv_q
    const cattn_convert *cv_out
    # Blocking: query blocks of bq (a multiple of NR), key blocks of bk (a
    # multiple of MR), key chunks of `chunk` (a multiple of bk).
    int64_t bq, bk, nqb, nchunks, chunk
    bint decode       # one query row per block, no packing (rows.tmpl.h)
    # The decode path's items take up to decode_rows of `span` consecutive
    # items: the `group` query heads that share a key/value head (GQA;
    # group 1 without it), or with a paged cache every head of a sequence.
    int64_t span, decode_rows
    # Packed layouts: K as MR-row panels over all S_pad keys, by KC chunks of
    # E; V per key block (vblk words each): NR-column panels (v_cols wide),
    # or with pairs Vᵀ as MR-row panels of ev_rows rows.  The accumulators'
    # rows hold Ev in whole vectors of the column kernels (ev_pad): the
    # P·V products store only the columns that exist, so a head narrower
    # than NR does not carry NR columns through every tile.
    int64_t s_pad, ev_pad, v_cols, ev_rows, vblk, kpack_size, vpack_size
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
    # Sparse attention (indices; else sel is NULL): query row i of item bh
    # lists the keys sel[off_sel[bh] + i·rs_sel + t] for t < nsel, -1 for
    # an empty slot, checked in range and free of repeats before any
    # kernel runs.  Such a call takes the row path at any L; its key
    # chunks cut the list, not the keys.
    const int32_t *sel
    const int64_t *off_sel
    int64_t rs_sel, nsel
    # The mask's tiles (forward/masks.pxi; else tiles is NULL): the class
    # of item bh's tile (qb, kb) is tiles[tile_of[bh] + qb·nkb + kb].
    # skip_empty: the caller's (an all-hidden tile is a no-op: always for
    # a bool mask, for a float one when no score can be inf or NaN).
    const uint8_t *tiles
    const int64_t *tile_of
    bint skip_empty
    # With skip_empty, a PARTIAL tile's row extents: 2·bq int16 a tile, at
    # the same index times 2·bq (masks.pxi); else NULL.
    const int16_t *extents
    # A block mask (block_mask; else bm.t is NULL) in place of a mask
    # (_frame.pxd).  Tiled path only (the caller folds it into a mask for
    # the row paths); its tiles are classified from the table, and a
    # PARTIAL tile's bytes are expanded into Scratch.tmask where the mask
    # would be read (masks.pxi).
    BlockMask bm


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
    int64_t *keys     # indices: the keys a row lists and may see, chunk
    uint64_t *seen    # indices: a bitmap of S bits (listed_keys), clear
    int64_t *phys     # indices, paged: a key block's rows in the pool,
                      # K's then V's (bk each), from page 0's row 0
    uint8_t *tmask    # block mask: one PARTIAL tile's mask bytes, bq x bk
    double *m         # bq running max
    double *l         # bq running sum


# The forward's parts, one file each with its contract at the top; textual
# includes, so the tile and row steps stay inline C in one module (a fused,
# nogil function cannot cross a Cython module boundary without a call
# through a pointer per tile).
include "forward/readers.pxi"
include "forward/plan.pxi"
include "forward/masks.pxi"
include "forward/tiles.pxi"
include "forward/rows.pxi"
include "forward/decode.pxi"
include "forward/schedule.pxi"


def attention(call, tuple items, cnp.ndarray q, cnp.ndarray k,
              cnp.ndarray v, mask, cnp.ndarray o, lse, thr, quant=None,
              ragged=None, paged=None, list schedule=None, indices=None,
              bint skip_empty=False, blocks=None):
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

    indices: None, or sparse attention's selected keys: int32, shape
    items-broadcastable + (L, k) with a unit last stride, every value in
    [-1, S) and no key twice in a row (the caller checks: _frame.listed);
    -1 is an empty slot.  Query row i attends only the keys its row lists
    that it may also see.  Needs unit-stride rows of q, k and v (the row
    path reads them where they lie) and no top-k; with a paged cache, a
    page stride that is a whole number of rows.

    skip_empty: the mask's all-hidden tiles may be skipped (_frame's
    skip_empty_tiles: a bool mask, or a float one whose scores are bounded
    finite); they are then, and its partial tiles cut to their rows'
    extents (forward/masks.pxi).

    blocks: None, or a block mask in place of an element mask (block_mask)
    as (table, Bq, Bk): table uint8 (the bool table's bytes), shape
    items-broadcastable + (ceil(L / Bq), ceil(S / Bk)); no mask, no
    indices, no top-k, and a shape the tiled path takes (the caller
    folds the table into a mask otherwise); skip_empty set.
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
    q_lens = None
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
    # K and V share a storage (int8 values with quant); a float32 query
    # may read a 16-bit KV cache; out is the compute dtype or the storage.
    p.storage = one_storage(func, (k, v), &p.in_size)
    p.q_storage, p.q_size = storage_of(q), cnp.PyArray_ITEMSIZE(q)
    p.out_storage, p.out_size = storage_of(o), cnp.PyArray_ITEMSIZE(o)
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
    elif not computes(k, p.f.is_f32):
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
    if paged is not None:
        set_pages(&p, paged, ok, ov, nbh, quant, func)
    cdef Operand *osel
    cdef cnp.ndarray sel_a
    p.sel = NULL
    p.nsel = 0
    if indices is not None:
        sel_a = indices
        p.nsel = sel_a.shape[sel_a.ndim - 1]
        if ragged is None:
            osel = ops.add(sel_a, items, p.f.L, p.nsel, func, "indices")
        else:           # (Hkv, total_q, k): a sequence's rows per kv head
            osel = ops.add_ragged(sel_a, ragged[0], q_lens, group_kv,
                                  p.nsel, func, "indices")
        if (sel_a.dtype != np.int32 or thr is not None
                or (p.nsel > 1 and osel.cs != 1)
                or (paged is not None and (
                    p.page_stride[0] % max(p.rs_k, 1)
                    or p.page_stride[1] % max(p.rs_v, 1)))):
            raise AssertionError(f"{func}: cattn internal error: indices")
        p.sel = <const int32_t *>osel.data
        p.off_sel = osel.off
        p.rs_sel = osel.rs
    if blocks is not None and (mask is not None or indices is not None
                               or thr is not None or not skip_empty):
        raise AssertionError(f"{func}: cattn internal error: a block mask "
                             "with a mask, indices or top-k")
    add_block_mask(ops, blocks, items, &p.f, func, &p.bm)
    cdef int nthreads
    cdef int64_t group, slots
    # (Listed keys with nothing to list -- no keys, or no slots -- read no
    # row: their layout does not matter.)
    plan(&p, nbh, group_kv, ((p.f.E <= 1 or (oq.cs == 1 and ok.cs == 1))
                             and (p.f.Ev <= 1 or ov.cs == 1))
         or (p.sel != NULL and (p.f.S == 0 or p.nsel == 0)), func,
         &nthreads, &group)
    cdef bint decode = p.decode
    if p.bm.t != NULL and decode:
        raise AssertionError(f"{func}: cattn internal error: a block mask "
                             "on the row path")
    cdef GemmKernel kern = p.kern
    cdef int64_t itemsize = 4 if p.f.is_f32 else 8
    cdef int64_t per_bh = p.nqb * p.nchunks
    cdef int64_t kv_bytes = (p.kpack_size + p.vpack_size) * itemsize
    if schedule is not None:        # describe the schedule, run nothing
        schedule.append(describe(&p, nbh, group, nthreads))
        return
    # The mask's empty and full tiles, once per call (tiled path only: the
    # decode rows read a row of the mask per key block anyway).
    p.tiles = NULL
    p.skip_empty = skip_empty
    cdef object tile_arrays = None
    if p.bm.t != NULL:
        tile_arrays = classify_tiles(p.bm.t, p.bm.off, nbh, &p.f, p.bm.rs,
                                     p.bm.cs, p.bm.Bq, p.bm.Bk, p.bq, p.bk,
                                     p.nqb, True, p.f.threads, &p.tiles,
                                     &p.tile_of, &p.extents)
    elif p.f.mask_kind != MASK_NONE and not decode:
        tile_arrays = classify(&p, om.data, om.off, nbh, p.f.threads)
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
    cdef size_t at_keys = carve(&used, (p.chunk if p.sel != NULL else 0)
                                * sizeof(int64_t))
    cdef size_t at_seen = carve(&used, (cdiv(p.f.S, 64) + 1) * 8
                                if p.sel != NULL else 0)
    cdef size_t at_phys = carve(&used, 2 * p.bk * sizeof(int64_t)
                                if p.sel != NULL and p.pages != NULL else 0)
    cdef size_t at_tmask = carve(&used, p.bq * p.bk if p.bm.t != NULL
                                 else 0)
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
    # The shared buffers follow the nthreads slots.
    arena_new(&arena, nthreads, used, func, shared)
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
            w.keys = <int64_t *>arena_at(&arena, t, at_keys)
            w.phys = <int64_t *>arena_at(&arena, t, at_phys)
            w.seen = <uint64_t *>arena_at(&arena, t, at_seen)
            w.tmask = <uint8_t *>arena_at(&arena, t, at_tmask)
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


def row_path_rows():
    """The most query rows the row (decode) path takes at the active ISA
    (plan): the frame folds a block mask on so few rows into a mask."""
    return cattn_attention_blocks_for(active_isa())[0].decode_max_l


def exp_neg(cnp.ndarray x, cnp.ndarray y, bint p16=False):
    """y = exp(x) with the active ISA's exp of the online softmax (defined
    for x <= 0 or NaN) -- with p16, the one for a P rounded to bf16 -- for
    contiguous 1-D x, y of one dtype; the tests measure its error with
    this."""
    cdef int64_t n = x.shape[0]
    cdef const cattn_cols_f32 *c32
    cdef const cattn_cols_f64 *c64
    if x.dtype == np.float32:
        c32 = cattn_cols_f32_for(active_isa())
        (c32.exp_neg_p16 if p16 else c32.exp_neg)(
            n, <const float *>cnp.PyArray_DATA(x), <float *>cnp.PyArray_DATA(y))
    else:
        c64 = cattn_cols_f64_for(active_isa())
        (c64.exp_neg_p16 if p16 else c64.exp_neg)(
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


def check_indices(cnp.ndarray a, int64_t S, int num_threads):
    """The first flaw of sparse attention's key lists `a` (int32,
    C-contiguous (rows, k)), or None: (row, slot, 1) for a value outside
    [-1, S), (row, slot, 2) for a key its row lists a second time.  Rows
    run in parallel in static blocks, each thread marking its row's keys in
    its own bitmap of S bits (cleared again from the list: O(k) a row), so
    the lowest flawed row is each block's first, whatever the team."""
    cdef int64_t rows = a.shape[0], k = a.shape[1], words = cdiv(S, 64) + 1
    cdef int nthreads = <int>max(1, min(<int64_t>num_threads,
                                        rows * k // 65536))
    cdef const int32_t *x = <const int32_t *>cnp.PyArray_DATA(a)
    cdef int64_t *found = NULL
    cdef uint64_t *bits = NULL
    cdef int64_t r, t, j, tid, best = -1
    if a.dtype != np.int32 or a.ndim != 2 or not (
            cnp.PyArray_IS_C_CONTIGUOUS(a)):
        raise AssertionError("cattn internal error: indices layout")
    if rows == 0 or k == 0:
        return None
    found = <int64_t *>checked_alloc(3 * nthreads * sizeof(int64_t),
                                     "check_indices")
    bits = <uint64_t *>checked_alloc(nthreads * words * sizeof(uint64_t),
                                     "check_indices")
    try:
        memset(bits, 0, nthreads * words * sizeof(uint64_t))
        for t in range(nthreads):
            found[3 * t] = -1
        with nogil:
            for r in prange(rows, schedule='static', num_threads=nthreads):
                tid = threadid()
                if found[3 * tid] < 0:
                    check_row(x + r * k, k, S, bits + tid * words,
                              r, found + 3 * tid)
        for t in range(nthreads):
            if found[3 * t] >= 0 and (best < 0 or found[3 * t] < found[3 * best]):
                best = t
        if best < 0:
            return None
        return (found[3 * best], found[3 * best + 1], found[3 * best + 2])
    finally:
        free(found)
        free(bits)


cdef void check_row(const int32_t *row, int64_t k, int64_t S,
                    uint64_t *bits, int64_t r, int64_t *found) noexcept nogil:
    """check_indices for one row: its first flaw into found[0:3]."""
    cdef int64_t t, j, n = k
    for t in range(k):
        j = row[t]
        if j == -1:
            continue
        if j < -1 or j >= S:
            found[0], found[1], found[2] = r, t, 1
            n = t
            break
        if bits[j >> 6] & (<uint64_t>1 << (j & 63)):
            found[0], found[1], found[2] = r, t, 2
            n = t
            break
        bits[j >> 6] |= <uint64_t>1 << (j & 63)
    for t in range(n):
        j = row[t]
        if j >= 0:
            bits[j >> 6] = 0
