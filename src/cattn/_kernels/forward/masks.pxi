# forward/masks.pxi -- the mask's tiles, classified once per call
# (included by _attention.pyx).
#
# Contract: before the tiled path runs with a mask, classify() reads each
# distinct (L, S) matrix of the mask once and marks every (query block, key
# block) tile of the plan EMPTY (the mask hides all of it: False, or -inf),
# FULL (it hides and adds nothing: True, or ±0) or PARTIAL.  attend_block
# then skips an EMPTY tile outright and applies no mask to a FULL one.
# Both are exact: a tile whose every score is -inf is a no-op of the online
# softmax (m, l and O unchanged), as the causal skip already relies on; and
# adding ±0 changes no score but the sign of a zero, which exp() ignores.
# One exception is kept: a float mask's -inf added to a score that is
# NaN or +inf gives NaN, which the dense call propagates; so a float mask's
# EMPTY tiles are skipped only when the call's scores are known finite
# (Problem.finite_scores, from the inputs' bounds), a bool mask's always.
#
# A PARTIAL tile also gets its rows' extents: the first and last key of
# the tile each query row may see by the mask (tile_extents).  Under the
# same condition attend_block then skips the score panels no row of which
# reaches (the mask writes -inf over whatever they held) and cuts each P·V
# panel's depth to its rows' extents (their weights outside are exactly
# 0): a causal diagonal or a document edge written into the mask costs
# what is_causal's own cut costs.  The online softmax still walks every
# key of the tile, so no sum changes its order.

cdef enum:
    TILE_PARTIAL = 0
    TILE_EMPTY = 1
    TILE_FULL = 2


cdef uint8_t tile_class(const Problem *p, const char *m, int64_t nrows,
                        int64_t ncols, floating *kind) noexcept nogil:
    """The class of the tile of nrows x ncols mask elements from m (mask
    strides rs_m, cs_m; bool bytes, or `floating` for a float mask)."""
    cdef int64_t r, c
    cdef int all_in = 1, any_in = 0, zero = 1, ninf = 1
    cdef const uint8_t *b
    cdef const floating *f
    cdef floating x
    for r in range(nrows):
        if p.f.mask_kind == MASK_BOOL:
            b = <const uint8_t *>m + r * p.rs_m
            if p.cs_m == 1:
                for c in range(ncols):
                    all_in &= b[c]
                    any_in |= b[c]
            else:
                for c in range(ncols):
                    all_in &= b[c * p.cs_m]
                    any_in |= b[c * p.cs_m]
            if any_in and not all_in:
                return TILE_PARTIAL
        else:
            f = <const floating *>m + r * p.rs_m
            for c in range(ncols):
                x = f[c * p.cs_m]
                zero &= x == 0
                ninf &= x == -INFINITY
            if not zero and not ninf:
                return TILE_PARTIAL
    if p.f.mask_kind == MASK_BOOL:
        return TILE_FULL if all_in else TILE_EMPTY
    return TILE_FULL if zero else TILE_EMPTY


cdef void tile_extents(const Problem *p, const char *m, int64_t nrows,
                       int64_t ncols, int16_t *ext,
                       floating kind) noexcept nogil:
    """ext[2r], ext[2r + 1]: the first and last column of row r of the
    tile (as tile_class) that is visible (True, or not -inf); ncols and
    -1 for a row with none."""
    cdef int64_t r, c, lo, hi
    cdef const uint8_t *b
    cdef const floating *f
    for r in range(nrows):
        lo, hi = ncols, -1
        if p.f.mask_kind == MASK_BOOL:
            b = <const uint8_t *>m + r * p.rs_m
            for c in range(ncols):
                if b[c * p.cs_m]:
                    lo = c
                    break
            c = ncols - 1
            while c > lo and not b[c * p.cs_m]:
                c -= 1
            hi = c if lo < ncols else -1
        else:
            f = <const floating *>m + r * p.rs_m
            for c in range(ncols):
                if f[c * p.cs_m] != -INFINITY:
                    lo = c
                    break
            c = ncols - 1
            while c > lo and f[c * p.cs_m] == -INFINITY:
                c -= 1
            hi = c if lo < ncols else -1
        ext[2 * r] = <int16_t>lo
        ext[2 * r + 1] = <int16_t>hi


