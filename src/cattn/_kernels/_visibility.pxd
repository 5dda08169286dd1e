# Which keys a query may see: the causal / window rules and the mask, shared
# by the attention kernels (forward, backward, top-k; inline, no module).
#
# Key j is visible to query i when, with d = i + diag,
#     j <= d  or  j < prefix        (causal; prefix = 0 without one)
#     d - left <= j                 (has_left)
#     j <= d + right                (has_right)
#     (d + key0) // chunk == (j + key0) // chunk        (chunk > 0)
# and the mask (bool or -inf) does not hide it; the mask is applied to the
# tiles, these bounds decide which tiles are visited at all.  Each row's
# keys are one interval [first_visible, last_visible], and both ends are
# nondecreasing in i, which the tile tests below rely on.  key0 is the
# global position of key 0 (a block of a larger call: cattn.dask): chunks
# and the prefix count global positions.
from libc.math cimport INFINITY
from libc.stdint cimport int64_t, uint8_t

from ._gemm cimport cdiv, floating, imax, imin
from ._tables cimport cattn_cols_f32, cattn_cols_f64


cdef struct Visibility:
    int64_t L, S            # the rows and keys that exist (per-row lengths)
    bint causal, has_left, has_right
    int64_t diag, left, right
    int64_t offset          # S - L: bottom-right's diagonal and ALiBi's
    int64_t chunk           # > 0: chunked attention (Llama 4's), in keys
    int64_t prefix          # > 0 (causal): keys every query sees
    int64_t key0            # global position of key 0


cdef inline void set_visibility(Visibility *v, int64_t L, int64_t S,
                               bint causal, int64_t diag, left,
                               right, int64_t chunk=0, int64_t prefix=0,
                               int64_t key0=0) except *:
    """Fill v from the drivers' arguments (left/right: None = unbounded;
    chunk, prefix: 0 = none)."""
    v.L, v.S = L, S
    v.offset = S - L
    v.causal = causal
    v.diag = diag
    v.has_left = left is not None
    v.has_right = right is not None
    v.left = left if left is not None else 0
    v.right = right if right is not None else 0
    v.chunk = chunk
    v.prefix = prefix if causal else 0
    v.key0 = key0


cdef inline int64_t chunk_start(const Visibility *v,
                                int64_t j) noexcept nogil:
    """The first key of key position j's chunk (local index; floor
    division, so a position before key 0 rounds down)."""
    cdef int64_t g = j + v.key0
    cdef int64_t q = g // v.chunk
    if q * v.chunk > g:         # C division truncates toward zero
        q -= 1
    return q * v.chunk - v.key0


cdef inline int64_t first_visible(const Visibility *v,
                                  int64_t i) noexcept nogil:
    """Smallest key index query i may see (may exceed S: none)."""
    cdef int64_t lo = 0
    if v.has_left:
        lo = imax(lo, i + v.diag - v.left)
    if v.chunk > 0:
        lo = imax(lo, chunk_start(v, i + v.diag))
    return lo


cdef inline int64_t last_visible(const Visibility *v,
                                 int64_t i) noexcept nogil:
    """Largest key index query i may see (may be < 0: none)."""
    cdef int64_t hi = v.S - 1
    if v.causal:
        hi = imin(hi, i + v.diag if v.prefix == 0
                  else imax(i + v.diag, v.prefix - 1 - v.key0))
    if v.has_right:
        hi = imin(hi, i + v.diag + v.right)
    if v.chunk > 0:
        hi = imin(hi, chunk_start(v, i + v.diag) + v.chunk - 1)
    return hi


cdef inline int64_t visible_pairs(const Visibility *v, int64_t i0,
                                  int64_t nq, int64_t lo,
                                  int64_t hi) noexcept nogil:
    """(query, key) pairs visible among queries i0..i0+nq-1 and keys
    lo..hi-1: the work a schedule model counts for them."""
    cdef int64_t i, n = 0
    for i in range(i0, i0 + nq):
        n += imax(0, imin(hi, last_visible(v, i) + 1)
                  - imax(lo, first_visible(v, i)))
    return n


