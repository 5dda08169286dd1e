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


cdef void classify_row(const Problem *p, const void *mask, int64_t off,
                       int64_t qb, uint8_t *out) noexcept nogil:
    """Classes of query block qb's tiles (every key block) of the mask
    matrix at element offset off, into out[0:nkb]."""
    cdef int64_t kb, i0 = qb * p.bq, nrows = imin(p.bq, p.f.L - i0)
    cdef size_t item = 1 if p.f.mask_kind == MASK_BOOL else (
        4 if p.f.is_f32 else 8)
    cdef const char *m = <const char *>mask + (off + i0 * p.rs_m) * item
    for kb in range(cdiv(p.f.S, p.bk)):
        if p.f.is_f32:
            out[kb] = tile_class[float](
                p, m + kb * p.bk * p.cs_m * item, nrows,
                imin(p.bk, p.f.S - kb * p.bk), NULL)
        else:
            out[kb] = tile_class[double](
                p, m + kb * p.bk * p.cs_m * item, nrows,
                imin(p.bk, p.f.S - kb * p.bk), NULL)


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
    with nogil:
        team_enter()
        for job in prange(n, schedule='static', num_threads=team):
            classify_row(p, mask, u[job // p.nqb], job % p.nqb,
                         t + job * nkb)
        team_leave()
    p.tiles = t
    p.tile_of = <const int64_t *>cnp.PyArray_DATA(tile_of)
    return (tiles, tile_of)
