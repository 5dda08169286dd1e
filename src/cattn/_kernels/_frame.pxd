# The attention frame, kernel side: what the three attention drivers
# (_attention.pyx forward, _topk.pyx selection, _attention_grad.pyx backward)
# share, so each keeps only its own plan, work items and tile step.
#
#   Frame      the problem: sizes, visibility, mask kind, scale, top-k,
#              threads; read once from the Python frame's Call (_frame.py).
#   Operand    one array as a kernel walks it: element 0, row and column
#              strides in elements, the offset of each work item's matrix.
#   Operands   owns the walked arrays and their offsets for one call, and
#              asserts each operand's contract (shape, every reachable
#              element inside the array's own memory) before any kernel
#              reads it.
#   Arena      per-thread scratch: one zeroed allocation for all threads,
#              carved into 64-byte aligned fields, freed in one place.
cimport numpy as cnp
from libc.math cimport INFINITY
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint64_t

from ._cpu cimport active_isa
from ._gemm cimport cdiv, floating, imax, imin
from ._tables cimport (cattn_cols_f32, cattn_cols_f32_for, cattn_cols_f64,
                      cattn_cols_f64_for, cattn_topk_f32, cattn_topk_f32_for,
                      cattn_topk_f64, cattn_topk_f64_for)
from ._visibility cimport (MASK_BOOL, MASK_NONE, Visibility, first_visible,
                           last_visible)


# Fields of _frame.Call (the NamedTuple's order): the drivers read a Call
# by these names, c[C_GROUP], never by a bare position.  Anonymous, so
# each is a plain C int and c[C_L] of a tuple compiles to a direct item
# read (a named enum is boxed to a Python int and looked up generically:
# 0.3 us a call).
cdef enum:
    C_FUNC = 0
    C_DTYPE = 1
    C_BATCH = 2
    C_GROUP = 3
    C_L = 4
    C_S = 5
    C_E = 6
    C_EV = 7
    C_MASK_KIND = 8
    C_CAUSAL = 9
    C_WINDOW = 10
    C_SCALE = 11
    C_TOP_K = 12
    C_THREADS = 13
    C_PRECISION = 14
    C_SOFTCAP = 15
    C_SINKS = 16
    C_ALIBI = 17
    C_Q_LENS = 18
    C_K_LENS = 19
    C_ORIGIN = 20
    C_SPANS = 21


cdef struct Frame:
    Visibility vis
    int64_t L, S, E, Ev
    int64_t nitems          # batch·head matrices walked (len of offsets)
    int mask_kind           # MASK_NONE / MASK_BOOL / MASK_ADD
    double scale
    int64_t top_k           # 0: full attention
    int threads             # the caller's num_threads, resolved
    int is_f32              # compute dtype float32 (else float64)
    int is_native           # operands in the compute dtype (else 16-bit
                            # storage computed in float32, _convert.pxd)
    int highest             # precision="highest" (_frame.precision_value)
    # What current models do to the scores, in this order after the scale
    # and before the mask (adjust_scores); each per work item (C order
    # over the walked batch) or NULL.
    double softcap          # > 0: s = softcap·tanh(s / softcap); 0: none
    const double *slopes    # ALiBi: s -= slope·|i + S - L - j|
    const double *sinks     # one logit without a value in each softmax
    # Per-row lengths, per work item (query heads: the gradient's items
    # times its group), or both NULL: item_visibility.
    const int64_t *q_lens
    const int64_t *k_lens
    # The global positions of query 0 and key 0 (Call.origin; 0, 0 for a
    # whole call): the lengths are then global, and item_visibility and
    # item_keys cut them to this block.
    int64_t q0, k0
    bint bottom_right       # is_causal="bottom_right": diag = S - L
    # The SIMD level of this call and its rows of the column-kernel tables,
    # resolved once (read_call): every kernel a driver runs for the call
    # comes from this level, and no tile loop looks a table up again.
    int isa
    const cattn_cols_f32 *c32
    const cattn_cols_f64 *c64
    const cattn_topk_f32 *k32       # top-k's scans and hiding
    const cattn_topk_f64 *k64


cdef struct Operand:
    const char *data        # element 0 of the walked array
    int64_t rs, cs          # row and column strides, in elements
    const int64_t *off      # element offset of item i's matrix


cdef class Operands:
    cdef list keep          # the walked arrays (copies of odd layouts)
    cdef int64_t *offsets   # one block: MAX_OPERANDS x nitems
    cdef int64_t nitems
    cdef int count
    cdef Operand op[8]
    cdef Operand *add(self, object x, tuple items, int64_t rows,
                      int64_t cols, str func, str name) except NULL
    cdef Operand *add_ragged(self, object x, object starts, object lens,
                             int64_t group, int64_t cols, str func,
                             str name) except NULL
    cdef Operand *absent(self) except NULL
    cdef Operand *add_mask(self, object mask, const Frame *f, tuple items,
                           str func) except NULL