cdef void classify_row(const Problem *p, const void *mask, int64_t off,
                       int64_t qb, uint8_t *out,
                       int16_t *ext) noexcept nogil:
    """Classes of query block qb's tiles (every key block) of the mask
    matrix at element offset off, into out[0:nkb], and the row extents of
    its PARTIAL ones into ext (2·bq values a tile)."""
    cdef int64_t kb, i0 = qb * p.bq, nrows = imin(p.bq, p.f.L - i0), nc
    cdef size_t item = 1 if p.f.mask_kind == MASK_BOOL else (
        4 if p.f.is_f32 else 8)
    cdef const char *m = <const char *>mask + (off + i0 * p.rs_m) * item
    cdef const char *mt
    for kb in range(cdiv(p.f.S, p.bk)):
        mt = m + kb * p.bk * p.cs_m * item
        nc = imin(p.bk, p.f.S - kb * p.bk)
        if p.f.is_f32:
            out[kb] = tile_class[float](p, mt, nrows, nc, NULL)
            if out[kb] == TILE_PARTIAL:
                tile_extents[float](p, mt, nrows, nc, ext + kb * 2 * p.bq,
                                    0)
        else:
            out[kb] = tile_class[double](p, mt, nrows, nc, NULL)
            if out[kb] == TILE_PARTIAL:
                tile_extents[double](p, mt, nrows, nc, ext + kb * 2 * p.bq,
                                     0)


cdef inline bint panel_reached(const int16_t *ext, int64_t q0, int64_t nq,
                               int64_t c0, int64_t nc) noexcept nogil:
    """Some row q0..q0+nq of a PARTIAL tile may see a column c0..c0+nc by
    its extents."""
    cdef int64_t q
    for q in range(q0, q0 + nq):
        if ext[2 * q] < c0 + nc and ext[2 * q + 1] >= c0:
            return True
    return False


cdef object classify(Problem *p, const void *mask, const int64_t *off_m,
                     int64_t nbh, int nthreads):
    """Fill p.tiles / p.tile_of for the items' mask matrices (each
    distinct offset read once, its query blocks in parallel); returns the
    arrays that hold them (kept alive by the caller)."""
    cdef cnp.ndarray offs = np.asarray(<const int64_t[:nbh]>off_m)
    cdef cnp.ndarray uniq, where
    uniq, where = np.unique(offs, return_inverse=True)
    cdef int64_t nkb = cdiv(p.f.S, p.bk), per = p.nqb * nkb
    cdef cnp.ndarray tiles = np.empty(len(uniq) * per, np.uint8)
    cdef cnp.ndarray tile_of = where.astype(np.int64) * per
    cdef const int64_t *u = <const int64_t *>cnp.PyArray_DATA(uniq)
    cdef uint8_t *t = <uint8_t *>cnp.PyArray_DATA(tiles)
    cdef int64_t n = len(uniq) * p.nqb, job
    cdef int team = <int>max(1, min(<int64_t>nthreads, n))
    cdef cnp.ndarray ext = np.empty(len(uniq) * per * 2 * p.bq, np.int16)
    cdef int16_t *e = <int16_t *>cnp.PyArray_DATA(ext)
    if p.bk > 32767:
        raise AssertionError("cattn internal error: key blocks too long "
                             "for int16 extents")
    with nogil:
        team_enter()
        for job in prange(n, schedule='static', num_threads=team):
            classify_row(p, mask, u[job // p.nqb], job % p.nqb,
                         t + job * nkb, e + job * nkb * 2 * p.bq)
        team_leave()
    p.tiles = t
    p.tile_of = <const int64_t *>cnp.PyArray_DATA(tile_of)
    p.extents = e
    return (tiles, tile_of, ext)
