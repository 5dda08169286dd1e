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
# (Problem.skip_empty, from _frame.skip_empty_tiles), a bool mask's always.
#
# A PARTIAL tile also gets its rows' extents: the first and last key of
# the tile each query row may see by the mask (tile_extents).  Under the
# same condition attend_block then skips the score panels no row of which
# reaches (writing them -inf, the bits the mask gives their scores: never
# left to the mask, as a float mask adds to whatever they held, which may
# be a short block's padding columns, +inf) and cuts each P·V
# panel's depth to its rows' extents (their weights outside are exactly
# 0): a causal diagonal or a document edge written into the mask costs
# what is_causal's own cut costs.  The online softmax still walks every
# key of the tile, so no sum changes its order.  A bool mask's PARTIAL
# tile that its extents describe whole (INTERVAL: rows true from their
# first to their last key, in one run of nondecreasing ends -- causal
# diagonals, document edges, chunks, prefixes) is not read at all: the
# same keys are hidden from the extents (hide_by_extents), the same -inf
# in the same places, so the same bits; the classifier read it once per
# distinct matrix instead of once per head.

# The classifier itself (tile classes, row extents) is the frame's
# (_frame.pyx: classify_tiles), shared with the backward, which at its own
# block sizes skips the EMPTY tiles and reads the mask of neither FULL nor
# INTERVAL ones, by the same rules.


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
    """Fill p.tiles, p.tile_of and (with p.skip_empty) p.extents for the
    items' mask matrices at the plan's blocks; returns the arrays that
    hold them (kept alive by the caller)."""
    return classify_tiles(mask, off_m, nbh, &p.f, p.rs_m, p.cs_m, 0, 0, p.bq,
                          p.bk, p.nqb, p.skip_empty, nthreads, &p.tiles,
                          &p.tile_of, &p.extents)
