/* tile.tmpl.h -- the element-wise steps of the attention kernels: masks on
 * score tiles and rows, and the scan for non-finite values.  Plain loops
 * over RW_T, instantiated per dtype x ISA by simd/instantiate.h, so each
 * copy is compiled (and vectorised by the compiler) inside its ISA's
 * target region (cattn_target.h).  Only additions, copies and compares: every
 * instantiation gives the same bits.
 *
 * Transposed tiles (the forward's Sᵀ): st[j*ld + q] is the score of query q
 * for key j; the mask element of (query q, key j) is m[q*rs_m + j*cs_m]
 * (rs_m = 0: one mask row for every query, as a key-padding mask).
 *
 *   tile_mask_add(nk, nq, st, ld, m, rs_m, cs_m):  st[j, q] += m(q, j)
 *   tile_mask_bool(nk, nq, st, ld, bm, rs_m, cs_m): st[j, q] = -inf where
 *       the byte bm(q, j) is 0 (a bool "may attend" mask)
 *   hide_outside(n, x, lo, hi): x[i] = -inf for i < lo and i > hi
 *   row_mask_add(n, s, m, cs):  s[j] += m[j*cs]        (decode rows)
 *   row_mask_bool(n, s, bm, cs): s[j] = -inf where bm[j*cs] == 0
 *   any_nonfinite(n, x): 1 if x[0:n] holds an inf or a NaN
 *   zero_nonfinite(n, x): the infs and NaNs of x[0:n] become 0; returns 1
 *       if there were any
 *
 * Key-chunk partials (the split-key path): a partial row is [m, l,
 * acc[0:ev]] (row_len = ev + 2 values), chunk ch's rows `stride` values
 * after chunk ch-1's.
 *   save_partial(nq, ev, m, l, acc, ld, part): store nq rows (m and l
 *       rounded to RW_T)
 *   merge_partials(nq, nchunks, ev, part, stride, m, l, acc, ld): combine
 *       the chunks of nq rows in chunk order by the log-sum-exp rule into
 *       (m, l, acc): m = max of the chunks' m; each chunk weighs
 *       a = exp(m_ch - m) (in double; 1 if m = -inf), and a chunk that saw
 *       nothing (l = 0) or weighs exactly 0 adds nothing, not even its inf
 *       or NaN values.
 */
static void RW_NAME(tile_mask_add)(int64_t nk, int64_t nq, RW_T *st,
                                   int64_t ld, const RW_T *m, int64_t rs_m,
                                   int64_t cs_m)
{
    for (int64_t j = 0; j < nk; ++j) {
        RW_T *row = st + j * ld;
        const RW_T *mj = m + j * cs_m;
        if (rs_m == 0) {
            const RW_T add = mj[0];
            for (int64_t q = 0; q < nq; ++q)
                row[q] = row[q] + add;
        } else if (rs_m == 1) {
            for (int64_t q = 0; q < nq; ++q)
                row[q] = row[q] + mj[q];
        } else {
            for (int64_t q = 0; q < nq; ++q)
                row[q] = row[q] + mj[q * rs_m];
        }
    }
}

static void RW_NAME(tile_mask_bool)(int64_t nk, int64_t nq, RW_T *st,
                                    int64_t ld, const uint8_t *bm,
                                    int64_t rs_m, int64_t cs_m)
{
    if (cs_m == 1 && rs_m != 0) {
        /* The mask's rows run along the keys: read each query's bytes
         * eight at a time, in the order they lie (the transposed walk
         * below touches a new line of the mask per element), and write
         * -inf only where a byte is 0 -- structured masks are runs of
         * whole visible words. */
        for (int64_t q = 0; q < nq; ++q) {
            const uint8_t *b = bm + q * rs_m;
            int64_t j = 0;
            for (; j + 8 <= nk; j += 8) {
                uint64_t w;
                memcpy(&w, b + j, 8);
                if (w == 0x0101010101010101ull)
                    continue;
                for (int t = 0; t < 8; ++t)
                    if (!b[j + t])
                        st[(j + t) * ld + q] = -INFINITY;
            }
            for (; j < nk; ++j)
                if (!b[j])
                    st[j * ld + q] = -INFINITY;
        }
        return;
    }
    for (int64_t j = 0; j < nk; ++j) {
        RW_T *row = st + j * ld;
        const uint8_t *bj = bm + j * cs_m;
        if (rs_m == 0) {
            if (!bj[0])
                for (int64_t q = 0; q < nq; ++q)
                    row[q] = -INFINITY;
        } else {
            for (int64_t q = 0; q < nq; ++q)
                row[q] = bj[q * rs_m] ? row[q] : -INFINITY;
        }
    }
}

