# forward/rows.pxi -- finishing rows, shared by the tiled path and the
# decode rows (included by _attention.pyx).
#
# Contract: a row's softmax state (m, l, acc) becomes its output and lse
# here and only here: a sink joins the softmax (add_sink), rows past their
# query length or with no visible key give 0 and lse -inf, out is written
# in its storage (rounded once for 16-bit), and a key chunk's partial is
# saved or the partials merged in chunk order.


cdef void add_sink(double sink, int64_t nq, int64_t ev, double *m,
                   double *l, floating *acc, int64_t ld) noexcept nogil:
    """Join the logit `sink` (no value) to the softmax state (m, l, acc) of
    nq rows: l += exp(sink - m), by the larger of the two so nothing
    overflows (acc rescaled when the sink is the larger).  A row that saw
    no key gets m = sink, l = 1: out 0, lse = sink.  A NaN l or sink
    stays NaN."""
    cdef int64_t r, c
    cdef double a
    for r in range(nq):
        if l[r] == 0 and m[r] == -INFINITY:
            m[r] = sink
            l[r] = 1
        elif sink > m[r]:
            a = exp(m[r] - sink)
            l[r] = l[r] * a + 1
            for c in range(ev):
                acc[r * ld + c] = acc[r * ld + c] * <floating>a
            m[r] = sink
        else:
            l[r] = l[r] + exp(sink - m[r])


cdef void write_rows(const Problem *p, Scratch *w, int64_t bh, int64_t nq,
                     int64_t nreal, void *o, floating *lse) noexcept nogil:
    """out = acc / l and lse = m + log l for the first nreal of the block's
    nq rows of item bh (the rest lie past its query length and are never
    written: they may be another sequence's rows), the sink joined first;
    a row that saw no key (l == 0) gets 0 and -inf.  A 16-bit out: the
    rows are finished in place in acc, then rounded into out."""
    cdef int64_t r
    cdef floating *acc = <floating *>w.acc
    nq = nreal
    if p.f.sinks != NULL:
        add_sink(p.f.sinks[bh], nq, p.f.Ev, w.m, w.l, acc, p.ev_pad)
    if p.out_storage == NATIVE:
        if floating is float:
            p.f.c32.finish_rows(
                nq, p.f.Ev, acc, p.ev_pad, w.m, w.l, <float *>o, p.rs_o,
                p.cs_o, lse)
        else:
            p.f.c64.finish_rows(
                nq, p.f.Ev, acc, p.ev_pad, w.m, w.l, <double *>o, p.rs_o,
                p.cs_o, lse)
    elif floating is float:
        p.f.c32.finish_rows(
            nq, p.f.Ev, acc, p.ev_pad, w.m, w.l, acc, p.ev_pad, 1, lse)
        for r in range(nq):
            narrow(p.cv_out, p.f.Ev, acc + r * p.ev_pad,
                   <char *>o + r * p.rs_o * p.out_size, p.cs_o)


cdef inline void save_partial(const Problem *p, Scratch *w, int64_t nq,
                              floating *part) noexcept nogil:
    """Store (m, l, acc) of nq rows as rows of [m, l, acc[0:Ev]]
    (tile.tmpl.h)."""
    if floating is float:
        p.f.c32.save_partial(
            nq, p.f.Ev, w.m, w.l, <float *>w.acc, p.ev_pad, part)
    else:
        p.f.c64.save_partial(
            nq, p.f.Ev, w.m, w.l, <double *>w.acc, p.ev_pad, part)


cdef inline void merge_partials(const Problem *p, const floating *part,
                                int64_t nq, Scratch *w) noexcept nogil:
    """Combine the nchunks partials of nq rows, in chunk order, into w
    (tile.tmpl.h)."""
    if floating is float:
        p.f.c32.merge_partials(
            nq, p.nchunks, p.f.Ev, part, p.bq * (p.f.Ev + 2), w.m, w.l,
            <float *>w.acc, p.ev_pad)
    else:
        p.f.c64.merge_partials(
            nq, p.nchunks, p.f.Ev, part, p.bq * (p.f.Ev + 2), w.m, w.l,
            <double *>w.acc, p.ev_pad)

cdef inline void *out_at(const Problem *p, void *o, int64_t i) noexcept nogil:
    """Element i of out, in its storage."""
    return <void *>shift(o, i, p.out_size)
