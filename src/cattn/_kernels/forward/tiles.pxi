# forward/tiles.pxi -- the tiled path (included by _attention.pyx).
#
# Contract: attend_block runs one (item, query block, key chunk) of the
# online softmax over packed K/V panels: Sᵀ = scale·K Qᵀ by the GEMM
# micro-kernel, the score rules (adjust_scores: softcap, ALiBi), the mask,
# causal/window visibility and top-k (mask_tile), the column kernels'
# online softmax and O += P·V, with the infs and NaNs of V, left out of the
# packed panels, added back to exactly the rows that give them weight
# (nonfinite_values).  The key blocks are visited in order and every sum
# in a fixed order, so an item's bits depend on its ISA and block sizes
# alone.  attend_item packs the query block and finishes the rows
# (forward/rows.pxi) or saves the chunk's partial.


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


cdef inline bint hide_below(const Problem *p, int64_t n, floating *x,
                            const floating *t) noexcept nogil:
    if floating is float:
        return p.f.k32.hide_below(n, x, t)
    else:
        return p.f.k64.hide_below(n, x, t)


cdef inline void hide_panel(floating *st, int64_t ld, int64_t nk,
                            int64_t nq) noexcept nogil:
    """-inf over nk keys x nq queries of the transposed tile: a score
    panel the mask hides whole, not computed.  Written, not left: a float
    mask adds its -inf, and what the panel held may be +inf or NaN (a short
    query block's padding columns, exp'd at every key block, reach +inf;
    -inf + inf is NaN)."""
    cdef int64_t j, q
    for j in range(nk):
        for q in range(nq):
            st[j * ld + q] = -INFINITY


cdef void hide_by_extents(const Problem *p, floating *st, int64_t nq,
                          int64_t nk, const int16_t *ext,
                          int64_t c0) noexcept nogil:
    """Hide in the transposed tile (keys c0.. of the block x queries 0..nq)
    what an INTERVAL tile's mask hides, from its extents alone: query q
    sees columns ext[2q]..ext[2q+1]; the queries that see any are one run
    along which both ends never decrease, so the queries that see column c
    are one run [a, b] too, and both move forward with c."""
    cdef int64_t j, c, qa = 0, qb = nq - 1, a, b
    while qa < nq and ext[2 * qa + 1] < 0:
        qa += 1
    while qb >= qa and ext[2 * qb + 1] < 0:
        qb -= 1
    a, b = qa, qa - 1
    for j in range(nk):
        c = c0 + j
        while a <= qb and ext[2 * a + 1] < c:      # first q with hi >= c
            a += 1
        while b < qb and ext[2 * (b + 1)] <= c:    # last q with lo <= c
            b += 1
        if floating is float:
            p.f.c32.hide_outside(nq, st + j * p.bq, a, b)
        else:
            p.f.c64.hide_outside(nq, st + j * p.bq, a, b)