static void RW_NAME(hide_outside)(int64_t n, RW_T *x, int64_t lo, int64_t hi)
{
    for (int64_t i = 0; i < n && i < lo; ++i)
        x[i] = -INFINITY;
    for (int64_t i = hi + 1 > 0 ? hi + 1 : 0; i < n; ++i)
        x[i] = -INFINITY;
}

static void RW_NAME(row_mask_add)(int64_t n, RW_T *s, const RW_T *m,
                                  int64_t cs)
{
    if (cs == 1) {
        for (int64_t j = 0; j < n; ++j)
            s[j] = s[j] + m[j];
    } else {
        for (int64_t j = 0; j < n; ++j)
            s[j] = s[j] + m[j * cs];
    }
}

static void RW_NAME(row_mask_bool)(int64_t n, RW_T *s, const uint8_t *bm,
                                   int64_t cs)
{
    for (int64_t j = 0; j < n; ++j)
        s[j] = bm[j * cs] ? s[j] : -INFINITY;
}

static int RW_NAME(any_nonfinite)(int64_t n, const RW_T *x)
{
    int bad = 0;
    for (int64_t i = 0; i < n; ++i)
        bad |= x[i] - x[i] != 0;       /* inf - inf and NaN - NaN: NaN */
    return bad;
}

static int RW_NAME(zero_nonfinite)(int64_t n, RW_T *x)
{
    if (!RW_NAME(any_nonfinite)(n, x))
        return 0;
    for (int64_t i = 0; i < n; ++i)
        x[i] = x[i] - x[i] != 0 ? (RW_T)0 : x[i];
    return 1;
}


static void RW_NAME(save_partial)(int64_t nq, int64_t ev, const double *m,
                                  const double *l, const RW_T *acc,
                                  int64_t ld, RW_T *part)
{
    const int64_t row_len = ev + 2;
    for (int64_t r = 0; r < nq; ++r) {
        RW_T *pr = part + r * row_len;
        pr[0] = (RW_T)m[r];
        pr[1] = (RW_T)l[r];
        for (int64_t c = 0; c < ev; ++c)
            pr[2 + c] = acc[r * ld + c];
    }
}

static void RW_NAME(merge_partials)(int64_t nq, int64_t nchunks, int64_t ev,
                                    const RW_T *part, int64_t stride,
                                    double *m, double *l, RW_T *acc,
                                    int64_t ld)
{
    const int64_t row_len = ev + 2;
    for (int64_t r = 0; r < nq; ++r) {
        double big = -INFINITY;
        for (int64_t ch = 0; ch < nchunks; ++ch) {
            const RW_T *pr = part + ch * stride + r * row_len;
            if (pr[0] > big)
                big = pr[0];
        }
        m[r] = big;
        l[r] = 0;
        RW_T *row = acc + r * ld;
        for (int64_t c = 0; c < ev; ++c)
            row[c] = 0;
        for (int64_t ch = 0; ch < nchunks; ++ch) {
            const RW_T *pr = part + ch * stride + r * row_len;
            if (pr[1] == 0)
                continue;
            const double a = big != -INFINITY ? exp(pr[0] - big) : 1;
            if (a == 0)
                continue;           /* weight 0: its values never reach */
            l[r] = l[r] + pr[1] * a;
            const RW_T w = (RW_T)a;
            for (int64_t c = 0; c < ev; ++c)
                row[c] = row[c] + pr[2 + c] * w;
        }
    }
}

