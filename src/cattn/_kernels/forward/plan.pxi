# forward/plan.pxi -- the plan of one forward call (included by
# _attention.pyx).
#
# Contract: plan() resolves, once per call and before any kernel runs,
# every table row the call needs -- the ISA's block sizes, the GEMM tiles
# for the scores and for P·V, the online-softmax step that matches P·V's
# precision, the row kernels -- and the shape-only
# choices: the decode rows or the tiled path, the blocks and key chunks
# (which fix the order of every sum, so the bits), then the team size and
# the schedule (which never change a bit).  Its inputs are the Problem
# with its operands, storage and mode fields set (the entry's work) and
# whether the operands' rows are unit-stride; no tile or row loop looks a
# table up after it.


cdef int plan(Problem *p, int64_t nbh, int64_t group_kv, bint unit_rows,
              str func, int *nthreads, int64_t *group) except -1:
    """Fill p's kernels, blocking and decode choice for nbh items; set
    *nthreads (the team) and *group (heads per group; 0: per-head)."""
    cdef int64_t itemsize = 4 if p.f.is_f32 else 8
    cdef cattn_attention_blocks blk = cattn_attention_blocks_for(p.f.isa)[0]
    cdef int64_t vl = p.f.c32.vl if p.f.is_f32 else p.f.c64.vl
    p.r32 = cattn_rows_f32_for(p.f.isa)
    p.r64 = cattn_rows_f64_for(p.f.isa)
    # (A decode step's listed rows come from memory once: `far` prefetch.)
    p.rows = row_products(p.f.isa, p.storage, p.f.L <= blk.decode_max_l)
    p.cv_q = (cattn_convert_for(p.f.isa, p.q_storage)
              if p.q_storage != NATIVE else NULL)
    p.cv_out = (cattn_convert_for(p.f.isa, p.out_storage)
                if p.out_storage != NATIVE else NULL)
    # A few queries (decoding): stream K and V rows instead of packing
    # tiles.  Top-k needs the tiled path (its scores are the GEMM's bits).
    # Selected keys (indices) lie anywhere: the row path at any L.
    cdef bint decode = ((p.f.L <= blk.decode_max_l or p.sel != NULL or (
                            p.pages != NULL and p.storage == CATTN_STORAGE_Q8))
                        and p.thr == NULL and unit_rows)
    if p.sel != NULL and not decode:
        raise AssertionError(f"{func}: cattn internal error: indices need "
                             "the row path")
    p.decode = decode
    p.vl = vl
    # bf16 pair products for the scores at both precisions and for P·V at
    # the default one, except with top-k: its selection pass computes the
    # float32 kernel's scores, which the forward must repeat bit for bit.
    cdef bint pairs = (p.thr == NULL and not decode
                       and p.q_storage == p.storage)
    p.kern = gemm_kernel(p.f.isa, p.f.is_f32, p.storage, pairs)
    if p.q_storage != p.storage:        # K's packers, Q's own B packer
        p.kern.pack_b = pack_b_for(p.f.isa, p.q_storage)
    p.kern_v = gemm_kernel(p.f.isa, p.f.is_f32, p.storage,
                           pairs and not p.f.highest)
    if p.kern.mr != p.kern_v.mr or p.kern.nr != p.kern_v.nr:
        raise AssertionError(f"{func}: cattn internal error: tile products "
                             "of different tiles")
    if p.f.is_f32:
        p.softmax32 = (p.f.c32.online_softmax_p16 if p.kern_v.pairs
                       else p.f.c32.online_softmax)
    cdef GemmKernel kern = p.kern
    p.chunk = max(p.f.S, 1)
    p.nchunks = 1
    if decode:
        # One row per block; keys in fixed chunks, merged in order.  With
        # indices the chunks cut each row's list, and only when decoding:
        # a prefill has rows enough to share (and no room for partials).
        p.bq = 1
        p.bk = blk.bk_target
        p.nqb = p.f.L
        if p.sel != NULL:
            p.chunk = max(p.nsel, 1)
            if p.nsel > blk.decode_chunk and p.f.L <= blk.decode_max_l:
                p.chunk = blk.decode_chunk
                p.nchunks = cdiv(p.nsel, blk.decode_chunk)
        elif p.f.S > blk.decode_chunk:
            p.chunk = blk.decode_chunk
            p.nchunks = cdiv(p.f.S, blk.decode_chunk)
    else:
        # bq: whole NR panels of Qᵀ (and whole vectors of the column
        # kernels); bk: S in equal blocks of whole MR panels of packed K.
        p.bq = cdiv(blk.bq_target, kern.nr) * kern.nr
        p.bq = cdiv(p.bq, vl) * vl
        p.bk = cdiv(cdiv(imax(p.f.S, 1), cdiv(imax(p.f.S, 1), blk.bk_max)),
                    kern.mr) * kern.mr
        p.nqb = cdiv(p.f.L, p.bq)
        if nbh * p.nqb < SPLIT_BELOW_ITEMS and p.f.S > blk.chunk:
            p.chunk = blk.chunk // p.bk * p.bk
            p.nchunks = cdiv(p.f.S, p.chunk)
    p.s_pad = cdiv(p.f.S, kern.mr) * kern.mr
    p.ev_pad = cdiv(p.f.Ev, vl) * vl
    p.v_cols = cdiv(p.f.Ev, kern.nr) * kern.nr
    p.ev_rows = cdiv(p.f.Ev, kern.mr) * kern.mr
    p.vblk = (p.ev_rows * panel_depth(&p.kern_v, p.bk) if p.kern_v.pairs
              else p.bk * p.v_cols)
    p.kpack_size = p.s_pad * max(p.f.E, 1)
    p.vpack_size = cdiv(p.f.S, p.bk) * p.vblk
    cdef int64_t per_bh = p.nqb * p.nchunks
    # (Listed keys are per key/value head: a paged item then keeps to one
    # head's query heads, as an unpaged one.)
    p.span = (p.seq_items if p.pages != NULL and p.sel == NULL
              else group_kv)
    p.decode_rows = (1 if not decode else min(<int64_t>DECODE_ROWS_PAGED,
                                              p.span)
                     if p.pages != NULL else min(<int64_t>DECODE_ROWS,
                                                 p.span))
    # A paged decode of few sequences on many threads: halve the rows per
    # item (down to one key/value head's query heads, group_kv) until
    # every thread has DECODE_ITEMS_PER_THREAD items.  Rows are independent, so
    # this moves work between threads and never changes a bit.
    while (decode and p.pages != NULL and p.decode_rows > group_kv
           and decode_items(p, nbh) * per_bh
               < DECODE_ITEMS_PER_THREAD * p.f.threads):
        p.decode_rows = max(group_kv, p.decode_rows // 2)
    nthreads[0] = <int>min(p.f.threads,
                           (decode_items(p, nbh) if decode else nbh) * per_bh)
    # Enough batch·heads per group for 4 items per thread, within the
    # memory bound (grouping never changes a result).
    cdef int64_t kv_bytes = (p.kpack_size + p.vpack_size) * itemsize
    group[0] = max(1, min(nbh, cdiv(4 * nthreads[0], per_bh),
                          blk.group_bytes // max(kv_bytes, 1)))
    if (not decode and nbh >= PER_HEAD_MIN * nthreads[0]
            and nthreads[0] * kv_bytes <= blk.group_bytes):
        group[0] = 0                # the per-head schedule (see run)
    return 0
