# forward/readers.pxi -- the forward's storage readers (included by
# _attention.pyx; the Problem and Scratch structs are there).
#
# Contract: every K or V element the tiles and the decode rows use is
# reached through key_row / kv_src / stream_keys / gathered, which hide how
# the keys are held -- in place (any strides), on the pages of a paged
# cache (p.pages: row j of item bh on page pages[b, j // page_size]), as
# int8 values with per-block float32 scales (CATTN_STORAGE_Q8), or as
# 16-bit storage widened exactly as it is read.  pack_kv packs a key block
# of K and V into the micro-kernel's panels through them.  set_pages,
# computes and parallel_q8 check (with the GIL, before any kernel runs)
# what these readers assume: every page a length uses is a page, and int8
# scales lie parallel to their values.  A reader never changes a value:
# the bits are those of the same keys held densely.


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
                      floating *acc, const int64_t *at) noexcept nogil:
    """Keys j0..j0+n of items bh..bh+nr (row r's K or V at xs[r]; rows of
    one batch row, so their pages are the same), page run by page run,
    each run read once for the rows that share it: which 0, the scores
    s[r·ld + j] = scale · qs[r] · K[j0 + j]; which 1, acc row r (stride
    ev_pad; with nr = 1, `acc` itself) += Σ_j s[r·ld + j] · V[j0 + j] for
    the rows whose live[r] (NULL: all).  A paged cache prefetches the
    next run while it computes one, and after the last the first run of
    what comes next: `others`' (V after K) at j0, or K's next block.
    With a list `at` (sparse attention), key j is at[j] instead of
    j0 + j -- with a paged cache, a row of the pool counted from page 0's
    row 0 (decode.pxi's pool_rows) -- read where it lies (the _at row
    streams)."""
    cdef int64_t j = j0, run = 0, m = 0, r
    cdef const void *row = NULL
    cdef cattn_q8_view view
    if at != NULL:
        for r in range(nr):
            if which == 0:
                dot_rows_at(&p.rows, n, p.f.E, qs[r],
                            kv_src(p, 0, xs[r], p.rs_k, &view), p.rs_k, at,
                            <floating>p.f.scale, s + r * ld)
            elif live == NULL or live[r]:
                axpy_rows_at(&p.rows, n, p.f.Ev, s + r * ld,
                             kv_src(p, 1, xs[r], p.rs_v, &view), p.rs_v, at,
                             acc + r * p.ev_pad)
        return
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
                dot_rows(&p.rows, m, p.f.E, qs[r],
                         kv_src(p, 0, row, p.rs_k, &view), p.rs_k,
                         <floating>p.f.scale, s + r * ld + (j - j0))
            elif live == NULL or live[r]:
                axpy_rows(&p.rows, m, p.f.Ev, s + r * ld + (j - j0),
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
    """The keys item bh has: S, or its key length (item_keys)."""
    return item_keys(&p.f, bh)


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
        vflag[kb] = sanitize(p, nk * p.v_cols, vblock)

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
    p.page_stride[0] = kp.strides[0] // cnp.PyArray_ITEMSIZE(kp)
    p.page_stride[1] = vp.strides[0] // cnp.PyArray_ITEMSIZE(vp)
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
    return cnp.PyArray_ITEMSIZE(x) == (4 if is_f32 else 8)


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