cdef int read_call(Frame *f, object call, tuple items) except -1
cdef bint walkable(cnp.ndarray x) noexcept
cdef int check_rows(object a, int64_t n, str func, str name) except -1
cdef int one_storage(str func, tuple arrays, int64_t *size) except -2
cdef int batch_offsets_into(cnp.ndarray a, tuple items, int64_t *off,
                            int64_t total) except -2


cdef struct Arena:
    char *base
    size_t per_thread       # bytes of one thread's slot (multiple of 64)


cdef inline size_t carve(size_t *used, size_t nbytes) noexcept nogil:
    """Reserve nbytes in a thread's slot; return their byte offset."""
    cdef size_t at = used[0]
    used[0] = at + ((nbytes + 63) & ~(<size_t>63))
    return at


cdef int arena_new(Arena *a, int nthreads, size_t per_thread,
                   str func, size_t shared=*) except -1
cdef void arena_free(Arena *a) noexcept nogil


cdef inline void *arena_at(const Arena *a, int t, size_t at) noexcept nogil:
    """Thread t's field at byte offset `at` (from carve); t = nthreads is
    the shared block's."""
    return a.base + <size_t>t * a.per_thread + at


cdef void *checked_alloc(size_t nbytes, str func) except NULL


cdef inline int64_t item_keys(const Frame *f, int64_t item) noexcept nogil:
    """The keys of work item `item` that exist: S, or its key length (cut
    to this block's keys, f.k0 on)."""
    if f.k_lens == NULL:
        return f.S
    return imax(0, imin(f.S, f.k_lens[item] - f.k0))


cdef inline void item_visibility(const Frame *f, int64_t item,
                                 Visibility *v) noexcept nogil:
    """The visibility of work item `item`: f.vis, or with per-row lengths
    its own L and S (rows at or past L see nothing: the drivers compute
    only the first L; keys at or past S do not exist), the bottom-right
    diagonal and the ALiBi offset counted from them.  A block of a larger
    call (f.q0, f.k0) sees its rows and keys that exist and the diagonals
    of the larger call, shifted to its own positions."""
    v[0] = f.vis
    if f.q_lens != NULL:
        v.L = imax(0, imin(f.L, f.q_lens[item] - f.q0))
        v.S = item_keys(f, item)
        v.offset = f.k_lens[item] - f.q_lens[item] + f.q0 - f.k0
        v.diag = v.offset if f.bottom_right else f.q0 - f.k0


cdef inline void adjust_scores(const Frame *f, int64_t item, floating *x,
                               int64_t ld, int64_t rows, int64_t n,
                               int64_t d0,
                               floating *capped=NULL) noexcept nogil:
    """Cap (softcap) and bias (ALiBi) a tile of work item `item`'s scores,
    x[r*ld + c] for r < rows, c < n, whose ALiBi distance |i + diag - j|
    is |d0 - r + c|: d0 = i0 + diag - k0 for the forward's transposed
    tiles (rows: keys from k0, columns: queries from i0), k0 - i0 - diag
    for row tiles (rows: queries, columns: keys), with diag the item's
    Visibility.offset (S - L).  Every driver computes a score the same way, so the
    top-k pass, the forward and the gradient agree bit for bit.  capped
    (row stride ld), if not NULL, gets the capped scores before the bias
    (the gradient's softcap derivative)."""
    cdef int64_t r, c
    if f.softcap > 0:
        if floating is float:
            f.c32.tile_softcap(
                rows, n, x, ld, <float>f.softcap)
        else:
            f.c64.tile_softcap(
                rows, n, x, ld, f.softcap)
        if capped != NULL:
            for r in range(rows):
                for c in range(n):
                    capped[r * ld + c] = x[r * ld + c]
    if f.slopes != NULL:
        if floating is float:
            f.c32.tile_alibi(
                rows, n, x, ld, <float>-f.slopes[item], d0)
        else:
            f.c64.tile_alibi(
                rows, n, x, ld, -f.slopes[item], d0)


cdef inline bint adjusts_scores(const Frame *f) noexcept nogil:
    return f.softcap > 0 or f.slopes != NULL


# Sparse attention (indices): what the forward's rows and the backward's
# share, so both see the same keys and make the same scores of them.

cdef extern from *:
    """
    static inline int cattn_ctz64(uint64_t x) { return __builtin_ctzll(x); }
    """
    int cattn_ctz64(uint64_t x) noexcept nogil


