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

static void RW_NAME(col_exp_sum)(int64_t nk, int64_t nq_pad, RW_T *st,
                                 int64_t ld, const RW_T *shift, RW_T *sum)
{
    for (int64_t q = 0; q < nq_pad; q += RW_VL) {
        const RW_VEC vs = RW_LOAD(shift + q);
        RW_VEC s0 = RW_SET1(0), s1 = s0, s2 = s0, s3 = s0;
        int64_t j = 0;
        for (; j + 4 <= nk; j += 4) {
            RW_T *r = st + j * ld + q;
            const RW_VEC e0 = RW_EXP(RW_SUB(RW_LOAD(r), vs));
            const RW_VEC e1 = RW_EXP(RW_SUB(RW_LOAD(r + ld), vs));
            const RW_VEC e2 = RW_EXP(RW_SUB(RW_LOAD(r + 2 * ld), vs));
            const RW_VEC e3 = RW_EXP(RW_SUB(RW_LOAD(r + 3 * ld), vs));
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
            const RW_VEC e = RW_EXP(RW_SUB(RW_LOAD(r), vs));
            RW_STORE(r, e);
            s0 = RW_ADD(s0, e);
        }
        RW_STORE(sum + q, RW_ADD(RW_ADD(s0, s1), RW_ADD(s2, s3)));
    }
}
