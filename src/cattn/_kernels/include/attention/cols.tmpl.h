/* cols.tmpl.h -- the online-softmax steps of the attention kernel, on a
 * transposed score tile: st[j*ld + q] holds the score of query q for key j
 * (keys down, queries across), so every step runs along contiguous queries
 * with full vectors.
 *
 * Instantiated per dtype x ISA with the RW_* operations of simd/<isa>_<dtype>.h.
 * `nq_pad` is a multiple of RW_VL; columns q >= nq are padding whose values
 * are computed and ignored.
 *
 *   col_max(nk, nq_pad, st, ld, mx):     mx[q] = max_j st[j, q]  (-inf if nk = 0)
 *   col_exp_sum(nk, nq_pad, st, ld, shift, sum):
 *       st[j, q] = exp(st[j, q] - shift[q]); sum[q] = sum_j st[j, q].
 *       Keys are summed in four interleaved partial sums (j mod 4), then
 *       (s0 + s1) + (s2 + s3): a fixed order, independent of threads.
 *   online_softmax(nk, nq, nq_pad, st, ld, m, l, buf, alpha):
 *       one key block of the online softmax, for queries q < nq:
 *         m' = max(m, col_max st)         (a NaN score never raises m)
 *         st = exp(st - s), s = m' or 0 where m' = -inf (nothing seen yet)
 *         alpha = exp(m - m') in float64 (exactly 1 where m' == m)
 *         l = l*alpha + col sums of st;  m = m'
 *       A query that has seen nothing (m' = -inf) keeps l, except that a NaN
 *       sum replaces it so the NaN reaches the output.  buf holds 3*nq_pad
 *       scratch values; returns 1 if some alpha != 1 (O must be rescaled).
 *   scale_rows(nq, n, acc, ld, alpha): acc[q, :n] *= alpha[q] where != 1
 *       (n a multiple of RW_VL).
 *   finish_rows(nq, ev, acc, ld, m, l, o, rs_o, cs_o, lse):
 *       o[q, :ev] = acc[q, :ev] / l[q] and lse[q] = m[q] + log(l[q]); a
 *       query that saw no key (l == 0) gets 0 and -inf.  lse may be NULL.
 *       IEEE division, so vector and scalar columns agree bit for bit.
 *   online_softmax_p16: the same with the exp of a P that P·V rounds to
 *       bf16 (RW_EXP_NEG_P16: relative error <= 1.02e-4, 1/19 of bf16's
 *       half-ulp; the exact exp on levels without one), for the default
 *       precision's bf16 pair products.
 *   exp_neg(n, x, y), exp_neg_p16: y = exp(x) with the two exps of these
 *       kernels (x <= 0 or NaN only), for the tests to measure their error.
 */
static void RW_NAME(col_max)(int64_t nk, int64_t nq_pad, const RW_T *st,
                             int64_t ld, RW_T *mx)
{
    for (int64_t q = 0; q < nq_pad; q += RW_VL) {
        RW_VEC m = RW_SET1(-INFINITY);
        for (int64_t j = 0; j < nk; ++j)
            m = RW_MAX(m, RW_LOAD(st + j * ld + q));
        RW_STORE(mx + q, m);
    }
}

/* The column exp and sum with the exact exp (p16 = 0) or P16's (1):
 * always inlined into its two callers, so each has one exp and no branch. */
#define RW_EXP_OF(p16, x) ((p16) ? RW_EXP_NEG_P16(x) : RW_EXP_NEG(x))

static CATTN_ALWAYS_INLINE void RW_NAME(col_exp_sum)(
    int64_t nk, int64_t nq_pad, RW_T *st, int64_t ld, const RW_T *shift,
    RW_T *sum, const int p16)
{
    for (int64_t q = 0; q < nq_pad; q += RW_VL) {
        const RW_VEC vs = RW_LOAD(shift + q);
        RW_VEC s0 = RW_SET1(0), s1 = s0, s2 = s0, s3 = s0;
        int64_t j = 0;
        for (; j + 4 <= nk; j += 4) {
            RW_T *r = st + j * ld + q;
            const RW_VEC e0 = RW_EXP_OF(p16, RW_SUB(RW_LOAD(r), vs));
            const RW_VEC e1 = RW_EXP_OF(p16, RW_SUB(RW_LOAD(r + ld), vs));
            const RW_VEC e2 = RW_EXP_OF(p16, RW_SUB(RW_LOAD(r + 2 * ld), vs));
            const RW_VEC e3 = RW_EXP_OF(p16, RW_SUB(RW_LOAD(r + 3 * ld), vs));
            RW_STORE(r, e0);
            RW_STORE(r + ld, e1);
            RW_STORE(r + 2 * ld, e2);
            RW_STORE(r + 3 * ld, e3);
            s0 = RW_ADD(s0, e0);
            s1 = RW_ADD(s1, e1);
            s2 = RW_ADD(s2, e2);
            s3 = RW_ADD(s3, e3);
        }
        for (; j < nk; ++j) {
            RW_T *r = st + j * ld + q;
            const RW_VEC e = RW_EXP_OF(p16, RW_SUB(RW_LOAD(r), vs));
            RW_STORE(r, e);
            s0 = RW_ADD(s0, e);
        }
        RW_STORE(sum + q, RW_ADD(RW_ADD(s0, s1), RW_ADD(s2, s3)));
    }
}