cdef inline int64_t listed_keys(const int32_t *row, int64_t t0, int64_t t1,
                                const Visibility *vis, int64_t i,
                                int64_t *keys, uint64_t *seen) noexcept nogil:
    """The keys query row i lists in slots t0..t1 of its list `row` that
    it may see -- not -1, within its causal and window bounds and its key
    length -- into keys[], in increasing order (whatever the slots'
    order: the sums then run the same way for any order of a list, and
    the rows are read in address order); how many.  `seen`: a bitmap of
    at least vis.S bits, all clear, and left clear.  (The mask acts on
    their scores: listed_scores.)  The lists were checked in range and
    free of repeats before any kernel ran."""
    cdef int64_t lo = first_visible(vis, i), hi = last_visible(vis, i)
    cdef int64_t t, j, w, n = 0
    cdef uint64_t bits
    if i >= vis.L or lo > hi:
        return 0
    for t in range(t0, t1):
        j = row[t]
        if lo <= j <= hi:           # first_visible >= 0: -1 never passes
            seen[j >> 6] |= (<uint64_t>1) << (j & 63)
    for w in range(lo >> 6, (hi >> 6) + 1):
        bits = seen[w]
        if bits == 0:
            continue
        seen[w] = 0
        while bits:
            keys[n] = (w << 6) + cattn_ctz64(bits)
            n += 1
            bits &= bits - 1
    return n


cdef inline void listed_scores(const Frame *f, int64_t item,
                               const Visibility *vis, int64_t i,
                               const int64_t *at, int64_t n, floating *s,
                               const char *mask_row, int64_t cs_m,
                               floating *capped) noexcept nogil:
    """The dense path's steps on the scores s[j] of row i of work item
    `item` and listed keys at[j]: cap, ALiBi bias at the key's own
    position, then the mask's element at[j] of the row (mask_row: row i of
    the item's mask, f.mask_kind's elements, stride cs_m) -- the same
    operations on the same values as a row tile of consecutive keys.
    capped (not NULL): the capped scores, before the bias (the gradient's
    softcap derivative)."""
    cdef int64_t j
    cdef const uint8_t *mb
    cdef const floating *ma
    if f.slopes != NULL:
        for j in range(n):
            adjust_scores(f, item, s + j, 1, 1, 1, at[j] - i - vis.offset,
                          capped + j if capped != NULL else NULL)
    elif f.softcap > 0:
        adjust_scores(f, item, s, n, 1, n, 0, capped)
    if f.mask_kind == MASK_NONE:
        return
    if f.mask_kind == MASK_BOOL:
        mb = <const uint8_t *>mask_row
        for j in range(n):
            if not mb[at[j] * cs_m]:
                s[j] = -INFINITY
    else:
        ma = <const floating *>mask_row
        for j in range(n):
            s[j] = s[j] + ma[at[j] * cs_m]


# The mask's tiles (classify_tiles, _frame.pyx): the class of item i's tile
# (qb, kb) is tiles[tile_of[i] + qb·nkb + kb]; with extents, a PARTIAL or
# INTERVAL tile's row extents are 2·bq int16 at that index times 2·bq.
# INTERVAL (only with extents, bool masks): a PARTIAL tile whose extents
# say all the mask says -- each row sees exactly the keys from its first
# to its last visible one, the rows that see any are one run, and along
# it both ends never decrease (a causal diagonal, a document's edge, a
# chunk, a prefix) -- so its hidden keys follow from the extents alone.
cdef enum:
    TILE_PARTIAL = 0
    TILE_EMPTY = 1
    TILE_FULL = 2
    TILE_INTERVAL = 3

cdef object classify_tiles(const void *src, const int64_t *off,
                           int64_t nitems, const Frame *f, int64_t rs,
                           int64_t cs, int64_t Bq, int64_t Bk, int64_t bq,
                           int64_t bk, int64_t nqb, bint extents,
                           int nthreads, const uint8_t **tiles,
                           const int64_t **tile_of, const int16_t **ext)

# A block mask (block_mask) in place of an element mask: query i of item
# bh may see key j where the byte t[off[bh] + (i // Bq)·rs + (j // Bk)·cs]
# is nonzero; t NULL: none.  add_block_mask fills it from the drivers'
# `blocks` argument, its layout checked as every operand's.
cdef struct BlockMask:
    const uint8_t *t
    const int64_t *off
    int64_t rs, cs, Bq, Bk

cdef int add_block_mask(Operands ops, object blocks, tuple items,
                        const Frame *f, str func,
                        BlockMask *bm) except -1

# classify_tiles with Bq > 0 reads a block mask (src its bytes, rs and cs
# its strides): the classes and extents it gives the mask expanded to
# bool bytes, read from the table; expand_blocks writes one tile of those
# bytes from item table t (a PARTIAL tile's, where the drivers apply it).
cdef void expand_blocks(const BlockMask *b, const uint8_t *t, int64_t i0,
                        int64_t nrows, int64_t k0, int64_t ncols,
                        uint8_t *out, int64_t ld) noexcept nogil