cdef void mask_tile(const Problem *p, const Visibility *vis, floating *st,
                    int64_t i0, int64_t nq, int64_t k0, int64_t nk,
                    const void *mask,
                    const floating *thr,
                    const int64_t *thr_idx, bint apply_mask,
                    const int16_t *interval, int64_t c0,
                    uint8_t *tmask) noexcept nogil:
    """Add the float mask, or hide (-inf) what the bool mask, causal or the
    window hide, in the transposed tile of keys k0.. x queries i0..; with
    top-k (thr_idx not NULL, this head's rows) also every key outside the
    query's top k.  apply_mask False: the tile's mask is FULL (masks.pxi)
    and is not read; `interval` not NULL: the tile is INTERVAL, its
    extents (columns from c0 = k0 - the block's first key) say what the
    mask hides, and it is not read either.  With a block mask (p.bm.t)
    `mask` is the item's table: the tile's bytes are expanded into tmask
    (bq x bk) and applied as a bool mask's."""
    cdef int64_t j, q, lo, hi, ti
    cdef floating *row
    if interval != NULL:
        hide_by_extents(p, st, nq, nk, interval, c0)
    elif not apply_mask:
        pass
    elif p.bm.t != NULL:
        expand_blocks(&p.bm, <const uint8_t *>mask, i0, nq, k0, nk, tmask,
                      nk)
        if floating is float:
            p.f.c32.tile_mask_bool(nk, nq, st, p.bq, tmask, nk, 1)
        else:
            p.f.c64.tile_mask_bool(nk, nq, st, p.bq, tmask, nk, 1)
    elif p.f.mask_kind == MASK_ADD:
        if floating is float:
            p.f.c32.tile_mask_add(
                nk, nq, st, p.bq, <const float *>mask + i0 * p.rs_m
                + k0 * p.cs_m, p.rs_m, p.cs_m)
        else:
            p.f.c64.tile_mask_add(
                nk, nq, st, p.bq, <const double *>mask + i0 * p.rs_m
                + k0 * p.cs_m, p.rs_m, p.cs_m)
    elif p.f.mask_kind == MASK_BOOL:
        if floating is float:
            p.f.c32.tile_mask_bool(
                nk, nq, st, p.bq, <const uint8_t *>mask + i0 * p.rs_m
                + k0 * p.cs_m, p.rs_m, p.cs_m)
        else:
            p.f.c64.tile_mask_bool(
                nk, nq, st, p.bq, <const uint8_t *>mask + i0 * p.rs_m
                + k0 * p.cs_m, p.rs_m, p.cs_m)
    for j in range(nk):
        row = st + j * p.bq
        lo = first_query(vis, k0 + j) - i0
        hi = last_query(vis, k0 + j) - i0
        if lo > 0 or hi < nq - 1:
            if floating is float:
                p.f.c32.hide_outside(nq, row, lo, hi)
            else:
                p.f.c64.hide_outside(nq, row, lo, hi)
        # Top-k: hide what ranks below the query's worst kept key; the
        # vector pass settles every lane but ties and NaN (rare), which
        # take the exact rule.
        if thr_idx != NULL and hide_below(p, nq, row, thr + i0):
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
    """Pᵀ = exp(Sᵀ - m'), with m, l updated in w (cols.tmpl.h; float32:
    the plan's step, p.softmax32); True if acc must be rescaled by alpha."""
    if floating is float:
        return p.softmax32(
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
    cdef int64_t kw, pw, lead, kr, nkb = cdiv(p.f.S, p.bk)
    cdef bint full, read_mask
    cdef uint8_t cls = TILE_PARTIAL
    cdef const int16_t *ext = NULL      # a PARTIAL tile's row extents
    cdef int64_t qr, lo_m, hi_m
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
        if p.tiles != NULL:
            # The mask hides the whole tile: skip it (exact, masks.pxi).
            cls = p.tiles[p.tile_of[bh] + qb * nkb + kb]
            if cls == TILE_EMPTY and p.skip_empty:
                continue
            ext = (p.extents + (p.tile_of[bh] + qb * nkb + kb) * 2 * bq
                   if (cls == TILE_PARTIAL or cls == TILE_INTERVAL)
                   and p.extents != NULL else NULL)
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
                    if ext != NULL and not panel_reached(
                            ext, jq * nr, imin(nr, nq - jq * nr), r * mr,
                            mr):
                        # The mask hides the panel (masks.pxi): -inf, the
                        # bits its scores would get.
                        hide_panel(st + r * mr * bq + jq * nr, bq,
                                   imin(mr, j1 - k0 - r * mr),
                                   imin(nr, bq - jq * nr))
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
        read_mask = ((p.f.mask_kind != MASK_NONE or p.bm.t != NULL)
                     and cls != TILE_FULL)
        if read_mask or thr_idx != NULL or not full:
            mask_tile(p, vis, st_j, i0, nq, j0, nj, mask, thr, thr_idx,
                      read_mask, ext if cls == TILE_INTERVAL else NULL,
                      j0 - k0, w.tmask)

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
            if ext != NULL:
                # The panel's rows' extents by the mask (relative to k0).
                lo_m, hi_m = nk, -1
                for qr in range(r * mr, imin(nq, r * mr + mr)):
                    lo_m = imin(lo_m, ext[2 * qr])
                    hi_m = imax(hi_m, ext[2 * qr + 1])
                lo_m = imax(lead, lo_m - (j0 - k0))
                kr = imin(lead + kr, hi_m + 1 - (j0 - k0)) - lo_m
                lead = lo_m
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
        if floating is float:
            kv.cols_to_rows(p.f.Ev, nq, acct, bq, acc, ev_pad)

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
    elif p.bm.t != NULL:          # the item's block mask (mask_tile)
        mask_bh = p.bm.t + p.bm.off[bh]
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
