/* scan.tmpl.h -- the scans of the top-k selection for one dtype and ISA
 * (contracts in cattn_topk.h), in the RW_* dialect of simd/ (instantiated
 * by simd/instantiate.h).  Vector ISAs use RW_CMP(a, b, pred) (the lanes
 * where `a pred b`, as bits of an unsigned) and RW_BELOW_TO(v, t, x) (v
 * with the lanes where v < t replaced by x's), and finish tails with the
 * portable RW_SCALAR functions; with RW_VL == 1 the template defines those.
 */
#if RW_VL == 1
static inline int64_t RW_NAME(first_reaching)(int64_t n, const RW_T *x,
                                              RW_T t)
{
    for (int64_t i = 0; i < n; ++i)
        if (!(x[i] < t))
            return i;
    return n;
}

static inline int RW_NAME(hide_below)(int64_t n, RW_T *x, const RW_T *t)
{
    int rest = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (x[i] < t[i])
            x[i] = -INFINITY;
        else if (!(x[i] > t[i]) && x[i] != -INFINITY)
            rest = 1;
    }
    return rest;
}
#else
/* _CMP_NLT_UQ, "not less than", holds when either side is NaN. */
static int64_t RW_NAME(first_reaching)(int64_t n, const RW_T *x, RW_T t)
{
    const RW_VEC vt = RW_SET1(t);
    int64_t i = 0;
    for (; i + RW_VL <= n; i += RW_VL) {
        const unsigned hit = RW_CMP(RW_LOAD(x + i), vt, _CMP_NLT_UQ);
        if (hit)
            return i + __builtin_ctz(hit);
    }
    return i + RW_SCALAR(first_reaching)(n - i, x + i, t);
}

/* "rest": lanes neither below nor above t (equal, or NaN) and not -inf. */
static int RW_NAME(hide_below)(int64_t n, RW_T *x, const RW_T *t)
{
    const RW_VEC ninf = RW_SET1(-INFINITY);
    unsigned rest = 0;
    int64_t i = 0;
    for (; i + RW_VL <= n; i += RW_VL) {
        const RW_VEC v = RW_LOAD(x + i), th = RW_LOAD(t + i);
        rest |= RW_CMP(v, th, _CMP_NGT_UQ) & ~RW_CMP(v, th, _CMP_LT_OQ)
                & RW_CMP(v, ninf, _CMP_NEQ_UQ);
        RW_STORE(x + i, RW_BELOW_TO(v, th, ninf));
    }
    return (rest != 0) | RW_SCALAR(hide_below)(n - i, x + i, t + i);
}
#endif