static CATTN_ALWAYS_INLINE int RW_NAME(online_softmax_step)(
    int64_t nk, int64_t nq, int64_t nq_pad, RW_T *st, int64_t ld, double *m,
    double *l, RW_T *buf, RW_T *alpha, const int p16)
{
    RW_T *mx = buf, *shift = buf + nq_pad, *total = buf + 2 * nq_pad;
    RW_NAME(col_max)(nk, nq_pad, st, ld, mx);
    for (int64_t q = 0; q < nq_pad; ++q) {
        const RW_T m_new = q >= nq ? (RW_T)0
                           : mx[q] > m[q] ? mx[q] : (RW_T)m[q];
        shift[q] = m_new != -INFINITY ? m_new : (RW_T)0;
        mx[q] = m_new;
    }
    RW_NAME(col_exp_sum)(nk, nq_pad, st, ld, shift, total, p16);
    int rescale = 0;
    for (int64_t q = 0; q < nq; ++q) {
        const RW_T m_new = mx[q];
        alpha[q] = 1;
        if (m_new == -INFINITY) {
            if (total[q] != total[q])
                l[q] = total[q];
            continue;
        }
        if (m_new != m[q]) {
            const double a = exp(m[q] - m_new);
            alpha[q] = (RW_T)a;
            rescale |= alpha[q] != 1;
            l[q] = l[q] * a + total[q];
            m[q] = m_new;
        } else {
            l[q] = l[q] + total[q];
        }
    }
    return rescale;
}

static int RW_NAME(online_softmax)(int64_t nk, int64_t nq, int64_t nq_pad,
                                   RW_T *st, int64_t ld, double *m, double *l,
                                   RW_T *buf, RW_T *alpha)
{
    return RW_NAME(online_softmax_step)(nk, nq, nq_pad, st, ld, m, l, buf,
                                        alpha, 0);
}

static int RW_NAME(online_softmax_p16)(int64_t nk, int64_t nq, int64_t nq_pad,
                                       RW_T *st, int64_t ld, double *m,
                                       double *l, RW_T *buf, RW_T *alpha)
{
    return RW_NAME(online_softmax_step)(nk, nq, nq_pad, st, ld, m, l, buf,
                                        alpha, 1);
}

static void RW_NAME(scale_rows)(int64_t nq, int64_t n, RW_T *acc, int64_t ld,
                                const RW_T *alpha)
{
    for (int64_t q = 0; q < nq; ++q) {
        if (alpha[q] == 1)
            continue;
        const RW_VEC a = RW_SET1(alpha[q]);
        RW_T *row = acc + q * ld;
        for (int64_t c = 0; c < n; c += RW_VL)
            RW_STORE(row + c, RW_MUL(RW_LOAD(row + c), a));
    }
}

static void RW_NAME(finish_rows)(int64_t nq, int64_t ev, const RW_T *acc,
                                 int64_t ld, const double *m, const double *l,
                                 RW_T *o, int64_t rs_o, int64_t cs_o,
                                 RW_T *lse)
{
    for (int64_t q = 0; q < nq; ++q) {
        const RW_T *a = acc + q * ld;
        RW_T *out = o + q * rs_o;
        const RW_T lq = (RW_T)l[q];
        int64_t c = 0;
        if (l[q] == 0) {
            for (; c < ev; ++c)
                out[c * cs_o] = 0;
        } else {
            if (cs_o == 1) {
                const RW_VEC vl = RW_SET1(lq);
                for (; c + RW_VL <= ev; c += RW_VL)
                    RW_STORE(out + c, RW_DIV(RW_LOAD(a + c), vl));
            }
            for (; c < ev; ++c)
                out[c * cs_o] = a[c] / lq;
        }
        if (lse)
            lse[q] = l[q] != 0 ? (RW_T)(m[q] + log(l[q])) : (RW_T)-INFINITY;
    }
}

static CATTN_ALWAYS_INLINE void RW_NAME(exp_neg_any)(int64_t n, const RW_T *x,
                                                    RW_T *y, const int p16)
{
    int64_t i = 0;
    for (; i + RW_VL <= n; i += RW_VL)
        RW_STORE(y + i, RW_EXP_OF(p16, RW_LOAD(x + i)));
    if (i < n) {
        RW_T buf[RW_VL];
        for (int64_t j = 0; j < RW_VL; ++j)
            buf[j] = i + j < n ? x[i + j] : (RW_T)0;
        RW_STORE(buf, RW_EXP_OF(p16, RW_LOAD(buf)));
        for (int64_t j = 0; i + j < n; ++j)
            y[i + j] = buf[j];
    }
}

static void RW_NAME(exp_neg)(int64_t n, const RW_T *x, RW_T *y)
{
    RW_NAME(exp_neg_any)(n, x, y, 0);
}

static void RW_NAME(exp_neg_p16)(int64_t n, const RW_T *x, RW_T *y)
{
    RW_NAME(exp_neg_any)(n, x, y, 1);
}

#undef RW_EXP_OF
