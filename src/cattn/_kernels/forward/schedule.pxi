# forward/schedule.pxi -- who computes what (included by _attention.pyx).
#
# Contract: run() hands the items of the plan to the thread team -- whole
# heads, groups of heads (packing, then a dynamic share of the items) or
# the decode rows -- and merges key-chunk partials in order; describe()
# returns the same plan for the many-core model instead of running it.
# Nothing here changes a bit: each item is computed by one thread into its
# own rows, whatever the team.


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
            c[item] = nr * (imin(p.chunk, p.nsel - ch * p.chunk)
                            if p.sel != NULL else
                            visible_pairs(&vis, qb, qb < vis.L, ch * p.chunk,
                                          imin((ch + 1) * p.chunk, vis.S)))
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