cdef inline int64_t first_query(const Visibility *v,
                                int64_t j) noexcept nogil:
    """Smallest query index that may see key j (last_visible(i) >= j);
    none for a key past S (a per-row length's padding in a tile)."""
    cdef int64_t i = -(1 << 62)
    if j >= v.S:
        return 1 << 62
    if v.causal and j + v.key0 >= v.prefix:
        i = imax(i, j - v.diag)
    if v.has_right:
        i = imax(i, j - v.diag - v.right)
    if v.chunk > 0:             # d >= the first key of j's chunk
        i = imax(i, chunk_start(v, j) - v.diag)
    return i


cdef inline int64_t last_query(const Visibility *v,
                               int64_t j) noexcept nogil:
    """Largest query index that may see key j (first_visible(i) <= j)."""
    cdef int64_t i = 1 << 62
    if v.has_left:
        i = j - v.diag + v.left
    if v.chunk > 0:             # d <= the last key of j's chunk
        i = imin(i, chunk_start(v, j) + v.chunk - 1 - v.diag)
    return i


cdef inline bint block_fully_visible(const Visibility *v, int64_t i0,
                                     int64_t nq, int64_t k0,
                                     int64_t nk) noexcept nogil:
    """Every query of i0..i0+nq may see every key of k0..k0+nk (by the
    bounds, before any mask): the corners decide."""
    return (first_query(v, k0 + nk - 1) <= i0
            and last_query(v, k0) >= i0 + nq - 1)


cdef inline bint block_any_visible(const Visibility *v, int64_t i0,
                                   int64_t nq, int64_t k0,
                                   int64_t nk) noexcept nogil:
    """Some query of i0..i0+nq may see some key of k0..k0+nk."""
    cdef int64_t i
    for i in range(i0, i0 + nq):
        if (imax(first_visible(v, i), k0)
                <= imin(last_visible(v, i), k0 + nk - 1)):
            return True
    return False


# Mask kinds (the Python frame reads them from _frame.MASK_KINDS).
cdef enum:
    MASK_NONE = 0
    MASK_BOOL = 1
    MASK_ADD = 2


cdef inline void mask_rows(const cattn_cols_f32 *t32,
                           const cattn_cols_f64 *t64,
                           const Visibility *v, int mask_kind,
                           const void *mask, int64_t rs_m, int64_t cs_m,
                           floating *tile, int64_t ld, int64_t i0,
                           int64_t nq, int64_t k0,
                           int64_t nk) noexcept nogil:
    """In a tile of queries i0..i0+nq (rows, stride ld) x keys k0..k0+nk:
    add the float mask, or hide (-inf) what the bool mask, causal or the
    window hide.  `mask` points at this head's (L, S) mask.  The element
    steps are t32's or t64's (attention/tile.tmpl.h): the call's level's
    rows (Frame.c32, c64)."""
    cdef int64_t r
    cdef floating *row
    for r in range(nq):
        row = tile + r * ld
        if floating is float:
            if mask_kind == MASK_ADD:
                t32.row_mask_add(nk, row, <const float *>mask
                                 + (i0 + r) * rs_m + k0 * cs_m, cs_m)
            elif mask_kind == MASK_BOOL:
                t32.row_mask_bool(nk, row, <const uint8_t *>mask
                                  + (i0 + r) * rs_m + k0 * cs_m, cs_m)
            t32.hide_outside(nk, row, first_visible(v, i0 + r) - k0,
                             last_visible(v, i0 + r) - k0)
        else:
            if mask_kind == MASK_ADD:
                t64.row_mask_add(nk, row, <const double *>mask
                                 + (i0 + r) * rs_m + k0 * cs_m, cs_m)
            elif mask_kind == MASK_BOOL:
                t64.row_mask_bool(nk, row, <const uint8_t *>mask
                                  + (i0 + r) * rs_m + k0 * cs_m, cs_m)
            t64.hide_outside(nk, row, first_visible(v, i0 + r) - k0,
                             last_visible(v, i0 + r) - k0)


cdef inline bint ranks_above(floating a, int64_t ja, floating b,
                             int64_t jb) noexcept nogil:
    """Score a of key ja ranks above score b of key jb in top-k selection:
    NaN above everything (as numpy.argmax), then larger scores, then, for
    equal scores, the lower key index."""
    if a > b:                   # the common cases first: no NaN
        return True
    if a < b:
        return False
    if a == b:
        return ja < jb
    if a != a:                  # a is NaN
        return b == b or ja < jb
    return False                # b is NaN, a is not
