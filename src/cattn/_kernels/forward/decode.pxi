# forward/decode.pxi -- the decode rows (included by _attention.pyx).
#
# Contract: at most decode_max_l query rows (any L for int8 pages) with
# unit-stride rows: no packing; up to decode_rows query heads that share a
# key/value head (or, paged, a sequence) stream K and V rows together
# (attend_rows: dot products, a row softmax, axpy rows) in key blocks of
# bk_target and chunks of decode_chunk, merged in order.  Rows are
# independent: how many an item takes moves work between threads and never
# a bit.


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


cdef void pool_rows(const Problem *p, int64_t bh, const int64_t *keys,
                    int64_t n, int64_t *rows_k, int64_t *rows_v) noexcept nogil:
    """Keys keys[0:n] of item bh on its sequence's pages, as rows of the
    pool counted from page 0's row 0 of its K (rows_k) and V (rows_v):
    page · page_stride / rs + slot (the entry checked that a page stride
    is a whole number of rows; int8 scales lie parallel)."""
    cdef int64_t j, page, slot
    cdef const int64_t *table = p.pages + (bh // p.seq_items) * p.max_pages
    for j in range(n):
        page = table[keys[j] // p.page_size]
        slot = keys[j] % p.page_size
        rows_k[j] = page * (p.page_stride[0] // p.rs_k) + slot
        rows_v[j] = page * (p.page_stride[1] // p.rs_v) + slot


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
                widen(p.cv_q, p.f.E, qi[r], 1, <float *>w.qrow + r * p.f.E)
            qi[r] = <const floating *>w.qrow + r * p.f.E
        w.m[r] = -INFINITY
        w.l[r] = 0
        acc = accs + r * p.ev_pad
        for c in range(p.f.Ev):
            acc[c] = 0
    # Exactly the keys row i may see, within the chunk (none for a row at
    # or past its per-row length); with indices, positions in the list of
    # the keys it selected and may see (listed_keys), read through `at`.
    cdef const int64_t *at = NULL
    cdef const int64_t *at_v = NULL
    if p.sel != NULL:
        k_lo = 0
        k_hi = listed_keys(p.sel + p.off_sel[bh0] + i * p.rs_sel,
                           chunk * p.chunk,
                           imin((chunk + 1) * p.chunk, p.nsel), vis, i,
                           w.keys, w.seen)
    else:
        k_lo = imax(chunk * p.chunk, first_visible(vis, i))
        k_hi = imin(imin((chunk + 1) * p.chunk, vis.S),
                    last_visible(vis, i) + 1)
        if i >= vis.L:
            k_hi = k_lo
    kb = k_lo
    while kb < k_hi:
        nk = imin(p.bk, k_hi - kb)
        if p.sel != NULL:
            at = at_v = w.keys + kb
            if p.pages != NULL:
                # Listed keys on pages: their rows in the pool, counted
                # from page 0's row 0 (the operands' base).
                pool_rows(p, bh0, at, nk, w.phys, w.phys + p.bk)
                at, at_v = w.phys, w.phys + p.bk
        stream_keys(p, 0, ks, vs, bh0, nr, qi, <floating *>w.st, p.bk, NULL,
                    kb, nk, NULL, at)
        for r in range(nr):
            s = <floating *>w.st + r * p.bk
            acc = accs + r * p.ev_pad
            prev = <floating *>w.prev + r * p.ev_pad
            live[r] = 0
            if at != NULL:
                listed_scores(&p.f, bh0 + r, vis, i, w.keys + kb, nk, s,
                              <const char *>mask + (off_m[bh0 + r]
                                                    + i * p.rs_m) * mask_item,
                              p.cs_m, <floating *>NULL)
            else:
                if adjusts_scores(&p.f):
                    adjust_scores(&p.f, bh0 + r, s, nk, 1, nk,
                                  kb - i - vis.offset)
                if p.f.mask_kind != MASK_NONE:
                    # One row tile of keys kb.. (already cut to what row i
                    # may see, so only the mask acts).
                    mask_rows(p.f.c32, p.f.c64, vis, p.f.mask_kind,
                              <const char *>mask + off_m[bh0 + r]
                              * mask_item, p.rs_m, p.cs_m, s, nk, i, 1, kb,
                              nk)
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
                    live, kb, nk, accs, at_v)
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
                                s + j, 0, NULL, kb + j, j1 - j, acc,
                                at_v + j if at_v != NULL else NULL)
                j = j1 + 1
        kb += nk

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
